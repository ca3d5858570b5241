"""Parsing Go templates: the lexer, the parse tree and the parser; pure, no I/O.

Owns turning template text into nodes (text, actions, if/range/with branches,
pipelines, commands and operands), applying `{{-`/`-}}` trim markers, dropping
comments, and Go's wording for parse errors (`template: :1: function "x" not defined`).
`gotemplate` executes the tree.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any


class TemplateError(Exception):
    """A parse or execution error; `partial` is the output written before it."""

    def __init__(self, message: str, partial: str = "") -> None:
        super().__init__(message)
        self.partial = partial


# -- lexer ---------------------------------------------------------------------------

_SPACE = " \t\r\n"
_KEYWORDS = {"if", "else", "end", "range", "with", "break", "continue",
             "define", "template", "block"}


class _Tok:
    __slots__ = ("end", "kind", "pos", "spaced", "val")

    def __init__(self, kind: str, val: Any, pos: int, end: int, spaced: bool) -> None:
        self.kind = kind  # field dot var ident kw lit pipe ( ) , := = close
        self.val = val
        self.pos = pos
        self.end = end
        self.spaced = spaced


def _is_ident_char(c: str) -> bool:
    return c.isalnum() or c == "_"


_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
            "\\": "\\", "'": "'", '"': '"'}


def _unquote(body: str, quote: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(body):
        c = body[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        n = body[i + 1] if i + 1 < len(body) else ""
        if n in _ESCAPES and (n != "'" or quote == "'") and (n != '"' or quote == '"'):
            out.append(_ESCAPES[n])
            i += 2
        elif n in "xuU":
            width = {"x": 2, "u": 4, "U": 8}[n]
            hexs = body[i + 2 : i + 2 + width]
            if len(hexs) != width or any(h not in "0123456789abcdefABCDEF" for h in hexs):
                raise ValueError("invalid syntax")
            out.append(chr(int(hexs, 16)))
            i += 2 + width
        elif n in "01234567":
            octs = body[i + 1 : i + 4]
            out.append(chr(int(octs, 8)))
            i += 4
        else:
            raise ValueError("invalid syntax")
    return "".join(out)


def _number(text: str) -> int | float:
    t = text.replace("_", "")
    sign = -1 if t.startswith("-") else 1
    body = t.lstrip("+-")
    low = body.lower()
    if low.startswith(("0x", "0b", "0o")) and "." not in low and "p" not in low:
        return sign * int(body, 0)
    if body.isdigit():
        return sign * (int(body, 8) if len(body) > 1 and body[0] == "0" else int(body))
    return sign * float(body)


class _Lexer:
    def __init__(self, src: str) -> None:
        self.src = src

    def error(self, pos: int, msg: str) -> TemplateError:
        line = 1 + self.src.count("\n", 0, pos)
        return TemplateError(f"template: :{line}: {msg}")

    def segments(self) -> list[tuple[str, Any, int]]:
        """[("text", str, pos) | ("action", [tokens], pos)], trim markers applied."""
        src = self.src
        segs: list[tuple[str, Any, int]] = []
        pos = 0
        trim_next = False
        while True:
            i = src.find("{{", pos)
            text = src[pos:] if i < 0 else src[pos:i]
            if trim_next:
                text = text.lstrip(_SPACE)
            j = i + 2
            trim_left = i >= 0 and src[j : j + 1] == "-" and src[j + 1 : j + 2] in tuple(_SPACE)
            if trim_left:
                text = text.rstrip(_SPACE)
                j += 2
            if text:
                segs.append(("text", text, pos))
            if i < 0:
                return segs
            k = j
            while k < len(src) and src[k] in _SPACE and trim_left:
                k += 1
            if src.startswith("/*", k):
                end = src.find("*/", k + 2)
                if end < 0:
                    raise self.error(i, "unclosed comment")
                m = end + 2
                trim_next = False
                if src.startswith(" -}}", m) or (
                    src[m : m + 1] in tuple(_SPACE) and src.startswith("-}}", m + 1)
                ):
                    trim_next = True
                    m += 4
                elif src.startswith("}}", m):
                    m += 2
                else:
                    raise self.error(i, "comment ends before closing delimiter")
                pos = m
                continue
            toks, pos, trim_next = self.action(j, i)
            segs.append(("action", toks, i))

    def action(self, i: int, start: int) -> tuple[list[_Tok], int, bool]:
        src = self.src
        toks: list[_Tok] = []
        paren = 0
        while True:
            spaced = False
            while i < len(src) and src[i] in _SPACE:
                i += 1
                spaced = True
            if i >= len(src):
                raise self.error(start, "unclosed action")
            if spaced and src.startswith("-}}", i):
                return toks, i + 3, True
            if src.startswith("}}", i):
                if paren:
                    raise self.error(start, "unclosed left paren")
                return toks, i + 2, False
            c = src[i]
            p = i
            if c in "|(),":
                kind = c
                if c == "(":
                    paren += 1
                elif c == ")":
                    paren -= 1
                    if paren < 0:
                        raise self.error(p, "unexpected right paren")
                toks.append(_Tok(kind, c, p, p + 1, spaced))
                i += 1
            elif src.startswith(":=", i):
                toks.append(_Tok(":=", ":=", p, p + 2, spaced))
                i += 2
            elif c == "=":
                toks.append(_Tok("=", "=", p, p + 1, spaced))
                i += 1
            elif c in "\"`'":
                end = i + 1
                while end < len(src) and src[end] != c:
                    if src[end] == "\\" and c != "`":
                        end += 1
                    elif src[end] == "\n" and c != "`":
                        break
                    end += 1
                if end >= len(src) or src[end] != c:
                    raise self.error(p, "unterminated quoted string" if c != "'"
                                     else "unterminated character constant")
                body = src[i + 1 : end]
                try:
                    val: Any = body if c == "`" else _unquote(body, c)
                except ValueError:
                    raise self.error(p, f"invalid syntax: {src[p:end + 1]}") from None
                if c == "'":
                    if len(val) != 1:
                        raise self.error(p, f"malformed character constant: {src[p:end + 1]}")
                    val = ord(val)
                toks.append(_Tok("lit", val, p, end + 1, spaced))
                i = end + 1
            elif c == "." and i + 1 < len(src) and (src[i + 1].isalpha() or src[i + 1] == "_"):
                end = i + 1
                while end < len(src) and _is_ident_char(src[end]):
                    end += 1
                toks.append(_Tok("field", src[i + 1 : end], p, end, spaced))
                i = end
            elif c.isdigit() or (c in "+-." and i + 1 < len(src) and src[i + 1].isdigit()):
                end = i + 1
                while end < len(src) and (_is_ident_char(src[end]) or src[end] in ".+-"):
                    if src[end] in "+-" and src[end - 1] not in "eEpP":
                        break
                    end += 1
                try:
                    num = _number(src[i:end])
                except ValueError:
                    raise self.error(p, f"bad number syntax: {src[i:end]!r}") from None
                toks.append(_Tok("lit", num, p, end, spaced))
                i = end
            elif c == ".":
                toks.append(_Tok("dot", ".", p, p + 1, spaced))
                i += 1
            elif c == "$":
                end = i + 1
                while end < len(src) and _is_ident_char(src[end]):
                    end += 1
                toks.append(_Tok("var", src[i:end], p, end, spaced))
                i = end
            elif c.isalpha() or c == "_":
                end = i
                while end < len(src) and _is_ident_char(src[end]):
                    end += 1
                word = src[i:end]
                if word in _KEYWORDS:
                    toks.append(_Tok("kw", word, p, end, spaced))
                elif word in ("true", "false"):
                    toks.append(_Tok("lit", word == "true", p, end, spaced))
                elif word == "nil":
                    toks.append(_Tok("nil", None, p, end, spaced))
                else:
                    toks.append(_Tok("ident", word, p, end, spaced))
                i = end
            else:
                raise self.error(p, f"unexpected {c!r} in command")


# -- parse tree ----------------------------------------------------------------------


class Node:
    __slots__ = ("pos", "src")

    def __init__(self, pos: int, src: str) -> None:
        self.pos = pos
        self.src = src


class Field(Node):
    """`.A.B` on dot, or `$x.A.B` (var set), or `(pipe).A.B` (base set)."""

    __slots__ = ("base", "names", "var")

    def __init__(self, pos: int, src: str, names: list[str], var: str | None = None,
                 base: PipeArg | None = None) -> None:
        super().__init__(pos, src)
        self.names = names
        self.var = var
        self.base = base


class Lit(Node):
    __slots__ = ("value",)

    def __init__(self, pos: int, src: str, value: Any) -> None:
        super().__init__(pos, src)
        self.value = value


class Dot(Node):
    __slots__ = ()


class Nil(Node):
    __slots__ = ()


class Ident(Node):
    __slots__ = ("name",)

    def __init__(self, pos: int, src: str, name: str) -> None:
        super().__init__(pos, src)
        self.name = name


class Cmd(Node):
    __slots__ = ("args",)

    def __init__(self, pos: int, src: str, args: list[Node]) -> None:
        super().__init__(pos, src)
        self.args = args


class Pipe(Node):
    __slots__ = ("assign", "cmds", "decls", "is_range")

    def __init__(self, pos: int, src: str, decls: list[str], assign: bool,
                 cmds: list[Cmd]) -> None:
        super().__init__(pos, src)
        self.decls = decls
        self.assign = assign
        self.cmds = cmds
        self.is_range = False  # range sets its variables per element


class Text(Node):
    __slots__ = ("text",)

    def __init__(self, pos: int, text: str) -> None:
        super().__init__(pos, text)
        self.text = text


class Action(Node):
    __slots__ = ("pipe",)

    def __init__(self, pos: int, src: str, pipe: Pipe) -> None:
        super().__init__(pos, src)
        self.pipe = pipe


class Branch(Node):
    """if / with / range: `kind`, its pipeline, body and else body."""

    __slots__ = ("body", "else_body", "kind", "pipe")

    def __init__(self, pos: int, src: str, kind: str, pipe: Pipe, body: list[Node],
                 else_body: list[Node] | None) -> None:
        super().__init__(pos, src)
        self.kind = kind
        self.pipe = pipe
        self.body = body
        self.else_body = else_body


class Jump(Node):
    """`{{break}}` or `{{continue}}` (src holds which)."""

    __slots__ = ()


# -- parser --------------------------------------------------------------------------


class Parser:
    def __init__(self, src: str, funcs: Mapping[str, Any]) -> None:
        self.src = src
        self.funcs = funcs
        self.lexer = _Lexer(src)
        self.segs = self.lexer.segments()
        self.i = 0
        self.range_depth = 0

    def error(self, pos: int, msg: str) -> TemplateError:
        return self.lexer.error(pos, msg)

    def parse(self) -> list[Node]:
        nodes, stop = self.list_until(())
        if stop is not None:
            raise self.error(stop[1], f"unexpected {{{{{stop[0][0].val}}}}}")
        return nodes

    def list_until(self, stops: tuple[str, ...]) -> tuple[list[Node], Any]:
        nodes: list[Node] = []
        while self.i < len(self.segs):
            kind, val, pos = self.segs[self.i]
            self.i += 1
            if kind == "text":
                nodes.append(Text(pos, val))
                continue
            toks: list[_Tok] = val
            if not toks:
                raise self.error(pos, "missing value for command")
            head = toks[0]
            if head.kind == "kw":
                if head.val in ("end", "else"):
                    if head.val not in stops:
                        raise self.error(pos, f"unexpected {{{{{head.val}}}}}")
                    return nodes, (toks, pos)
                nodes.append(self.keyword(head.val, toks, pos))
                continue
            pipe, j = self.pipeline(toks, 0, "command", pos)
            self.expect_end(toks, j, pos)
            nodes.append(Action(pos, pipe.src, pipe))
        if stops:
            raise self.error(len(self.src), "unexpected EOF")
        return nodes, None

    def expect_end(self, toks: list[_Tok], j: int, pos: int) -> None:
        if j < len(toks):
            raise self.error(toks[j].pos, f"unexpected {toks[j].val!r} in command")

    def keyword(self, kw: str, toks: list[_Tok], pos: int) -> Node:
        if kw in ("break", "continue"):
            if self.range_depth == 0:
                raise self.error(pos, f"{{{{{kw}}}}} outside {{{{range}}}}")
            if len(toks) > 1:
                raise self.error(pos, f"unexpected {toks[1].val!r} in {{{{{kw}}}}}")
            return Jump(pos, kw)
        if kw in ("define", "template", "block"):
            raise self.error(pos, f"{{{{{kw}}}}} is not supported in --format templates")
        return self.control(kw, toks, 1, pos)

    def control(self, kw: str, toks: list[_Tok], start: int, pos: int) -> Branch:
        pipe, j = self.pipeline(toks, start, kw, pos)
        self.expect_end(toks, j, pos)
        pipe.is_range = kw == "range"
        if kw == "range":
            self.range_depth += 1
        body, stop = self.list_until(("end", "else"))
        if kw == "range":
            self.range_depth -= 1
        else_body: list[Node] | None = None
        stop_toks, stop_pos = stop
        if stop_toks[0].val == "else":
            if len(stop_toks) > 1 and stop_toks[1].kind == "kw" and stop_toks[1].val in (
                "if", "with"
            ):
                if kw == "range":
                    raise self.error(stop_pos, "unexpected {{else if}} in range")
                else_body = [self.control(stop_toks[1].val, stop_toks, 2, stop_pos)]
            else:
                self.expect_end(stop_toks, 1, stop_pos)
                else_body, stop2 = self.list_until(("end",))
                self.expect_end(stop2[0], 1, stop2[1])
        else:
            self.expect_end(stop_toks, 1, stop_pos)
        return Branch(pos, kw, kw, pipe, body, else_body)

    def pipeline(self, toks: list[_Tok], j: int, context: str, pos: int,
                 until_paren: bool = False) -> tuple[Pipe, int]:
        decls: list[str] = []
        assign = False
        start = toks[j].pos if j < len(toks) else pos
        # declarations: $x := / $x = / $i, $v :=
        if j < len(toks) and toks[j].kind == "var":
            if j + 1 < len(toks) and toks[j + 1].kind in (":=", "="):
                decls = [toks[j].val]
                assign = toks[j + 1].kind == "="
                j += 2
            elif (j + 3 < len(toks) and toks[j + 1].kind == "," and toks[j + 2].kind == "var"
                  and toks[j + 3].kind in (":=", "=") and context == "range"):
                decls = [toks[j].val, toks[j + 2].val]
                assign = toks[j + 3].kind == "="
                j += 4
        cmds: list[Cmd] = []
        while True:
            cmd, j = self.command(toks, j, pos)
            if not cmd.args:
                raise self.error(pos, f"missing value for {context}")
            if cmds and isinstance(cmd.args[0], (Lit, Nil, Dot)):
                raise self.error(pos, f"non executable command in pipeline stage {len(cmds) + 1}")
            cmds.append(cmd)
            if j < len(toks) and toks[j].kind == "|":
                j += 1
                continue
            break
        if until_paren and (j >= len(toks) or toks[j].kind != ")"):
            raise self.error(pos, "unclosed left paren")
        end = toks[j - 1].end if j > 0 else start
        return Pipe(start, self.src[start:end], decls, assign, cmds), j

    def command(self, toks: list[_Tok], j: int, pos: int) -> tuple[Cmd, int]:
        args: list[Node] = []
        start = toks[j].pos if j < len(toks) else pos
        while j < len(toks) and toks[j].kind not in ("|", ")"):
            t = toks[j]
            if args and not t.spaced and t.kind != "field":
                raise self.error(t.pos, f"missing space? {t.val!r}")
            node, j = self.operand(toks, j)
            args.append(node)
        end = toks[j - 1].end if j > 0 and args else start
        return Cmd(start, self.src[start:end], args), j

    def chain(self, toks: list[_Tok], j: int) -> tuple[list[str], int]:
        names: list[str] = []
        while j < len(toks) and toks[j].kind == "field" and not toks[j].spaced:
            names.append(toks[j].val)
            j += 1
        return names, j

    def operand(self, toks: list[_Tok], j: int) -> tuple[Node, int]:
        t = toks[j]
        node: Node
        if t.kind == "field":
            names, k = self.chain(toks, j + 1)
            node = Field(t.pos, self.src[t.pos:toks[k - 1].end], [t.val, *names])
            return node, k
        if t.kind == "var":
            names, k = self.chain(toks, j + 1)
            node = Field(t.pos, self.src[t.pos:toks[k - 1].end], names, var=t.val)
            return node, k
        if t.kind == "dot":
            if j + 1 < len(toks) and toks[j + 1].kind == "field" and not toks[j + 1].spaced:
                raise self.error(t.pos, "unexpected . after term \".\"")
            return Dot(t.pos, "."), j + 1
        if t.kind == "lit":
            return Lit(t.pos, self.src[t.pos:t.end], t.val), j + 1
        if t.kind == "nil":
            return Nil(t.pos, "nil"), j + 1
        if t.kind == "ident":
            if t.val not in self.funcs:
                raise self.error(t.pos, f'function "{t.val}" not defined')
            return Ident(t.pos, t.val, t.val), j + 1
        if t.kind == "(":
            pipe, k = self.pipeline(toks, j + 1, "parenthesized pipeline", t.pos,
                                    until_paren=True)
            k += 1  # the ")"
            names, m = self.chain(toks, k)
            src = self.src[t.pos:toks[m - 1].end]
            inner = PipeArg(t.pos, src, pipe)
            if names:
                return Field(t.pos, src, names, base=inner), m
            return inner, m
        raise self.error(t.pos, f"unexpected {t.val!r} in operand")


class PipeArg(Node):
    """A parenthesised pipeline used as an operand."""

    __slots__ = ("pipe",)

    def __init__(self, pos: int, src: str, pipe: Pipe) -> None:
        super().__init__(pos, src)
        self.pipe = pipe
