"""muslin.dns.message: the resolver's decisions, and its fast path byte for byte against
dnspython's encoding (no root, no I/O)."""

from __future__ import annotations

import random
import struct

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from muslin.dns.message import (
    OUR_PAYLOAD,
    Forward,
    Responder,
    error_reply,
    fit_udp,
    parse_question,
    rcode_of,
    reply_matches,
    truncated,
)
from muslin.dns.records import Records, View

NET = {"id": "n1", "name": "localnet", "driver": "bridge", "status": "ready",
       "internal": False, "predefined": False}
INSIDE = {"id": "n2", "name": "inside", "driver": "bridge", "status": "ready",
          "internal": True, "predefined": False}


def ep(i: int, name: str, aliases: tuple[str, ...] = (), net: str = "n1",
       v6: bool = True) -> dict[str, object]:
    prefix = "172.18.0" if net == "n1" else "10.9.0"
    return {"id": f"e{i}", "name": name, "network_id": net, "sandbox_id": f"s{i}",
            "ipv4": f"{prefix}.{i}/16", "ipv6": f"fd00::{i:x}/64" if v6 else None,
            "aliases": list(aliases), "status": "joined", "created": f"{i:04d}"}


def world(many: int = 0) -> Records:
    eps = [ep(2, "c1", ("web",)), ep(3, "c2", ("web", "Db")), ep(4, "c3", net="n2")]
    eps += [ep(10 + i, f"m{i}", ("crowd",), v6=False) for i in range(many)]
    sbs = [{"id": e["id"].replace("e", "s"), "key": f"k{e['id']}", "status": "ready",
            "endpoints": [e["id"]], "netns_path": "/x"} for e in eps]
    return Records.build([NET, INSIDE], eps, sbs)


@pytest.fixture
def view() -> View:
    v = world().view("s3")
    assert v is not None
    return v


def query(name: str, rdtype: str = "A", *, edns: bool = False, rd: bool = True,
          qid: int = 4242, payload: int = 1232) -> bytes:
    q = (dns.message.make_query(name, rdtype, use_edns=0, payload=payload) if edns
         else dns.message.make_query(name, rdtype, use_edns=False))
    q.id = qid
    if not rd:
        q.flags &= ~dns.flags.RD
    return q.to_wire()


def reference(wire: bytes, rdtype: int | None, addrs: list[str], ttl: int = 0) -> bytes:
    """The reply dnspython encodes for a local answer with addrs in this order."""
    q = dns.message.from_wire(wire)
    r = dns.message.make_response(q, recursion_available=True, our_payload=OUR_PAYLOAD)
    r.flags |= dns.flags.AA
    if rdtype is not None and addrs:
        r.answer.append(dns.rrset.from_text_list(q.question[0].name, ttl,
                                                 dns.rdataclass.IN,
                                                 dns.rdatatype.RdataType(rdtype), addrs))
    return r.to_wire(want_shuffle=False)


def fast_only(responder: Responder, monkeypatch: pytest.MonkeyPatch) -> None:
    def no(*_a: object, **_k: object) -> None:
        raise AssertionError("took the slow path")

    monkeypatch.setattr(responder, "_slow", no)


def test_fast_path_is_dnspythons_encoding(view: View, monkeypatch: pytest.MonkeyPatch
                                          ) -> None:
    r = Responder(view)
    fast_only(r, monkeypatch)
    a, aaaa, ptr = dns.rdatatype.A, dns.rdatatype.AAAA, dns.rdatatype.PTR
    cases = [
        (query("c1"), a, ["172.18.0.2"]),
        (query("C1.LocalNet", edns=True), a, ["172.18.0.2"]),
        (query("c1", "AAAA", rd=False), aaaa, ["fd00::2"]),
        (query("db", edns=True, payload=4096), a, ["172.18.0.3"]),
        (query("c1", "MX"), None, []),  # a known name, another type: NOERROR, no answer
        (query("c1", "TXT", edns=True), None, []),
        (query("2.0.18.172.in-addr.arpa", "PTR"), ptr, ["c1.localnet."]),
        (query("2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.",
               "PTR", edns=True), ptr, ["c1.localnet."]),
    ]
    for wire, rdtype, addrs in cases:
        assert r.handle(wire) == reference(wire, rdtype, addrs)


