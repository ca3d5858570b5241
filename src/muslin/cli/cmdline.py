"""docker-style command line: pflag's flag rules, the command tree and cobra's help text.

Owns flag kinds (bool, string, int, list, strings, map, filter) and parsing
(`--name=value`, `--name value`, `-n value`, `-nvalue`, clustered short bools, `--`,
arguments between flags, repeated and comma-separated values), argument-count checks,
and the usage/help text in docker 27's layout. Messages are docker's; flag errors exit
125, argument-count errors exit 1.
"""

from __future__ import annotations

from muslin.cli.errors import StatusError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any

FORMAT_HELP = """Format output using a custom template:
'table':            Print output in table format with column headers (default)
'table TEMPLATE':   Print output in table format using the given Go template
'json':             Print in JSON format
'TEMPLATE':         Print output using the given Go template.
Refer to https://docs.docker.com/go/formatting/ for more information about formatting \
output with templates"""

INSPECT_FORMAT_HELP = """Format output using a custom template:
'json':             Print in JSON format
'TEMPLATE':         Print output using the given Go template.
Refer to https://docs.docker.com/go/formatting/ for more information about formatting \
output with templates"""

_TYPE_NAMES = {"bool": "", "string": "string", "int": "int", "list": "list",
               "strings": "strings", "map": "map", "filter": "filter"}


class Flag:
    """One flag: long name, optional one-letter short name, kind, help, default."""

    __slots__ = ("default", "help", "hidden", "kind", "name", "short", "validate")

    def __init__(self, name: str, kind: str = "bool", help: str = "", *, short: str = "",
                 default: str = "", validate: Callable[[str], str] | None = None,
                 hidden: bool = False) -> None:
        self.name = name
        self.kind = kind
        self.help = help
        self.short = short
        self.default = default
        self.validate = validate
        self.hidden = hidden  # accepted but left out of --help (pflag's MarkHidden)

    def display(self) -> str:
        return f"-{self.short}, --{self.name}" if self.short else f"--{self.name}"

    def default_text(self) -> str:
        """pflag's ` (default ...)` suffix, empty when the default is the zero value."""
        if self.kind == "map":
            return " (default map[])"
        if self.kind == "string" and self.default:
            return f' (default "{self.default}")'
        if self.kind in ("bool", "int") and self.default not in ("", "false", "0"):
            return f" (default {self.default})"
        return ""


class Command:
    """A command that runs: `use` is its usage after the name; `run` is
    "module:function", imported only when the command runs. Without `interspersed`
    its flags end at the first argument (`run IMAGE CMD -x`: -x is CMD's)."""

    __slots__ = ("aliases", "aliases_text", "flags", "interspersed", "max_args", "min_args",
                 "name", "run", "short", "use")

    def __init__(self, name: str, use: str, short: str, run: str, *,
                 flags: Sequence[Flag] = (), args: tuple[int, int | None] = (0, 0),
                 aliases: Sequence[str] = (), aliases_text: str = "",
                 interspersed: bool = True) -> None:
        self.name = name
        self.use = use
        self.short = short
        self.run = run
        self.flags = tuple(flags)
        self.min_args, self.max_args = args
        self.aliases = tuple(aliases)
        self.aliases_text = aliases_text  # docker's "aliases" annotation, if any
        self.interspersed = interspersed


class Group:
    """A command with subcommands (`network`, `system`, the root)."""

    __slots__ = ("aliases", "commands", "flags", "name", "short")

    def __init__(self, name: str, short: str, commands: Sequence[Command | Group], *,
                 flags: Sequence[Flag] = ()) -> None:
        self.name = name
        self.short = short
        self.commands = tuple(commands)
        self.flags = tuple(flags)
        self.aliases: tuple[str, ...] = ()

    def find(self, name: str) -> Command | Group | None:
        for c in self.commands:
            if c.name == name or name in c.aliases:
                return c
        return None


class Options:
    """Parsed flag values, read through typed accessors."""

    def __init__(self, flags: Sequence[Flag]) -> None:
        self.flags = {f.name: f for f in flags}
        self.values: dict[str, Any] = {}
        self.changed: set[str] = set()

    def is_set(self, name: str) -> bool:
        return name in self.changed

    def string(self, name: str) -> str:
        v = self.values.get(name)
        return v if isinstance(v, str) else self.flags[name].default

    def boolean(self, name: str) -> bool:
        v = self.values.get(name)
        return v if isinstance(v, bool) else self.flags[name].default == "true"

    def integer(self, name: str) -> int:
        v = self.values.get(name)
        return v if isinstance(v, int) else int(self.flags[name].default or 0)

    def strings(self, name: str) -> list[str]:
        v = self.values.get(name)
        return list(v) if isinstance(v, list) else []

    def mapping(self, name: str) -> dict[str, str]:
        v = self.values.get(name)
        return dict(v) if isinstance(v, dict) else {}

    def filters(self, name: str) -> dict[str, dict[str, bool]]:
        """filters.Args as the Engine API wants it: {"name": {"x": true}}."""
        out: dict[str, dict[str, bool]] = {}
        pairs = self.values.get(name)
        for key, value in pairs if isinstance(pairs, list) else []:
            out.setdefault(key, {})[value] = True
        return out


