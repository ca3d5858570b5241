"""The muslin CLI's container verbs against a real muslind: the seed's walkthrough
(run -d, exec ping by name), foreground runs with their output and exit codes, the
management forms (`container run`, `container ls`, `container logs`), rename,
restart policies and `rm -f`, with the same listings as the real docker CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from typing import Any

import pytest

from daemon import Muslind
from lab import Lab

pytestmark = pytest.mark.kernel

MUSLIN = os.path.join(os.path.dirname(sys.executable), "muslin")


def cli(d: Muslind, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([MUSLIN, "-H", f"unix://{d.socket}", *args], capture_output=True,
                          text=True, timeout=60, check=check)


def test_container_verbs(lab: Lab, muslind: Muslind, stub_dns: Any) -> None:
    dns = ["--dns", stub_dns.address]
    cli(muslind, "network", "create", "-d", "bridge", "localnet")
    for name in ("c1", "c2"):
        cid = cli(muslind, "run", "-d", "--name", name, "--network", "localnet", *dns,
                  "busybox", "sleep", "1d").stdout.strip()
        assert len(cid) == 64
    out = cli(muslind, "exec", "c2", "ping", "-c1", "-W2", "c1").stdout
    [c1] = json.loads(cli(muslind, "inspect", "c1").stdout)
    assert f"({c1['NetworkSettings']['Networks']['localnet']['IPAddress']})" in out
    # foreground: output and exit codes, plain and management forms
    r = cli(muslind, "run", "--rm", *dns, "busybox", "echo", "hi")
    assert (r.stdout, r.returncode) == ("hi\n", 0)
    r = cli(muslind, "container", "run", "--name", "three", *dns, "busybox", "sh", "-c",
            "echo out; exit 3", check=False)
    assert (r.stdout, r.returncode) == ("out\n", 3)
    assert cli(muslind, "container", "logs", "three").stdout == "out\n"
    fmt = "{{.Names}} {{.Image}} {{.Command}} {{.State}}"
    mine = cli(muslind, "container", "ls", "-a", "--no-trunc", "--format", fmt).stdout
    if shutil.which("docker") is not None:
        assert mine == muslind.docker("container", "ls", "-a", "--no-trunc", "--format",
                                      fmt).stdout
    assert sorted(mine.splitlines()) == [
        'c1 busybox "sleep 1d" running', 'c2 busybox "sleep 1d" running',
        'three busybox "sh -c \'echo out; exit 3\'" exited']
    # rename, restart policy, rm -f
    cli(muslind, "rename", "three", "four")
    cli(muslind, "run", "-d", "--name", "again", "--restart", "on-failure:1", "busybox", "sh",
        "-c", "exit 9")

    def restarted_once() -> bool:
        [doc] = json.loads(cli(muslind, "inspect", "again").stdout)
        return bool(doc["RestartCount"] == 1 and doc["State"]["Status"] == "exited")

    lab.wait_until(restarted_once, timeout=30, what="one restart of 'again'")
    assert cli(muslind, "wait", "again").stdout.strip() == "9"
    assert cli(muslind, "rm", "-f", "c1", "c2", "four", "again").stdout.split() == [
        "c1", "c2", "four", "again"]
    assert cli(muslind, "ps", "-aq").stdout == ""
