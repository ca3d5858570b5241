"""Remote network and IPAM drivers (Docker's plugin protocol) through muslin: the
example third-party plugins in examples/ carry containers; plugins that answer
{"Err"}, hang or die leave nothing half-created, and a restarted plugin is
activated again."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

import muslin
from muslin.plugins import PluginDirs, PluginError, Plugins
from muslin.plugins.registry import NETWORK_DRIVER

from daemon import Muslind, socket_answers
from lab import Lab, LabHost, wait_until
from netcheck import pings

pytestmark = pytest.mark.kernel

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
EXAMPLES = os.path.join(ROOT, "examples")
FAULTY = os.path.join(ROOT, "tests", "faulty_plugin.py")
MUSLIN = os.path.join(os.path.dirname(sys.executable), "muslin")


def start_plugin(lab: Lab, host: LabHost, name: str, script: str, *args: str
                 ) -> subprocess.Popen[bytes]:
    """A plugin process in the lab host, its socket in the host's plugin dir."""
    sock = os.path.join(host.dir, "plugins", f"{name}.sock")
    proc = lab.spawn(host, [sys.executable, script, "--socket", sock, *args])
    wait_until(lambda: socket_answers(sock), timeout=20, what=f"plugin {name} to listen")
    return proc


def cli(d: Muslind, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([MUSLIN, "-H", f"unix://{d.socket}", *args], capture_output=True,
                          text=True, timeout=90, check=check)


def test_example_plugins_carry_containers(lab: Lab, lab_host: LabHost,
                                          stub_dns: Any) -> None:
    plugins = os.path.join(lab_host.dir, "plugins")
    start_plugin(lab, lab_host, "exbridge", os.path.join(EXAMPLES, "bridge_plugin.py"),
                 "--state", os.path.join(lab_host.dir, "exbridge.json"))
    start_plugin(lab, lab_host, "exipam", os.path.join(EXAMPLES, "ipam_plugin.py"),
                 "--pool", "10.77.0.0/24", "--first", "200")
    d = Muslind(lab, lab_host, {"plugin-sockets-dir": plugins, "plugin-spec-dirs": [],
                                "plugin-timeout": 20}).start()
    try:
        dns = ["--dns", stub_dns.address]
        cli(d, "network", "create", "-d", "exbridge", "--ipam-driver", "exipam", "-o",
            "example.bridge.name=exbr0", "exnet")
        cli(d, "network", "create", "-d", "exbridge", "--subnet", "10.78.0.0/24", "exdef")
        cli(d, "network", "create", "localnet")  # built-in bridge, side by side
        for name in ("c1", "c2"):
            cli(d, "run", "-d", "--name", name, "--network", "exnet", *dns, "busybox",
                "sleep", "1d")
        [net] = json.loads(cli(d, "network", "inspect", "exnet").stdout)
        assert net["Driver"] == "exbridge" and net["IPAM"]["Driver"] == "exipam"
        assert net["IPAM"]["Config"][0]["Subnet"] == "10.77.0.0/24"
        assert net["IPAM"]["Config"][0]["Gateway"] == "10.77.0.1"
        members = {c["Name"]: c["IPv4Address"] for c in net["Containers"].values()}
        # the plugin's own pool and its own numbering (from .200)
        assert sorted(members.values()) == ["10.77.0.200/24", "10.77.0.201/24"]
        ip1 = members["c1"].split("/")[0]
        assert cli(d, "exec", "c2", "ping", "-c1", "-W2", ip1).returncode == 0
        # the interface the plugin named is eth0 inside, with the driver's MAC and gateway
        out = cli(d, "exec", "c2", "ip", "route").stdout
        assert "default via 10.77.0.1 dev eth0" in out
        [c2] = json.loads(cli(d, "inspect", "c2").stdout)
        mac = c2["NetworkSettings"]["Networks"]["exnet"]["MacAddress"]
        assert mac.startswith("02:") and not mac.startswith("02:42:")
        assert mac in cli(d, "exec", "c2", "ip", "link", "show", "eth0").stdout
        # several drivers in one container: the plugin's with default IPAM, a bridge
        cli(d, "network", "connect", "exdef", "c1")
        cli(d, "network", "connect", "localnet", "c1")
        cli(d, "network", "connect", "exdef", "c2")
        addrs = cli(d, "exec", "c1", "ip", "-4", "-o", "addr").stdout
        assert "eth1" in addrs and "10.78.0.2/24" in addrs and "eth2" in addrs
        assert cli(d, "exec", "c2", "ping", "-c1", "-W2", "10.78.0.2").returncode == 0
        cli(d, "network", "disconnect", "exdef", "c1")
        assert "10.78.0." not in cli(d, "exec", "c1", "ip", "-4", "-o", "addr").stdout
        cli(d, "rm", "-f", "c1", "c2")
        for name in ("exnet", "exdef", "localnet"):
            cli(d, "network", "rm", name)
        # the plugin removed its bridge when told (it is its own, muslin never touches it)
        assert "exbr0" not in lab.run(lab_host, ["ip", "-o", "link"]).stdout
        r = cli(d, "network", "create", "-d", "nosuchplugin", "x", check=False)
        assert r.returncode == 1 and 'plugin "nosuchplugin" not found' in r.stderr
    finally:
        d.stop()


def test_plugin_faults_leave_nothing_half_created(
        lab: Lab, lab_host: LabHost, controller: Callable[..., muslin.Controller]) -> None:
    faults = os.path.join(lab_host.dir, "faults.json")

    def set_faults(**kw: str) -> None:
        with open(faults, "w") as f:
            json.dump(kw, f)

    set_faults()
    args = ["--state", os.path.join(lab_host.dir, "faulty.json"), "--faults", faults]
    proc = start_plugin(lab, lab_host, "faulty", FAULTY, *args)
    ctl = controller(plugins=Plugins(PluginDirs(os.path.join(lab_host.dir, "plugins"), ()),
                                     retry_timeout=5, call_timeout=4))
    pool = [{"subnet": "10.88.0.0/24"}]
    # {"Err"} at CreateNetwork: no network, its pool free again
    set_faults(CreateNetwork="err")
    with pytest.raises(PluginError, match="CreateNetwork refused on purpose"):
        ctl.create_network("n1", driver="faulty", ipam=pool)
    assert "n1" not in [n.name for n in ctl.networks()] and ctl.leaks() == []
    ctl.create_network("same", ipam=pool).delete()
    # a hanging CreateEndpoint: a timeout, no endpoint, its address free again
    set_faults()
    net = ctl.create_network("n1", driver="faulty", ipam=pool)
    set_faults(CreateEndpoint="hang")
    with pytest.raises(PluginError, match="timeout"):
        net.create_endpoint("e1")
    assert net.endpoints() == [] and ctl.leaks() == []
    set_faults()
    ep = net.create_endpoint("e1")
    assert ep.ipv4_address == "10.88.0.2"
    sb = ctl.create_sandbox("s1")
    # {"Err"} at Join, then death mid-join: the endpoint stays unjoined, the sandbox bare
    for fault in ("err", "die"):
        set_faults(Join=fault)
        with pytest.raises(PluginError):
            ep.join(sb)
        assert ep.sandbox is None and sb.endpoints() == []
        [only] = lab.run(sb.netns_path, ["ip", "-o", "link"]).stdout.splitlines()
        assert only.startswith("1: lo:")
        assert ctl.leaks() == []
    proc.wait(timeout=10)
    assert proc.returncode == 3
    plugin = ctl.plugins.get("faulty", NETWORK_DRIVER, activate=False)
    before = plugin.activations
    # the plugin restarts (its state kept): muslin activates it again and carries on
    set_faults()
    start_plugin(lab, lab_host, "faulty", FAULTY, *args)
    ep.join(sb)
    sb2 = ctl.create_sandbox("s2")
    ep2 = net.create_endpoint("e2")
    ep2.join(sb2)
    assert plugin.activations == before + 1
    assert pings(lab, sb.netns_path, "10.88.0.3")
    assert ctl.leaks() == []
    for s, e in ((sb, ep), (sb2, ep2)):
        e.leave(s)
        e.delete()
        s.delete()
    net.delete()
    assert ctl.leaks() == []
    assert not [p for p in ctl.store.list("pool") if p["subnet"].startswith("10.88.")]


def test_no_gateway_gets_the_default_gateway_service(
        lab: Lab, lab_host: LabHost, controller: Callable[..., muslin.Controller]) -> None:
    """A driver naming no gateway: the sandbox joins docker_gwbridge too (libnetwork's
    default gateway service), until another endpoint gives a gateway."""
    start_plugin(lab, lab_host, "exbridge", os.path.join(EXAMPLES, "bridge_plugin.py"))
    ctl = controller(plugins=Plugins(PluginDirs(os.path.join(lab_host.dir, "plugins"), ()),
                                     retry_timeout=10, call_timeout=10))
    net = ctl.create_network("nogw", driver="exbridge", ipam=[{"subnet": "10.66.0.0/24"}],
                             options={"example.gateway": "false",
                                      "example.bridge.name": "exnogw"})
    sb = ctl.create_sandbox("s1")
    ep = net.create_endpoint("s1")
    ep.join(sb)

    def members() -> dict[str, muslin.Endpoint]:
        return {e.network.name: e for e in sb.endpoints()}

    assert set(members()) == {"nogw", "docker_gwbridge"}
    gw_net = ctl.network("docker_gwbridge")
    assert gw_net.options["com.docker.network.bridge.enable_icc"] == "false"
    assert gw_net.options["com.docker.network.bridge.enable_ip_masquerade"] == "true"
    [gw] = gw_net.gateways
    gw_if = members()["docker_gwbridge"].interface_name
    assert f"default via {gw} dev {gw_if}" in lab.run(sb.netns_path, ["ip", "route"]).stdout
    assert pings(lab, sb.netns_path, gw)
    # a network with a gateway: the service's endpoint goes, and comes back after
    br = ctl.create_network("withgw")
    ep2 = br.create_endpoint("s1b")
    ep2.join(sb)
    assert set(members()) == {"nogw", "withgw"}
    ep2.leave(sb)
    ep2.delete()
    assert set(members()) == {"nogw", "docker_gwbridge"}
    assert ctl.leaks() == []
    sb.delete()
    assert ctl.leaks() == [] and gw_net.endpoints() == []
    for n in (net, br, gw_net):
        n.delete()
    assert ctl.leaks() == []