class FlagError(Exception):
    """A pflag parse error (the caller adds `See '... --help'.` and exits 125)."""


_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_FALSE = ("0", "f", "F", "FALSE", "false", "False")


def _set(opts: Options, flag: Flag, value: str | None) -> None:
    name = flag.name
    try:
        if flag.kind == "bool":
            if value is None or value in _TRUE:
                opts.values[name] = True
            elif value in _FALSE:
                opts.values[name] = False
            else:
                raise ValueError(f'strconv.ParseBool: parsing "{value}": invalid syntax')
        elif value is None:
            raise AssertionError(name)
        elif flag.kind == "int":
            try:
                opts.values[name] = int(value, 10)
            except ValueError:
                raise ValueError(f'strconv.ParseInt: parsing "{value}": invalid syntax') from None
        elif flag.kind == "string":
            opts.values[name] = value
        elif flag.kind == "strings":
            items = opts.values.setdefault(name, [])
            if value != "":
                items.extend(v.strip('"') for v in value.split(","))
        elif flag.kind == "list":
            opts.values.setdefault(name, []).append(
                flag.validate(value) if flag.validate else value)
        elif flag.kind == "map":
            key, _, val = value.partition("=")
            opts.values.setdefault(name, {})[key] = val
        elif flag.kind == "filter" and value != "":
            if "=" not in value:
                raise ValueError("bad format of filter (expected name=value)")
            key, _, val = value.partition("=")
            opts.values.setdefault(name, []).append((key.strip().lower(), val.strip()))
    except ValueError as e:
        raise FlagError(
            f'invalid argument "{value}" for "{flag.display()}" flag: {e}') from None
    opts.changed.add(name)


def parse_flags(flags: Sequence[Flag], argv: Sequence[str], *, interspersed: bool = True
                ) -> tuple[Options, list[str], bool]:
    """(options, positional arguments, help requested). Without `interspersed`,
    parsing stops at the first argument (the root command stops at the command)."""
    opts = Options(flags)
    by_long = {f.name: f for f in flags}
    by_short = {f.short: f for f in flags if f.short}
    args: list[str] = []
    want_help = False
    i = 0
    while i < len(argv):
        a = argv[i]
        i += 1
        if a == "--":
            args.extend(argv[i:])
            break
        if not a.startswith("-") or a == "-":
            args.append(a)
            if not interspersed:
                args.extend(argv[i:])
                break
            continue
        if a.startswith("--"):
            name, eq, value = a[2:].partition("=")
            if not name or name.startswith("-") or name.startswith("="):
                raise FlagError(f"bad flag syntax: {a}")
            if name == "help":
                want_help = True
                continue
            flag = by_long.get(name)
            if flag is None:
                raise FlagError(f"unknown flag: --{name}")
            if eq:
                _set(opts, flag, value)
            elif flag.kind == "bool":
                _set(opts, flag, None)
            elif i < len(argv):
                _set(opts, flag, argv[i])
                i += 1
            else:
                raise FlagError(f"flag needs an argument: --{name}")
            continue
        shorts = a[1:]
        while shorts:
            c, shorts = shorts[0], shorts[1:]
            if c == "h" and c not in by_short:
                want_help = True
                continue
            flag = by_short.get(c)
            if flag is None:
                raise FlagError(f"unknown shorthand flag: '{c}' in {a}")
            if shorts.startswith("="):
                _set(opts, flag, shorts[1:])
                shorts = ""
            elif flag.kind == "bool":
                _set(opts, flag, None)
            elif shorts:
                _set(opts, flag, shorts)
                shorts = ""
            elif i < len(argv):
                _set(opts, flag, argv[i])
                i += 1
            else:
                raise FlagError(f"flag needs an argument: '{c}' in -{c}")
    return opts, args, want_help


def check_args(path: str, cmd: Command, args: Sequence[str]) -> None:
    """cobra's argument validators with docker's messages (exit 1)."""
    n, lo, hi = len(args), cmd.min_args, cmd.max_args
    if hi == 0 and n:
        what = f'"{path}" accepts no arguments.'
    elif lo == hi and n != lo:
        what = f'"{path}" requires exactly {lo} argument{"s" if lo != 1 else ""}.'
    elif n < lo:
        what = f'"{path}" requires at least {lo} argument{"s" if lo != 1 else ""}.'
    elif hi is not None and n > hi:
        what = f'"{path}" requires at most {hi} argument{"s" if hi != 1 else ""}.'
    else:
        return
    raise StatusError(
        f"{what}\nSee '{path} --help'.\n\nUsage:  {use_line(path, cmd)}\n\n{cmd.short}", 1)


