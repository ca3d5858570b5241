"""Embedded DNS (issue 7) with real packets: queries sent from inside sandboxes to
127.0.0.11, answered by a DnsService on an asyncio loop of this process; every
upstream is a stub DNS server of the lab (never the host's resolvers)."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import muslin
from muslin.dns import DnsService, NameRecord
from muslin.dns import rules as dnsrules

from lab import TESTS_DIR, Lab, LabHost
from netcheck import pings

pytestmark = pytest.mark.kernel

CID = "0123456789ab" + "cd" * 26  # a container id (64 hex digits)
STUBDNS = TESTS_DIR / "stubdns.py"
StubDNS = Any  # tests/conftest.py's StubDNS (a fixture's product)

QUERY = r"""
import json, sys
import dns.flags, dns.message, dns.query, dns.rcode
out = []
for spec in json.loads(sys.argv[1]):
    name, rdtype, proto = spec[:3]
    q = dns.message.make_query(name, rdtype, use_edns=False)
    try:
        if proto == "udp":
            r = dns.query.udp(q, "127.0.0.11", timeout=float(sys.argv[2]))
        else:
            r = dns.query.tcp(q, "127.0.0.11", timeout=float(sys.argv[2]))
        out.append({"rcode": dns.rcode.to_text(r.rcode()), "tc": bool(r.flags & dns.flags.TC),
                    "aa": bool(r.flags & dns.flags.AA),
                    "answers": [rd.to_text() for rrset in r.answer for rd in rrset],
                    "ttls": [rrset.ttl for rrset in r.answer]})
    except Exception as e:
        out.append({"error": type(e).__name__})
print(json.dumps(out))
"""

UDP53_SERVER = r"""
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 53))
while True:
    data, addr = s.recvfrom(2048)
    s.sendto(b"mine:" + data, addr)
"""

UDP_CLIENT = r"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
s.sendto(b"hello", (sys.argv[1], 53))
print(s.recv(100).decode())
"""

SILENT_SERVER = r"""
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", int(sys.argv[1])))
time.sleep(3600)
"""

FUZZ = r"""
import random, socket, struct, sys, time
import dns.message
rng = random.Random(int(sys.argv[1]))
total = int(sys.argv[2])
seeds = []
for name, t in [("c1", "A"), ("web", "A"), ("c1.localnet", "AAAA"), ("ext.test", "A"),
                ("2.0.18.172.in-addr.arpa", "PTR"), ("nothing.test", "MX")]:
    seeds.append(dns.message.make_query(name, t, use_edns=False).to_wire())
    seeds.append(dns.message.make_query(name, t, use_edns=0, payload=4096).to_wire())

def mutate(b):
    b = bytearray(b)
    for _ in range(rng.randint(1, 8)):
        op = rng.randrange(7)
        if op == 0 and b:
            b[rng.randrange(len(b))] = rng.randrange(256)
        elif op == 1:
            b.insert(rng.randrange(len(b) + 1), rng.randrange(256))
        elif op == 2 and b:
            del b[rng.randrange(len(b))]
        elif op == 3 and b:
            del b[rng.randrange(len(b)):]
        elif op == 4 and len(b) >= 12:
            i = rng.randrange(2, 12, 2)
            b[i:i + 2] = struct.pack("!H", rng.choice([0, 1, 2, 255, 0xffff,
                                                          rng.randrange(65536)]))
        elif op == 5:
            b += rng.randbytes(rng.randrange(1, 40))
        elif op == 6 and len(b) > 12:
            i = rng.randrange(12, len(b))
            b[i] = rng.choice([0xc0, 0x3f, 0x40, 0xff, 0])
    return bytes(b)

u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.setblocking(False)
udp = int(total * 0.97)
for i in range(udp):
    r = rng.random()
    data = rng.randbytes(rng.randrange(0, 700)) if r < 0.15 else mutate(rng.choice(seeds))
    try:
        u.sendto(data, ("127.0.0.11", 53))
    except OSError:
        pass
    while True:
        try:
            u.recv(65535)
        except OSError:
            break
    if i % 10 == 9:
        time.sleep(0.002)
for i in range(total - udp):
    c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    c.settimeout(0.3)
    try:
        c.connect(("127.0.0.11", 53))
        r = rng.random()
        if r < 0.3:
            c.sendall(rng.randbytes(rng.randrange(0, 300)))
        else:
            q = mutate(rng.choice(seeds))
            n = len(q) if r < 0.8 else rng.randrange(65536)
            c.sendall(struct.pack("!H", n) + q)
            if n == len(q):
                try:
                    c.recv(65535)
                except OSError:
                    pass
    except OSError:
        pass
    finally:
        c.close()
print(total)
"""

LOAD = r"""
import json, selectors, socket, struct, sys, time
import dns.message
name, seconds, depth, server = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
wire = bytearray(dns.message.make_query(name, "A", use_edns=False).to_wire())
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect((server, 53))
s.setblocking(False)
sent = {}
lat = []
lost = 0
nid = 0
def send():
    global nid
    nid = (nid + 1) & 0xffff
    wire[0:2] = struct.pack("!H", nid)
    sent[nid] = time.perf_counter()
    s.send(wire)
for _ in range(depth):
    send()
sel = selectors.DefaultSelector()
sel.register(s, selectors.EVENT_READ)
start = time.perf_counter()
end = start + seconds
while True:
    now = time.perf_counter()
    if now >= end:
        break
    if not sel.select(0.2):
        # lost replies: start over with fresh queries
        lost += len(sent)
        sent.clear()
        for _ in range(depth):
            send()
        continue
    while True:
        try:
            data = s.recv(65535)
        except BlockingIOError:
            break
        t = time.perf_counter()
        (rid,) = struct.unpack_from("!H", data)
        t0 = sent.pop(rid, None)
        if t0 is None:
            continue
        lat.append(t - t0)
        if t < end:
            send()
elapsed = time.perf_counter() - start
lat.sort()
def pct(p):
    return round(lat[min(len(lat) - 1, int(p * len(lat)))] * 1000, 3) if lat else None
print(json.dumps({"name": name, "server": server, "answers": len(lat), "seconds": round(elapsed, 3),
                  "qps": round(len(lat) / elapsed), "p50_ms": pct(0.50),
                  "p99_ms": pct(0.99), "lost": lost, "in_flight": depth}))
"""


