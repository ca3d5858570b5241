"""A stub upstream DNS server for the test lab (UDP and TCP, dnspython).

Answers A (and AAAA) queries for the names given with --record, NXDOMAIN for any
other name, and NOERROR with no answer for a known name asked for another type.
With --tc, every UDP answer is empty with the TC bit set, so clients must retry
over TCP (which answers in full). With --rcode NAME (e.g. SERVFAIL, REFUSED) every
query is answered with that rcode and nothing else. Every query is appended to --log
as a line "proto qname qtype". --ready FILE is written once both sockets listen.

The lab starts it inside a lab namespace:

    python stubdns.py --listen 0.0.0.0 --port 53 --record example.com=192.0.2.10 \\
        --record two.test=192.0.2.1,192.0.2.2 --ready /path/ready --log /path/log
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import signal
import socketserver
import struct
import sys
import threading
from pathlib import Path

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

TTL = 30


class Zone:
    """The stub's records: name -> addresses; answers one wire query."""

    def __init__(self, records: dict[str, list[str]], *, tc: bool, log: Path | None,
                 rcode: str | None = None) -> None:
        self.records = {dns.name.from_text(k).canonicalize(): v for k, v in records.items()}
        self.tc = tc
        self.rcode = dns.rcode.from_text(rcode) if rcode else None
        self.log = log
        self._lock = threading.Lock()

    def _note(self, proto: str, q: dns.message.Message) -> None:
        if self.log is None or not q.question:
            return
        rr = q.question[0]
        line = f"{proto} {rr.name.to_text()} {dns.rdatatype.to_text(rr.rdtype)}\n"
        with self._lock, open(self.log, "a") as f:
            f.write(line)

    def answer(self, wire: bytes, proto: str) -> bytes | None:
        try:
            q = dns.message.from_wire(wire)
        except Exception:
            return None
        self._note(proto, q)
        r = dns.message.make_response(q)
        r.flags |= dns.flags.AA
        if not q.question:
            r.set_rcode(dns.rcode.FORMERR)
            return r.to_wire()
        if self.rcode is not None:
            r.flags &= ~dns.flags.AA
            r.set_rcode(self.rcode)
            return r.to_wire()
        rr = q.question[0]
        addrs = self.records.get(rr.name.canonicalize())
        if addrs is None:
            r.set_rcode(dns.rcode.NXDOMAIN)
            return r.to_wire()
        if proto == "udp" and self.tc:
            r.flags |= dns.flags.TC
            return r.to_wire()
        want = {dns.rdatatype.A: 4, dns.rdatatype.AAAA: 6}.get(rr.rdtype)
        matching = [a for a in addrs if ipaddress.ip_address(a).version == want]
        if matching:
            r.answer.append(dns.rrset.from_text_list(
                rr.name, TTL, dns.rdataclass.IN, rr.rdtype, matching))
        return r.to_wire()


def serve(zone: Zone, listen: str, port: int, ready: Path | None) -> None:
    family = 10 if ":" in listen else 2

    class UDP(socketserver.ThreadingUDPServer):
        address_family = family
        allow_reuse_address = True
        daemon_threads = True

    class TCP(socketserver.ThreadingTCPServer):
        address_family = family
        allow_reuse_address = True
        daemon_threads = True

    class UDPHandler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            data, sock = self.request
            out = zone.answer(data, "udp")
            if out is not None:
                sock.sendto(out, self.client_address)

    class TCPHandler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            while True:
                head = self.rfile.read(2)
                if len(head) < 2:
                    return
                (n,) = struct.unpack("!H", head)
                data = self.rfile.read(n)
                if len(data) < n:
                    return
                out = zone.answer(data, "tcp")
                if out is None:
                    return
                self.wfile.write(struct.pack("!H", len(out)) + out)
                self.wfile.flush()

    udp = UDP((listen, port), UDPHandler)
    tcp = TCP((listen, port), TCPHandler)
    threading.Thread(target=udp.serve_forever, daemon=True).start()
    threading.Thread(target=tcp.serve_forever, daemon=True).start()
    if ready is not None:
        tmp = ready.with_name(ready.name + ".tmp")
        tmp.write_text(f"{os.getpid()}\n")
        tmp.rename(ready)
    # Serves until killed (SIGTERM's default action ends it at once).
    signal.pause()


def parse_records(items: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for item in items:
        name, _, addrs = item.partition("=")
        if not name or not addrs:
            raise SystemExit(f"stubdns: bad --record {item!r}: want NAME=IP[,IP...]")
        for a in addrs.split(","):
            ipaddress.ip_address(a)
        out.setdefault(name, []).extend(addrs.split(","))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--listen", default="0.0.0.0")
    p.add_argument("--port", type=int, default=53)
    p.add_argument("--record", action="append", default=[], metavar="NAME=IP[,IP]")
    p.add_argument("--tc", action="store_true", help="answer UDP with TC set and no records")
    p.add_argument("--rcode", help="answer every query with this rcode (e.g. SERVFAIL)")
    p.add_argument("--ready", type=Path)
    p.add_argument("--log", type=Path)
    a = p.parse_args(argv)
    zone = Zone(parse_records(a.record), tc=a.tc, log=a.log, rcode=a.rcode)
    serve(zone, a.listen, a.port, a.ready)
    return 0


if __name__ == "__main__":
    sys.exit(main())
