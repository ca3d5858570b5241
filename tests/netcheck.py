"""Real-packet checks run inside lab namespaces: ping, and a TCP echo that reports
the address it saw the client come from."""

from __future__ import annotations

import sys
from typing import Any

from lab import Lab

TCP_SERVER = r"""
import socket, sys
s = socket.socket(socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(16)
while True:
    c, _ = s.accept()
    data = c.recv(100)
    c.sendall(b'echo:' + data + b' from ' + str(_[0]).encode())
    c.close()
"""

TCP_CLIENT = r"""
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2)
s.sendall(b'hello')
print(s.recv(100).decode())
"""


def pings(lab: Lab, ns: str, ip: str) -> bool:
    return lab.run(ns, ["ping", "-c1", "-W1", ip], check=False, timeout=10).returncode == 0


def tcp_server(lab: Lab, ns: str, ip: str, port: int = 8080) -> None:
    lab.spawn(ns, [sys.executable, "-c", TCP_SERVER, ip, str(port)])
    lab.wait_until(lambda: lab.run(ns, ["ss", "-ltnH", f"sport = :{port}"],
                                   check=False).stdout.strip() != "",
                   what=f"TCP server on {ip}:{port}")


def tcp_talks(lab: Lab, ns: str, ip: str, port: int = 8080) -> bool:
    r = lab.run(ns, [sys.executable, "-c", TCP_CLIENT, ip, str(port)], check=False, timeout=15)
    return r.returncode == 0 and r.stdout.startswith("echo:hello")


def tcp_peer(lab: Lab, ns: str, ip: str, port: int = 8080) -> str | None:
    """The client address the server saw, or None when the exchange failed."""
    r = lab.run(ns, [sys.executable, "-c", TCP_CLIENT, ip, str(port)], check=False, timeout=15)
    if r.returncode != 0 or " from " not in r.stdout:
        return None
    return r.stdout.strip().split(" from ", 1)[1]


UDP_ECHO = r"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
tag = sys.argv[3].encode()
while True:
    data, peer = s.recvfrom(1000)
    s.sendto(tag + b':' + data, peer)
"""

UDP_CLIENT = r"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('0.0.0.0', int(sys.argv[3])))
s.settimeout(2)
s.sendto(b'ping', (sys.argv[1], int(sys.argv[2])))
print(s.recv(100).decode())
"""


def udp_server(lab: Lab, ns: str, ip: str, port: int, tag: str) -> None:
    lab.spawn(ns, [sys.executable, "-c", UDP_ECHO, ip, str(port), tag])
    lab.wait_until(lambda: lab.run(ns, ["ss", "-lunH", f"sport = :{port}"],
                                   check=False).stdout.strip() != "",
                   what=f"UDP server on {ip}:{port}")


def udp_ask(lab: Lab, ns: str, ip: str, port: int, src_port: int = 40000) -> str | None:
    """The tag of the server that answered, or None; a fixed source port keeps the same
    conntrack entry from one call to the next."""
    r = lab.run(ns, [sys.executable, "-c", UDP_CLIENT, ip, str(port), str(src_port)],
                check=False, timeout=15)
    return r.stdout.strip().split(":")[0] if r.returncode == 0 else None


def member(ctl: Any, net: Any, name: str) -> tuple[Any, Any]:
    """A sandbox `name` with an endpoint `name` of net joined to it (muslin's library)."""
    sb = ctl.create_sandbox(name)
    ep = net.create_endpoint(name)
    ep.join(sb)
    return sb, ep