# -- fixtures and helpers -------------------------------------------------------

@pytest.fixture
def dns_loop() -> Iterator[asyncio.AbstractEventLoop]:
    """An asyncio loop on a thread of its own, as the daemon's."""
    loop = asyncio.new_event_loop()
    t = threading.Thread(target=loop.run_forever, name="dns-loop", daemon=True)
    t.start()
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    t.join(10)
    loop.close()


@pytest.fixture
def dns_service(ctl: muslin.Controller, dns_loop: asyncio.AbstractEventLoop
                ) -> Iterator[Callable[..., DnsService]]:
    """Factory: a started DnsService of ctl (host_upstreams=[] unless given)."""
    made: list[DnsService] = []

    def make(controller: muslin.Controller | None = None, **kw: Any) -> DnsService:
        kw.setdefault("host_upstreams", [])
        svc = DnsService(controller or ctl, dns_loop, **kw)
        svc.start()
        made.append(svc)
        return svc

    yield make
    for svc in made:
        svc.close()


def configure(ctl: muslin.Controller, sb: muslin.Sandbox, **fields: Any) -> None:
    """Sets fields of the sandbox's document (hostname, dns, links), as the
    containers layer will when it creates a container's sandbox."""
    with ctl.store.transaction() as t:
        doc = t.get("sandbox", sb.id)
        assert doc is not None
        doc.update(fields)
        t.put("sandbox", sb.id, doc)


def member(ctl: muslin.Controller, net: muslin.Network, name: str, *,
           aliases: tuple[str, ...] = (), key: str | None = None, **fields: Any
           ) -> tuple[muslin.Sandbox, muslin.Endpoint]:
    sb = ctl.create_sandbox(key or name, name=name)
    configure(ctl, sb, **fields)
    ep = net.create_endpoint(name, aliases=list(aliases))
    ep.join(sb)
    return sb, ep


def ask(lab: Lab, sb: muslin.Sandbox | str, *specs: tuple[str, str] | tuple[str, str, str],
        timeout: float = 3.0) -> list[dict[str, Any]]:
    """Queries (name, type[, "udp"|"tcp"]) sent to 127.0.0.11 from inside sb (a sandbox
    or its namespace's path)."""
    full = [list(s) if len(s) == 3 else [*s, "udp"] for s in specs]
    path = sb if isinstance(sb, str) else sb.netns_path
    r = lab.run(path, [sys.executable, "-c", QUERY, json.dumps(full), str(timeout)],
                timeout=30 + timeout * 4 * len(specs))
    out: list[dict[str, Any]] = json.loads(r.stdout)
    return out


def a(result: dict[str, Any]) -> list[str]:
    assert result.get("rcode") == "NOERROR", result
    return list(result["answers"])


def nft_tables(lab: Lab, sb: muslin.Sandbox) -> str:
    return lab.run(sb.netns_path, ["nft", "list", "tables"]).stdout


# -- names ----------------------------------------------------------------------

def test_names_aliases_ptr_and_scope(lab: Lab, lab_host: LabHost, ctl: muslin.Controller,
                                     dns_service: Callable[..., DnsService],
                                     stub_dns_for: Callable[..., StubDNS]) -> None:
    stub = stub_dns_for(lab_host, records={"ext.test": "192.0.2.50"})
    svc = dns_service()
    up = {"dns": [stub.address]}
    net = ctl.create_network("localnet")
    other = ctl.create_network("othernet")
    sb1, ep1 = member(ctl, net, "c1", aliases=("web", "cache"), hostname="host-one", **up)
    sb2, ep2 = member(ctl, net, "c2", aliases=("web",), links={"buddy": "c1"}, **up)
    sb3, _ = member(ctl, other, "c3", **up)
    _sbid, epid = member(ctl, net, "idc", key=CID, **up)
    ip1, ip2 = str(ep1.ipv4_address), str(ep2.ipv4_address)
    assert svc.ports(sb1.id) is not None

    # c2 resolves c1 and pings it at the address it got
    res = ask(lab, sb2, ("c1", "A"), ("C1.", "A", "tcp"), ("cache", "A"),
              ("host-one", "A"), ("c1.localnet", "A"), ("buddy", "A"),
              (CID[:12], "A"), ("c1", "AAAA"), ("web", "A"), ("web", "A"))
    assert a(res[0]) == [ip1] and res[0]["aa"] and res[0]["ttls"] == [0]
    for r in res[1:6]:
        assert a(r) == [ip1]
    assert a(res[6]) == [str(epid.ipv4_address)]
    assert a(res[7]) == []  # c1 has no IPv6 address: NOERROR without answer
    # a shared alias: both addresses, the order rotating from one answer to the next
    assert sorted(a(res[8])) == sorted([ip1, ip2])
    assert a(res[9]) == a(res[8])[1:] + a(res[8])[:1]
    assert pings(lab, sb2.netns_path, a(res[0])[0])

    # PTR of c1's address -> c1.localnet
    rev = ".".join(reversed(ip1.split("."))) + ".in-addr.arpa"
    (ptr,) = ask(lab, sb2, (rev, "PTR"))
    assert a(ptr) == ["c1.localnet."]

    # a sandbox on another network cannot resolve c1 (forwarded: the stub says NXDOMAIN)
    res = ask(lab, sb3, ("c1", "A"), ("c1.localnet", "A"), (rev, "PTR"), ("c3", "A"))
    assert [r["rcode"] for r in res[:3]] == ["NXDOMAIN"] * 3
    assert a(res[3]) != []
    assert ("udp", "c1.", "A") in stub.queries()
    # the link alias is c2's own
    (buddy,) = ask(lab, sb1, ("buddy", "A"))
    assert buddy["rcode"] == "NXDOMAIN"

    # busybox's nslookup, a real client's resolver code, finds c2 too
    out = lab.run(sb1.netns_path, ["busybox", "nslookup", "c2", "127.0.0.11"],
                  check=False).stdout
    assert ip2 in out, out
    assert "muslin_dns" in nft_tables(lab, sb1)
    assert ctl.leaks() == []


