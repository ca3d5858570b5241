"""Docker's `filters` query parameter: parsing and matching. Pure.

Accepts both encodings Docker accepts (`{"name": {"x": true}}` and the legacy
`{"name": ["x"]}`), refuses unknown keys with Docker's text, and matches the way
Docker's daemon does (`name`/`id` as regular expressions, `label` as key or
key=value). Must do no I/O.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping

from muslin.errors import InvalidParameter

Filters = dict[str, list[str]]


def parse(raw: str | None, allowed: Iterable[str]) -> Filters:
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError as e:
        raise InvalidParameter(f"invalid filter: {e}") from None
    if not isinstance(data, dict):
        raise InvalidParameter("invalid filter: expected a JSON object")
    out: Filters = {}
    allowed = set(allowed)
    for key, values in data.items():
        if key not in allowed:
            raise InvalidParameter(f"invalid filter '{key}'")
        if isinstance(values, dict):
            out[key] = [str(v) for v, on in values.items() if on]
        elif isinstance(values, list):
            out[key] = [str(v) for v in values]
        else:
            raise InvalidParameter(f"invalid filter '{key}': expected an object or a list")
    return out


def regex_any(patterns: list[str], value: str) -> bool:
    """Docker's Args.Match: any pattern found in value (a bad regex matches literally)."""
    for p in patterns:
        try:
            if re.search(p, value):
                return True
        except re.error:
            if p in value:
                return True
    return False


def labels_match(wanted: list[str], labels: Mapping[str, str]) -> bool:
    """Every `key` or `key=value` in wanted is present (Docker's MatchKVList)."""
    for w in wanted:
        key, sep, value = w.partition("=")
        if key not in labels or (sep and labels[key] != value):
            return False
    return True


def boolean(values: list[str], key: str) -> bool:
    v = values[-1].lower()
    if v in ("1", "true"):
        return True
    if v in ("0", "false"):
        return False
    raise InvalidParameter(f"invalid filter '{key}={values[-1]}': expected true or false")
