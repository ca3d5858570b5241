"""The bench's stub DNS server: every peer's upstream, in the peer's own namespace.

`python -m bench.dnsstub --listen ADDR [--port 53] [--ready FILE]` answers every A query
(any name) with one record, 192.0.2.80, and every other query NOERROR with no answer, over
UDP, as fast as one plain recvfrom/sendto loop goes: the forwarded-name DNS figure
measures the peers' forwarding, not this stub, and every peer gets the same one.

`answer()` is pure (checked byte for byte against dnspython in
tests/unit/test_bench_dnsstub.py); `serve()` is the loop. Must not do anything but answer.
"""

from __future__ import annotations

import argparse
import ipaddress
import socket
import struct
import sys
from collections.abc import Sequence
from pathlib import Path

ANSWER_ADDRESS = "192.0.2.80"
TTL = 30
_A = 1
_IN = 1


def _question_end(query: bytes) -> int | None:
    """The offset just past the first question (None when the packet is malformed or
    uses compression in the question, which no stub client sends)."""
    i = 12
    while True:
        if i >= len(query):
            return None
        n = query[i]
        if n == 0:
            i += 1
            break
        if n & 0xC0:
            return None
        i += 1 + n
    end = i + 4
    return end if end <= len(query) else None


def answer(query: bytes, address: str = ANSWER_ADDRESS) -> bytes | None:
    """The response to one wire query, or None for what is not a standard query with one
    question (dropped, as a stub may)."""
    if len(query) < 12:
        return None
    qid, flags, qdcount = struct.unpack("!HHH", query[:6])
    if flags & 0x8000 or (flags >> 11) & 0xF != 0 or qdcount != 1:
        return None
    end = _question_end(query)
    if end is None:
        return None
    qtype, qclass = struct.unpack("!HH", query[end - 4:end])
    rd = flags & 0x0100
    header_flags = 0x8000 | rd | 0x0080  # QR, RD copied, RA; opcode 0, rcode NOERROR
    question = query[12:end]
    if qtype == _A and qclass == _IN:
        rr = struct.pack("!HHHIH", 0xC00C, _A, _IN, TTL, 4) + ipaddress.IPv4Address(
            address).packed
        return struct.pack("!HHHHHH", qid, header_flags, 1, 1, 0, 0) + question + rr
    return struct.pack("!HHHHHH", qid, header_flags, 1, 0, 0, 0) + question


def serve(listen: str, port: int, ready: Path | None) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.bind((listen, port))
    if ready is not None:
        ready.write_text("ready\n")
    recv, send = sock.recvfrom, sock.sendto
    while True:
        data, peer = recv(4096)
        out = answer(data)
        if out is not None:
            send(out, peer)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.dnsstub")
    p.add_argument("--listen", required=True)
    p.add_argument("--port", type=int, default=53)
    p.add_argument("--ready", type=Path)
    args = p.parse_args(argv)
    try:
        serve(args.listen, args.port, args.ready)
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