def test_round_robin_rotates_and_matches_dnspython(view: View,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    r = Responder(view)
    fast_only(r, monkeypatch)
    both = ["172.18.0.2", "172.18.0.3"]
    firsts = []
    for i in range(4):
        wire = query("web", qid=i)
        out = r.handle(wire)
        order = both[i % 2:] + both[:i % 2]
        assert out == reference(wire, dns.rdatatype.A, order)
        firsts.append(order[0])
    assert firsts == ["172.18.0.2", "172.18.0.3"] * 2


names = st.sampled_from(["c1", "c2", "web", "db", "c1.localnet", "web.localnet",
                         "2.0.18.172.in-addr.arpa", "3.0.18.172.in-addr.arpa"])


@settings(max_examples=300, deadline=None)
@given(name=names, upper=st.lists(st.booleans(), min_size=30, max_size=30),
       rdtype=st.sampled_from(["A", "AAAA", "PTR", "MX", "SRV"]), edns=st.booleans(),
       rd=st.booleans(), qid=st.integers(0, 65535), repeat=st.integers(1, 3))
def test_fast_path_equals_reference_path(name: str, upper: list[bool], rdtype: str,
                                         edns: bool, rd: bool, qid: int, repeat: int) -> None:
    """The fast path and the dnspython path give the same bytes, rotation included."""
    view = world().view("s3")
    assert view is not None
    cased = "".join(c.upper() if u else c for c, u in zip(name, upper * 2, strict=False))
    fast, slow = Responder(view), Responder(view)
    for _ in range(repeat):
        wire = query(cased, rdtype, edns=edns, rd=rd, qid=qid)
        a, b = fast.handle(wire), slow._slow(wire, False)
        assert a == b


def test_unknown_names_are_forwarded_and_internal_gets_servfail(view: View) -> None:
    wire = query("Example.COM")
    out = Responder(view).handle(wire)
    assert isinstance(out, Forward)
    assert out.query == wire and out.qid == 4242
    assert out.key == (b"\x07example\x03com\x00", 1, 1)
    # a PTR of an address nobody here has is forwarded too
    assert isinstance(Responder(view).handle(query("9.9.9.10.in-addr.arpa", "PTR")), Forward)
    # the slow path says the same
    assert isinstance(Responder(view)._slow(wire, False), Forward)
    internal = world().view("s4")
    assert internal is not None and not internal.forward
    for w in (wire, query("example.com", edns=True), query("weird name\\.x")):
        out = Responder(internal).handle(w)
        assert isinstance(out, bytes)
        m = dns.message.from_wire(out)
        assert m.rcode() == dns.rcode.SERVFAIL and m.id == 4242
    # but its own network's names resolve
    out = Responder(internal).handle(query("c3"))
    assert isinstance(out, bytes) and rcode_of(out) == 0


def test_big_answers_are_cut_with_tc_over_udp_and_whole_over_tcp() -> None:
    view = world(many=60).view("s3")
    assert view is not None
    r = Responder(view)
    wire = query("crowd")
    out = r.handle(wire)
    assert isinstance(out, bytes) and len(out) <= 512 and truncated(out)
    m = dns.message.from_wire(out)
    assert 0 < len(m.answer[0]) < 60
    with_edns = r.handle(query("crowd", edns=True, payload=4096))
    assert isinstance(with_edns, bytes) and not truncated(with_edns)
    assert len(dns.message.from_wire(with_edns).answer[0]) == 60
    whole = r.handle(wire, tcp=True)
    assert isinstance(whole, bytes) and not truncated(whole)
    assert len(dns.message.from_wire(whole).answer[0]) == 60


def test_any_gives_both_families(view: View) -> None:
    out = Responder(view).handle(query("c1", "ANY"))
    assert isinstance(out, bytes)
    m = dns.message.from_wire(out)
    assert sorted(dns.rdatatype.to_text(rr.rdtype) for rr in m.answer) == ["A", "AAAA"]


def test_malformed_and_odd_messages(view: View) -> None:
    r = Responder(view)
    assert r.handle(b"") is None
    assert r.handle(b"\x01\x02\x03") is None
    # garbage after a header: FORMERR with the id
    out = r.handle(b"\xbe\xef\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xff\xff")
    assert isinstance(out, bytes) and out[:2] == b"\xbe\xef" and rcode_of(out) == 1
    # a response sent to the resolver is dropped
    resp = dns.message.make_response(dns.message.from_wire(query("c1"))).to_wire()
    assert r.handle(resp) is None
    # no question: FORMERR
    empty = dns.message.Message(id=7).to_wire()
    out = r.handle(empty)
    assert isinstance(out, bytes) and rcode_of(out) == dns.rcode.FORMERR
    # another opcode: NOTIMP
    notify = dns.message.make_query("c1", "SOA")
    notify.set_opcode(dns.opcode.NOTIFY)
    out = r.handle(notify.to_wire())
    assert isinstance(out, bytes) and rcode_of(out) == dns.rcode.NOTIMP
    # trailing junk: FORMERR
    out = r.handle(query("c1") + b"\x00")
    assert isinstance(out, bytes) and rcode_of(out) == dns.rcode.FORMERR
    # EDNS version 1: BADVERS
    q = dns.message.make_query("c1", "A", use_edns=1)
    out = r.handle(q.to_wire())
    assert isinstance(out, bytes)
    assert dns.message.from_wire(out).rcode() == dns.rcode.BADVERS
    # two questions: FORMERR
    two = dns.message.make_query("c1", "A")
    two.question.append(dns.message.make_query("c2", "A").question[0])
    out = r.handle(two.to_wire())
    assert isinstance(out, bytes) and rcode_of(out) == dns.rcode.FORMERR
    # EDNS with options (a cookie) takes the dnspython path, same answer
    cookie = dns.message.make_query("c1", "A", use_edns=0, options=[
        dns.edns.GenericOption(dns.edns.OptionType.COOKIE, b"12345678")])
    out = r.handle(cookie.to_wire())
    assert isinstance(out, bytes) and rcode_of(out) == 0
    assert dns.message.from_wire(out).answer[0][0].to_text() == "172.18.0.2"


def test_random_bytes_never_raise(view: View) -> None:
    rng = random.Random(7)
    seeds = [query("c1"), query("web", edns=True), query("example.com", "AAAA"),
             query("2.0.18.172.in-addr.arpa", "PTR")]
    r = Responder(view)
    for i in range(3000):
        base = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 6)):
            op = rng.randrange(3)
            if op == 0 and base:
                base[rng.randrange(len(base))] = rng.randrange(256)
            elif op == 1:
                base.insert(rng.randrange(len(base) + 1), rng.randrange(256))
            elif base:
                del base[rng.randrange(len(base))]
        data = bytes(base) if i % 10 else rng.randbytes(rng.randrange(64))
        out = r.handle(data, tcp=bool(i % 2))
        assert out is None or isinstance(out, bytes | Forward)


