"""Published ports: holding each host port with a bound (not listening) socket in the
host namespace, so no other program takes it, and turning bindings into the firewall's
DNAT entries. Docker's conflict texts. The sockets are made on the host namespace's
worker thread; the nftables work is the caller's (one batch). Must not decide which
endpoint publishes what.
"""

from __future__ import annotations

import errno
import socket
import threading

from muslin.errors import Conflict, Forbidden
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
        """Binds every host port (0: the kernel picks one); all or nothing."""
        done: list[PortBinding] = []
        try:
            for b in bindings:
                done.append(self._hold_one(b))
        except BaseException:
            self.release(done)
            raise
        return done

    def _hold_one(self, b: PortBinding) -> PortBinding:
        ip = b.host_ip or "0.0.0.0"
        with self._lock:
            if b.host_port and _key(b) in self._held:
                raise Conflict(f"Bind for {ip}:{b.host_port} failed: port is already "
                               "allocated")
            family = socket.AF_INET6 if ":" in ip else socket.AF_INET
            kind = socket.SOCK_DGRAM if b.proto == "udp" else socket.SOCK_STREAM

            def bind() -> socket.socket:
                s = socket.socket(family, kind)  # made in the host namespace
                try:
                    s.bind((ip, b.host_port))
                except OSError as e:
                    s.close()
                    if e.errno == errno.EADDRINUSE:
                        raise Forbidden(
                            f"driver failed programming external connectivity: Bind for "
                            f"{ip}:{b.host_port} failed: address already in use "
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


def published(bindings: list[PortBinding], target_ip: str) -> list[Published]:
    """The firewall entries of an endpoint's IPv4 bindings."""
    return [Published(b.proto, b.host_port, target_ip, b.container_port,
                      "" if b.host_ip in ("", "0.0.0.0") else b.host_ip)
            for b in bindings if ":" not in b.host_ip]
