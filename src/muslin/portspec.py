"""Published ports as data: Docker's `-p` syntax and the API's `PortBindings`. Pure.

`parse_publish("127.0.0.1:8080:80/tcp")` -> PortBinding list (ranges expand);
`from_api` / `to_api` convert Docker's `{"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}`.
A host port 0 means "any free port" (the kernel picks it when muslin binds it).
Must do no I/O.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from muslin.errors import InvalidParameter, MissingKernelFeature

PROTOCOLS = ("tcp", "udp", "sctp")


@dataclass(frozen=True)
class PortBinding:
    proto: str
    container_port: int
    host_ip: str = ""  # "" = every address (0.0.0.0 and ::)
    host_port: int = 0  # 0 = an ephemeral port

    def key(self) -> str:
        return f"{self.container_port}/{self.proto}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PortBinding:
        return cls(str(d["proto"]), int(d["container_port"]), str(d.get("host_ip", "")),
                   int(d.get("host_port", 0)))

    @property
    def display_ip(self) -> str:
        return self.host_ip or "0.0.0.0"


def _port_range(text: str, what: str, spec: str) -> tuple[int, int]:
    lo, sep, hi = text.partition("-")
    try:
        a, b = int(lo), int(hi) if sep else int(lo)
    except ValueError:
        raise InvalidParameter(f"invalid {what} port {text!r} in {spec!r}: a number from 1 "
                               "to 65535 or a range such as 8000-8010") from None
    if not (0 < a <= b <= 65535) and not (what == "host" and a == b == 0):
        raise InvalidParameter(f"invalid {what} port {text!r} in {spec!r}: a number from 1 "
                               "to 65535 or a range such as 8000-8010")
    return a, b


def check_protocol(proto: str, *, sctp_supported: bool = False) -> str:
    proto = proto.lower() or "tcp"
    if proto not in PROTOCOLS:
        raise InvalidParameter(f"invalid proto {proto!r}: accepted are tcp, udp and sctp")
    if proto == "sctp" and not sctp_supported:
        raise MissingKernelFeature("publishing sctp ports", "CONFIG_IP_SCTP")
    return proto


def parse_publish(spec: str, *, sctp_supported: bool = False) -> list[PortBinding]:
    """Docker's `-p [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTO]`."""
    body, _, proto = spec.partition("/")
    proto = check_protocol(proto, sctp_supported=sctp_supported)
    host_ip = ""
    if body.startswith("["):  # [::1]:8080:80
        end = body.find("]")
        host_ip, body = body[1:end], body[end + 2:]
    parts = body.split(":") if body else []
    if len(parts) == 3 and not host_ip:
        host_ip, parts = parts[0], parts[1:]
    if len(parts) not in (1, 2) or not parts[-1]:
        raise InvalidParameter(f"invalid publish spec {spec!r}: expected "
                               "[HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTOCOL]")
    if host_ip:
        try:
            ipaddress.ip_address(host_ip)
        except ValueError:
            raise InvalidParameter(f"invalid host IP {host_ip!r} in {spec!r}") from None
    c_lo, c_hi = _port_range(parts[-1], "container", spec)
    if len(parts) == 2 and parts[0]:
        h_lo, h_hi = _port_range(parts[0], "host", spec)
    else:
        h_lo = h_hi = 0
    count = c_hi - c_lo + 1
    if h_lo and h_hi - h_lo + 1 != count:
        if h_hi - h_lo + 1 > 1 and count == 1:  # -p 8000-8010:80: Docker picks one of them
            return [PortBinding(proto, c_lo, host_ip, h_lo)]
        raise InvalidParameter(f"invalid ranges in {spec!r}: host and container ranges "
                               "must be the same size")
    return [PortBinding(proto, c_lo + i, host_ip, h_lo + i if h_lo else 0)
            for i in range(count)]


def from_api(bindings: Mapping[str, Any] | None, *, sctp_supported: bool = False
             ) -> list[PortBinding]:
    """HostConfig.PortBindings -> PortBinding list (fields named on error)."""
    out: list[PortBinding] = []
    for key, entries in (bindings or {}).items():
        port, _, proto = str(key).partition("/")
        proto = check_protocol(proto, sctp_supported=sctp_supported)
        c_lo, c_hi = _port_range(port, "container", f"PortBindings[{key}]")
        for entry in entries or [{}]:
            if not isinstance(entry, Mapping):
                raise InvalidParameter(f"invalid PortBindings[{key}]: expected objects with "
                                       "HostIp and HostPort")
            host_ip = str(entry.get("HostIp") or "")
            if host_ip:
                try:
                    ipaddress.ip_address(host_ip)
                except ValueError:
                    raise InvalidParameter(f"invalid PortBindings[{key}].HostIp "
                                           f"{host_ip!r}") from None
            hp = str(entry.get("HostPort") or "")
            h_lo, _ = _port_range(hp, "host", f"PortBindings[{key}]") if hp else (0, 0)
            for i in range(c_hi - c_lo + 1):
                out.append(PortBinding(proto, c_lo + i, host_ip, h_lo + i if h_lo else 0))
    return out


def publish_all(bindings: list[PortBinding], *exposed: Mapping[str, Any] | None
                ) -> list[PortBinding]:
    """`-P`: a binding on an ephemeral host port for every exposed port (the
    container's ExposedPorts, then the image's) that has none yet."""
    have = {b.key() for b in bindings}
    out: list[PortBinding] = []
    for ports in exposed:
        for key in ports or {}:
            port, _, proto = str(key).partition("/")
            b = PortBinding(check_protocol(proto), int(port))
            if b.key() not in have:
                have.add(b.key())
                out.append(b)
    return out


def to_api(bindings: list[PortBinding]) -> dict[str, list[dict[str, str]]]:
    """NetworkSettings.Ports as Docker shows them (both 0.0.0.0 and :: for "any")."""
    out: dict[str, list[dict[str, str]]] = {}
    for b in bindings:
        entries = out.setdefault(b.key(), [])
        if b.host_ip:
            entries.append({"HostIp": b.host_ip, "HostPort": str(b.host_port)})
        else:
            entries.append({"HostIp": "0.0.0.0", "HostPort": str(b.host_port)})
    return out