def test_ipv6_addresses_and_ptr(lab: Lab, ctl: muslin.Controller,
                                dns_service: Callable[..., DnsService]) -> None:
    dns_service()
    net = ctl.create_network("v6net", enable_ipv6=True,
                             ipam=[{"subnet": "172.30.0.0/24"}, {"subnet": "fd00:30::/64"}])
    sb1, ep1 = member(ctl, net, "c1", dns=["192.0.2.1"])
    sb2, ep2 = member(ctl, net, "c2", dns=["192.0.2.1"])
    v6 = str(ep1.ipv6_address)
    rev = ".".join(reversed(ipaddress.ip_address(v6).exploded.replace(":", ""))) + ".ip6.arpa"
    res = ask(lab, sb2, ("c1", "AAAA"), ("c1", "A"), ("c1.v6net", "AAAA", "tcp"),
              (rev, "PTR"))
    assert a(res[0]) == [v6] and a(res[1]) == [str(ep1.ipv4_address)]
    assert a(res[2]) == [v6] and a(res[3]) == ["c1.v6net."]
    assert ep2.ipv6_address and sb1


def test_sandbox_serving_udp_53_itself_still_resolves(
        lab: Lab, ctl: muslin.Controller, dns_service: Callable[..., DnsService]) -> None:
    dns_service()
    net = ctl.create_network("localnet")
    sb1, ep1 = member(ctl, net, "c1", dns=["192.0.2.1"])
    sb2, ep2 = member(ctl, net, "c2", dns=["192.0.2.1"])
    lab.spawn(sb1.netns_path, [sys.executable, "-c", UDP53_SERVER])
    lab.wait_until(lambda: lab.run(sb1.netns_path, ["ss", "-lunH", "sport = :53"],
                                   check=False).stdout.strip() != "",
                   what="a UDP server on port 53 in c1")
    # its own server answers on its own address...
    r = lab.run(sb2.netns_path, [sys.executable, "-c", UDP_CLIENT, str(ep1.ipv4_address)])
    assert r.stdout.startswith("mine:hello")
    r = lab.run(sb1.netns_path, [sys.executable, "-c", UDP_CLIENT, "127.0.0.1"])
    assert r.stdout.startswith("mine:hello")
    # ... and 127.0.0.11:53 is still the embedded resolver
    (res,) = ask(lab, sb1, ("c2", "A"))
    assert a(res) == [str(ep2.ipv4_address)]


def test_join_leave_and_delete_change_answers_at_once(
        lab: Lab, ctl: muslin.Controller, dns_service: Callable[..., DnsService]) -> None:
    svc = dns_service()
    net = ctl.create_network("localnet")
    other = ctl.create_network("othernet")
    sb1, _ = member(ctl, net, "c1", dns=["192.0.2.1"])
    sb2, ep2 = member(ctl, net, "c2", dns=["192.0.2.1"])
    assert a(ask(lab, sb1, ("c2", "A"))[0]) == [str(ep2.ipv4_address)]
    # c2 joins othernet too: its name there is c2.othernet, seen from othernet only
    ep2b = other.create_endpoint("c2")
    ep2b.join(sb2)
    sb3, _ = member(ctl, other, "c3", dns=["192.0.2.1"], )
    assert a(ask(lab, sb3, ("c2", "A"))[0]) == [str(ep2b.ipv4_address)]
    # c2 leaves localnet: c1 no longer resolves it, the very next query
    ep2.leave(sb2)
    (res,) = ask(lab, sb1, ("c2", "A"), timeout=1)
    assert res.get("rcode") != "NOERROR"
    # c2 is still on othernet: its resolver stays
    assert svc.ports(sb2.id) is not None
    assert a(ask(lab, sb2, ("c3", "A"))[0]) != []
    # leaving its last DNS network stops c2's resolver and removes its table
    ep2b.leave(sb2)
    assert svc.ports(sb2.id) is None
    assert "muslin_dns" not in nft_tables(lab, sb2)
    (res,) = ask(lab, sb2, ("c1", "A"), timeout=1)
    assert "error" in res
    # and joining again brings it back
    ep2.join(sb2)
    assert a(ask(lab, sb2, ("c1", "A"))[0]) != []
    assert a(ask(lab, sb1, ("c2", "A"))[0]) == [str(ep2.ipv4_address)]
    # deleting the sandbox closes its resolver
    sb2.delete()
    assert svc.ports(sb2.id) is None
    lab.wait_until(lambda: sb2.id not in svc._resolvers, what="the resolver to close")
    (res,) = ask(lab, sb1, ("c2", "A"), timeout=1)
    assert res.get("rcode") != "NOERROR"
    assert ctl.leaks() == []


