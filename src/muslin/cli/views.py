"""Go-typed views of Engine API objects, so templates print what docker prints.

Owns the Go struct layouts (field names and order, as in moby's api/types for API 1.47)
of the objects the CLI formats — network.Inspect, events.Message, types.Version — and
their conversion from decoded JSON; Go's time.Time printing; and docker's network
formatter context (`network ls --format` fields .ID .Name .Driver .Scope .IPv6
.Internal .Labels .Label .CreatedAt). Docker runs an inspect template over the typed
struct first (`{{.IPAM.Config}}` prints `[{10.0.0.0/24  10.0.0.1 map[]}]`) and falls
back to the raw JSON map; the caller does the same with `typed()` and the raw value.
"""

from __future__ import annotations

import re
import time

from muslin.cli import govalues as gv

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any

# Go struct layouts: (Go field, JSON tag, Go type), the tag as in Go ("Key,omitempty").
# A type is "string", "bool", "int", "time", "[]T", "map[string]T" or another layout.
_LAYOUTS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "network.Inspect": (
        ("Name", "Name", "string"), ("ID", "Id", "string"), ("Created", "Created", "time"),
        ("Scope", "Scope", "string"), ("Driver", "Driver", "string"),
        ("EnableIPv6", "EnableIPv6", "bool"), ("IPAM", "IPAM", "network.IPAM"),
        ("Internal", "Internal", "bool"), ("Attachable", "Attachable", "bool"),
        ("Ingress", "Ingress", "bool"), ("ConfigFrom", "ConfigFrom", "network.ConfigReference"),
        ("ConfigOnly", "ConfigOnly", "bool"),
        ("Containers", "Containers", "map[string]network.EndpointResource"),
        ("Options", "Options", "map[string]string"), ("Labels", "Labels", "map[string]string"),
        ("Peers", "Peers,omitempty", "[]network.PeerInfo"),
        ("Services", "Services,omitempty", "map[string]network.ServiceInfo"),
    ),
    "network.IPAM": (
        ("Driver", "Driver", "string"), ("Options", "Options", "map[string]string"),
        ("Config", "Config", "[]network.IPAMConfig"),
    ),
    "network.IPAMConfig": (
        ("Subnet", "Subnet,omitempty", "string"), ("IPRange", "IPRange,omitempty", "string"),
        ("Gateway", "Gateway,omitempty", "string"),
        ("AuxAddress", "AuxiliaryAddresses,omitempty", "map[string]string"),
    ),
    "network.ConfigReference": (("Network", "Network", "string"),),
    "network.EndpointResource": (
        ("Name", "Name", "string"), ("EndpointID", "EndpointID", "string"),
        ("MacAddress", "MacAddress", "string"), ("IPv4Address", "IPv4Address", "string"),
        ("IPv6Address", "IPv6Address", "string"),
    ),
    "network.PeerInfo": (("Name", "Name", "string"), ("IP", "IP", "string")),
    "network.ServiceInfo": (
        ("VIP", "VIP", "string"), ("Ports", "Ports", "[]string"),
        ("LocalLBIndex", "LocalLBIndex", "int"), ("Tasks", "Tasks", "[]network.Task"),
    ),
    "network.Task": (
        ("Name", "Name", "string"), ("EndpointID", "EndpointID", "string"),
        ("EndpointIP", "EndpointIP", "string"), ("Info", "Info", "map[string]string"),
    ),
    "events.Message": (
        ("Status", "status,omitempty", "string"), ("ID", "id,omitempty", "string"),
        ("From", "from,omitempty", "string"), ("Type", "Type", "string"),
        ("Action", "Action", "string"), ("Actor", "Actor", "events.Actor"),
        ("Scope", "scope", "string"), ("Time", "time,omitempty", "int"),
        ("TimeNano", "timeNano,omitempty", "int"),
    ),
    "events.Actor": (("ID", "ID", "string"), ("Attributes", "Attributes", "map[string]string")),
    "types.Version": (
        ("Platform", "Platform", "types.Platform"),
        ("Components", "Components,omitempty", "[]types.ComponentVersion"),
        ("Version", "Version", "string"), ("APIVersion", "ApiVersion", "string"),
        ("MinAPIVersion", "MinAPIVersion,omitempty", "string"),
        ("GitCommit", "GitCommit", "string"), ("GoVersion", "GoVersion", "string"),
        ("Os", "Os", "string"), ("Arch", "Arch", "string"),
        ("KernelVersion", "KernelVersion,omitempty", "string"),
        ("Experimental", "Experimental,omitempty", "bool"),
        ("BuildTime", "BuildTime,omitempty", "string"),
    ),
    "types.Platform": (("Name", "Name", "string"),),
    "types.ComponentVersion": (
        ("Name", "Name", "string"), ("Version", "Version", "string"),
        ("Details", "Details,omitempty", "map[string]string"),
    ),
}


