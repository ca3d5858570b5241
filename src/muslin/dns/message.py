"""DNS messages of the embedded resolver, sans I/O: a query in, a decision out.

`Responder(view).handle(wire, tcp=...)` returns the reply's bytes, a `Forward` (the
query goes to an upstream as it is), or None (drop: not a query at all). dnspython is
the reference for the wire format; the hot answers (A/AAAA/PTR of the view's names,
asked plainly, with or without a bare EDNS OPT) take a fast path of pre-encoded
records that produces the very bytes dnspython would (a unit test compares them).

Local answers carry AA and RA; a name the view does not know is forwarded, unless the
sandbox has no forwarding (only internal networks): then SERVFAIL, as Docker answers;
with ndots set explicitly (`--dns-option ndots:N`, N > 0) a single-label A/AAAA
question the view does not know gets NOERROR without answer and is not forwarded,
as Docker does, so the client goes on with its search domains.
A name the view knows asked for another type gets NOERROR with no answer. Answers too
large for the client's UDP size are cut to what fits, with TC set.
"""

from __future__ import annotations

import re
import socket
import struct
from dataclasses import dataclass
from typing import Final

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from muslin.dns.records import DEFAULT_TTL, Answer, View

QR: Final = 0x8000
AA: Final = 0x0400
TC: Final = 0x0200
RD: Final = 0x0100
RA: Final = 0x0080
OPCODE_MASK: Final = 0x7800

NOERROR: Final = 0
FORMERR: Final = 1
SERVFAIL: Final = 2
NXDOMAIN: Final = 3
NOTIMP: Final = 4
REFUSED: Final = 5

T_A: Final = 1
T_PTR: Final = 12
T_AAAA: Final = 28
T_OPT: Final = 41
T_ANY: Final = 255
C_IN: Final = 1

#: The EDNS payload size the resolver advertises (the DNS flag day 2020 value).
OUR_PAYLOAD: Final = 1232
UDP_MIN: Final = 512
TCP_MAX: Final = 65535
CACHE_LIMIT: Final = 1024

_HEADER = struct.Struct("!6H")
_QTAIL = struct.Struct("!HH")
_RRHEAD = struct.Struct("!HHIH")
_OPT = struct.Struct("!HHIH")
_PLAIN_LABEL = re.compile(rb"[A-Za-z0-9_-]+")


@dataclass(frozen=True, slots=True)
class Question:
    """A parsed question: its lower-cased wire name, the name as text when every
    label is plain (else None), type, class and where it ends in the message."""

    wire: bytes
    text: str | None
    qtype: int
    qclass: int
    end: int


def parse_question(data: bytes, offset: int = 12) -> Question | None:
    """The question at offset (no compression pointers allowed), or None."""
    pos = offset
    n = len(data)
    plain = True
    labels: list[bytes] = []
    while True:
        if pos >= n:
            return None
        length = data[pos]
        if length == 0:
            pos += 1
            break
        if length > 63:
            return None
        label = data[pos + 1:pos + 1 + length]
        if len(label) != length:
            return None
        if plain and _PLAIN_LABEL.fullmatch(label) is None:
            plain = False
        labels.append(label)
        pos += 1 + length
        if pos - offset > 255:
            return None
    if pos + 4 > n:
        return None
    qtype, qclass = _QTAIL.unpack_from(data, pos)
    wire = data[offset:pos].lower()
    text = b".".join(labels).lower().decode("ascii") if plain and labels else None
    return Question(wire, text, qtype, qclass, pos + 4)


@dataclass(frozen=True, slots=True)
class Forward:
    """A query to send upstream as it is; key identifies its question in a reply;
    limit is the largest UDP reply the client takes (512, or its EDNS size)."""

    query: bytes
    qid: int
    key: tuple[bytes, int, int]
    limit: int = 512