def test_reply_matching_and_error_replies() -> None:
    wire = query("example.com")
    fwd = Forward(wire, 4242, (b"\x07example\x03com\x00", 1, 1))
    q = dns.message.from_wire(wire)
    good = dns.message.make_response(q)
    assert reply_matches(fwd, good.to_wire())
    other = dns.message.make_response(dns.message.from_wire(query("example.org")))
    assert not reply_matches(fwd, other.to_wire())
    wrong_id = dns.message.make_response(q)
    wrong_id.id = 1
    assert not reply_matches(fwd, wrong_id.to_wire())
    upper = dns.message.make_response(dns.message.from_wire(query("EXAMPLE.com")))
    assert reply_matches(fwd, upper.to_wire())
    assert not reply_matches(fwd, wire)  # not a response
    bare_fail = struct.pack("!6H", 4242, 0x8182, 0, 0, 0, 0)
    assert reply_matches(fwd, bare_fail)
    assert not reply_matches(fwd, struct.pack("!6H", 4242, 0x8180, 0, 0, 0, 0))
    out = error_reply(wire, 2)
    assert out is not None
    m = dns.message.from_wire(out)
    assert m.rcode() == dns.rcode.SERVFAIL and m.id == 4242
    assert m.question[0].name == dns.name.from_text("example.com")
    assert m.flags & dns.flags.RD and m.flags & dns.flags.QR
    assert error_reply(out, 2) is None