class TypedStruct(gv.GoStruct):
    """A Go struct built from a JSON object by a layout (or by hand, with `raw` the
    JSON it encodes to); `json` encodes it as Go would: fields in layout order,
    omitempty honoured, unknown keys dropped."""

    __slots__ = ("_fields", "_raw", "go_type")

    def __init__(self, go_type: str, fields: list[tuple[str, Any]], raw: Any) -> None:
        self.go_type = go_type
        self._fields = fields
        self._raw = raw

    def go_fields(self) -> Sequence[tuple[str, Any]]:
        return self._fields

    def to_json(self) -> Any:
        if self.go_type in _LAYOUTS:
            return _json_of(self.go_type, self._raw)
        return gv.JSONObject(self._fields) if self._raw is None else self._raw


def _empty(v: Any) -> bool:
    return v is None or v is False or v == 0 or v == "" or v == [] or v == {}


def _json_of(go_type: str, raw: Any) -> Any:
    """What json.Marshal writes for a value of `go_type` decoded from `raw`."""
    if go_type in ("string", "bool", "int"):
        return raw if raw is not None else _zero(go_type)
    if go_type == "time":
        return raw or "0001-01-01T00:00:00Z"
    if go_type.startswith("[]"):
        return [_json_of(go_type[2:], v) for v in raw] if isinstance(raw, list) else None
    if go_type.startswith("map[string]"):
        elem = go_type[len("map[string]"):]
        return {k: _json_of(elem, v) for k, v in raw.items()} if isinstance(raw, dict) else None
    obj = raw if isinstance(raw, dict) else {}
    out = gv.JSONObject()
    for _, tag, t in _LAYOUTS[go_type]:
        key, _, opt = tag.partition(",")
        value = _json_of(t, obj.get(key))
        if opt == "omitempty" and _empty(value):
            continue
        out[key] = value
    return out


class GoTime(gv.GoStruct):
    """A time.Time: prints as Go's Time.String(), encodes as the RFC 3339 text."""

    go_type = "time.Time"

    def __init__(self, rfc3339: str) -> None:
        self.rfc3339 = rfc3339

    def go_string(self) -> str:
        return go_time_string(self.rfc3339)

    def to_json(self) -> Any:
        return self.rfc3339 or "0001-01-01T00:00:00Z"


def _zero(go_type: str) -> Any:
    if go_type == "string":
        return ""
    if go_type == "bool":
        return False
    if go_type == "int":
        return 0
    return None


def _convert(go_type: str, value: Any) -> Any:
    if go_type == "string":
        return value if isinstance(value, str) else ""
    if go_type == "bool":
        return value if isinstance(value, bool) else False
    if go_type == "int":
        return value if isinstance(value, int) and not isinstance(value, bool) else 0
    if go_type == "time":
        return GoTime(value if isinstance(value, str) else "")
    if go_type.startswith("[]"):
        elem = go_type[2:]
        return [_convert(elem, v) for v in value] if isinstance(value, list) else []
    if go_type.startswith("map[string]"):
        elem = go_type[len("map[string]"):]
        items = value if isinstance(value, dict) else {}
        return gv.GoMap({k: _convert(elem, v) for k, v in items.items()}, go_type,
                        _zero(elem))
    layout = _LAYOUTS[go_type]
    obj = value if isinstance(value, dict) else {}
    fields = [(name, _convert(t, obj.get(tag.partition(",")[0]))) for name, tag, t in layout]
    return TypedStruct(go_type, fields, obj)


def typed(go_type: str, value: Any) -> Any:
    """The typed view of a decoded JSON object (e.g. typed("network.Inspect", obj))."""
    return _convert(go_type, value)


# -- time ----------------------------------------------------------------------------

_RFC3339 = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:\.(\d+))?([Zz]|[+-]\d\d:\d\d)$"
)