def error_reply(data: bytes, rcode: int) -> bytes | None:
    """A reply with rcode to the query in data (its question kept when it parses), or
    None when data is no query (too short, or a response)."""
    if len(data) < 12:
        return None
    qid, flags, qd, _an, _ns, _ar = _HEADER.unpack_from(data)
    if flags & QR:
        return None
    out_flags = QR | (flags & (OPCODE_MASK | RD)) | RA | (rcode & 0xF)
    if qd == 1 and (flags & OPCODE_MASK) == 0:
        q = parse_question(data)
        if q is not None:
            return _HEADER.pack(qid, out_flags, 1, 0, 0, 0) + data[12:q.end]
    return _HEADER.pack(qid, out_flags, 0, 0, 0, 0)


def reply_matches(fwd: Forward, reply: bytes) -> bool:
    """True when reply answers fwd: same id, a response, the same question (any
    case); a reply without question is accepted only as an error (rcode != 0)."""
    if len(reply) < 12:
        return False
    qid, flags, qd, _an, _ns, _ar = _HEADER.unpack_from(reply)
    if qid != fwd.qid or not flags & QR:
        return False
    if qd == 0:
        return bool(flags & 0xF != NOERROR)
    if qd != 1:
        return False
    q = parse_question(reply)
    return q is not None and (q.wire, q.qtype, q.qclass) == fwd.key


def rcode_of(reply: bytes) -> int:
    return reply[3] & 0xF


def fit_udp(reply: bytes, limit: int) -> bytes:
    """An upstream reply as the client may get it over UDP: as it is when it fits in
    limit bytes, else its header and question with TC set and no records, so the
    client asks again over TCP (as Docker truncates what it forwards)."""
    if len(reply) <= limit or len(reply) < 12:
        return reply
    qid, flags, qd, _an, _ns, _ar = _HEADER.unpack_from(reply)
    q = parse_question(reply) if qd == 1 else None
    if q is None:
        return _HEADER.pack(qid, flags | TC, 0, 0, 0, 0)
    return _HEADER.pack(qid, flags | TC, 1, 0, 0, 0) + reply[12:q.end]


def _single_label(wire: bytes) -> bool:
    """True for a name in wire format of exactly one label (`www`, not `www.example`)."""
    return len(wire) > 1 and wire[0] + 2 == len(wire)


def truncated(reply: bytes) -> bool:
    return bool(reply[2] & 0x02)


class _Prepared:
    """Pre-encoded answer records for one (name, type); rotates per answer."""

    __slots__ = ("next", "rrs")

    def __init__(self, rrs: list[bytes]) -> None:
        self.rrs = rrs
        self.next = 0

    def rotated(self) -> list[bytes]:
        rrs = self.rrs
        if len(rrs) < 2:
            return rrs
        i = self.next % len(rrs)
        self.next = i + 1
        return rrs[i:] + rrs[:i]


_FORWARD: Final = object()
_SLOW: Final = object()


class _Hit:
    """The fast path's verdict on one question section (cached by its bytes)."""

    __slots__ = ("entry", "key", "question", "tail", "udp_limit")

    def __init__(self, entry: object, question: bytes = b"", tail: bytes = b"",
                 udp_limit: int = UDP_MIN, key: tuple[bytes, int, int] | None = None) -> None:
        self.entry = entry
        self.question = question
        self.tail = tail
        self.udp_limit = udp_limit
        self.key = key


def _rr(qtype: int, ttl: int, rdata: bytes) -> bytes:
    return b"\xc0\x0c" + _RRHEAD.pack(qtype, C_IN, ttl, len(rdata)) + rdata


def _name_wire(text: str) -> bytes:
    return b"".join(bytes([len(p)]) + p for p in text.encode("ascii").split(b".")) + b"\x00"


