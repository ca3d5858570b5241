"""Published ports: holding each host port with a bound (not listening) socket in the
host namespace, so no other program takes it, and turning bindings into the firewall's
DNAT entries. Docker's conflict texts. The sockets are made on the host namespace's
worker thread; the nftables work is the caller's (one batch). Must not decide which
endpoint publishes what.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import threading
from dataclasses import replace

from muslin.errors import Conflict, Forbidden, InvalidParameter
from muslin.firewall import Published
from muslin.kernel import Host
from muslin.portspec import PortBinding

Key = tuple[str, str, int]


def _key(b: PortBinding) -> Key:
    return (b.proto, b.host_ip or "0.0.0.0", b.host_port)


class PortHolder:
    """The instance's held host ports."""

    def __init__(self, host: Host) -> None:
        self._host = host
        self._held: dict[Key, socket.socket] = {}
        self._lock = threading.Lock()

    def hold(self, bindings: list[PortBinding], owner: str) -> list[PortBinding]:
        """Binds every host port (0: the kernel picks one from its ephemeral range, and
        the [::] twin of a 0.0.0.0 binding gets the same one); all or nothing."""
        done: list[PortBinding] = []
        picked: dict[tuple[str, int], int] = {}
        try:
            for b in bindings:
                twin = picked.get((b.proto, b.container_port))
                if b.host_port == 0 and b.host_ip == "::" and twin:
                    b = replace(b, host_port=twin)
                held = self._hold_one(b)
                if b.host_port == 0:
                    picked[(b.proto, b.container_port)] = held.host_port
                done.append(held)
        except BaseException:
            self.release(done)
            raise
        return done

    def _hold_one(self, b: PortBinding) -> PortBinding:
        ip = b.host_ip or "0.0.0.0"
        where = f"[{ip}]:{b.host_port}" if ":" in ip else f"{ip}:{b.host_port}"
        with self._lock:
            if b.host_port and _key(b) in self._held:
                raise Conflict(f"Bind for {where} failed: port is already allocated")
            family = socket.AF_INET6 if ":" in ip else socket.AF_INET
            kind = socket.SOCK_DGRAM if b.proto == "udp" else socket.SOCK_STREAM
            proto = socket.IPPROTO_SCTP if b.proto == "sctp" else 0

            def bind() -> socket.socket:
                s = socket.socket(family, kind, proto)  # made in the host namespace
                try:
                    if family == socket.AF_INET6:  # [::] holds IPv6 only, as Docker's
                        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                    s.bind((ip, b.host_port))
                except OSError as e:
                    s.close()
                    if e.errno == errno.EADDRINUSE:
                        raise Forbidden(
                            f"driver failed programming external connectivity: Bind for "
                            f"{where} failed: address already in use "
                            "(another program holds the port)") from None
                    if e.errno == errno.EADDRNOTAVAIL:
                        raise Forbidden(f"driver failed programming external connectivity:"
                                        f" {ip} is not an address of this host") from None
                    raise
                return s

            s = self._host.call(lambda _l, _n: bind())
            port = s.getsockname()[1]
            held = PortBinding(b.proto, b.container_port, b.host_ip, port)
            self._held[_key(held)] = s
            return held

    def release(self, bindings: list[PortBinding]) -> None:
        with self._lock:
            for b in bindings:
                s = self._held.pop(_key(b), None)
                if s is not None:
                    s.close()

    def held(self) -> set[Key]:
        with self._lock:
            return set(self._held)

    def close(self) -> None:
        with self._lock:
            for s in self._held.values():
                s.close()
            self._held.clear()


def expand(bindings: list[PortBinding], *, ipv6: bool) -> list[PortBinding]:
    """Bindings with explicit host addresses: "any" is 0.0.0.0, plus [::] when the
    container has IPv6 (nftables cannot send IPv6 to an IPv4-only container and muslin
    has no userland proxy: Docker with `userland-proxy: false` does the same)."""
    out: list[PortBinding] = []
    for b in bindings:
        if b.host_ip in ("", "0.0.0.0"):
            out.append(replace(b, host_ip="0.0.0.0"))
            if ipv6:
                out.append(replace(b, host_ip="::"))
            continue
        ip = ipaddress.ip_address(b.host_ip)
        if ip.version == 6 and ip.is_loopback:
            raise InvalidParameter(
                f"cannot publish {b.key()} on [::1]: IPv6 has no route_localnet, so the "
                "kernel cannot forward ::1 to a container, and muslin runs no userland "
                "proxy; publish on [::] or a host address, or on 127.0.0.1")
        if ip.version == 6 and not ipv6:
            raise InvalidParameter(
                f"cannot publish {b.key()} on {b.host_ip}: the container has no IPv6 "
                "address (its network was made without --ipv6) and muslin runs no "
                "userland proxy to reach its IPv4 address")
        out.append(b)
    return out


def published(bindings: list[PortBinding], ipv4: str | None,
              ipv6: str | None = None) -> list[Published]:
    """The firewall entries of an endpoint's bindings (addresses without prefix)."""
    out = []
    for b in bindings:
        v6 = ":" in b.host_ip
        target = ipv6 if v6 else ipv4
        if target:
            any_ip = b.host_ip in ("", "0.0.0.0", "::")
            out.append(Published(b.proto, b.host_port, target, b.container_port,
                                 "" if any_ip else b.host_ip))
    return out
