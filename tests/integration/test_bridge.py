"""Bridge networks with real packets: connectivity, isolation, internal, ICC, gateways."""

from __future__ import annotations

import pytest

import muslin

from lab import Lab, LabHost
from netcheck import member, pings, tcp_peer, tcp_server, tcp_talks

pytestmark = pytest.mark.kernel


def test_two_sandboxes_talk_and_other_bridge_is_isolated(lab: Lab, ctl: muslin.Controller
                                                        ) -> None:
    net = ctl.create_network("localnet")
    other = ctl.create_network("othernet")
    (sb1, ep1), (sb2, ep2) = member(ctl, net, "c1"), member(ctl, net, "c2")
    sb3, _ = member(ctl, other, "c3")
    assert ep1.interface_name == "eth0" and ep1.ipv4_address and ep2.ipv4_address
    assert pings(lab, sb2.netns_path, ep1.ipv4_address)
    tcp_server(lab, sb1.netns_path, ep1.ipv4_address)
    assert tcp_talks(lab, sb2.netns_path, ep1.ipv4_address)
    # isolation: c3 on othernet reaches neither, by ICMP or TCP
    for ep in (ep1, ep2):
        assert not pings(lab, sb3.netns_path, str(ep.ipv4_address))
    assert not tcp_talks(lab, sb3.netns_path, ep1.ipv4_address)
    # ... until it joins their network too
    ep3b = net.create_endpoint("c3")
    ep3b.join(sb3)
    assert ep3b.interface_name == "eth1"
    assert pings(lab, sb3.netns_path, ep1.ipv4_address)
    assert tcp_talks(lab, sb3.netns_path, ep1.ipv4_address)
    assert ctl.leaks() == []


def test_internal_network_has_no_route_out(lab: Lab, ctl: muslin.Controller) -> None:
    net = ctl.create_network("inside", internal=True)
    (sb1, _), (_, ep2) = member(ctl, net, "c1"), member(ctl, net, "c2")
    assert pings(lab, sb1.netns_path, str(ep2.ipv4_address))
    routes = lab.run(sb1.netns_path, ["ip", "route"]).stdout
    assert "default" not in routes
    assert ctl.leaks() == []


def test_icc_false_blocks_members_but_not_gateway(lab: Lab, ctl: muslin.Controller) -> None:
    net = ctl.create_network("noicc",
                             options={"com.docker.network.bridge.enable_icc": "false"})
    (sb1, _), (sb2, ep2) = member(ctl, net, "c1"), member(ctl, net, "c2")
    assert not pings(lab, sb1.netns_path, str(ep2.ipv4_address))
    tcp_server(lab, sb2.netns_path, str(ep2.ipv4_address))
    assert not tcp_talks(lab, sb1.netns_path, str(ep2.ipv4_address))
    assert pings(lab, sb1.netns_path, net.gateways[0])
    assert ctl.leaks() == []


def test_outbound_traffic_is_masqueraded(lab: Lab, lab_host: LabHost,
                                        ctl: muslin.Controller) -> None:
    """A sandbox reaches a 'remote' host behind the lab host; the remote sees the host's
    address, not the container's."""
    remote = lab.netns("remote")
    pair = lab.link(lab_host, remote, "203.0.113.1/24", "203.0.113.2/24")
    net = ctl.create_network("outnet")
    sb, ep = member(ctl, net, "c1")
    tcp_server(lab, remote, pair.ip_b)
    assert tcp_peer(lab, sb.netns_path, pair.ip_b) == pair.ip_a
    # and the remote cannot open a connection into the container (no published port)
    lab.route(remote, str(net.subnets[0]), via=pair.ip_a)
    assert not pings(lab, remote, str(ep.ipv4_address))


def test_gateway_follows_docker_order_and_moves_on_leave(lab: Lab, ctl: muslin.Controller
                                                        ) -> None:
    a = ctl.create_network("anet")
    b = ctl.create_network("bnet")
    internal = ctl.create_network("aaa-internal", internal=True)
    sb = ctl.create_sandbox("c1")
    ep_i = internal.create_endpoint("c1")
    ep_i.join(sb)
    assert "default" not in lab.run(sb.netns_path, ["ip", "route"]).stdout
    ep_b = b.create_endpoint("c1")
    ep_b.join(sb)
    ep_a = a.create_endpoint("c1")
    ep_a.join(sb)
    routes = lab.run(sb.netns_path, ["ip", "-4", "route", "show", "default"]).stdout
    assert f"via {a.gateways[0]} dev {ep_a.interface_name}" in routes  # "anet" < "bnet"
    ep_a.leave(sb)
    routes = lab.run(sb.netns_path, ["ip", "-4", "route", "show", "default"]).stdout
    assert f"via {b.gateways[0]} dev {ep_b.interface_name}" in routes
    ep_c = a.create_endpoint("c1-prio")
    ep_c.join(sb, gw_priority=10)
    routes = lab.run(sb.netns_path, ["ip", "-4", "route", "show", "default"]).stdout
    assert f"via {a.gateways[0]} dev {ep_c.interface_name}" in routes
    assert ctl.leaks() == []
