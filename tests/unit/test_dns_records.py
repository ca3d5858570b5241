"""muslin.dns.records: answer tables from the controller's documents (no root, no I/O)."""

from __future__ import annotations

from typing import Any

import pytest

from muslin.dns.records import (
    MAX_UPSTREAMS,
    Answer,
    NameRecord,
    Records,
    normalize,
    parse_resolv_conf,
    parse_upstream,
    reverse_name,
    short_id,
    upstream_list,
)

Doc = dict[str, Any]
CID = "ab" * 32  # a container id: 64 hex digits


def net(nid: str, name: str, *, driver: str = "bridge", internal: bool = False,
        predefined: bool = False, status: str = "ready") -> Doc:
    return {"id": nid, "name": name, "driver": driver, "internal": internal,
            "predefined": predefined, "status": status}


def ep(eid: str, name: str, nid: str, sid: str | None, ipv4: str | None = None,
       ipv6: str | None = None, aliases: tuple[str, ...] = (), status: str = "joined",
       created: str = "") -> Doc:
    return {"id": eid, "name": name, "network_id": nid, "sandbox_id": sid, "ipv4": ipv4,
            "ipv6": ipv6, "aliases": list(aliases), "status": status,
            "created": created or eid}


def sb(sid: str, eps: list[str], key: str | None = None, **extra: Any) -> Doc:
    return {"id": sid, "key": key or sid, "status": "ready", "endpoints": eps,
            "netns_path": f"/run/x/{sid}", **extra}


@pytest.fixture
def world() -> Records:
    """localnet: c1 (alias web, hostname h1), c2 (alias web); othernet: c3; the
    predefined bridge: c4; internal net: c5 alone; c6 on localnet and othernet."""
    networks = [net("n1", "localnet"), net("n2", "othernet"),
                net("nb", "bridge", predefined=True), net("nh", "host", driver="host",
                                                          predefined=True),
                net("ni", "inside", internal=True)]
    endpoints = [
        ep("e1", "c1", "n1", "s1", "172.18.0.2/16", "fd00::2/64", aliases=("web",),
           created="1"),
        ep("e2", "c2", "n1", "s2", "172.18.0.3/16", aliases=("web", "db"), created="2"),
        ep("e3", "c3", "n2", "s3", "172.19.0.2/16"),
        ep("e4", "c4", "nb", "s4", "172.17.0.2/16"),
        ep("e5", "c5", "ni", "s5", "172.20.0.2/16"),
        ep("e6a", "c6", "n2", "s6", "172.19.0.6/16", created="6a"),
        ep("e6b", "c6", "n1", "s6", "172.18.0.6/16", created="6b"),
        ep("e7", "c7", "n1", None, "172.18.0.7/16", status="created"),
    ]
    sandboxes = [sb("s1", ["e1"], hostname="h1"), sb("s2", ["e2"], key=CID,
                                                      links={"bestfriend": "c1"}),
                 sb("s3", ["e3"], name="third"), sb("s4", ["e4"]), sb("s5", ["e5"]),
                 sb("s6", ["e6a", "e6b"], dns=["192.0.2.1", "192.0.2.2", "192.0.2.3",
                                                "192.0.2.4"])]
    return Records.build(networks, endpoints, sandboxes)


def v4(recs: Records, asker: str, name: str) -> tuple[str, ...] | None:
    view = recs.view(asker)
    assert view is not None
    a = view.lookup(name)
    return None if a is None else a.v4


def test_container_names_aliases_and_scope(world: Records) -> None:
    assert v4(world, "s2", "c1") == ("172.18.0.2",)
    assert v4(world, "s2", "C1.") == ("172.18.0.2",)  # any case, final dot or not
    assert v4(world, "s1", "db") == ("172.18.0.3",)
    # a shared alias: every address, in the endpoints' creation order
    assert v4(world, "s1", "web") == ("172.18.0.2", "172.18.0.3")
    # the asker does not share a network with c3
    assert v4(world, "s1", "c3") is None
    assert v4(world, "s3", "c1") is None
    # an endpoint not joined has no name
    assert v4(world, "s1", "c7") is None