def use_line(path: str, cmd: Command) -> str:
    """cobra's UseLine: the command path and the usage after the command's name."""
    _, _, rest = cmd.use.partition(" ")
    return f"{path} {rest}" if rest else path


# -- help text -----------------------------------------------------------------------


def _wrap_n(i: int, slop: int, s: str) -> tuple[str, str]:
    if i + slop > len(s):
        return s, ""
    w = max(s.rfind(" ", 0, i), s.rfind("\t", 0, i), s.rfind("\n", 0, i))
    if w <= 0:
        return s, ""
    nl = s.rfind("\n", 0, i)
    if 0 < nl < w:
        return s[:nl], s[nl + 1:]
    return s[:w], s[w + 1:]


def _wrap(i: int, w: int, s: str) -> str:
    """pflag's wrap: `s` in a column starting at `i` on lines of width `w`."""
    if w == 0:
        return s.replace("\n", "\n" + " " * i)
    width = w - i
    r = ""
    if width < 24:
        i = 16
        width = w - i
        r += "\n" + " " * i
    if width < 24:
        return s.replace("\n", r)
    slop = 5
    width -= slop
    line, s = _wrap_n(width, slop, s)
    r += line.replace("\n", "\n" + " " * i)
    while s:
        line, s = _wrap_n(width, slop, s)
        r += "\n" + " " * i + line.replace("\n", "\n" + " " * i)
    return r


def flag_usages(flags: Sequence[Flag], cols: int) -> str:
    """pflag's FlagUsagesWrapped(cols): flags sorted by name, help in one column."""
    lines: list[tuple[str, str]] = []
    for f in sorted(flags, key=lambda f: f.name):
        if f.hidden:
            continue
        head = f"  -{f.short}, --{f.name}" if f.short else f"      --{f.name}"
        if _TYPE_NAMES[f.kind]:
            head += " " + _TYPE_NAMES[f.kind]
        lines.append((head, f.help + f.default_text()))
    maxlen = max((len(h) for h, _ in lines), default=0) + 1
    return "".join(
        f"{h} {' ' * (maxlen - len(h))} {_wrap(maxlen + 2, cols, text)}\n" for h, text in lines
    )


def terminal_width() -> int:
    import os

    try:
        return os.get_terminal_size(0).columns
    except (OSError, ValueError):
        return 80


def _command_lines(cmds: Sequence[Command | Group], pad: int) -> str:
    return "".join(f"\n  {c.name.ljust(pad)} {c.short}" for c in cmds)


def help_text(path: str, node: Command | Group, *, top: Sequence[str] = (),
              width: int | None = None) -> str:
    """The text `--help` prints (docker 27's usage template, starting with a newline)."""
    cols = (terminal_width() if width is None else width) - 1
    parts = ["\nUsage:  "]
    if isinstance(node, Command):
        parts.append(use_line(path, node))
        parts.append(f"\n\n{node.short}")
        if node.aliases_text:
            parts.append("\n\nAliases:\n  " + node.aliases_text)
        elif node.aliases:
            parent = path.rsplit(" ", 1)[0]
            parts.append("\n\nAliases:\n  " + ", ".join(
                [path] + [f"{parent} {a}" for a in node.aliases]))
        if node.flags:
            parts.append("\n\nOptions:\n" + flag_usages(node.flags, cols).rstrip())
        return "".join(parts) + "\n"
    root = " " not in path
    parts.append(path + (" [OPTIONS]" if node.flags else "") + " COMMAND")
    parts.append(f"\n\n{node.short}")
    pad = max([11, *(len(c.name) for c in node.commands)])
    common = [c for name in top for c in node.commands if c.name == name]
    groups = [c for c in node.commands if isinstance(c, Group) and c.name not in top]
    plain = [c for c in node.commands if isinstance(c, Command) and c.name not in top]
    if common:
        parts.append("\n\nCommon Commands:" + _command_lines(common, pad))
    if groups:
        parts.append("\n\nManagement Commands:" + _command_lines(groups, pad))
    if plain:
        parts.append("\n\nCommands:" + _command_lines(plain, pad))
    if root and node.flags:
        parts.append("\n\nGlobal Options:\n" + flag_usages(node.flags, cols).rstrip())
    parts.append(f"\n\nRun '{path} COMMAND --help' for more information on a command.")
    return "".join(parts) + "\n"
