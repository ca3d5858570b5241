"""docker's output formatting: `--format` keys, tables, inspect output; pure, returns text.

Owns the meaning of a `--format` value as docker 27 reads it (`table`, `table TMPL`,
`json`, `raw`, a template; literal `\\t`/`\\n` become tab/newline), rendering rows with a
header row through the tabwriter, the inspect writers (indented JSON array, `json`
compact, or a template run typed-first with a raw fallback), Go's json.Indent and
json.Compact over the daemon's bytes, and docker's natural sort order of names.
"""

from __future__ import annotations

import json
import re

from muslin.cli import govalues as gv
from muslin.cli.gotemplate import Template, TemplateError
from muslin.cli.tabwriter import tabwrite
from muslin.cli.views import HeaderContext, typed

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

TABLE = "table"
RAW = "raw"
JSON = "json"
JSON_TEMPLATE = "{{json .}}"


class FormatError(Exception):
    """A template failed to parse or execute; the message is what docker prints."""


def is_table(fmt: str) -> bool:
    return fmt.startswith(TABLE)


def template_string(fmt: str) -> str:
    """formatter.Context.preFormat of docker 27."""
    if is_table(fmt):
        fmt = fmt[len(TABLE):]
    elif fmt == JSON:
        fmt = JSON_TEMPLATE
    return fmt.strip(" ").replace("\\t", "\t").replace("\\n", "\n")


def parse(source: str) -> Template:
    try:
        return Template(source)
    except TemplateError as e:
        raise FormatError(f"template parsing error: {e}") from None


def render_list(fmt: str, rows: Sequence[Any], headers: dict[str, str]) -> str:
    """formatter.Context.Write: one rendering per row, each ending in a newline; a table
    gets a header row (docker's header functions over the header map) and alignment."""
    tmpl = parse(template_string(fmt))
    out: list[str] = []
    for row in rows:
        try:
            out.append(tmpl.execute(row))
        except TemplateError as e:
            raise FormatError(f"template parsing error: {e}") from None
        out.append("\n")
    if not is_table(fmt):
        return "".join(out)
    try:
        header = tmpl.execute(HeaderContext(headers), funcs=gv.HEADER_FUNCS)
    except TemplateError as e:  # docker ignores the error and keeps what was written
        header = e.partial
    return tabwrite(header + "\n" + "".join(out), minwidth=10, padding=3)


# -- inspect -------------------------------------------------------------------------


def inspect_output(raws: Sequence[str], fmt: str, go_type: str | None) -> tuple[str, list[str]]:
    """docker's inspect writers over the daemon's raw JSON objects: returns the text for
    stdout and one error per element whose template failed."""
    if fmt == "":
        if not raws:
            return "[]\n", []
        return json_indent("[" + ",".join(raws) + "]") + "\n", []
    if fmt == JSON:
        if not raws:
            return "[]\n", []
        return json_compact("[" + ",".join(raws) + "]") + "\n", []
    tmpl = parse(fmt)
    out: list[str] = []
    errors: list[str] = []
    for raw in raws:
        try:
            out.append(_inspect_one(tmpl, raw, go_type) + "\n")
        except FormatError as e:
            errors.append(str(e))
    return ("".join(out) or "\n"), errors


def _inspect_one(tmpl: Template, raw: str, go_type: str | None) -> str:
    if go_type is not None:
        try:
            return tmpl.execute(typed(go_type, json.loads(raw)))
        except (TemplateError, ValueError):
            pass
    try:
        data = gv.loads_use_number(raw)
    except ValueError as e:
        raise FormatError(f"unable to read inspect data: {e}") from None
    try:
        return tmpl.execute(data, missingkey_error=True)
    except TemplateError as e:
        raise FormatError(f"template parsing error: {e}") from None


# -- JSON text (Go's json.Indent / json.Compact: the daemon's bytes, re-spaced) ------

_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[{}\[\],:]|[^\s{}\[\],:"]+')


def json_compact(src: str) -> str:
    return "".join(_JSON_TOKEN.findall(src))


def json_indent(src: str, prefix: str = "", indent: str = "    ") -> str:
    toks = _JSON_TOKEN.findall(src)
    out: list[str] = []
    depth = 0
    i = 0
    n = len(toks)
    while i < n:
        t = toks[i]
        if t in ("{", "["):
            close = "}" if t == "{" else "]"
            if i + 1 < n and toks[i + 1] == close:
                out.append(t + close)
                i += 2
                continue
            depth += 1
            out.append(t + "\n" + prefix + indent * depth)
        elif t in ("}", "]"):
            depth -= 1
            out.append("\n" + prefix + indent * depth + t)
        elif t == ",":
            out.append(",\n" + prefix + indent * depth)
        elif t == ":":
            out.append(": ")
        else:
            out.append(t)
        i += 1
    return "".join(out)


# -- natural sort (fvbommel/sortorder.NaturalLess) ------------------------------------


def natural_less(a: str, b: str) -> bool:
    i = j = 0
    while i < len(a) and j < len(b):
        ca, cb = a[i], b[j]
        da, db = "0" <= ca <= "9", "0" <= cb <= "9"
        if da != db:
            return da
        if not da:
            if ca != cb:
                return ca.encode() < cb.encode()
            i += 1
            j += 1
            continue
        while i < len(a) and a[i] == "0":
            i += 1
        while j < len(b) and b[j] == "0":
            j += 1
        nz_a, nz_b = i, j
        while i < len(a) and "0" <= a[i] <= "9":
            i += 1
        while j < len(b) and "0" <= b[j] <= "9":
            j += 1
        la, lb = i - nz_a, j - nz_b
        if la != lb:
            return la < lb
        if a[nz_a:i] != b[nz_b:j]:
            return a[nz_a:i] < b[nz_b:j]
        if nz_a != nz_b:
            return nz_a < nz_b
    return len(a) < len(b)


class _NaturalKey:
    __slots__ = ("s",)

    def __init__(self, s: str) -> None:
        self.s = s

    def __lt__(self, other: _NaturalKey) -> bool:
        return natural_less(self.s, other.s)


def natural_key(s: str) -> _NaturalKey:
    """A sort key: sorted(names, key=natural_key) orders like docker's lists."""
    return _NaturalKey(s)