def test_general_records_for_services(lab: Lab, ctl: muslin.Controller,
                                      dns_service: Callable[..., DnsService]) -> None:
    svc = dns_service()
    net = ctl.create_network("localnet")
    sb1, _ = member(ctl, net, "c1", dns=["192.0.2.1"])
    svc.set_records("svc1", [NameRecord(net.id, "svc1", ("10.255.0.5",), ptr=True)])
    res = ask(lab, sb1, ("svc1", "A"), ("svc1.localnet", "A"),
              ("5.0.255.10.in-addr.arpa", "PTR"))
    assert a(res[0]) == ["10.255.0.5"] and a(res[1]) == ["10.255.0.5"]
    assert a(res[2]) == ["svc1.localnet."]
    svc.set_records("svc1", [])
    (res0,) = ask(lab, sb1, ("svc1", "A"), timeout=1)
    assert res0.get("rcode") != "NOERROR"


def test_predefined_bridge_has_no_resolver(lab: Lab, ctl: muslin.Controller,
                                           dns_service: Callable[..., DnsService]) -> None:
    svc = dns_service()
    bridge = ctl.network("bridge")
    sb1, _ = member(ctl, bridge, "c1")
    member(ctl, bridge, "c2")
    assert svc.ports(sb1.id) is None
    assert "muslin_dns" not in nft_tables(lab, sb1)
    res = ask(lab, sb1, ("c2", "A"), ("c2", "A", "tcp"), timeout=1)
    assert all("error" in r for r in res), res


def test_restore_after_a_daemon_restart(lab: Lab, lab_host: LabHost,
                                        controller: Callable[..., muslin.Controller],
                                        dns_loop: asyncio.AbstractEventLoop) -> None:
    ctl1 = controller()
    svc1 = DnsService(ctl1, dns_loop, host_upstreams=[])
    svc1.start()
    net = ctl1.create_network("localnet")
    sb1, _ = member(ctl1, net, "c1", dns=["192.0.2.1"])
    _sb2, ep2 = member(ctl1, net, "c2", dns=["192.0.2.1"])
    ports = svc1.ports(sb1.id)
    ip2 = str(ep2.ipv4_address)
    assert a(ask(lab, sb1, ("c2", "A"))[0]) == [ip2]
    # the daemon goes away: its sockets close, the sandbox's table stays
    path = sb1.netns_path
    svc1.close()
    ctl1.close()
    assert "error" in ask(lab, path, ("c2", "A"), timeout=1)[0]
    # the next daemon restores every resolver, on the same ports
    ctl2 = controller()
    svc2 = DnsService(ctl2, dns_loop, host_upstreams=[])
    try:
        svc2.start()
        assert svc2.ports(sb1.id) == ports
        assert a(ask(lab, path, ("c2", "A"))[0]) == [ip2]
        assert a(ask(lab, path, ("c2", "A", "tcp"))[0]) == [ip2]
        listing = lab.run(path, ["nft", "-j", "list", "table", "ip",
                                           dnsrules.TABLE]).stdout
        items = [i for i in json.loads(listing)["nftables"] if "metainfo" not in i]
        assert dnsrules.ports(items) == ports
    finally:
        svc2.close()
    assert ctl2.leaks() == []


# -- forwarding -------------------------------------------------------------------

def test_forwarding_to_the_sandboxs_upstreams(lab: Lab, lab_host: LabHost,
                                              ctl: muslin.Controller,
                                              dns_service: Callable[..., DnsService],
                                              stub_dns_for: Callable[..., StubDNS]) -> None:
    dns_service(timeout=0.5)
    failing = stub_dns_for(lab_host, records={}, rcode="SERVFAIL")
    good = stub_dns_for(lab_host, records={"ext.test": "192.0.2.50",
                                           "v6.ext.test": "2001:db8::50"})
    lab.spawn(good.netns, [sys.executable, "-c", SILENT_SERVER, "5353"])
    net = ctl.create_network("localnet")
    sb1, _ = member(ctl, net, "c1", dns=[good.address])
    sb2, _ = member(ctl, net, "c2", dns=[failing.address, good.address])
    sb3, _ = member(ctl, net, "c3", dns=[f"{good.address}:5353", good.address])
    sb4, _ = member(ctl, net, "c4", dns=[failing.address])
    # the stub answers an external name, over UDP and TCP
    res = ask(lab, sb1, ("ext.test", "A"), ("ext.test", "A", "tcp"),
              ("v6.ext.test", "AAAA"), ("nowhere.test", "A"))
    assert a(res[0]) == ["192.0.2.50"] and a(res[1]) == ["192.0.2.50"]
    assert a(res[2]) == ["2001:db8::50"]
    assert res[3]["rcode"] == "NXDOMAIN"
    # the first upstream answers SERVFAIL: the second one answers
    res = ask(lab, sb2, ("ext.test", "A"), ("ext.test", "A", "tcp"))
    assert a(res[0]) == ["192.0.2.50"] and a(res[1]) == ["192.0.2.50"]
    assert ("udp", "ext.test.", "A") in failing.queries()
    # the first one never answers: after its timeout (0.5 s, within the client's 3 s)
    # the second one does
    (res0,) = ask(lab, sb3, ("ext.test", "A"))
    assert a(res0) == ["192.0.2.50"]
    # every upstream fails: SERVFAIL
    (res0,) = ask(lab, sb4, ("ext.test", "A"))
    assert res0["rcode"] == "SERVFAIL"
    # an upstream wired to c5's namespace alone (no route to it from the host): only a
    # query sent from inside the sandbox reaches it
    sb5 = ctl.create_sandbox("c5", name="c5")
    private = stub_dns_for(sb5.netns_path, records={"private.test": "192.0.2.99"})
    configure(ctl, sb5, dns=[private.address])
    net.create_endpoint("c5").join(sb5)
    res = ask(lab, sb5, ("private.test", "A"), ("private.test", "A", "tcp"))
    assert a(res[0]) == ["192.0.2.99"] and a(res[1]) == ["192.0.2.99"]
    assert ctl.leaks() == []


