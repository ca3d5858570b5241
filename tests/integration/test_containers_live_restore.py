"""Containers outlive muslind with `live-restore: true`: kill -9 of the daemon while a
container pings another, a new daemon adopts them (the same processes), the ping never
lost a packet, logs, exec and the embedded DNS work, and an adopted container's exit
gives back its address. Without live-restore a clean stop (SIGTERM) stops every
container, and restart policies start them again with the next daemon."""

from __future__ import annotations

import json
import os
import re
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


def _state(d: Muslind, name: str) -> dict[str, Any]:
    [doc] = json.loads(d.docker("inspect", name).stdout)
    return dict(doc["State"])


def _seqs(d: Muslind, name: str) -> list[int]:
    out = d.docker("logs", name).stdout
    return [int(m) for m in re.findall(r"seq=(\d+) ", out)]


def _members(d: Muslind, net: str) -> dict[str, str]:
    [doc] = json.loads(d.docker("network", "inspect", net).stdout)
    return {c["Name"]: c["IPv4Address"] for c in doc["Containers"].values()}


def test_live_restore_through_kill_9(lab: Lab, lab_host: LabHost, stub_dns: Any) -> None:
    d = Muslind(lab, lab_host, {"live-restore": True}).start()
    try:
        docker = d.docker
        dns = ["--dns", stub_dns.address]
        docker("network", "create", "localnet")
        docker("run", "-d", "--name", "c1", "--network", "localnet", *dns, "busybox", "sh",
               "-c", "echo c1 up; exec sleep 1d")
        c1_ip = _members(d, "localnet")["c1"].split("/")[0]
        docker("run", "-d", "--name", "pinger", "--network", "localnet", *dns, "busybox",
               "ping", "-i", "0.2", c1_ip)
        lab.wait_until(lambda: len(_seqs(d, "pinger")) >= 5, what="the first pings")
        before = {n: _state(d, n) for n in ("c1", "pinger")}

        assert d.proc is not None
        d.proc.kill()  # kill -9, while the ping runs
        d.proc.wait(10)
        d.proc = None
        for st in before.values():  # the daemon is gone, the containers are not
            assert os.path.exists(f"/proc/{st['Pid']}")
        last_before = max(_seqs_from_file(lab_host, "pinger") or [0])
        d.start()

        for name, st in before.items():  # the same processes, adopted
            now = _state(d, name)
            assert now["Running"] and now["Pid"] == st["Pid"]
            assert now["StartedAt"] == st["StartedAt"]
        lab.wait_until(lambda: max(_seqs(d, "pinger")) >= last_before + 10,
                       what="pings after the restart")
        seqs = _seqs(d, "pinger")
        assert seqs == list(range(len(seqs))), "a ping was lost across the restart"
        assert docker("logs", "c1").stdout == "c1 up\n"
        assert docker("exec", "c1", "echo", "alive").stdout == "alive\n"
        r = docker("exec", "pinger", "ping", "-c1", "-W2", "c1")   # the embedded DNS
        assert f"({c1_ip})" in r.stdout
        assert "192.0.2.10" in docker("exec", "pinger", "nslookup", "example.com").stdout
        assert set(_members(d, "localnet")) == {"c1", "pinger"}

        # an adopted container is watched again: its exit gives its address back
        docker("kill", "c1")
        lab.wait_until(lambda: set(_members(d, "localnet")) == {"pinger"},
                       what="c1 to leave localnet after its exit")
        assert _state(d, "c1")["ExitCode"] == 137
        docker("rm", "-f", "c1", "pinger")
        assert docker("ps", "-aq").stdout == ""
    finally:
        d.stop()


def _seqs_from_file(lab_host: LabHost, name: str) -> list[int]:
    """The ping's replies so far, from the log files themselves (no daemon to ask)."""
    root = os.path.join(lab_host.state_dir, "containers")
    found: list[int] = []
    for cid in os.listdir(root):
        try:
            with open(os.path.join(root, cid, "container.json")) as f:
                if json.load(f)["spec"]["name"] != name:
                    continue
            with open(os.path.join(root, cid, "ctr.log")) as f:
                found += [int(m) for m in re.findall(r"seq=(\d+) ", f.read())]
        except (OSError, ValueError, KeyError):
            continue
    return found


def test_kill_9_without_live_restore_stops_them_at_the_next_start(
        lab: Lab, lab_host: LabHost, stub_dns: Any) -> None:
    """As dockerd without live-restore: containers a killed daemon left running are
    stopped when the next one starts, and give back their addresses."""
    d = Muslind(lab, lab_host).start()
    try:
        d.docker("network", "create", "localnet")
        d.docker("run", "-d", "--name", "left", "--network", "localnet", "--stop-timeout",
                 "1", "--dns", stub_dns.address, "busybox", "sleep", "1d")
        pid = _state(d, "left")["Pid"]
        assert d.proc is not None
        d.proc.kill()
        d.proc.wait(10)
        d.proc = None
        assert os.path.exists(f"/proc/{pid}")  # still running without its daemon
        d.start()
        st = _state(d, "left")
        assert st["Status"] == "exited" and not os.path.exists(f"/proc/{pid}")
        assert _members(d, "localnet") == {}
        d.docker("rm", "left")
    finally:
        d.stop()


def test_clean_stop_without_live_restore_stops_containers(lab: Lab, lab_host: LabHost,
                                                          stub_dns: Any) -> None:
    d = Muslind(lab, lab_host).start()
    try:
        docker = d.docker
        dns = ["--dns", stub_dns.address]
        docker("network", "create", "localnet")
        for name in ("c1", "c2"):
            docker("run", "-d", "--name", name, "--network", "localnet", "--stop-timeout", "1",
                   *dns, "busybox", "sleep", "1d")
        docker("run", "-d", "--name", "always", "--network", "localnet", "--restart",
               "always", *dns, "busybox", "sleep", "1d")
        pids = {n: _state(d, n)["Pid"] for n in ("c1", "c2", "always")}
        d.stop()  # SIGTERM: Docker's default stops every container
        for pid in pids.values():
            assert not os.path.exists(f"/proc/{pid}")
        d.start()
        for name in ("c1", "c2"):
            st = _state(d, name)
            assert st["Status"] == "exited" and st["ExitCode"] == 137
        # a restart policy of "always" starts it with the daemon
        st = _state(d, "always")
        assert st["Running"] and st["Pid"] != pids["always"]
        assert set(_members(d, "localnet")) == {"always"}
        docker("rm", "-f", "c1", "c2", "always")
    finally:
        d.stop()
