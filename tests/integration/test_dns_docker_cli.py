"""Embedded DNS (issue 7) as docker users meet it: containers run with the real docker
CLI against muslind, queries sent by busybox inside them. `--link` on the default
bridge (/etc/hosts) and on a user network (the resolver), `--dns-search` and
`--dns-option` in /etc/resolv.conf and honoured, renames, the host's resolv.conf
servers when a container has no `--dns`. Every upstream is a stub of the lab."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from typing import Any

import pytest

from daemon import Muslind
from lab import Lab, LabHost

pytestmark = pytest.mark.kernel

StubDNS = Any  # tests/conftest.py's StubDNS


@pytest.fixture(autouse=True)
def _docker_cli() -> None:
    if shutil.which("docker") is None:
        from lab import unavailable

        unavailable("the docker CLI is not installed")


def address(d: Callable[..., Any], name: str, network: str) -> str:
    fmt = "{{json .NetworkSettings.Networks}}"
    nets = json.loads(d("inspect", "-f", fmt, name).stdout)
    return str(nets[network]["IPAddress"])


def lookup(d: Callable[..., Any], container: str, name: str) -> str | None:
    """The address busybox nslookup inside the container gets from 127.0.0.11, or
    None when it gets none."""
    r = d("exec", container, "nslookup", "-type=a", name, "127.0.0.11", check=False)
    found = [line.split()[-1] for line in r.stdout.splitlines()[2:]
             if line.startswith("Address")]
    return found[0] if r.returncode == 0 and found else None


def pinged_address(d: Callable[..., Any], container: str, name: str) -> str | None:
    """The address `ping` (glibc's getaddrinfo: resolv.conf's search and ndots) finds
    for name inside the container, or None."""
    out = d("exec", container, "ping", "-c1", "-W1", name, check=False).stdout
    first = out.splitlines()[0] if out else ""
    return first.split("(")[1].split(")")[0] if "(" in first else None


def test_links_on_the_default_bridge_and_on_a_user_network(
        lab: Lab, lab_host: LabHost, muslind: Muslind, stub_dns: StubDNS) -> None:
    d = muslind.docker
    dns = ["--dns", stub_dns.address]
    # the default bridge: no resolver; the link is a line of /etc/hosts
    c1 = d("run", "-d", "--name", "c1", *dns, "busybox", "sleep", "1d").stdout.strip()
    d("run", "-d", "--name", "c2", *dns, "--link", "c1:buddy", "busybox", "sleep", "1d")
    ip1 = address(d, "c1", "bridge")
    hosts = d("exec", "c2", "cat", "/etc/hosts").stdout
    assert f"{ip1}\tbuddy {c1[:12]} c1\n" in hosts, hosts
    assert pinged_address(d, "c2", "buddy") == ip1
    assert d("exec", "c2", "ping", "-c1", "-W2", "buddy").returncode == 0
    resolv = d("exec", "c2", "cat", "/etc/resolv.conf").stdout
    assert f"nameserver {stub_dns.address}" in resolv and "127.0.0.11" not in resolv
    assert lookup(d, "c2", "c1") is None  # nothing answers at 127.0.0.11 there
    assert d("exec", "c2", "nslookup", "c1", "127.0.0.11", check=False).returncode != 0

    # a user network: the alias is the embedded DNS's, for the linking container only
    d("network", "create", "localnet")
    for name, extra in (("u1", []), ("u2", ["--link", "u1:pal"]), ("u3", [])):
        d("run", "-d", "--name", name, "--network", "localnet", *dns, *extra, "busybox",
          "sleep", "1d")
    u1 = address(d, "u1", "localnet")
    assert lookup(d, "u2", "pal") == u1
    assert pinged_address(d, "u2", "pal") == u1
    assert "pal" not in d("exec", "u2", "cat", "/etc/hosts").stdout
    assert lookup(d, "u3", "pal") is None
    assert ("udp", "pal.", "A") in stub_dns.queries()  # u3 forwarded it: NXDOMAIN
    # the alias follows the target through a rename
    d("rename", "u1", "u1new")
    assert lookup(d, "u2", "pal") == u1

    # a link to no container is refused at create, as Docker
    r = d("run", "-d", "--name", "bad", *dns, "--link", "nope:x", "busybox", "true",
          check=False)
    assert r.returncode != 0 and "could not get container for nope" in r.stderr
    d("rm", "-f", "c1", "c2", "u1new", "u2", "u3")
    d("network", "rm", "localnet")


def test_dns_search_and_options_reach_resolv_conf_and_are_honoured(
        lab: Lab, lab_host: LabHost, muslind: Muslind,
        stub_dns_for: Callable[..., StubDNS]) -> None:
    stub = stub_dns_for(lab_host, records={"www.ext.test": "192.0.2.80"})
    d = muslind.docker
    d("network", "create", "localnet")
    common = ["--network", "localnet", "--dns", stub.address, "--dns-search", "ext.test"]
    d("run", "-d", "--name", "s1", *common, "--dns-option", "ndots:2", "--dns-option",
      "timeout:3", "busybox", "sleep", "1d")
    d("run", "-d", "--name", "s2", *common, "busybox", "sleep", "1d")
    resolv = d("exec", "s1", "cat", "/etc/resolv.conf").stdout
    lines = [x for x in resolv.splitlines() if x and not x.startswith("#")]
    assert lines == ["nameserver 127.0.0.11", "search ext.test",
                     "options ndots:2 timeout:3"], resolv
    assert f"# ExtServers: [{stub.address}]" in resolv
    resolv2 = d("exec", "s2", "cat", "/etc/resolv.conf").stdout
    assert "search ext.test\n" in resolv2 and "options ndots:0\n" in resolv2

    # ndots:2: "www" (no dot) goes through the search domain first and is found there;
    # the bare name is never forwarded (Docker's rule for an explicit ndots)
    assert pinged_address(d, "s1", "www") == "192.0.2.80"
    assert ("udp", "www.ext.test.", "A") in stub.queries()
    assert ("udp", "www.", "A") not in stub.queries()
    assert lookup(d, "s1", "www") is None  # NOERROR without answer for the bare name
    assert ("udp", "www.", "A") not in stub.queries()
    # ndots:0 (Docker's default for the embedded DNS): the bare name is asked first,
    # forwarded (NXDOMAIN), then the search domain finds it
    assert pinged_address(d, "s2", "www") == "192.0.2.80"
    assert ("udp", "www.", "A") in stub.queries()
    d("rm", "-f", "s1", "s2")
    d("network", "rm", "localnet")


def test_rename_connect_and_disconnect_change_answers_at_once(
        lab: Lab, lab_host: LabHost, muslind: Muslind, stub_dns: StubDNS) -> None:
    d = muslind.docker
    dns = ["--dns", stub_dns.address]
    d("network", "create", "localnet")
    d("network", "create", "other")
    for name in ("c1", "c2"):
        d("run", "-d", "--name", name, "--network", "localnet", *dns, "busybox",
          "sleep", "1d")
    ip1 = address(d, "c1", "localnet")
    assert lookup(d, "c2", "c1") == ip1
    d("rename", "c1", "first")
    assert lookup(d, "c2", "first") == ip1
    assert lookup(d, "c2", "first.localnet") == ip1
    assert lookup(d, "c2", "c1") is None
    [net] = json.loads(d("network", "inspect", "localnet").stdout)
    assert sorted(c["Name"] for c in net["Containers"].values()) == ["c2", "first"]
    # connect: c2 resolves first on other too; disconnect: gone from localnet at once
    d("network", "connect", "other", "first")
    d("network", "connect", "other", "c2")
    ip_other = address(d, "first", "other")
    assert lookup(d, "c2", "first.other") == ip_other
    d("network", "disconnect", "localnet", "first")
    assert lookup(d, "c2", "first.localnet") is None
    assert lookup(d, "c2", "first") == ip_other
    d("network", "disconnect", "other", "first")
    assert lookup(d, "c2", "first") is None
    d("rm", "-f", "first", "c2")
    d("network", "rm", "localnet", "other")


def test_host_resolv_conf_servers_answer_containers_without_dns(
        lab: Lab, lab_host: LabHost, stub_dns_for: Callable[..., StubDNS]) -> None:
    """muslind's `resolv-conf` names the lab's own file (never the machine's): its
    server (a stub wired to the lab host) answers containers without --dns, asked from
    the host namespace by the embedded DNS on a user network, and directly by a
    container on the default bridge."""
    stub = stub_dns_for(lab_host, records={"ext.test": "192.0.2.50"})
    resolv = lab.dir / "host-resolv.conf"
    resolv.write_text(f"nameserver {stub.address}\nsearch corp.test\n")
    daemon = Muslind(lab, lab_host, config={"resolv-conf": str(resolv)}).start()
    try:
        d = daemon.docker
        d("network", "create", "localnet")
        d("run", "-d", "--name", "h1", "--network", "localnet", "busybox", "sleep", "1d")
        d("run", "-d", "--name", "h2", "busybox", "sleep", "1d")
        text = d("exec", "h1", "cat", "/etc/resolv.conf").stdout
        assert "nameserver 127.0.0.11\n" in text and "search corp.test\n" in text
        assert f"# ExtServers: [{stub.address}]" in text
        assert f"# Based on host file: '{resolv}'" in text
        assert lookup(d, "h1", "ext.test") == "192.0.2.50"
        text2 = d("exec", "h2", "cat", "/etc/resolv.conf").stdout
        assert f"nameserver {stub.address}\n" in text2
        r = d("exec", "h2", "nslookup", "ext.test", check=False)
        assert "192.0.2.50" in r.stdout, r
        assert ("udp", "ext.test.", "A") in stub.queries()
        d("rm", "-f", "h1", "h2")
        d("network", "rm", "localnet")
    finally:
        daemon.stop()


def test_names_aliases_short_id_hostname_and_ptr(lab: Lab, lab_host: LabHost,
                                                 muslind: Muslind, stub_dns: StubDNS) -> None:
    d = muslind.docker
    dns = ["--dns", stub_dns.address]
    d("network", "create", "localnet")
    c1 = d("run", "-d", "--name", "c1", "--network", "localnet", "--network-alias", "web",
           "--hostname", "box", *dns, "busybox", "sleep", "1d").stdout.strip()
    d("run", "-d", "--name", "c2", "--network", "localnet", "--network-alias", "web", *dns,
      "busybox", "sleep", "1d")
    d("run", "-d", "--name", "c3", "--network", "localnet", *dns, "busybox", "sleep", "1d")
    ip1, ip2 = address(d, "c1", "localnet"), address(d, "c2", "localnet")
    assert lookup(d, "c3", "c1") == ip1
    assert lookup(d, "c3", "c1.localnet") == ip1
    assert lookup(d, "c3", c1[:12]) == ip1
    assert lookup(d, "c3", "box") == ip1
    # the shared alias: both addresses in every answer, the first one rotating
    out = d("exec", "c3", "nslookup", "-type=a", "web", "127.0.0.11").stdout
    assert {ip1, ip2} <= set(out.split()), out
    firsts = {lookup(d, "c3", "web") for _ in range(4)}
    assert firsts == {ip1, ip2}
    # PTR of each container address: name.network
    for ip, name in ((ip1, "c1"), (ip2, "c2")):
        out = d("exec", "c3", "nslookup", ip, "127.0.0.11").stdout
        assert f"name = {name}.localnet" in out, out
    d("rm", "-f", "c1", "c2", "c3")
    d("network", "rm", "localnet")


def test_internal_network_names_resolve_without_forwarding(
        lab: Lab, lab_host: LabHost, muslind: Muslind, stub_dns: StubDNS) -> None:
    """A container only on an internal network: names of the network resolve, other
    names get SERVFAIL (as Docker) and never reach its --dns server."""
    d = muslind.docker
    dns = ["--dns", stub_dns.address]
    d("network", "create", "--internal", "inside")
    for name in ("i1", "i2"):
        d("run", "-d", "--name", name, "--network", "inside", *dns, "busybox", "sleep",
          "1d")
    assert lookup(d, "i2", "i1") == address(d, "i1", "inside")
    r = d("exec", "i2", "nslookup", "-type=a", "example.com", "127.0.0.11", check=False)
    assert r.returncode != 0 and "SERVFAIL" in r.stdout + r.stderr, r
    assert ("udp", "example.com.", "A") not in stub_dns.queries()
    d("rm", "-f", "i1", "i2")
    d("network", "rm", "inside")
