"""Go's text/template, the part docker users write in `--format`; pure, no I/O.

Owns executing a template (parsed by `goparse`) over the values of `govalues`, and the
public API: `Template(source).execute(data)`, `TemplateError`. Supported: text;
`{{- ... -}}` trimming; comments; `.`, fields and chains (`.A.B`, `$x.A`, `(pipe).A`);
methods with arguments (`.Label "k"`); variables (`$x := ...`, `$x = ...`, `$`);
pipelines with `|`; parenthesised pipelines; string, raw-string, number, char, bool and
nil literals; `if`/`else if`/`else`; `range` (`$i, $v :=`, `else`, `break`,
`continue`, maps in key order, integers); `with`/`else with`. Functions come from
`govalues.FUNCS` (Go's builtins and docker's); `and`/`or` short-circuit. Not supported:
`define`, `template`, `block`. Error texts follow Go's (`template: :1:2: executing ""
at <.Foo>: can't evaluate field Foo in type ...`).
"""

from __future__ import annotations

from muslin.cli import govalues as gv
from muslin.cli.goparse import (
    Action,
    Branch,
    Cmd,
    Dot,
    Field,
    Ident,
    Jump,
    Lit,
    Nil,
    Node,
    Parser,
    Pipe,
    PipeArg,
    TemplateError,
    Text,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any

__all__ = ["Template", "TemplateError", "parse"]


# -- executor ------------------------------------------------------------------------

_MISSING = object()  # no final value passed down the pipeline


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


class _ExecError(Exception):
    def __init__(self, node: Node, msg: str) -> None:
        super().__init__(msg)
        self.node = node
        self.msg = msg


class _Exec:
    def __init__(self, funcs: Mapping[str, Callable[..., Any]], missing_error: bool,
                 root: Any) -> None:
        self.funcs = funcs
        self.missing_error = missing_error
        self.vars: list[tuple[str, Any]] = [("$", root)]
        self.out: list[str] = []

    # statements

    def walk(self, dot: Any, nodes: list[Node]) -> None:
        for node in nodes:
            if isinstance(node, Text):
                self.out.append(node.text)
            elif isinstance(node, Action):
                value = self.pipeline(dot, node.pipe)
                if not node.pipe.decls:
                    self.out.append(self.printable(node, value))
            elif isinstance(node, Branch):
                self.branch(dot, node)
            elif isinstance(node, Jump):
                raise _Break() if node.src == "break" else _Continue()

    def printable(self, node: Node, value: Any) -> str:
        if callable(value) and not isinstance(value, gv.GoStruct):
            raise _ExecError(node, "can't print value of type func")
        return gv.sprint_value(value, top=True)

    def branch(self, dot: Any, node: Branch) -> None:
        mark = len(self.vars)
        try:
            value = self.pipeline(dot, node.pipe)
            if node.kind == "range":
                self.range(dot, node, value, mark)
            elif gv.truth(value):
                self.walk(value if node.kind == "with" else dot, node.body)
            elif node.else_body is not None:
                self.walk(dot, node.else_body)
        finally:
            del self.vars[mark:]

    def range(self, dot: Any, node: Branch, value: Any, mark: int) -> None:
        items: list[tuple[Any, Any]]
        if value is gv.NO_VALUE or value is None:
            items = []
        elif isinstance(value, dict):
            items = sorted(value.items())
        elif isinstance(value, (list, tuple)):
            items = list(enumerate(value))
        elif isinstance(value, int) and not isinstance(value, bool):
            if node.pipe.decls and len(node.pipe.decls) > 1:
                raise _ExecError(node.pipe, "can't use range over int with two variables")
            items = [(i, i) for i in range(value)]
        else:
            raise _ExecError(node.pipe, f"range can't iterate over {gv.sprint_value(value)}")
        if not items:
            if node.else_body is not None:
                self.walk(dot, node.else_body)
            return
        inner = len(self.vars)
        for key, elem in items:
            del self.vars[inner:]
            decls = node.pipe.decls
            if len(decls) == 1:
                self.set_var(decls[0], elem, node.pipe.assign, node.pipe)
            elif len(decls) == 2:
                self.set_var(decls[0], key, node.pipe.assign, node.pipe)
                self.set_var(decls[1], elem, node.pipe.assign, node.pipe)
            try:
                self.walk(elem, node.body)
            except _Break:
                break
            except _Continue:
                continue

    # expressions

    def set_var(self, name: str, value: Any, assign: bool, node: Node) -> None:
        if not assign:
            self.vars.append((name, value))
            return
        for i in range(len(self.vars) - 1, -1, -1):
            if self.vars[i][0] == name:
                self.vars[i] = (name, value)
                return
        raise _ExecError(node, f"undefined variable: {name}")

    def var(self, node: Node, name: str) -> Any:
        for n, v in reversed(self.vars):
            if n == name:
                return v
        raise _ExecError(node, f"undefined variable: {name}")

    def pipeline(self, dot: Any, pipe: Pipe) -> Any:
        value: Any = _MISSING
        for cmd in pipe.cmds:
            value = self.command(dot, cmd, value)
        if pipe.decls and not pipe.is_range:
            self.set_var(pipe.decls[0], value, pipe.assign, pipe)
        return value

    def not_a_function(self, cmd: Cmd, final: Any) -> None:
        if len(cmd.args) > 1 or final is not _MISSING:
            raise _ExecError(cmd, f"can't give argument to non-function {cmd.args[0].src}")

    def command(self, dot: Any, cmd: Cmd, final: Any) -> Any:
        first = cmd.args[0]
        if isinstance(first, Field):
            return self.field(dot, first, cmd.args, final)
        if isinstance(first, Ident):
            return self.function(dot, first, cmd, final)
        self.not_a_function(cmd, final)
        return self.arg(dot, first)

    def arg(self, dot: Any, node: Node) -> Any:
        if isinstance(node, Dot):
            return dot
        if isinstance(node, Lit):
            return node.value
        if isinstance(node, Nil):
            return None
        if isinstance(node, Field):
            return self.field(dot, node, [node], _MISSING)
        if isinstance(node, PipeArg):
            mark = len(self.vars)
            try:
                return self.pipeline(dot, node.pipe)
            finally:
                del self.vars[mark:]
        if isinstance(node, Ident):
            return self.function(dot, node, Cmd(node.pos, node.src, [node]), _MISSING)
        raise _ExecError(node, f"can't handle {node.src}")

    def field(self, dot: Any, node: Field, args: list[Node], final: Any) -> Any:
        if node.base is not None:
            receiver = self.arg(dot, node.base)
        elif node.var is not None:
            receiver = self.var(node, node.var)
            if not node.names:
                if len(args) > 1 or final is not _MISSING:
                    raise _ExecError(node, f"can't give argument to non-function {node.src}")
                return receiver
        else:
            receiver = dot
        names = node.names
        for name in names[:-1]:
            receiver = self.field_of(dot, node, name, receiver, [], _MISSING)
        return self.field_of(dot, node, names[-1], receiver, args[1:], final)

    def field_of(self, dot: Any, node: Node, name: str, receiver: Any, args: list[Node],
                 final: Any) -> Any:
        has_args = bool(args) or final is not _MISSING
        if receiver is gv.NO_VALUE:
            if self.missing_error:
                raise _ExecError(node, f'nil data; no entry for key "{name}"')
            return gv.NO_VALUE
        if receiver is None:
            raise _ExecError(node, f"nil pointer evaluating interface {{}}.{name}")
        if isinstance(receiver, gv.GoStruct):
            method = receiver.go_method(name)
            if method is not None:
                return self.call(dot, node, name, method, args, final)
            for fname, value in receiver.go_fields():
                if fname == name:
                    if has_args:
                        raise _ExecError(
                            node, f"{name} has arguments but cannot be invoked as function")
                    return value
        elif isinstance(receiver, dict):
            if isinstance(receiver, gv.GoMap):
                method = receiver.go_method(name)
                if method is not None:
                    return self.call(dot, node, name, method, args, final)
            if has_args:
                raise _ExecError(node, f"{name} is not a method but has arguments")
            if name in receiver:
                return receiver[name]
            if self.missing_error:
                raise _ExecError(node, f'map has no entry for key "{name}"')
            return gv.NO_VALUE
        raise _ExecError(
            node, f"can't evaluate field {name} in type {gv.go_type_name(receiver)}")

    def function(self, dot: Any, ident: Ident, cmd: Cmd, final: Any) -> Any:
        name = ident.name
        if name in ("and", "or"):
            operands: list[Any] = [lambda n=n: self.arg(dot, n) for n in cmd.args[1:]]
            if final is not _MISSING:
                operands.append(lambda: final)
            if not operands:
                raise _ExecError(cmd, f"wrong number of args for {name}: want at least 1 got 0")
            value: Any = None
            for get in operands:
                value = get()
                if gv.truth(value) != (name == "and"):
                    return value
            return value
        return self.call(dot, cmd, name, self.funcs[name], cmd.args[1:], final, ident)

    def call(self, dot: Any, node: Node, name: str, fn: Callable[..., Any],
             args: list[Node], final: Any, name_node: Node | None = None) -> Any:
        code = getattr(fn, "__code__", None)
        if code is not None:
            want = code.co_argcount - (1 if hasattr(fn, "__self__") else 0)
            got = len(args) + (final is not _MISSING)
            variadic = bool(code.co_flags & 0x04)
            if (got < want) if variadic else (got != want):
                raise _ExecError(name_node or node, f"wrong number of args for {name}: want "
                                 f"{'at least ' if variadic else ''}{want} got {got}")
        argv = [self.arg(dot, a) for a in args]
        if final is not _MISSING:
            argv.append(final)
        try:
            return fn(*argv)
        except gv.ArgTypeError as e:
            raise _ExecError(node, str(e)) from None
        except gv.FuncError as e:
            raise _ExecError(node, f"error calling {name}: {e}") from None


class Template:
    """A parsed template; `execute` renders it over a value."""

    def __init__(self, source: str, funcs: Mapping[str, Callable[..., Any]] | None = None
                 ) -> None:
        self.source = source
        self.funcs = dict(gv.FUNCS if funcs is None else funcs)
        self.nodes = Parser(source, self.funcs).parse()

    def execute(self, data: Any, *, funcs: Mapping[str, Callable[..., Any]] | None = None,
                missingkey_error: bool = False) -> str:
        """Render over `data`; raises TemplateError (with the partial output)."""
        ex = _Exec(self.funcs if funcs is None else funcs, missingkey_error, data)
        try:
            ex.walk(data, self.nodes)
        except _ExecError as e:
            line = 1 + self.source.count("\n", 0, e.node.pos)
            col = e.node.pos - (self.source.rfind("\n", 0, e.node.pos) + 1)
            raise TemplateError(
                f'template: :{line}:{col}: executing "" at <{e.node.src}>: {e.msg}',
                "".join(ex.out),
            ) from None
        except RecursionError:
            raise TemplateError("template: exceeded maximum template depth",
                                "".join(ex.out)) from None
        return "".join(ex.out)


def parse(source: str, funcs: Mapping[str, Callable[..., Any]] | None = None) -> Template:
    """Parse `source`; raises TemplateError with Go's wording."""
    return Template(source, funcs)