def days_from_civil(y: int, m: int, d: int) -> int:
    y -= m <= 2
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def go_time_string(rfc3339: str) -> str:
    """Go's Time.String() of a time parsed from RFC 3339 text:
    `2024-05-01 10:00:00.123456789 +0000 UTC` (fraction without trailing zeros;
    the zone is named only for UTC or when it is this machine's zone)."""
    m = _RFC3339.match(rfc3339 or "0001-01-01T00:00:00Z")
    if not m:
        return rfc3339
    y, mo, d, hh, mm, ss, frac, zone = m.groups()
    frac = (frac or "")[:9].rstrip("0")
    text = f"{y}-{mo}-{d} {hh}:{mm}:{ss}" + (f".{frac}" if frac else "")
    if zone in ("Z", "z"):
        return text + " +0000 UTC"
    sign = 1 if zone[0] == "+" else -1
    offset = sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    numeric = zone[0] + zone[1:3] + zone[4:6]
    name = numeric
    try:
        epoch = (days_from_civil(int(y), int(mo), int(d)) * 86400
                 + int(hh) * 3600 + int(mm) * 60 + int(ss) - offset)
        local = time.localtime(epoch)
        if local.tm_gmtoff == offset and local.tm_zone:
            name = local.tm_zone
    except (OverflowError, OSError, ValueError):
        pass
    return f"{text} {numeric} {name}"


def event_time(time_nano: int, seconds: int) -> str:
    """An event's time as `docker events` prints it: RFC 3339 with 9 fraction digits
    in the local zone (`2024-05-01T10:00:00.000000000+02:00`, `Z` for UTC)."""
    if time_nano:
        secs, nanos = divmod(time_nano, 1_000_000_000)
    else:
        secs, nanos = seconds, 0
    t = time.localtime(secs)
    off = t.tm_gmtoff or 0
    zone = "Z" if off == 0 else (
        f"{'+' if off > 0 else '-'}{abs(off) // 3600:02d}:{abs(off) % 3600 // 60:02d}")
    return (f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T"
            f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}.{nanos:09d}{zone}")


# -- docker's network formatter context ---------------------------------------------

NETWORK_HEADERS = {
    "ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE",
    "IPv6": "IPV6", "Internal": "INTERNAL", "Labels": "LABELS", "CreatedAt": "CREATED AT",
}


class HeaderContext(gv.GoMap):
    """formatter.SubHeaderContext: field name → header, and a Label method."""

    def __init__(self, headers: dict[str, str]) -> None:
        super().__init__(headers, "formatter.SubHeaderContext", "")

    def go_method(self, name: str) -> Callable[..., Any] | None:
        if name != "Label":
            return None

        def label(field: Any) -> str:
            last = gv.want_str(field).split(".")[-1]
            return last.replace("-", " ").replace("_", " ")

        return label


def truncate_id(ident: str) -> str:
    """stringid.TruncateID: drop an `algo:` prefix, keep 12 characters."""
    _, _, rest = ident.rpartition(":")
    return rest[:12]


def _go_bool(v: Any) -> str:
    return "true" if v is True else "false"


class NetworkContext(gv.GoStruct):
    """`network ls` row: docker's *network.networkContext (fields are methods)."""

    go_type = "*network.networkContext"

    def __init__(self, network: dict[str, Any], trunc: bool) -> None:
        self.n = network
        self.trunc = trunc

    def _str(self, key: str) -> str:
        v = self.n.get(key)
        return v if isinstance(v, str) else ""

    def _labels(self) -> dict[str, str]:
        v = self.n.get("Labels")
        return v if isinstance(v, dict) else {}

    def methods(self) -> dict[str, Callable[..., Any]]:
        def label(name: Any) -> str:
            return str(self._labels().get(gv.want_str(name), ""))

        return {
            "ID": lambda: truncate_id(self._str("Id")) if self.trunc else self._str("Id"),
            "Name": lambda: self._str("Name"),
            "Driver": lambda: self._str("Driver"),
            "Scope": lambda: self._str("Scope"),
            "IPv6": lambda: _go_bool(self.n.get("EnableIPv6")),
            "Internal": lambda: _go_bool(self.n.get("Internal")),
            "Labels": lambda: ",".join(sorted(f"{k}={v}" for k, v in self._labels().items())),
            "Label": label,
            "CreatedAt": lambda: go_time_string(self._str("Created")),
        }

    def go_method(self, name: str) -> Callable[..., Any] | None:
        return self.methods().get(name)

    def to_json(self) -> Any:
        # formatter.MarshalJSON: every exported method without arguments, keys sorted
        return {k: f() for k, f in self.methods().items() if k != "Label"}
