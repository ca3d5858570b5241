"""Crash safety, deterministic: the process is killed (SIGKILL) at every apply step of
network create and of join; the next controller's start-up reconcile leaves no leak
and every endpoint it knows passes traffic."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from collections.abc import Callable

import pytest

import muslin
from muslin import faults

from lab import Lab, LabHost
from netcheck import pings

pytestmark = pytest.mark.kernel

CHILD = os.path.join(os.path.dirname(__file__), "crash_child.py")


def run_child(lab_host: LabHost, op: str, step: str) -> int:
    env = {**os.environ, "MUSLIN_FAULT": f"{step}:kill"}
    proc = subprocess.run(
        [sys.executable, CHILD, lab_host.state_dir, lab_host.run_dir, lab_host.prefix,
         lab_host.netns, op], env=env, capture_output=True, text=True, timeout=60)
    return proc.returncode


def all_joined_talk(lab: Lab, ctl: muslin.Controller) -> None:
    joined: dict[str, list[tuple[str, str]]] = {}
    for sb in ctl.sandboxes():
        for ep in sb.endpoints():
            joined.setdefault(ep.network.id, []).append((sb.netns_path, str(ep.ipv4_address)))
    for members in joined.values():
        for (ns_a, _), (_, ip_b) in itertools.permutations(members, 2):
            assert pings(lab, ns_a, ip_b), f"{ip_b} unreachable after reconcile"


def setup_base(controller: Callable[..., muslin.Controller]) -> None:
    ctl = controller()
    net = ctl.create_network("base")
    for name in ("m1", "m2"):
        sb = ctl.create_sandbox(name)
        net.create_endpoint(name).join(sb)
    ctl.close()


@pytest.mark.parametrize("step", faults.NETWORK_CREATE_STEPS)
def test_kill_during_network_create(step: str, lab: Lab, lab_host: LabHost,
                                    controller: Callable[..., muslin.Controller]) -> None:
    setup_base(controller)
    assert run_child(lab_host, "network", step) == -9
    ctl = controller()
    assert ctl.leaks() == []
    assert "crashnet" not in [n.name for n in ctl.networks()]
    all_joined_talk(lab, ctl)
    net = ctl.create_network("crashnet")  # the name and the pool are free again
    assert net.subnets == ["172.19.0.0/16"]
    assert ctl.leaks() == []


@pytest.mark.parametrize("step", faults.ENDPOINT_JOIN_STEPS)
def test_kill_during_join(step: str, lab: Lab, lab_host: LabHost,
                          controller: Callable[..., muslin.Controller]) -> None:
    setup_base(controller)
    assert run_child(lab_host, "join", step) == -9
    ctl = controller()
    assert ctl.leaks() == []
    all_joined_talk(lab, ctl)
    victim = ctl.network("base").endpoint("victim")
    assert victim.sandbox is None  # the join was rolled back
    victim.join(ctl.sandbox("victim"))
    assert ctl.leaks() == []
    all_joined_talk(lab, ctl)


def test_reconcile_restores_flushed_ruleset_and_deleted_bridge(
        lab: Lab, lab_host: LabHost, controller: Callable[..., muslin.Controller]) -> None:
    setup_base(controller)
    lab.run(lab_host, ["nft", "flush", "ruleset"])
    ctl = controller()
    assert ctl.leaks() == []
    bridge = ctl.network("base").bridge_name
    ctl.close()
    lab.run(lab_host, ["ip", "link", "del", bridge])
    ctl = controller()
    assert ctl.leaks() == []
    all_joined_talk(lab, ctl)


def test_faults_raise_rolls_back_in_process(lab: Lab, ctl: muslin.Controller) -> None:
    net = ctl.create_network("base")
    sb = ctl.create_sandbox("c1")
    ep = net.create_endpoint("c1")
    for step in faults.ENDPOINT_JOIN_STEPS:
        faults.arm(step)
        try:
            with pytest.raises(faults.FaultInjected):
                ep.join(sb)
        finally:
            faults.disarm()
        assert ep.sandbox is None and ctl.leaks() == []
    for step in faults.NETWORK_CREATE_STEPS:
        faults.arm(step)
        try:
            with pytest.raises(faults.FaultInjected):
                ctl.create_network("other")
        finally:
            faults.disarm()
        assert ctl.leaks() == []
    ep.join(sb)
    assert ctl.leaks() == []