def test_hostname_short_id_and_links(world: Records) -> None:
    assert v4(world, "s2", "h1") == ("172.18.0.2",)
    assert v4(world, "s1", CID[:12]) == ("172.18.0.3",)
    assert v4(world, "s1", "s1") is None  # a key that is no container id: no short id
    assert v4(world, "s6", "third") == ("172.19.0.2",)  # the sandbox's (container's) name
    # a link alias is the declaring sandbox's own
    assert v4(world, "s2", "bestfriend") == ("172.18.0.2",)
    assert v4(world, "s1", "bestfriend") is None


def test_network_qualified_names_and_ptr(world: Records) -> None:
    assert v4(world, "s2", "c1.localnet") == ("172.18.0.2",)
    assert v4(world, "s2", "web.localnet") == ("172.18.0.2", "172.18.0.3")
    assert v4(world, "s2", "c1.othernet") is None
    view = world.view("s2")
    assert view is not None
    assert view.lookup_ptr("2.0.18.172.in-addr.arpa.") == "c1.localnet"
    assert view.lookup_ptr(reverse_name("fd00::2")) == "c1.localnet"
    assert view.lookup_ptr("2.0.19.172.in-addr.arpa") is None  # c3: not shared
    aaaa = view.lookup("c1")
    assert aaaa == Answer(("172.18.0.2",), ("fd00::2",))


def test_several_networks_first_network_wins(world: Records) -> None:
    # s6 is on othernet (first) and localnet: its own name resolves on othernet
    assert v4(world, "s6", "c6") == ("172.19.0.6",)
    assert v4(world, "s6", "c6.localnet") == ("172.18.0.6",)
    assert v4(world, "s6", "c3") == ("172.19.0.2",)
    assert v4(world, "s6", "c1") == ("172.18.0.2",)
    assert v4(world, "s1", "c6") == ("172.18.0.6",)
    view = world.view("s6")
    assert view is not None and view.networks == ("n2", "n1")


def test_predefined_and_internal_networks(world: Records) -> None:
    assert world.view("s4") is None  # the predefined bridge: no embedded DNS
    assert sorted(world.dns_sandboxes()) == ["s1", "s2", "s3", "s5", "s6"]
    inside = world.view("s5")
    assert inside is not None and not inside.forward
    view = world.view("s1")
    assert view is not None and view.forward and view.upstreams == ()
    s6 = world.view("s6")
    assert s6 is not None and s6.upstreams == ("192.0.2.1", "192.0.2.2", "192.0.2.3")
    assert len(s6.upstreams) == MAX_UPSTREAMS


def test_internal_plus_predefined_bridge_forwards() -> None:
    networks = [net("ni", "inside", internal=True), net("nb", "bridge", predefined=True)]
    endpoints = [ep("a", "c1", "ni", "s1", "10.0.0.2/24"), ep("b", "c1", "nb", "s1",
                                                              "172.17.0.2/16")]
    recs = Records.build(networks, endpoints, [sb("s1", ["a", "b"])])
    view = recs.view("s1")
    assert view is not None and view.forward and view.networks == ("ni",)


def test_leaving_endpoints_are_excluded(world: Records) -> None:
    networks = [net("n1", "localnet")]
    endpoints = [ep("e1", "c1", "n1", "s1", "10.1.0.2/24"),
                 ep("e2", "c2", "n1", "s2", "10.1.0.3/24")]
    sandboxes = [sb("s1", ["e1"]), sb("s2", ["e2"])]
    recs = Records.build(networks, endpoints, sandboxes, exclude=["e1"])
    assert v4(recs, "s2", "c1") is None
    assert recs.view("s1") is None
    endpoints[0]["status"] = "leaving"
    assert v4(Records.build(networks, endpoints, sandboxes), "s2", "c1") is None


def test_general_records_for_services(world: Records) -> None:
    networks = [net("n1", "localnet"), net("n2", "othernet")]
    endpoints = [ep("e1", "c1", "n1", "s1", "10.1.0.2/24"),
                 ep("e2", "c2", "n2", "s2", "10.2.0.2/24")]
    extra = [NameRecord("n1", "svc1", ("10.1.0.100",), ptr=True),
             NameRecord("n1", "backends", ("10.1.0.5", "10.1.0.6", "fd00::5")),
             NameRecord("n1", "c1", ("10.1.0.9",)),
             NameRecord("nX", "ghost", ("10.9.9.9",))]
    recs = Records.build(networks, endpoints, [sb("s1", ["e1"]), sb("s2", ["e2"])], extra)
    assert v4(recs, "s1", "svc1") == ("10.1.0.100",)
    assert v4(recs, "s1", "svc1.localnet") == ("10.1.0.100",)
    view = recs.view("s1")
    assert view is not None
    assert view.lookup("backends") == Answer(("10.1.0.5", "10.1.0.6"), ("fd00::5",))
    assert v4(recs, "s1", "c1") == ("10.1.0.2", "10.1.0.9")
    assert view.lookup_ptr(reverse_name("10.1.0.100")) == "svc1.localnet"
    assert view.lookup_ptr(reverse_name("10.1.0.5")) is None
    assert v4(recs, "s2", "svc1") is None