def test_failover_on_refused_and_timeout_and_at_most_three_upstreams(
        lab: Lab, lab_host: LabHost, ctl: muslin.Controller,
        dns_service: Callable[..., DnsService],
        stub_dns_for: Callable[..., StubDNS]) -> None:
    svc = dns_service(timeout=0.5)
    refusing = stub_dns_for(lab_host, records={}, rcode="REFUSED")
    failing = stub_dns_for(lab_host, records={}, rcode="SERVFAIL")
    good = stub_dns_for(lab_host, records={"ext.test": "192.0.2.50"})
    lab.spawn(good.netns, [sys.executable, "-c", SILENT_SERVER, "5353"])
    silent = f"{good.address}:5353"
    net = ctl.create_network("localnet")
    sb1, _ = member(ctl, net, "c1", dns=[refusing.address, good.address])
    sb2, _ = member(ctl, net, "c2", dns=[silent, good.address])
    # REFUSED from the first: the second answers (UDP and TCP)
    res = ask(lab, sb1, ("ext.test", "A"), ("ext.test", "A", "tcp"))
    assert a(res[0]) == ["192.0.2.50"] and a(res[1]) == ["192.0.2.50"]
    assert {("udp", "ext.test.", "A"), ("tcp", "ext.test.", "A")} <= set(refusing.queries())
    # the first never answers: after its 0.5 s timeout the second does (UDP and TCP)
    errors = svc.stats.upstream_errors
    res = ask(lab, sb2, ("ext.test", "A"), ("ext.test", "A", "tcp"))
    assert a(res[0]) == ["192.0.2.50"] and a(res[1]) == ["192.0.2.50"]
    assert svc.stats.upstream_errors == errors + 2  # two timeouts, one per query
    # four upstreams: only the first three are asked (each fails in its own way), so
    # the fourth, which would answer, is never asked: SERVFAIL
    before = len(good.queries())
    sb3, _ = member(ctl, net, "c3", dns=[refusing.address, failing.address, silent,
                                        good.address])
    (res0,) = ask(lab, sb3, ("ext.test", "A"))
    assert res0["rcode"] == "REFUSED" or res0["rcode"] == "SERVFAIL", res0
    assert ("udp", "ext.test.", "A") in failing.queries()
    assert len(good.queries()) == before
    assert ctl.leaks() == []


def test_large_upstream_answer_truncated_over_udp_whole_over_tcp(
        lab: Lab, lab_host: LabHost, ctl: muslin.Controller,
        dns_service: Callable[..., DnsService],
        stub_dns_for: Callable[..., StubDNS]) -> None:
    """The stub sends its whole 60-address answer (~1 kB) over UDP: the resolver passes
    it on cut to the client's size with TC set; over TCP, and to a client announcing
    a 4096-byte EDNS size, it arrives whole."""
    dns_service()
    many = [f"192.0.2.{i}" for i in range(1, 61)]
    stub = stub_dns_for(lab_host, records={"big.test": many})
    net = ctl.create_network("localnet")
    sb1, _ = member(ctl, net, "c1", dns=[stub.address])
    udp, tcp = ask(lab, sb1, ("big.test", "A"), ("big.test", "A", "tcp"))
    assert udp["rcode"] == "NOERROR" and udp["tc"] and udp["answers"] == []
    assert not tcp["tc"] and sorted(a(tcp)) == sorted(many)
    script = r"""
import dns.message, dns.query, dns.flags, json
q = dns.message.make_query("big.test", "A", use_edns=0, payload=4096)
r = dns.query.udp(q, "127.0.0.11", timeout=3, ignore_trailing=True)
print(json.dumps([bool(r.flags & dns.flags.TC), sum(len(x) for x in r.answer)]))
"""
    out = json.loads(lab.run(sb1.netns_path, [sys.executable, "-c", script]).stdout)
    assert out == [False, 60]


def test_truncated_upstream_answer_then_tcp(lab: Lab, lab_host: LabHost,
                                            ctl: muslin.Controller,
                                            dns_service: Callable[..., DnsService],
                                            stub_dns_for: Callable[..., StubDNS]) -> None:
    dns_service()
    many = [f"192.0.2.{i}" for i in range(1, 61)]
    stub = stub_dns_for(lab_host, records={"big.test": many}, tc=True)
    net = ctl.create_network("localnet")
    sb1, _ = member(ctl, net, "c1", dns=[stub.address])
    udp, tcp = ask(lab, sb1, ("big.test", "A"), ("big.test", "A", "tcp"))
    assert udp["rcode"] == "NOERROR" and udp["tc"] and udp["answers"] == []
    assert not tcp["tc"] and sorted(a(tcp)) == sorted(many)
    assert ("tcp", "big.test.", "A") in stub.queries()


