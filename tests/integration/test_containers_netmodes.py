"""Network modes through the real docker CLI against muslind, checked with commands run
inside the containers: `--network host` sees the host namespace's interfaces, `--network
none` has only `lo`, `--network container:c1` shares c1's interfaces, addresses and
ports (a server in the joiner answers on c1's address)."""

from __future__ import annotations

import json
import shutil
from typing import Any

import pytest

from daemon import Muslind
from lab import Lab, LabHost

pytestmark = pytest.mark.kernel


@pytest.fixture(autouse=True)
def _docker_cli() -> None:
    if shutil.which("docker") is None:
        from lab import unavailable

        unavailable("the docker CLI is not installed")


def _names(ip_o_link: str) -> list[str]:
    return sorted(line.split(":")[1].strip().split("@")[0]
                  for line in ip_o_link.splitlines() if line.strip())


def test_host_none_and_container_modes(lab: Lab, lab_host: LabHost, muslind: Muslind,
                                       stub_dns: Any) -> None:
    d = muslind.docker
    dns = ["--dns", stub_dns.address]
    d("network", "create", "localnet")
    d("run", "-d", "--name", "c1", "--network", "localnet", *dns, "busybox", "sleep", "1d")

    # host: the lab host's own interfaces (its bridges and the stub DNS veth included)
    expected = _names(lab.run(lab_host.netns, ["ip", "-o", "link"]).stdout)
    assert "dns0" in expected and len(expected) > 3
    seen = d("run", "--rm", "--network", "host", *dns, "busybox", "ip", "-o", "link").stdout
    assert _names(seen) == expected
    d("run", "-d", "--name", "hst", "--network", "host", *dns, "busybox", "sleep", "1d")
    assert _names(d("exec", "hst", "ip", "-o", "link").stdout) == expected
    [h] = json.loads(d("inspect", "hst").stdout)
    assert h["HostConfig"]["NetworkMode"] == "host"
    assert h["NetworkSettings"]["IPAddress"] == ""

    # none: lo only, and nothing to reach
    out = d("run", "--rm", "--network", "none", "busybox", "ip", "-o", "link").stdout
    assert _names(out) == ["lo"]
    d("run", "-d", "--name", "nn", "--network", "none", "busybox", "sleep", "1d")
    assert _names(d("exec", "nn", "ip", "-o", "link").stdout) == ["lo"]
    assert d("exec", "nn", "ifconfig").stdout.split()[0] == "lo"

    # container:c1: the same interfaces and addresses as c1
    [c1] = json.loads(d("inspect", "c1").stdout)
    c1_ip = c1["NetworkSettings"]["Networks"]["localnet"]["IPAddress"]
    c1_mac = c1["NetworkSettings"]["Networks"]["localnet"]["MacAddress"]
    out = d("run", "--rm", "--network", "container:c1", "busybox", "ip", "-o", "-4",
            "addr").stdout
    assert f"inet {c1_ip}/16" in out
    d("run", "-d", "--name", "side", "--network", "container:c1", "busybox", "httpd", "-f",
      "-p", "8081")
    assert d("exec", "side", "cat", "/sys/class/net/eth0/address").stdout.strip() == c1_mac
    ifc = d("exec", "side", "ifconfig", "eth0").stdout
    assert f"inet addr:{c1_ip}" in ifc
    [side] = json.loads(d("inspect", "side").stdout)
    assert side["HostConfig"]["NetworkMode"] == f"container:{c1['Id']}" or \
        side["HostConfig"]["NetworkMode"] == "container:c1"
    # a server in "side" answers on c1's address, from another container
    d("run", "-d", "--name", "c2", "--network", "localnet", *dns, "busybox", "sleep", "1d")

    def answers() -> bool:
        r = d("exec", "c2", "sh", "-c", f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | "
              f"nc -w 2 {c1_ip} 8081", check=False)
        return r.stdout.startswith("HTTP/1.")  # 404 without an index: an answer all the same

    lab.wait_until(answers, what="side's httpd on c1's address")
    # joining a container that does not run is refused, as dockerd does
    d("stop", "c2")
    r = d("run", "--rm", "--network", "container:c2", "busybox", "true", check=False)
    assert r.returncode != 0
    assert "cannot join network of a non running container: c2" in r.stderr
    # and `run --rm` of a container that cannot start ends (it is removed), as dockerd
    r = d("run", "--rm", "--network", "localnet", "busybox", "no-such-command", check=False)
    assert r.returncode == 127 and "no-such-command" in r.stderr
    d("rm", "-f", "c1", "c2", "hst", "nn", "side")
    assert d("ps", "-aq").stdout == ""