def test_odd_names_are_left_out() -> None:
    networks = [net("n1", "localnet")]
    endpoints = [ep("e1", "c1", "n1", "s1", "10.1.0.2/24",
                    aliases=("", "a..b", "x" * 64, "spaced name", "ünï", "ok-alias"))]
    recs = Records.build(networks, endpoints, [sb("s1", ["e1"])])
    view = recs.view("s1")
    assert view is not None
    assert sorted(k for k in view.names if "." not in k) == ["c1", "ok-alias"]


@pytest.mark.parametrize(("raw", "want"), [
    ("C1", "c1"), ("c1.", "c1"), ("a.b.c", "a.b.c"), ("my_svc", "my_svc"),
    ("", None), (".", None), ("a..b", None), ("-a", None), ("a" * 64, None),
    (".".join(["a" * 60] * 5), None), ("ä", None)])
def test_normalize(raw: str, want: str | None) -> None:
    assert normalize(raw) == want


def test_reverse_names_and_short_ids() -> None:
    assert reverse_name("172.18.0.2") == "2.0.18.172.in-addr.arpa"
    assert reverse_name("2001:db8::1") == ("1." + "0." * 23 + "8.b.d.0.1.0.0.2.ip6.arpa")
    assert short_id(CID) == CID[:12]
    assert short_id("c1") is None and short_id(CID.upper()) is None


def test_resolv_conf_and_upstreams() -> None:
    text = ("# comment\nnameserver 10.0.0.1\nsearch example\nnameserver bogus\n"
            "nameserver fe80::1%eth0\nnameserver 10.0.0.3\nnameserver 10.0.0.4\n")
    assert parse_resolv_conf(text) == ["10.0.0.1", "fe80::1%eth0", "10.0.0.3"]
    assert parse_upstream("192.0.2.1") == ("192.0.2.1", 53, "")
    assert parse_upstream("192.0.2.1:5353") == ("192.0.2.1", 5353, "")
    assert parse_upstream("2001:db8::1") == ("2001:db8::1", 53, "")
    assert parse_upstream("[2001:db8::1]:5353") == ("2001:db8::1", 5353, "")
    assert parse_upstream("fe80::1%eth0") == ("fe80::1", 53, "eth0")
    for bad in ("nope", "1.2.3.4:0", "[::1]x", "1.2.3.4:99999"):
        with pytest.raises(ValueError):
            parse_upstream(bad)
    assert upstream_list(["x", "192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4"]) == [
        ("192.0.2.1", 53, ""), ("192.0.2.2", 53, ""), ("192.0.2.3", 53, "")]


def test_any_driver_but_host_and_null_gets_embedded_dns() -> None:
    """Driver-agnostic: a user-defined macvlan (or overlay, or a remote driver's)
    network gets names like a bridge; host and null never do."""
    networks = [net("nm", "lan", driver="macvlan"), net("no", "ov", driver="overlay"),
                net("nr", "plug", driver="weave/remote"), net("nh", "myhost", driver="host"),
                net("nn", "nothing", driver="null")]
    endpoints = [ep("a", "m1", "nm", "s1", "10.0.0.2/24"), ep("b", "m2", "nm", "s2",
                                                              "10.0.0.3/24"),
                 ep("c", "o1", "no", "s1", "10.1.0.2/24"), ep("d", "r1", "nr", "s1",
                                                              "10.2.0.2/24")]
    recs = Records.build(networks, endpoints, [sb("s1", ["a", "c", "d"]), sb("s2", ["b"])])
    assert v4(recs, "s2", "m1") == ("10.0.0.2",)
    assert v4(recs, "s1", "m2.lan") == ("10.0.0.3",)
    assert sorted(recs.tables) == ["nm", "no", "nr"]
    view = recs.view("s1")
    assert view is not None and view.networks == ("nm", "no", "nr") and view.forward