def test_host_upstreams_are_asked_from_the_host_namespace(
        lab: Lab, lab_host: LabHost, ctl: muslin.Controller,
        dns_service: Callable[..., DnsService]) -> None:
    """The lab's stub listens on 127.0.0.1 of the host namespace: only a query sent
    from the host namespace reaches it."""
    ready = lab.dir / "hoststub.ready"
    log = lab.dir / "hoststub.queries"
    lab.spawn(lab_host, [sys.executable, str(STUBDNS), "--listen", "127.0.0.1", "--port",
                         "5300", "--record", "ext.test=192.0.2.50", "--ready", str(ready),
                         "--log", str(log)])
    lab.wait_until(ready.exists, timeout=30, what="the host's stub DNS")
    dns_service(host_upstreams=["127.0.0.1:5300"])
    net = ctl.create_network("localnet")
    sb1, _ = member(ctl, net, "c1")  # no upstreams of its own
    sb2, _ = member(ctl, net, "c2", dns=["127.0.0.1:5300"])  # loopback: the host's too
    res = ask(lab, sb1, ("ext.test", "A"), ("ext.test", "A", "tcp"))
    assert a(res[0]) == ["192.0.2.50"] and a(res[1]) == ["192.0.2.50"]
    assert a(ask(lab, sb2, ("ext.test", "A"))[0]) == ["192.0.2.50"]
    assert "udp ext.test. A" in log.read_text()


def test_internal_only_sandbox_gets_no_forwarding(
        lab: Lab, lab_host: LabHost, ctl: muslin.Controller,
        dns_service: Callable[..., DnsService],
        stub_dns_for: Callable[..., StubDNS]) -> None:
    stub = stub_dns_for(lab_host, records={"ext.test": "192.0.2.50"})
    dns_service(host_upstreams=[stub.address])
    inside = ctl.create_network("inside", internal=True)
    sb1, _ = member(ctl, inside, "c1", dns=[stub.address])
    _, ep2 = member(ctl, inside, "c2", dns=[stub.address])
    res = ask(lab, sb1, ("ext.test", "A"), ("ext.test", "A", "tcp"), ("c2", "A"))
    assert [r["rcode"] for r in res[:2]] == ["SERVFAIL", "SERVFAIL"]
    assert a(res[2]) == [str(ep2.ipv4_address)]
    assert stub.queries() == []


# -- robustness and load --------------------------------------------------------------

def test_ten_thousand_mutated_packets(lab: Lab, lab_host: LabHost, ctl: muslin.Controller,
                                      dns_service: Callable[..., DnsService],
                                      stub_dns_for: Callable[..., StubDNS],
                                      caplog: pytest.LogCaptureFixture) -> None:
    """10,000 packets from a fixed seed (random bytes, and valid queries mutated:
    bytes flipped, inserted, cut, counts forged, compression pointers), 97 % over UDP,
    the rest over TCP (short reads, wrong lengths); then every kind of answer is still
    right, and no query ever made the resolver log an error."""
    caplog.set_level(logging.ERROR, logger="muslin.dns")
    stub = stub_dns_for(lab_host, records={"ext.test": "192.0.2.50"})
    svc = dns_service(timeout=0.3)
    net = ctl.create_network("localnet")
    sb1, ep1 = member(ctl, net, "c1", aliases=("web",), dns=[stub.address])
    _, ep2 = member(ctl, net, "c2", aliases=("web",), dns=[stub.address])
    r = lab.run(sb1.netns_path, [sys.executable, "-c", FUZZ, "20240607", "10000"],
                timeout=300)
    assert r.stdout.strip() == "10000"
    assert svc.ports(sb1.id) is not None

    def answers() -> bool:
        res = ask(lab, sb1, ("c2", "A"), ("c2", "A", "tcp"), ("web", "A"),
                  ("ext.test", "A"), ("ext.test", "A", "tcp"))
        return (a(res[0]) == a(res[1]) == [str(ep2.ipv4_address)]
                and sorted(a(res[2])) == sorted([str(ep1.ipv4_address),
                                                 str(ep2.ipv4_address)])
                and a(res[3]) == a(res[4]) == ["192.0.2.50"])

    # forwards of mutated queries may still be in flight for a moment
    lab.wait_until(answers, timeout=20, what="correct answers after the fuzzing")
    print(f"\nafter fuzzing: {svc.stats}")
    assert svc.stats.received > 5000  # most of them reached the resolver (UDP may drop)
    assert svc.stats.local > 0
    errors = [r for r in caplog.records
              if r.name.startswith("muslin.dns") and r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors[:5]]