class Responder:
    """Answers queries from one view. Keeps pre-encoded answers and the round-robin
    position of each name; make a new one when the view changes."""

    def __init__(self, view: View, ttl: int = DEFAULT_TTL) -> None:
        self.view = view
        self.ttl = ttl
        self._cache: dict[tuple[str, int], object] = {}
        self._hits: dict[bytes, _Hit] = {}

    # -- the fast path ------------------------------------------------------
    def handle(self, data: bytes, *, tcp: bool = False) -> bytes | Forward | None:
        if len(data) < 17:
            return self._slow(data, tcp)
        qid, flags, qd, an, ns, ar = _HEADER.unpack_from(data)
        if flags & (QR | OPCODE_MASK) or qd != 1 or an or ns or ar > 1:
            return self._slow(data, tcp)
        body = data[12:]
        hit = self._hits.get(body)
        if hit is None:
            hit = self._classify(data, ar)
            if len(self._hits) >= CACHE_LIMIT:
                self._hits.clear()
            self._hits[body] = hit
        entry = hit.entry
        if entry is _FORWARD:
            assert hit.key is not None
            return self._unknown(data, qid, hit.key, hit.udp_limit)
        if entry.__class__ is not _Prepared:
            return self._slow(data, tcp)
        rrs = entry.rotated()
        out = b"".join((_HEADER.pack(qid, QR | AA | RA | (flags & RD), 1, len(rrs), 0, ar),
                        hit.question, *rrs, hit.tail))
        if len(out) > (TCP_MAX if tcp else hit.udp_limit):
            return self._slow(data, tcp)
        return out

    def _classify(self, data: bytes, ar: int) -> _Hit:
        """What the fast path does with this question (and OPT): answer from a
        prepared entry, forward, or leave it to the dnspython path."""
        n = len(data)
        q = parse_question(data)
        if q is None or q.text is None or q.qclass != C_IN:
            return _Hit(_SLOW)
        end = q.end
        payload = 0
        if ar:
            if end + 11 != n or data[end] != 0:
                return _Hit(_SLOW)
            otype, payload, ottl, rdlen = _OPT.unpack_from(data, end + 1)
            if otype != T_OPT or rdlen or ottl & 0x00FF0000:
                return _Hit(_SLOW)
        elif end != n:
            return _Hit(_SLOW)
        key = (q.text, q.qtype)
        entry = self._cache.get(key)
        if entry is None:
            entry = self._prepare(q.text, q.qtype)
            if len(self._cache) >= CACHE_LIMIT:
                self._cache.clear()
            self._cache[key] = entry
        tail = b"\x00" + _OPT.pack(T_OPT, OUR_PAYLOAD, 0, 0) if ar else b""
        return _Hit(entry, data[12:end], tail, max(UDP_MIN, payload),
                    (q.wire, q.qtype, q.qclass))

    def _prepare(self, name: str, qtype: int) -> object:
        if qtype == T_PTR:
            target = self.view.lookup_ptr(name)
            if target is None:
                return _FORWARD
            if target.endswith("arpa"):  # dnspython would compress it against the question
                return _SLOW
            return _Prepared([_rr(T_PTR, self.ttl, _name_wire(target) if target else b"")])
        answer = self.view.lookup(name)
        if answer is None:
            return _FORWARD
        if qtype == T_A:
            return _Prepared([_rr(T_A, self.ttl, socket.inet_pton(socket.AF_INET, a))
                              for a in answer.v4])
        if qtype == T_AAAA:
            return _Prepared([_rr(T_AAAA, self.ttl, socket.inet_pton(socket.AF_INET6, a))
                              for a in answer.v6])
        if qtype == T_ANY:
            return _SLOW
        return _Prepared([])

    # -- the reference path (dnspython) ----------------------------------------
    def _slow(self, data: bytes, tcp: bool) -> bytes | Forward | None:
        try:
            q = dns.message.from_wire(data, keyring=False)
        except Exception:  # any malformed message: FORMERR, or drop a non-query
            return error_reply(data, FORMERR)
        if q.flags & dns.flags.QR:
            return None
        if q.opcode() != dns.opcode.QUERY:
            return error_reply(data, NOTIMP)
        if len(q.question) != 1:
            return error_reply(data, FORMERR)
        try:
            r = dns.message.make_response(q, recursion_available=True,
                                          our_payload=OUR_PAYLOAD)
        except Exception:
            return error_reply(data, FORMERR)
        if q.edns > 0:
            r.set_rcode(dns.rcode.BADVERS)
            return self._render(r, data, q, tcp)
        rr = q.question[0]
        key = (rr.name.canonicalize().to_wire() or b"", int(rr.rdtype), int(rr.rdclass))
        limit = max(UDP_MIN, q.payload if q.edns >= 0 else UDP_MIN)
        if rr.rdclass not in (dns.rdataclass.IN, dns.rdataclass.ANY):
            return self._unknown(data, q.id, key, limit)
        text = rr.name.to_text(omit_final_dot=True)
        if rr.rdtype == dns.rdatatype.PTR:
            target = self.view.lookup_ptr(text)
            if target is None:
                return self._unknown(data, q.id, key, limit)
            r.flags |= dns.flags.AA
            r.answer.append(dns.rrset.from_text_list(rr.name, self.ttl, dns.rdataclass.IN,
                                                     dns.rdatatype.PTR, [target + "."]))
            return self._render(r, data, q, tcp)
        answer = self.view.lookup(text)
        if answer is None:
            return self._unknown(data, q.id, key, limit)
        r.flags |= dns.flags.AA
        wanted = {dns.rdatatype.A: (T_A,), dns.rdatatype.AAAA: (T_AAAA,),
                  dns.rdatatype.ANY: (T_A, T_AAAA)}.get(rr.rdtype, ())
        for t in wanted:
            addrs = self._rotate(text.lower(), t, answer)
            if addrs:
                r.answer.append(dns.rrset.from_text_list(
                    rr.name, self.ttl, dns.rdataclass.IN, dns.rdatatype.RdataType(t), addrs))
        return self._render(r, data, q, tcp)

    def _rotate(self, key: str, qtype: int, answer: Answer) -> list[str]:
        """The answer's addresses of one family in this answer's round-robin order,
        shared with the fast path's rotation."""
        addrs = list(answer.v4 if qtype == T_A else answer.v6)
        if len(addrs) < 2:
            return addrs
        entry = self._cache.get((key, qtype))
        if not isinstance(entry, _Prepared):
            entry = self._prepare(key, qtype)
            if not isinstance(entry, _Prepared):
                return addrs
            self._cache[(key, qtype)] = entry
        i = entry.next % len(addrs)
        entry.next = i + 1
        return addrs[i:] + addrs[:i]

    def _unknown(self, data: bytes, qid: int, key: tuple[bytes, int, int], limit: int
                 ) -> bytes | Forward | None:
        """A name the view does not know. As Docker: when ndots was set explicitly
        (above 0), an A/AAAA question for a single label gets NOERROR without answer
        (the client goes on with its search domains) and is not forwarded; else it
        is forwarded, or answered SERVFAIL when the sandbox has no forwarding."""
        if self.view.ndots_set and key[1] in (T_A, T_AAAA) and _single_label(key[0]):
            return error_reply(data, NOERROR)
        if not self.view.forward:
            return error_reply(data, SERVFAIL)
        return Forward(data, qid, key, limit)

    @staticmethod
    def _render(r: dns.message.Message, data: bytes, q: dns.message.Message,
                tcp: bool) -> bytes | None:
        limit = TCP_MAX if tcp else max(UDP_MIN, q.payload if q.edns >= 0 else UDP_MIN)
        try:
            return r.to_wire(max_size=limit, want_shuffle=False)
        except dns.exception.TooBig:
            pass
        except Exception:
            return error_reply(data, SERVFAIL)
        # Cut records from the end until the message fits; TC tells the client
        # to ask again over TCP for the whole answer.
        r.flags |= dns.flags.TC
        while r.answer:
            last = r.answer[-1]
            items = list(last)
            if len(items) == 1:
                r.answer.pop()
            else:
                r.answer[-1] = dns.rrset.from_rdata_list(last.name, last.ttl, items[:-1])
            try:
                return r.to_wire(max_size=limit, want_shuffle=False)
            except dns.exception.TooBig:
                continue
        return error_reply(data, SERVFAIL)
