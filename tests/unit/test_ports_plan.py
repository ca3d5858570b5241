"""Published ports as data: -p parsing, -P, the 0.0.0.0/[::] expansion, the [::1]
refusal, and the firewall entries (one vmap lookup per family, a chain per port)."""

from __future__ import annotations

import pytest

from muslin.errors import InvalidParameter, MissingKernelFeature
from muslin.firewall.plan import (
    SKELETON_CHAINS,
    Published,
    publish_add,
    skeleton_damage,
    table_rebuild,
)
from muslin.portmap import expand, published
from muslin.portspec import PortBinding, from_api, parse_publish, publish_all, to_api


def test_parse_publish_forms() -> None:
    assert parse_publish("8080:80") == [PortBinding("tcp", 80, "", 8080)]
    assert parse_publish("127.0.0.1:8080:80/udp") == [PortBinding("udp", 80, "127.0.0.1", 8080)]
    assert parse_publish("[fd00::1]:8080:80") == [PortBinding("tcp", 80, "fd00::1", 8080)]
    assert parse_publish("80") == [PortBinding("tcp", 80, "", 0)]
    assert [b.host_port for b in parse_publish("8000-8002:80-82")] == [8000, 8001, 8002]
    with pytest.raises(InvalidParameter, match="same size"):
        parse_publish("8000-8001:80-82")
    with pytest.raises(MissingKernelFeature, match="CONFIG_IP_SCTP"):
        parse_publish("82/sctp")
    with pytest.raises(InvalidParameter, match="accepted are tcp, udp and sctp"):
        from_api({"80/icmp": [{}]})


def test_publish_all_adds_exposed_ports_without_binding() -> None:
    have = from_api({"80/tcp": [{"HostPort": "8080"}]})
    extra = publish_all(have, {"80/tcp": {}, "90/udp": {}}, {"443/tcp": {}, "90/udp": {}})
    assert extra == [PortBinding("udp", 90), PortBinding("tcp", 443)]


def test_any_address_is_0000_and_v6_only_with_ipv6() -> None:
    [b] = parse_publish("8080:80")
    assert [x.host_ip for x in expand([b], ipv6=False)] == ["0.0.0.0"]
    assert [x.host_ip for x in expand([b], ipv6=True)] == ["0.0.0.0", "::"]
    with pytest.raises(InvalidParameter, match=r"\[::1\].*route_localnet"):
        expand(parse_publish("[::1]:8080:80"), ipv6=True)
    with pytest.raises(InvalidParameter, match="no IPv6 address"):
        expand(parse_publish("[fd00::1]:8080:80"), ipv6=False)
    held = [PortBinding("tcp", 80, "0.0.0.0", 8080), PortBinding("tcp", 80, "::", 8080)]
    assert to_api(held) == {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"},
                                       {"HostIp": "::", "HostPort": "8080"}]}


def test_published_entries_per_family() -> None:
    held = [PortBinding("tcp", 80, "0.0.0.0", 8080), PortBinding("tcp", 80, "::", 8080),
            PortBinding("udp", 53, "192.0.2.1", 53), PortBinding("tcp", 81, "fd00::1", 81)]
    pubs = published(held, "172.17.0.2", "fd00:77::2")
    assert [(p.map_name(), p.chain, p.target_ip) for p in pubs] == [
        ("pub4", "p4-any-tcp-8080", "172.17.0.2"),
        ("pub6", "p6-any-tcp-8080", "fd00:77::2"),
        ("pub4ip", "p4-192_0_2_1-udp-53", "172.17.0.2"),
        ("pub6ip", "p6-fd00__1-tcp-81", "fd00:77::2")]
    assert published(held[:1], "172.17.0.2", None) == [pubs[0]]
    assert pubs[1].rule("t")["rule"]["expr"][-1] == {
        "dnat": {"family": "ip6", "addr": "fd00:77::2", "port": 80}}


def test_lookup_rules_do_not_grow_with_ports() -> None:
    many = [Published("tcp", 20000 + i, "172.17.0.2", 20000 + i) for i in range(500)]

    def hook_rules(cmds: list[dict[str, object]]) -> list[object]:
        return [c["add"]["rule"] for c in cmds  # type: ignore[index]
                if "add" in c and "rule" in c["add"]  # type: ignore[operator]
                and c["add"]["rule"]["chain"] == "prerouting"]  # type: ignore[index]

    assert len(hook_rules(table_rebuild("t", [], many))) == 4
    assert len(hook_rules(table_rebuild("t", [], many[:1]))) == 4
    # adding a port again never doubles its DNAT rule
    cmds = publish_add("t", many[:1])
    assert [next(iter(c)) for c in cmds] == ["add", "flush", "add", "add"]


def test_skeleton_damage() -> None:
    assert skeleton_damage(dict(SKELETON_CHAINS)) == ""
    assert "chain prerouting is missing" in skeleton_damage({**SKELETON_CHAINS,
                                                             "prerouting": None})
    assert "forward has 0 rules" in skeleton_damage({**SKELETON_CHAINS, "forward": 0})
    assert skeleton_damage({**SKELETON_CHAINS, "forward": 3}) == ""
