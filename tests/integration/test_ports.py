"""Published ports through kernel NAT, library level: reachable from the host's
127.0.0.1, from a client host, from another container and from the container itself
(hairpin); UDP with conntrack flushed when the mapping changes; conflicts; one map rule
whatever the number of ports; restored by reconcile."""

from __future__ import annotations

from collections.abc import Callable

import pytest

import muslin
from muslin.portspec import PortBinding, parse_publish

from lab import Lab, LabHost
from netcheck import member, tcp_server, tcp_talks, udp_ask, udp_server

pytestmark = pytest.mark.kernel


def test_published_tcp_port_answers_from_everywhere(lab: Lab, lab_host: LabHost,
                                                    ctl: muslin.Controller,
                                                    client_host: Callable[..., object]) -> None:
    client = client_host(lab_host)
    net = ctl.create_network("web")
    web_sb, web = member(ctl, net, "web")
    other_sb, _ = member(ctl, net, "other")
    tcp_server(lab, web_sb.netns_path, "0.0.0.0", 80)
    [held] = web.publish(parse_publish("8080:80"))
    assert held == PortBinding("tcp", 80, "0.0.0.0", 8080)
    host_addr = client.host_address  # type: ignore[attr-defined]
    assert tcp_talks(lab, lab_host.netns, "127.0.0.1", 8080)                 # the host
    assert tcp_talks(lab, client.client, host_addr, 8080)                    # a client host
    assert tcp_talks(lab, other_sb.netns_path, host_addr, 8080)              # a container
    assert tcp_talks(lab, web_sb.netns_path, host_addr, 8080)                # itself (hairpin)
    assert ctl.leaks() == []
    # an ephemeral host port when none is given
    [eph] = web.publish(parse_publish("80"))
    assert eph.host_port >= 1024
    assert tcp_talks(lab, client.client, host_addr, eph.host_port)


def test_udp_mapping_follows_the_new_container(lab: Lab, lab_host: LabHost,
                                               ctl: muslin.Controller,
                                               client_host: Callable[..., object]) -> None:
    client = client_host(lab_host)
    net = ctl.create_network("dns")
    sb1, ep1 = member(ctl, net, "one")
    udp_server(lab, sb1.netns_path, "0.0.0.0", 5353, "one")
    ep1.publish(parse_publish("5353:5353/udp"))
    addr = client.host_address  # type: ignore[attr-defined]
    assert udp_ask(lab, client.client, addr, 5353) == "one"
    first = ep1.ipv4_address
    sb1.delete()  # the container goes; its mapping and conntrack entries with it
    member(ctl, net, "filler")  # takes the old address, where nothing answers on 5353
    sb2, ep2 = member(ctl, net, "two")
    assert ep2.ipv4_address != first
    udp_server(lab, sb2.netns_path, "0.0.0.0", 5353, "two")
    ep2.publish(parse_publish("5353:5353/udp"))
    assert udp_ask(lab, client.client, addr, 5353) == "two"  # same client port as before
    assert ctl.leaks() == []


def test_conflicts_and_nothing_left_behind(lab: Lab, lab_host: LabHost,
                                          ctl: muslin.Controller) -> None:
    net = ctl.create_network("c")
    _, ep1 = member(ctl, net, "a")
    _, ep2 = member(ctl, net, "b")
    ep1.publish(parse_publish("8080:80"))
    with pytest.raises(muslin.Conflict,
                       match=r"^Bind for 0\.0\.0\.0:8080 failed: port is already allocated$"):
        ep2.publish(parse_publish(["8081:81", "8080:80"][0]) +
                    parse_publish("8080:80"))
    assert ep2.ports == []  # all or nothing: 8081 was released too
    lab.spawn(lab_host, ["python3", "-c", "import socket,time; s=socket.socket(); "
                         "s.bind(('0.0.0.0', 9090)); s.listen(); time.sleep(600)"])
    lab.wait_until(lambda: lab.run(lab_host, ["ss", "-ltnH", "sport = :9090"])
                   .stdout.strip() != "", what="the other program's listener")
    with pytest.raises(muslin.Forbidden, match="9090 failed: address already in use"):
        ep2.publish(parse_publish("9090:90"))
    ep2.publish(parse_publish("8081:81"))
    assert ctl.leaks() == []
    with pytest.raises(muslin.MissingKernelFeature, match="CONFIG_IP_SCTP"):
        parse_publish("8082:82/sctp")


def test_500_ports_are_one_map_rule(lab: Lab, ctl: muslin.Controller) -> None:
    net = ctl.create_network("many")
    sb, ep = member(ctl, net, "many")
    ep.publish(parse_publish("20000-20499:20000-20499"))
    listing = ctl.host.call(lambda _l, nft: nft.list_table("inet", ctl.names.table)) or []
    pre = [i["rule"] for i in listing if "rule" in i and i["rule"]["chain"] == "prerouting"]
    # per family one map lookup for host-address bindings, one for "any"
    assert len(pre) == 4 and all(sum("vmap" in e for e in r["expr"]) == 1 for r in pre)
    [pub4] = [i["map"] for i in listing if "map" in i and i["map"]["name"] == "pub4"]
    assert len(pub4["elem"]) == 500
    tcp_server(lab, sb.netns_path, "0.0.0.0", 20321)
    assert tcp_talks(lab, lab.path_of(ctl.host.netns_path or ""), "127.0.0.1", 20321)
    assert ctl.leaks() == []


def test_ports_come_back_after_restart_and_flush(lab: Lab, lab_host: LabHost,
                                                 controller: Callable[..., muslin.Controller]
                                                 ) -> None:
    ctl = controller()
    net = ctl.create_network("web")
    sb, ep = member(ctl, net, "web")
    tcp_server(lab, sb.netns_path, "0.0.0.0", 80)
    ep.publish(parse_publish("8080:80"))
    ctl.close()
    lab.run(lab_host, ["nft", "flush", "ruleset"])
    ctl = controller()
    assert ctl.leaks() == []
    assert tcp_talks(lab, lab_host.netns, "127.0.0.1", 8080)