def test_forward_bound_of_1024_refuses_beyond(
        lab: Lab, lab_host: LabHost, ctl: muslin.Controller,
        dns_service: Callable[..., DnsService],
        stub_dns_for: Callable[..., StubDNS]) -> None:
    """Docker's bound with an upstream that never answers: 1,030 queries, each for
    another name, sent at once; 1,024 wait on the upstream, 6 are answered REFUSED
    at once. Once the waits time out, the resolver answers again."""
    stub = stub_dns_for(lab_host, records={"ext.test": "192.0.2.50"})
    lab.spawn(stub.netns, [sys.executable, "-c", SILENT_SERVER, "5353"])
    svc = dns_service(timeout=20.0)
    assert svc.max_inflight == 1024
    net = ctl.create_network("localnet")
    sb1, _ = member(ctl, net, "c1", dns=[f"{stub.address}:5353"])
    _, ep2 = member(ctl, net, "c2", dns=[f"{stub.address}:5353"])
    script = r"""
import json, socket, struct, time
import dns.message
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
for i in range(1030):
    q = dns.message.make_query(f"n{i}.test", "A", use_edns=False)
    q.id = i
    s.sendto(q.to_wire(), ("127.0.0.11", 53))
    if i % 64 == 63:
        time.sleep(0.01)
s.settimeout(3)
got = []
try:
    while True:
        data = s.recv(2048)
        got.append([struct.unpack("!H", data[:2])[0], data[3] & 0xF])
except socket.timeout:
    pass
print(json.dumps(got))
"""
    got = json.loads(lab.run(sb1.netns_path, [sys.executable, "-c", script],
                             timeout=60).stdout)
    assert [rcode for _i, rcode in got] == [5] * 6, got[:20]
    assert svc.stats.refused == 6 and svc.stats.forwarded == 1024
    # while 1,024 forwards wait: container names still answer (they need no forward)
    assert a(ask(lab, sb1, ("c2", "A"))[0]) == [str(ep2.ipv4_address)]
    (res,) = ask(lab, sb1, ("more.test", "A"))
    assert res["rcode"] == "REFUSED"


def test_forward_bound_refuses_beyond(lab: Lab, lab_host: LabHost, ctl: muslin.Controller,
                                      dns_service: Callable[..., DnsService],
                                      stub_dns_for: Callable[..., StubDNS]) -> None:
    """With an upstream that never answers and a bound of 5 forwards in flight, a 6th
    query is refused at once."""
    stub = stub_dns_for(lab_host, records={})
    lab.spawn(stub.netns, [sys.executable, "-c", SILENT_SERVER, "5353"])
    svc = dns_service(timeout=3.0, max_inflight=5)
    net = ctl.create_network("localnet")
    sb1, _ = member(ctl, net, "c1", dns=[f"{stub.address}:5353"])
    script = r"""
import json, socket
import dns.message
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
qs = [dns.message.make_query(f"n{i}.test", "A", use_edns=False) for i in range(6)]
for q in qs:
    s.sendto(q.to_wire(), ("127.0.0.11", 53))
s.settimeout(1.5)
got = []
try:
    while True:
        m = dns.message.from_wire(s.recv(2048))
        got.append([[q.id for q in qs].index(m.id), m.rcode()])
except socket.timeout:
    pass
print(json.dumps(got))
"""
    got = json.loads(lab.run(sb1.netns_path, [sys.executable, "-c", script]).stdout)
    # one query (which one depends on the arrival order) is answered REFUSED (rcode 5)
    # at once; the other five wait on the silent upstream
    assert [rcode for _i, rcode in got] == [5], got
    assert svc.stats.refused == 1 and svc.stats.forwarded == 5


def test_queries_per_second(lab: Lab, lab_host: LabHost, ctl: muslin.Controller,
                            dns_service: Callable[..., DnsService],
                            stub_dns_for: Callable[..., StubDNS],
                            record_property: Callable[[str, object], None]) -> None:
    """Figures for the report (no timing asserts): a container name and a forwarded
    name, from inside a sandbox, 20 queries in flight; and, for scale, the stub
    upstream asked directly from the sandbox."""
    stub = stub_dns_for(lab_host, records={"ext.test": "192.0.2.50"})
    dns_service()
    net = ctl.create_network("localnet")
    sb1, _ = member(ctl, net, "c1", dns=[stub.address])
    member(ctl, net, "c2", dns=[stub.address])
    figures = []
    for name, server in (("c2", "127.0.0.11"), ("ext.test", "127.0.0.11"),
                         ("ext.test", stub.address)):
        r = lab.run(sb1.netns_path, [sys.executable, "-c", LOAD, name, "4", "20", server],
                    timeout=60)
        fig = json.loads(r.stdout)
        figures.append(fig)
        record_property(f"dns_load_{name}_{server}", fig)
        assert fig["answers"] > 0
    print("\nembedded DNS load:", json.dumps(figures, indent=1))


# -- records follow renames; PTR per address; ndots; repair; detach ----------------

def test_rename_changes_answers_at_once(lab: Lab, ctl: muslin.Controller,
                                        dns_service: Callable[..., DnsService]) -> None:
    dns_service()
    net = ctl.create_network("localnet")
    sb1, ep1 = member(ctl, net, "c1", dns=["192.0.2.1"])
    sb2, _ = member(ctl, net, "c2", dns=["192.0.2.1"])
    ip1 = str(ep1.ipv4_address)
    rev = ".".join(reversed(ip1.split("."))) + ".in-addr.arpa"
    assert a(ask(lab, sb2, ("c1", "A"))[0]) == [ip1]
    sb1.rename("renamed")
    assert ep1.name == "renamed"
    res = ask(lab, sb2, ("renamed", "A"), ("renamed.localnet", "A", "tcp"), (rev, "PTR"),
              ("c1", "A"), ("c1.localnet", "A"), timeout=1)
    assert a(res[0]) == [ip1] and a(res[1]) == [ip1]
    assert a(res[2]) == ["renamed.localnet."]
    assert res[3].get("rcode") != "NOERROR" and res[4].get("rcode") != "NOERROR"
    # the old name is free again on the network
    sb3, ep3 = member(ctl, net, "c1", key="another", dns=["192.0.2.1"])
    assert a(ask(lab, sb2, ("c1", "A"))[0]) == [str(ep3.ipv4_address)]
    # a rename to a name another endpoint has on the network is refused, nothing changed
    with pytest.raises(muslin.Conflict):
        sb1.rename("c2")
    assert ep1.name == "renamed" and sb3
    assert a(ask(lab, sb2, ("renamed", "A"))[0]) == [ip1]


