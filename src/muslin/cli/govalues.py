"""Go values for the template engine: the data model, printing, JSON and the functions.

Owns how JSON-shaped Python data stands in for Go values inside a template
(dict = map[string]interface {}, list = []interface {}, None = nil, `NO_VALUE` = Go's
invalid value that prints `<no value>`), typed stand-ins (`GoStruct`, `GoMap`,
`JSONNumber`), fmt.Sprint-style printing, json.Marshal-style encoding, truth, and the
template functions: Go's builtins and docker's (`json join split title lower upper pad
truncate`), with docker's header variants for table headers. Pure: no I/O.
"""

from __future__ import annotations

import json

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any


class _NoValue:
    """Go's invalid reflect.Value: what a missing map key evaluates to."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<no value>"


NO_VALUE = _NoValue()


class FuncError(Exception):
    """A template function failed; the executor adds the `error calling f:` context."""


class ArgTypeError(Exception):
    """An argument has the wrong Go type (`wrong type for value; expected string; ...`)."""


class JSONNumber(str):
    """A JSON number as written (Go's json.Number when decoding with UseNumber)."""

    __slots__ = ()


class JSONObject(dict):  # type: ignore[type-arg]
    """A JSON object whose key order is kept when encoded (a Go struct's fields)."""


class GoMap(dict):  # type: ignore[type-arg]
    """A typed Go map (e.g. map[string]string): its type name and element zero value."""

    def __init__(self, items: dict[str, Any], go_type: str, zero: Any) -> None:
        super().__init__(items)
        self.go_type = go_type
        self.zero = zero

    def go_method(self, name: str) -> Callable[..., Any] | None:
        """A method of the map type (looked up before the key, as Go does)."""
        return None


class GoStruct:
    """A Go struct (or pointer to one): ordered fields and methods by name."""

    go_type = "struct {}"

    def go_fields(self) -> Sequence[tuple[str, Any]]:
        """The fields in declaration order, for printing and lookup."""
        return ()

    def go_method(self, name: str) -> Callable[..., Any] | None:
        """The method called `name`, or None."""
        return None

    def to_json(self) -> Any:
        """The value json.Marshal would encode."""
        return JSONObject(self.go_fields())

    def go_string(self) -> str | None:
        """What fmt prints when the type has a String method; None prints the fields."""
        return None


def go_type_name(v: Any) -> str:
    """The Go type name used in error messages."""
    if v is NO_VALUE:
        return "<invalid>"
    if v is None:
        return "interface {}"
    if isinstance(v, GoStruct):
        return v.go_type
    if isinstance(v, GoMap):
        return v.go_type
    if isinstance(v, dict):
        return "map[string]interface {}"
    if isinstance(v, (list, tuple)):
        return "[]interface {}"
    if isinstance(v, JSONNumber):
        return "json.Number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float64"
    return type(v).__name__


# -- printing (fmt.Sprint) -------------------------------------------------------


def _float_parts(f: float) -> tuple[bool, str, int]:
    """(negative, shortest digits, dp) with f == 0.digits × 10**dp; digits "" for zero."""
    r = repr(abs(f))
    mant, _, e = r.partition("e")
    ip, _, fp = mant.partition(".")
    d = ip + fp
    stripped = d.lstrip("0")
    dp = len(ip) + int(e or 0) - (len(d) - len(stripped))
    return f < 0 or (f == 0 and str(f).startswith("-")), stripped.rstrip("0"), dp


def _fmt_f(digits: str, dp: int) -> str:
    if not digits:
        return "0"
    if dp <= 0:
        return "0." + "0" * -dp + digits
    if dp >= len(digits):
        return digits + "0" * (dp - len(digits))
    return digits[:dp] + "." + digits[dp:]


def _fmt_e(digits: str, dp: int, min_exp_digits: int) -> str:
    exp = dp - 1 if digits else 0
    m = (digits or "0")[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return f"{m}e{'-' if exp < 0 else '+'}{abs(exp):0{min_exp_digits}d}"


def format_float(f: float) -> str:
    """strconv.FormatFloat(f, 'g', -1, 64), which fmt's %v prints."""
    if f != f:
        return "NaN"
    if f in (float("inf"), float("-inf")):
        return "+Inf" if f > 0 else "-Inf"
    neg, digits, dp = _float_parts(f)
    exp = dp - 1
    body = _fmt_e(digits, dp, 2) if digits and (exp < -4 or exp >= 6) else _fmt_f(digits, dp)
    return ("-" if neg else "") + body


def sprint_value(v: Any, top: bool = True) -> str:
    """fmt.Sprint of one value; `top` is False inside a composite (nil prints `<nil>`)."""
    if v is NO_VALUE:
        return "<no value>" if top else "<invalid reflect.Value>"
    if v is None:
        return "<no value>" if top else "<nil>"
    if isinstance(v, str):
        return str.__str__(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return format_float(v)
    if isinstance(v, GoStruct):
        s = v.go_string()
        if s is not None:
            return s
        return "{" + " ".join(sprint_value(x, False) for _, x in v.go_fields()) + "}"
    if isinstance(v, dict):
        items = sorted(v.items())
        return "map[" + " ".join(f"{k}:{sprint_value(x, False)}" for k, x in items) + "]"
    if isinstance(v, (list, tuple)):
        return "[" + " ".join(sprint_value(x, False) for x in v) + "]"
    return str(v)


def sprint(args: Sequence[Any]) -> str:
    """fmt.Sprint: a space between operands when neither side is a string."""
    out: list[str] = []
    prev_string = False
    for i, a in enumerate(args):
        is_string = isinstance(a, str)
        if i > 0 and not is_string and not prev_string:
            out.append(" ")
        out.append(sprint_value(a, top=False) if a is not None else "<nil>")
        prev_string = is_string
    return "".join(out)


def truth(v: Any) -> bool:
    """Go template truth: false, 0, nil, empty string/slice/map are false."""
    if v is NO_VALUE or v is None:
        return False
    if isinstance(v, (bool, int, float)):
        return bool(v)
    if isinstance(v, (str, dict, list, tuple)):
        return len(v) > 0
    return True


# -- JSON (json.Marshal with SetEscapeHTML(false)) ---------------------------------


def _json_str(s: str) -> str:
    return (
        json.dumps(str.__str__(s), ensure_ascii=False)
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def _json_float(f: float) -> str:
    if f != f or f in (float("inf"), float("-inf")):
        raise FuncError(f"json: unsupported value: {format_float(f)}")
    neg, digits, dp = _float_parts(f)
    a = abs(f)
    body = _fmt_e(digits, dp, 1) if a != 0 and (a < 1e-6 or a >= 1e21) else _fmt_f(digits, dp)
    return ("-" if neg and a != 0 else "") + body


def to_json(v: Any) -> str:
    """Compact JSON as Go's encoder writes it (map keys sorted, struct order kept)."""
    if v is None or v is NO_VALUE:
        return "null"
    if isinstance(v, JSONNumber):
        return str.__str__(v)
    if isinstance(v, str):
        return _json_str(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return _json_float(v)
    if isinstance(v, GoStruct):
        return to_json(v.to_json())
    if isinstance(v, JSONObject):
        return "{" + ",".join(f"{_json_str(k)}:{to_json(x)}" for k, x in v.items()) + "}"
    if isinstance(v, dict):
        return (
            "{" + ",".join(f"{_json_str(k)}:{to_json(x)}" for k, x in sorted(v.items())) + "}"
        )
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(to_json(x) for x in v) + "]"
    raise FuncError(f"json: unsupported type: {go_type_name(v)}")


def _number_hook(s: str) -> JSONNumber:
    return JSONNumber(s)


def loads_use_number(text: str | bytes) -> Any:
    """json.Unmarshal into interface{} with UseNumber: numbers stay as written."""
    return json.loads(text, parse_int=_number_hook, parse_float=_number_hook)


# -- functions ---------------------------------------------------------------------


def want_str(v: Any) -> str:
    if isinstance(v, str):
        return str.__str__(v)
    if v is NO_VALUE or v is None:
        raise ArgTypeError("invalid value; expected string")
    raise ArgTypeError(f"wrong type for value; expected string; got {go_type_name(v)}")


def want_int(v: Any) -> int:
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    raise ArgTypeError(f"wrong type for value; expected int; got {go_type_name(v)}")


def _indirect(v: Any, what: str) -> Any:
    if v is NO_VALUE:
        raise FuncError(f"{what} of untyped nil")
    if v is None:
        raise FuncError(f"{what} of nil pointer")
    return v


def fn_len(v: Any) -> int:
    v = _indirect(v, "len")
    if isinstance(v, str):
        return len(str.__str__(v).encode())
    if isinstance(v, (list, tuple, dict)):
        return len(v)
    raise FuncError(f"len of type {go_type_name(v)}")


def fn_index(item: Any, *indexes: Any) -> Any:
    item = _indirect(item, "index")
    for ix in indexes:
        if item is None or item is NO_VALUE:
            raise FuncError("index of nil pointer")
        if isinstance(item, (list, tuple, str)):
            if not isinstance(ix, int) or isinstance(ix, bool):
                raise FuncError(f"cannot index slice/array with type {go_type_name(ix)}")
            seq: Any = str.__str__(item).encode() if isinstance(item, str) else item
            if not 0 <= ix < len(seq):
                raise FuncError(f"index out of range: {ix}")
            item = seq[ix]
        elif isinstance(item, dict):
            if not isinstance(ix, str):
                raise FuncError(
                    f"value has type {go_type_name(ix)}; should be string"
                )
            key = str.__str__(ix)
            item = item[key] if key in item else (item.zero if isinstance(item, GoMap) else None)
        else:
            raise FuncError(f"can't index item of type {go_type_name(item)}")
    return item


def fn_slice(item: Any, *idx: Any) -> Any:
    item = _indirect(item, "slice")
    if not isinstance(item, (str, list, tuple)):
        raise FuncError(f"can't slice item of type {go_type_name(item)}")
    if len(idx) > 3 or (len(idx) == 3 and isinstance(item, str)):
        raise FuncError("too many slice indexes")
    bounds = [want_int(i) for i in idx]
    seq: Any = str.__str__(item) if isinstance(item, str) else list(item)
    lo = bounds[0] if bounds else 0
    hi = bounds[1] if len(bounds) > 1 else len(seq)
    if not 0 <= lo <= hi <= len(seq):
        raise FuncError(f"index out of range: {hi if hi > len(seq) else lo}")
    return seq[lo:hi]


def fn_not(v: Any) -> bool:
    return not truth(v)


def _kind(v: Any) -> str:
    if v is NO_VALUE or v is None:
        return "invalid"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    if isinstance(v, str):
        return "string"
    return "other"


def fn_eq(a: Any, *bs: Any) -> bool:
    if not bs:
        raise FuncError("missing argument for comparison")
    ka = _kind(a)
    for b in bs:
        kb = _kind(b)
        if ka != kb:
            if {ka, kb} == {"int", "float"}:
                raise FuncError("incompatible types for comparison")
            if ka != "invalid" and kb != "invalid":
                raise FuncError("incompatible types for comparison")
            continue
        if ka == "other" and not isinstance(a, type(b)):
            raise FuncError("non-comparable types")
        if a == b:
            return True
    return False


def fn_ne(a: Any, b: Any) -> bool:
    return not fn_eq(a, b)


def _ordered(a: Any, b: Any) -> tuple[Any, Any]:
    ka, kb = _kind(a), _kind(b)
    if ka not in ("int", "float", "string") or kb not in ("int", "float", "string"):
        raise FuncError("invalid type for comparison")
    if ka != kb:
        raise FuncError("incompatible types for comparison")
    return a, b


def fn_lt(a: Any, b: Any) -> bool:
    x, y = _ordered(a, b)
    return bool(x < y)


def fn_le(a: Any, b: Any) -> bool:
    x, y = _ordered(a, b)
    return bool(x <= y)


def fn_gt(a: Any, b: Any) -> bool:
    return not fn_le(a, b)


def fn_ge(a: Any, b: Any) -> bool:
    return not fn_lt(a, b)


def fn_print(*args: Any) -> str:
    return sprint(args)


def fn_println(*args: Any) -> str:
    return " ".join(sprint_value(a, top=False) for a in args) + "\n"


def _go_quote(s: str) -> str:
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch in "\a\b\f\n\r\t\v":
            out.append("\\" + "abfnrtv"["\a\b\f\n\r\t\v".index(ch)])
        elif o < 0x20 or o == 0x7F:
            out.append(f"\\x{o:02x}")
        elif not ch.isprintable():
            out.append(f"\\u{o:04x}" if o < 0x10000 else f"\\U{o:08x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def fn_printf(fmt: Any, *args: Any) -> str:
    """fmt.Sprintf for the verbs people use: %v %s %d %q %t %x %X %f %e %g %c %%."""
    import re

    f = want_str(fmt)
    out: list[str] = []
    argi = 0
    pos = 0
    for m in re.finditer(r"%([-+# 0]*)(\d+)?(?:\.(\d*))?([a-zA-Z%])", f):
        out.append(f[pos : m.start()])
        pos = m.end()
        flags, width, prec, verb = m.group(1), m.group(2), m.group(3), m.group(4)
        if verb == "%":
            out.append("%")
            continue
        if argi >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        a = args[argi]
        argi += 1
        spec = "%" + flags.replace("#", "") + (width or "")
        spec += "." + prec if prec is not None else ""
        try:
            if verb in "vs":
                text = sprint_value(a, top=False) if a is not None else "<nil>"
                out.append((spec + "s") % text)
            elif verb == "q":
                out.append((spec.split(".")[0] + "s") % _go_quote(want_str(a)))
            elif verb == "d":
                out.append((spec + "d") % int(a))
            elif verb == "t":
                if not isinstance(a, bool):
                    raise ValueError
                out.append((spec + "s") % ("true" if a else "false"))
            elif verb in "xX":
                if isinstance(a, str):
                    h = str.__str__(a).encode().hex()
                    out.append((spec.split(".")[0] + "s") % (h.upper() if verb == "X" else h))
                else:
                    out.append((spec + verb) % int(a))
            elif verb in "feEgG":
                out.append((spec + verb) % float(a))
            elif verb == "c":
                out.append((spec.split(".")[0] + "s") % chr(int(a)))
            else:
                out.append(f"%!{verb}({go_type_name(a)}={sprint_value(a, False)})")
        except (ValueError, TypeError):
            out.append(f"%!{verb}({go_type_name(a)}={sprint_value(a, False)})")
    out.append(f[pos:])
    if argi < len(args):
        extra = ", ".join(f"{go_type_name(a)}={sprint_value(a, False)}" for a in args[argi:])
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)


def fn_json(v: Any) -> str:
    return to_json(v)


def fn_split(s: Any, sep: Any) -> list[str]:
    text, sep_s = want_str(s), want_str(sep)
    if sep_s == "":
        return list(text)
    return text.split(sep_s)


def fn_join(elems: Any, sep: Any) -> str:
    sep_s = want_str(sep)
    if elems is None or elems is NO_VALUE:
        return ""
    if isinstance(elems, (list, tuple)):
        return sep_s.join(sprint_value(e, top=False) for e in elems)
    if isinstance(elems, dict):
        return sep_s.join(sorted(sprint_value(e, top=False) for e in elems.values()))
    raise FuncError(f"expected slice, got {go_type_name(elems)}")


def _is_separator(ch: str) -> bool:
    if ch.isascii():
        return not (ch.isalnum() or ch == "_")
    return not (ch.isalpha() or ch.isdigit()) and ch.isspace()


def fn_title(s: Any) -> str:
    """strings.Title: upper-case the first letter of each word, keep the rest."""
    out = []
    prev = " "
    for ch in want_str(s):
        out.append(ch.upper() if _is_separator(prev) else ch)
        prev = ch
    return "".join(out)


def fn_lower(s: Any) -> str:
    return want_str(s).lower()


def fn_upper(s: Any) -> str:
    return want_str(s).upper()


def fn_pad(s: Any, prefix: Any, suffix: Any) -> str:
    text = want_str(s)
    if text == "":
        return text
    return " " * want_int(prefix) + text + " " * want_int(suffix)


def fn_truncate(s: Any, length: Any) -> str:
    text, n = want_str(s), want_int(length)
    return text if len(text) < n else text[:n]


def _header_identity(v: Any, *_: Any) -> str:
    return want_str(v)


FUNCS: dict[str, Callable[..., Any]] = {
    # Go's builtins (`and` and `or` are evaluated lazily by the executor)
    "and": fn_not,
    "or": fn_not,
    "not": fn_not,
    "len": fn_len,
    "index": fn_index,
    "slice": fn_slice,
    "print": fn_print,
    "printf": fn_printf,
    "println": fn_println,
    "eq": fn_eq,
    "ne": fn_ne,
    "lt": fn_lt,
    "le": fn_le,
    "gt": fn_gt,
    "ge": fn_ge,
    # docker's templates.basicFunctions
    "json": fn_json,
    "split": fn_split,
    "join": fn_join,
    "title": fn_title,
    "lower": fn_lower,
    "upper": fn_upper,
    "pad": fn_pad,
    "truncate": fn_truncate,
}

# docker's templates.HeaderFunctions: table headers stay as they are.
HEADER_FUNCS: dict[str, Callable[..., Any]] = {
    **FUNCS,
    **{name: _header_identity for name in ("json", "split", "join", "title", "lower",
                                            "upper", "truncate")},
}
