"""Docker's JSON shapes of muslin's objects, for a negotiated API version.

Pure: turns controller records into the Engine API's `Network` objects and reads
Docker's request bodies into typed values, naming the field on bad input. Must do no
I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from muslin.errors import InvalidParameter

Doc = dict[str, Any]


def network(doc: Doc, containers: Mapping[str, Doc] | None = None) -> Doc:
    """A network as `GET /networks/{id}` shows it (API 1.41 to 1.47)."""
    config = []
    for p in doc["ipam"]:
        pool = p["pool"]
        entry: Doc = {"Subnet": pool["subnet"]}
        if pool.get("ip_range"):
            entry["IPRange"] = pool["ip_range"]
        if pool.get("gateway"):
            entry["Gateway"] = pool["gateway"]
        if pool.get("aux_addresses"):
            entry["AuxiliaryAddresses"] = dict(pool["aux_addresses"])
        config.append(entry)
    return {
        "Name": doc["name"],
        "Id": doc["id"],
        "Created": doc["created"],
        "Scope": doc.get("scope", "local"),
        "Driver": doc["driver"],
        "EnableIPv6": bool(doc["enable_ipv6"]),
        "IPAM": {
            "Driver": doc.get("ipam_driver", "default"),
            "Options": doc.get("ipam_options") or {},
            "Config": config,
        },
        "Internal": bool(doc["internal"]),
        "Attachable": bool(doc["attachable"]),
        "Ingress": False,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": False,
        "Containers": dict(containers or {}),
        "Options": dict(doc["options"]),
        "Labels": dict(doc["labels"]),
    }


def endpoint_in_network(ep: Doc) -> Doc:
    """An entry of a network's `Containers` map."""
    return {
        "Name": ep["name"],
        "EndpointID": ep["id"],
        "MacAddress": ep["mac"] if ep.get("ifname") else "",
        "IPv4Address": ep.get("ipv4") or "",
        "IPv6Address": ep.get("ipv6") or "",
    }


# -- reading request bodies -------------------------------------------------------------

def _type_name(t: type) -> str:
    return {str: "a string", bool: "a boolean", dict: "an object", list: "an array",
            int: "an integer"}.get(t, t.__name__)


def get(body: Mapping[str, Any], key: str, t: type, default: Any = None, *,
        where: str = "") -> Any:
    """body[key] checked to be of type t (None/absent gives default)."""
    v = body.get(key)
    if v is None:
        return default
    if t is int and isinstance(v, bool):
        v = None
    if not isinstance(v, t):
        raise InvalidParameter(f"invalid value for {where}{key}: expected {_type_name(t)}, "
                               f"got {json_type(v)}")
    return v


def json_type(v: Any) -> str:
    return {str: "string", bool: "boolean", dict: "object", list: "array", int: "number",
            float: "number"}.get(type(v), "null")


def string_map(body: Mapping[str, Any], key: str, *, where: str = "") -> dict[str, str]:
    m = get(body, key, dict, {}, where=where)
    out = {}
    for k, v in m.items():
        if not isinstance(v, str):
            raise InvalidParameter(f"invalid value for {where}{key}[{k}]: expected a string, "
                                   f"got {json_type(v)}")
        out[str(k)] = v
    return out


def body_object(value: Any) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise InvalidParameter(f"invalid request body: expected a JSON object, got "
                               f"{json_type(value)}")
    return value
