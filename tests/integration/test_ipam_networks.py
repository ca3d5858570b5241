"""IPAM through real networks: Docker's default pools in order, overlaps, explicit
subnets, ranges, gateways and aux addresses, and pools that overlap host routes."""

from __future__ import annotations

import ipaddress

import pytest

import muslin

from lab import Lab, LabHost
from netcheck import pings

pytestmark = pytest.mark.kernel

DOCKER_ORDER = [f"172.{n}.0.0/16" for n in range(17, 32)] + [
    f"192.168.{16 * i}.0/20" for i in range(16)]


def test_default_pools_in_docker_order_then_docker_message(ctl: muslin.Controller) -> None:
    assert ctl.network("bridge").subnets == ["172.17.0.0/16"]
    got = [ctl.create_network(f"n{i}").subnets[0] for i in range(30)]
    assert ["172.17.0.0/16", *got] == DOCKER_ORDER
    with pytest.raises(muslin.InvalidParameter,
                       match=r"^all predefined address pools have been fully subnetted$"):
        ctl.create_network("one-too-many")
    assert ctl.leaks() == []
    ctl.network("n3").delete()
    assert ctl.create_network("again").subnets == ["172.21.0.0/16"]  # first free again


def test_overlapping_subnet_is_refused(ctl: muslin.Controller) -> None:
    ctl.create_network("a", ipam=[muslin.IPAMPool(subnet="10.20.0.0/16")])
    with pytest.raises(muslin.Forbidden, match="Pool overlaps with other one"):
        ctl.create_network("b", ipam=[muslin.IPAMPool(subnet="10.20.128.0/24")])
    with pytest.raises(muslin.Conflict, match="network with name a already exists"):
        ctl.create_network("a", ipam=[muslin.IPAMPool(subnet="10.21.0.0/16")])
    assert sorted(n.name for n in ctl.networks()) == ["a", "bridge", "host", "none"]
    assert ctl.leaks() == []


def test_range_gateway_and_aux_addresses_are_honoured(lab: Lab, ctl: muslin.Controller
                                                     ) -> None:
    net = ctl.create_network("seed", ipam=[muslin.IPAMPool(
        subnet="10.0.0.0/24", ip_range="10.0.0.0/25", gateway="10.0.0.1",
        aux_addresses={"router": "10.0.0.2", "printer": "10.0.0.3"})])
    assert net.gateways == ["10.0.0.1"]
    sbs, eps = [], []
    for i in range(3):
        sb = ctl.create_sandbox(f"c{i}")
        ep = net.create_endpoint(f"c{i}")
        ep.join(sb)
        sbs.append(sb)
        eps.append(ep)
    assert [e.ipv4_address for e in eps] == ["10.0.0.4", "10.0.0.5", "10.0.0.6"]
    static = net.create_endpoint("static", ipv4_address="10.0.0.200")  # outside the range
    assert static.ipv4_address == "10.0.0.200"
    with pytest.raises(muslin.Forbidden, match="Address already in use"):
        net.create_endpoint("dup", ipv4_address="10.0.0.200")
    with pytest.raises(muslin.Forbidden, match="Address already in use"):
        net.create_endpoint("gw", ipv4_address="10.0.0.1")
    with pytest.raises(muslin.InvalidParameter, match="ipv4_address"):
        net.create_endpoint("outside", ipv4_address="10.9.0.9")
    assert pings(lab, sbs[0].netns_path, "10.0.0.6")
    assert pings(lab, sbs[0].netns_path, "10.0.0.1")
    routes = lab.run(sbs[0].netns_path, ["ip", "-4", "route", "show", "default"]).stdout
    assert "via 10.0.0.1" in routes
    assert ctl.leaks() == []


def test_pools_overlapping_host_routes_are_skipped(lab: Lab, lab_host: LabHost,
                                                  controller: object) -> None:
    other = lab.netns("lan")
    lab.link(lab_host, other, "172.18.5.1/16", "172.18.5.2/16")
    ctl = controller()  # type: ignore[operator]
    assert ctl.network("bridge").subnets == ["172.17.0.0/16"]
    assert ctl.create_network("next").subnets == ["172.19.0.0/16"]


def test_ipv6_and_static_addresses(lab: Lab, ctl: muslin.Controller) -> None:
    net = ctl.create_network("v6", enable_ipv6=True, ipam=[
        muslin.IPAMPool(subnet="172.30.0.0/24"), muslin.IPAMPool(subnet="fd0f:1::/64")])
    sb1, sb2 = ctl.create_sandbox("c1"), ctl.create_sandbox("c2")
    ep1 = net.create_endpoint("c1", ipv6_address="fd0f:1::10")
    ep2 = net.create_endpoint("c2", ipv4_address="172.30.0.9")
    ep1.join(sb1)
    ep2.join(sb2)
    assert ep1.ipv6_address == "fd0f:1::10" and ep2.ipv4_address == "172.30.0.9"
    assert ipaddress.ip_address(str(ep2.ipv6_address)) in ipaddress.ip_network("fd0f:1::/64")
    assert lab.run(sb2.netns_path, ["ping", "-6", "-c1", "-W2", "fd0f:1::10"],
                   check=False).returncode == 0
    assert pings(lab, sb1.netns_path, "172.30.0.9")
    with pytest.raises(muslin.InvalidParameter, match="enable_ipv6"):
        ctl.create_network("v6-off", ipam=[muslin.IPAMPool(subnet="fd0f:2::/64")])
    assert ctl.leaks() == []


def test_bad_input_names_the_field_and_leaves_nothing(ctl: muslin.Controller) -> None:
    before = ctl.store.keys("pool")
    with pytest.raises(muslin.InvalidParameter, match="ip_range"):
        ctl.create_network("bad", ipam=[muslin.IPAMPool(subnet="10.1.0.0/16",
                                                        ip_range="10.2.0.0/24")])
    with pytest.raises(muslin.InvalidParameter, match=r"com\.docker\.network\.driver\.mtu"):
        ctl.create_network("bad", options={"com.docker.network.driver.mtu": "huge"})
    with pytest.raises(muslin.InvalidParameter, match="invalid network name"):
        ctl.create_network("bad name")
    with pytest.raises(muslin.NotFound, match=r'plugin "nosuch" not found'):
        ctl.create_network("bad", driver="nosuch")
    assert ctl.store.keys("pool") == before
    assert ctl.leaks() == []