def test_parse_question() -> None:
    q = parse_question(query("A-b_c.Example"))
    assert q is not None and q.text == "a-b_c.example" and q.qtype == 1
    odd = parse_question(query("sp ace.example"))
    assert odd is not None and odd.text is None
    assert parse_question(b"\x00" * 12 + b"\xc0\x0c\x00\x01\x00\x01") is None
    assert parse_question(b"\x00" * 12 + b"\x05ab") is None


def test_forwarded_answers_too_big_for_udp_are_cut_with_tc() -> None:
    q = dns.message.from_wire(query("big.test"))
    r = dns.message.make_response(q)
    r.answer.append(dns.rrset.from_text_list(
        q.question[0].name, 30, "IN", "A", [f"192.0.2.{i}" for i in range(1, 61)]))
    wire = r.to_wire()
    assert len(wire) > 512
    cut = fit_udp(wire, 512)
    m = dns.message.from_wire(cut)
    assert m.flags & dns.flags.TC and m.id == q.id and not m.answer
    assert m.question == q.question and m.rcode() == dns.rcode.NOERROR
    assert fit_udp(wire, 4096) == wire  # fits the client's EDNS size: as it is
    assert fit_udp(b"\x00" * 5, 1) == b"\x00" * 5


def test_forward_carries_the_clients_udp_size(view: View) -> None:
    for wire, limit in ((query("ext.test"), 512),
                        (query("ext.test", edns=True, payload=4096), 4096),
                        (query("ext.test", edns=True, payload=100), 512)):
        out = Responder(view).handle(wire)
        assert isinstance(out, Forward) and out.limit == limit
        # the dnspython path agrees
        slow = Responder(view)._slow(wire, False)
        assert isinstance(slow, Forward) and slow.limit == limit


def test_ndots_set_answers_single_labels_it_does_not_know(view: View) -> None:
    """As Docker: ndots set above 0 and an unknown single-label A/AAAA name: NOERROR
    without answer and no forward; dotted names and other types are forwarded."""
    from dataclasses import replace

    nd = Responder(replace(view, ndots_set=True))
    for wire in (query("www"), query("WWW.", "AAAA"), query("www", edns=True)):
        out = nd.handle(wire)
        assert isinstance(out, bytes), out
        m = dns.message.from_wire(out)
        assert m.rcode() == dns.rcode.NOERROR and not m.answer
        assert m.flags & dns.flags.RA and not m.flags & dns.flags.AA
    assert isinstance(nd.handle(query("www.example")), Forward)
    assert isinstance(nd.handle(query("www", "MX")), Forward)
    assert isinstance(nd.handle(query("c1")), bytes)  # known names answer as ever
    assert isinstance(Responder(view).handle(query("www")), Forward)  # not set: forwarded
    internal = Responder(replace(view, ndots_set=True, forward=False))
    out = internal.handle(query("www"))
    assert isinstance(out, bytes) and rcode_of(out) == dns.rcode.NOERROR
    out = internal.handle(query("www.example"))
    assert isinstance(out, bytes) and rcode_of(out) == dns.rcode.SERVFAIL