def test_ptr_for_every_address_of_a_container(lab: Lab, ctl: muslin.Controller,
                                              dns_service: Callable[..., DnsService]
                                              ) -> None:
    """A container on two networks (one dual-stack): each of its three addresses has a
    PTR to name.network of its own network; names on both networks, short id and
    hostname resolve."""
    dns_service()
    one = ctl.create_network("one")
    two = ctl.create_network("two", enable_ipv6=True,
                             ipam=[{"subnet": "172.31.5.0/24"}, {"subnet": "fd00:31::/64"}])
    sb1, ep1 = member(ctl, one, "c1", key=CID, hostname="box", dns=["192.0.2.1"])
    ep1b = two.create_endpoint("c1")
    ep1b.join(sb1)
    sb2, _ = member(ctl, one, "c2", dns=["192.0.2.1"])
    two.create_endpoint("c2").join(sb2)
    addrs = {str(ep1.ipv4_address): "c1.one.", str(ep1b.ipv4_address): "c1.two.",
             str(ep1b.ipv6_address): "c1.two."}
    specs: list[tuple[str, str]] = [(ipaddress.ip_address(ip).reverse_pointer, "PTR")
                                    for ip in addrs]
    res = ask(lab, sb2, *specs)
    assert [a(r) for r in res] == [[v] for v in addrs.values()]
    res = ask(lab, sb2, ("c1.one", "A"), ("c1.two", "A"), ("c1.two", "AAAA"),
              (CID[:12], "A"), ("box", "A"), ("box.two", "A"))
    assert a(res[0]) == [str(ep1.ipv4_address)] and a(res[1]) == [str(ep1b.ipv4_address)]
    assert a(res[2]) == [str(ep1b.ipv6_address)]
    assert a(res[3]) == a(res[4]) == [str(ep1.ipv4_address)]  # first network first
    assert a(res[5]) == [str(ep1b.ipv4_address)]


def test_ndots_set_keeps_single_labels_home(lab: Lab, lab_host: LabHost,
                                            ctl: muslin.Controller,
                                            dns_service: Callable[..., DnsService],
                                            stub_dns_for: Callable[..., StubDNS]) -> None:
    """As Docker's resolver: with ndots set (ndots:2 in the container's resolv.conf) a
    single-label name it does not know gets NOERROR without answer and is not
    forwarded; a dotted one is."""
    stub = stub_dns_for(lab_host, records={"www.ext.test": "192.0.2.80"})
    dns_service()
    net = ctl.create_network("localnet")
    sb1, _ = member(ctl, net, "c1", dns=[stub.address], ndots_set=True)
    sb2, _ = member(ctl, net, "c2", dns=[stub.address])
    res = ask(lab, sb1, ("www", "A"), ("www", "AAAA", "tcp"), ("www.ext.test", "A"),
              ("c2", "A"))
    assert a(res[0]) == [] and a(res[1]) == [] and not res[0]["aa"]
    assert a(res[2]) == ["192.0.2.80"] and a(res[3]) != []
    assert ("udp", "www.", "A") not in stub.queries()
    (res0,) = ask(lab, sb2, ("www", "A"))  # without ndots: forwarded
    assert res0["rcode"] == "NXDOMAIN" and ("udp", "www.", "A") in stub.queries()
    assert sb2


def test_flushed_redirect_table_is_repaired(lab: Lab, ctl: muslin.Controller,
                                            dns_service: Callable[..., DnsService]) -> None:
    """`nft flush ruleset` inside a sandbox takes 127.0.0.11:53 away; the service's
    periodic check (every 0.3 s here, 30 s by default) notices the table is not what it
    wrote and writes it again."""
    svc = dns_service(repair_every=0.3)
    net = ctl.create_network("localnet")
    sb1, _ = member(ctl, net, "c1", dns=["192.0.2.1"])
    sb2, ep2 = member(ctl, net, "c2", dns=["192.0.2.1"])
    assert svc.repair() == []  # intact: nothing to do
    lab.run(sb1.netns_path, ["nft", "flush", "ruleset"])
    lab.wait_until(lambda: "muslin_dns" in nft_tables(lab, sb1), timeout=10,
                   what="the table written again")
    assert a(ask(lab, sb1, ("c2", "A"))[0]) == [str(ep2.ipv4_address)]
    # flushed chains (the table left in place) are noticed too
    lab.run(sb2.netns_path, ["nft", "flush", "table", "ip", dnsrules.TABLE])
    lab.wait_until(lambda: "error" not in ask(lab, sb2, ("c2", "A"), timeout=0.5)[0],
                   timeout=10, what="the chains written again")
    assert a(ask(lab, sb2, ("c2", "A"))[0]) == [str(ep2.ipv4_address)]
    assert svc.repair() == []


def test_closed_service_detaches_from_the_controller(
        lab: Lab, ctl: muslin.Controller, dns_service: Callable[..., DnsService]) -> None:
    svc = dns_service()
    net = ctl.create_network("localnet")
    sb1, _ = member(ctl, net, "c1", dns=["192.0.2.1"])
    assert svc._on_event in ctl._listeners
    svc.close()
    assert svc._on_event not in ctl._listeners
    sb2, _ = member(ctl, net, "c2", dns=["192.0.2.1"])
    assert svc.ports(sb2.id) is None
    assert "muslin_dns" not in nft_tables(lab, sb2)
    sb1.delete()
    sb2.delete()
    assert ctl.leaks() == []
