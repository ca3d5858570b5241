"""The macvlan driver through muslind and the real docker CLI: containers as hosts of
a "physical LAN" (a lab namespace joined by a veth to the parent), with their own
MAC; several LANs; the parentless internal network; Docker's validation errors with
their HTTP status; state kept across a daemon restart. Every container's --dns is a
stub; the parent is always a veth made by the test."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from typing import Any

import pytest

import muslin

from daemon import Muslind
from lab import Lab, LabHost
from netcheck import member, pings

pytestmark = pytest.mark.kernel

SEED = ["network", "create", "-d", "macvlan", "--subnet=10.0.0.0/24",
        "--ip-range=10.0.0.0/25", "--gateway=10.0.0.1"]


@pytest.fixture(autouse=True)
def _docker_cli() -> None:
    if shutil.which("docker") is None:
        from lab import unavailable

        unavailable("the docker CLI is not installed")


def _member(d: Callable[..., Any], net: str, name: str) -> dict[str, Any]:
    [doc] = json.loads(d("network", "inspect", net).stdout)
    for c in doc["Containers"].values():
        if c["Name"] == name:
            return dict(c)
    raise AssertionError(f"{name} is not on {net}: {doc['Containers']}")


def _marked(lab: Lab, host: LabHost) -> list[str]:
    mark = f"muslin:{host.prefix}:"
    return sorted(f"{link.name} {link.alias}" for link in lab.call(
        host, lambda links: links.marked(mark)))


def test_seed_macvlan_on_a_lan(lab: Lab, lab_host: LabHost, muslind: Muslind,
                               lan: Callable[..., Any], stub_dns: Any) -> None:
    segment = lan(lab_host)
    d = muslind.docker
    d(*SEED, "-o", f"parent={segment.parent}", "macvlan100")
    [net] = json.loads(d("network", "inspect", "macvlan100").stdout)
    assert net["Driver"] == "macvlan" and net["Scope"] == "local"
    assert net["Options"] == {"parent": segment.parent}
    assert net["IPAM"]["Config"] == [{"Subnet": "10.0.0.0/24", "IPRange": "10.0.0.0/25",
                                      "Gateway": "10.0.0.1"}]
    d("run", "-d", "--name", "c1", "--network", "macvlan100", "--dns", stub_dns.address,
      "busybox", "sleep", "1d")
    me = _member(d, "macvlan100", "c1")
    ip, mac = me["IPv4Address"].split("/")[0], me["MacAddress"]
    assert ip == "10.0.0.2" and mac  # the lowest free address of the range (.1: gateway)
    # the container's own interface carries its own MAC, on the parent's segment
    link = d("exec", "c1", "ip", "-o", "link", "show", "eth0").stdout
    assert mac in link
    assert d("exec", "c1", "ping", "-c1", "-W2", segment.address).returncode == 0
    assert pings(lab, segment.netns, ip)
    neigh = lab.run(segment.netns, ["ip", "neigh", "show", ip]).stdout
    assert mac in neigh, neigh  # the LAN sees the container's own MAC
    parent_mac = lab.call(lab_host, lambda links: links.require(segment.parent).mac)
    assert parent_mac != mac
    # the default route goes to the LAN's router; the host holds no address of the LAN
    assert "default via 10.0.0.1 dev eth0" in d("exec", "c1", "ip", "route").stdout
    assert not [a for a in lab.run(lab_host, ["ip", "-o", "-4", "addr"]).stdout.splitlines()
                if " 10.0.0." in a]
    d("rm", "-f", "c1")
    d("network", "rm", "macvlan100")
    names = [m.split()[0] for m in _marked(lab, lab_host)]
    assert names == [f"{lab_host.prefix}0"]  # only the default bridge is left
    # the user's parent is untouched
    assert lab.call(lab_host, lambda links: links.require(segment.parent).up)


def test_two_containers_on_one_macvlan_network_talk_by_name(
        lab: Lab, lab_host: LabHost, muslind: Muslind, lan: Callable[..., Any],
        stub_dns_for: Callable[..., Any]) -> None:
    segment = lan(lab_host)
    # the LAN's router (the network's gateway) leads to the upstream DNS: the embedded
    # DNS forwards from the container's namespace, as Docker's does
    lab.addr(segment.netns, "eth0", "10.0.0.1/24")
    lab.run(segment.netns, ["sysctl", "-qw", "net.ipv4.ip_forward=1"])
    stub_dns = stub_dns_for(segment.netns)
    d = muslind.docker
    d(*SEED, "-o", f"parent={segment.parent}", "-o", "macvlan_mode=bridge", "macvlan100")
    for name in ("c1", "c2"):
        d("run", "-d", "--name", name, "--network", "macvlan100", "--dns", stub_dns.address,
          "busybox", "sleep", "1d")
    c1 = _member(d, "macvlan100", "c1")["IPv4Address"].split("/")[0]
    c2 = _member(d, "macvlan100", "c2")["IPv4Address"].split("/")[0]
    out = d("exec", "c2", "ping", "-c1", "-W2", "c1").stdout   # embedded DNS
    assert f"({c1})" in out
    assert f"({c2})" in d("exec", "c1", "ping", "-c1", "-W2", "c2").stdout
    assert "192.0.2.10" in d("exec", "c1", "nslookup", "example.com").stdout
    d("rm", "-f", "c1", "c2")
    d("network", "rm", "macvlan100")


def test_two_lans_each_reach_only_their_own(lab: Lab, lab_host: LabHost, muslind: Muslind,
                                            lan: Callable[..., Any], stub_dns: Any) -> None:
    a = lan(lab_host, parent="eth1", cidr="10.0.0.200/24", name="lana")
    b = lan(lab_host, parent="eth2", cidr="10.1.0.200/24", name="lanb")
    d = muslind.docker
    d(*SEED, "-o", "parent=eth1", "mva")
    d("network", "create", "-d", "macvlan", "--subnet=10.1.0.0/24", "--gateway=10.1.0.1",
      "-o", "parent=eth2", "mvb")
    for name, net in (("ca", "mva"), ("cb", "mvb")):
        d("run", "-d", "--name", name, "--network", net, "--dns", stub_dns.address,
          "busybox", "sleep", "1d")
    ca = _member(d, "mva", "ca")["IPv4Address"].split("/")[0]
    cb = _member(d, "mvb", "cb")["IPv4Address"].split("/")[0]
    assert cb.startswith("10.1.0.")

    def ping(c: str, ip: str) -> bool:
        return d("exec", c, "ping", "-c1", "-W1", ip, check=False).returncode == 0

    assert ping("ca", a.address) and ping("cb", b.address)
    assert pings(lab, a.netns, ca) and pings(lab, b.netns, cb)
    assert not ping("ca", b.address) and not ping("cb", a.address)
    assert not ping("ca", cb) and not pings(lab, a.netns, cb) and not pings(lab, b.netns, ca)
    d("rm", "-f", "ca", "cb")
    d("network", "rm", "mva", "mvb")


def test_validation_errors_leave_nothing(lab: Lab, lab_host: LabHost, muslind: Muslind,
                                         lan: Callable[..., Any]) -> None:
    segment = lan(lab_host)
    before = _marked(lab, lab_host)

    def create(options: dict[str, str], ipam: dict[str, str] | None = None,
               driver: str = "macvlan") -> tuple[int, Any]:
        config = ipam or {"Subnet": "10.0.0.0/24", "IPRange": "10.0.0.0/25",
                          "Gateway": "10.0.0.1"}
        return muslind.request("POST", "/v1.47/networks/create", {
            "Name": "macvlan100", "Driver": driver, "Options": options,
            "IPAM": {"Config": [config]}})

    # the seed's parent: an 802.1Q sub-interface, which this kernel cannot make
    r = muslind.docker(*SEED, "-o", "parent=eth0.100", "macvlan100", check=False)
    assert r.returncode != 0 and "CONFIG_VLAN_8021Q" in r.stderr, r.stderr
    assert "eth0.100" in r.stderr
    status, body = create({"parent": "eth0.100"})
    assert status == 503 and "CONFIG_VLAN_8021Q" in body["message"]
    status, body = create({"parent": "nope0"})
    assert status == 400 and "parent interface nope0 was not found" in body["message"]
    status, body = create({"parent": segment.parent, "macvlan_mode": "bogus"})
    assert status == 400 and "macvlan_mode" in body["message"]
    assert "bridge, private, vepa, passthru" in body["message"]
    status, body = create({"parent": "lo"})
    assert status == 400 and "loopback" in body["message"]
    status, body = create({"parent": "eth1.5000"})
    assert status == 400 and "between 1 and 4094" in body["message"]
    status, body = create({"parent": segment.parent},
                          {"Subnet": "10.0.0.0/24", "IPRange": "10.9.0.0/25"})
    assert status == 400 and "ip_range" in body["message"].lower().replace("-", "_")
    status, body = create({}, driver="ipvlan")
    assert status == 503 and "CONFIG_IPVLAN" in body["message"]
    # nothing is left: no network, no link, no pool (the same subnet is free again)
    assert "macvlan100" not in muslind.docker("network", "ls").stdout
    assert _marked(lab, lab_host) == before
    # passthru takes its parent alone, both ways round
    status, _ = create({"parent": segment.parent, "macvlan_mode": "passthru"})
    assert status == 201
    status, body = muslind.request("POST", "/v1.47/networks/create", {
        "Name": "other", "Driver": "macvlan", "Options": {"parent": segment.parent},
        "IPAM": {"Config": [{"Subnet": "10.5.0.0/24"}]}})
    assert status == 409 and "in mode passthru" in body["message"]
    muslind.docker("network", "rm", "macvlan100")
    muslind.docker("network", "create", "-d", "macvlan", "-o", f"parent={segment.parent}",
                   "other")
    status, body = create({"parent": segment.parent, "macvlan_mode": "passthru"})
    assert status == 409 and "cannot use mode passthru" in body["message"]
    muslind.docker("network", "rm", "other")


def test_parentless_network_is_internal_and_survives_restart(
        lab: Lab, lab_host: LabHost, lan: Callable[..., Any], stub_dns: Any) -> None:
    segment = lan(lab_host)
    d = Muslind(lab, lab_host, {"live-restore": True, "log-level": "info"}).start()
    try:
        docker = d.docker
        docker("network", "create", "-d", "macvlan", "--subnet=10.7.0.0/24", "inner")
        docker(*SEED, "-o", f"parent={segment.parent}", "macvlan100")
        [inner] = json.loads(docker("network", "inspect", "inner").stdout)
        assert inner["Options"] == {}
        stub = [m.split()[0] for m in _marked(lab, lab_host) if inner["Id"] in m]
        assert sorted(stub) == sorted(["mvs-" + inner["Id"][:11], "mvp-" + inner["Id"][:11]])
        for name in ("i1", "i2"):
            docker("run", "-d", "--name", name, "--network", "inner", "--dns",
                   stub_dns.address, "busybox", "sleep", "1d")
        docker("run", "-d", "--name", "m1", "--network", "macvlan100", "--dns",
               stub_dns.address, "busybox", "sleep", "1d")
        i1 = _member(docker, "inner", "i1")["IPv4Address"].split("/")[0]
        assert f"({i1})" in docker("exec", "i2", "ping", "-c1", "-W2", "i1").stdout
        assert "default" not in docker("exec", "i1", "ip", "route").stdout  # internal
        m1_link = docker("exec", "m1", "ip", "-o", "link", "show", "eth0").stdout
        d.stop()
        d.start()
        assert "rebuilding" not in d.log()  # the driver recognised its links
        assert docker("exec", "m1", "ip", "-o", "link", "show", "eth0").stdout == m1_link
        m1 = _member(docker, "macvlan100", "m1")["IPv4Address"].split("/")[0]
        assert pings(lab, segment.netns, m1)
        assert f"({i1})" in docker("exec", "i2", "ping", "-c1", "-W2", "i1").stdout
        # disconnect removes the link from the running container
        docker("network", "connect", "inner", "m1")
        assert "eth1" in docker("exec", "m1", "ip", "-o", "link").stdout
        docker("network", "disconnect", "inner", "m1")
        assert "eth1" not in docker("exec", "m1", "ip", "-o", "link").stdout
        docker("rm", "-f", "i1", "i2", "m1")
        docker("network", "rm", "inner", "macvlan100")
        assert not [m for m in _marked(lab, lab_host) if inner["Id"] in m]
    finally:
        d.stop()


def test_leaks_and_reconcile_know_macvlan_links(
        lab: Lab, lab_host: LabHost, controller: Callable[..., muslin.Controller],
        lan: Callable[..., Any]) -> None:
    segment = lan(lab_host)
    ctl = controller()
    net = ctl.create_network("mv", driver="macvlan", options={"parent": segment.parent},
                             ipam=[{"subnet": "10.0.0.0/24", "gateway": "10.0.0.1"}])
    inner = ctl.create_network("inner", driver="macvlan", ipam=[{"subnet": "10.8.0.0/24"}])
    (sb1, ep1), (sb2, _) = member(ctl, net, "c1"), member(ctl, inner, "c2")
    ep1b = inner.create_endpoint("c1")
    ep1b.join(sb1)
    assert (ep1.interface_name, ep1b.interface_name) == ("eth0", "eth1")
    assert pings(lab, segment.netns, str(ep1.ipv4_address))
    assert pings(lab, sb2.netns_path, str(ep1b.ipv4_address))
    assert ctl.leaks() == []
    ip1, ip1b, sb1_path, sb2_path = (str(ep1.ipv4_address), str(ep1b.ipv4_address),
                                     sb1.netns_path, sb2.netns_path)
    near = "mvs-" + inner.id[:11]
    index = lab.call(sb1.netns_path, lambda links: links.require("eth0").index)
    ctl.close()
    ctl = controller()  # a restart: the links are recognised, nothing is rebuilt
    assert ctl.leaks() == []
    assert lab.call(sb1_path, lambda links: links.require("eth0").index) == index
    # a link deleted behind muslin's back shows as a leak and comes back on restart
    lab.call(sb1_path, lambda links: links.delete(links.require("eth0").index))
    assert any("eth0 is missing" in p for p in ctl.leaks())
    ctl.close()
    ctl = controller()
    assert ctl.leaks() == []
    assert pings(lab, segment.netns, ip1)
    # a lost stub is rebuilt too (and its endpoints with it)
    lab.call(lab_host, lambda links: links.delete(links.require(near).index))
    assert any(f"macvlan parent {near} is missing" in p for p in ctl.leaks())
    ctl.close()
    ctl = controller()
    assert ctl.leaks() == []
    assert pings(lab, sb2_path, ip1b)
    for sb in ctl.sandboxes():
        sb.delete()
    for name in ("mv", "inner"):
        ctl.network(name).delete()
    assert ctl.leaks() == []
    assert lab.call(lab_host, lambda links: links.get(near)) is None
    assert lab.call(lab_host, lambda links: links.require(segment.parent).up)


def test_a_muslin_bridge_as_parent_is_left_alone(lab: Lab, lab_host: LabHost,
                                                 ctl: muslin.Controller) -> None:
    br = ctl.create_network("br")
    mv = ctl.create_network("mvb", driver="macvlan", options={"parent": br.bridge_name},
                            ipam=[{"subnet": "10.9.0.0/24"}])
    sb, _ = member(ctl, mv, "c1")
    assert ctl.leaks() == []
    sb.delete()
    mv.delete()
    assert lab.call(lab_host, lambda links: links.get(br.bridge_name)) is not None
    assert ctl.leaks() == []
