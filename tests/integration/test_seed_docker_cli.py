"""The seed's single-host walkthrough with the real docker CLI against muslind:
containers on a user bridge find each other by name (embedded DNS), talk, get
connected and disconnected while running, a published port answers, and exit codes
and output come back as docker users expect. Every container's --dns is a stub."""

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


def test_seed_walkthrough(lab: Lab, lab_host: LabHost, muslind: Muslind,
                          stub_dns: Any) -> None:
    d = muslind.docker
    dns = ["--dns", stub_dns.address]
    d("network", "create", "-d", "bridge", "localnet")
    for name in ("c1", "c2"):
        cid = d("run", "-d", "--name", name, "--network", "localnet", *dns, "busybox",
                "sleep", "1d").stdout.strip()
        assert len(cid) == 64
    [net] = json.loads(d("network", "inspect", "localnet").stdout)
    members = {c["Name"]: c["IPv4Address"] for c in net["Containers"].values()}
    assert set(members) == {"c1", "c2"} and all(members.values())
    c1_ip = members["c1"].split("/")[0]
    assert d("exec", "c2", "ping", "-c1", "-W2", c1_ip).returncode == 0
    out = d("exec", "c2", "ping", "-c1", "-W2", "c1").stdout   # the seed: embedded DNS
    assert f"({c1_ip})" in out
    # an external name goes to the stub (--dns), never to the host's resolvers
    assert "192.0.2.10" in d("exec", "c2", "nslookup", "example.com").stdout
    # connect and disconnect a running container
    d("network", "create", "other")
    d("network", "connect", "other", "c1")
    addrs = d("exec", "c1", "ip", "-4", "-o", "addr").stdout
    assert "eth1" in addrs
    d("network", "disconnect", "other", "c1")
    assert "eth1" not in d("exec", "c1", "ip", "-4", "-o", "addr").stdout
    # foreground runs: output and exit codes
    r = d("run", "--rm", *dns, "busybox", "echo", "hi")
    assert r.stdout == "hi\n" and r.returncode == 0
    r = d("run", *dns, "busybox", "sh", "-c", "exit 3", check=False)
    assert r.returncode == 3
    # a published port (the seed's -p 8080:80 web server)
    d("run", "-d", "-p", "8080:80", "--name", "web", *dns, "busybox", "httpd", "-f",
      "-p", "80")
    assert d("port", "web").stdout.strip() == "80/tcp -> 0.0.0.0:8080"
    lab.wait_until(lambda: tcp_talks_http(lab, lab_host), what="web on 127.0.0.1:8080")
    d("rm", "-f", "c1", "c2", "web")
    # names only: a random container id may contain "c1" (5f0341d1c1a5 did)
    assert "c1" not in d("ps", "-a", "--format", "{{.Names}}").stdout.split()
    assert d("network", "rm", "localnet", "other").returncode == 0


def tcp_talks_http(lab: Lab, lab_host: LabHost) -> bool:
    r = lab.run(lab_host, ["python3", "-c", "import urllib.request,sys; "
                           "urllib.request.urlopen('http://127.0.0.1:8080/', timeout=2)"],
                check=False, timeout=10)
    # busybox httpd answers 404 for / without an index: an HTTP answer all the same
    return r.returncode == 0 or "HTTP Error 404" in r.stderr

