"""The figures: each group runs its operations interleaved across the peers
(A, B, C, A, B, C, ...), repeated, and records every sample.

A peer that is not running, or lacks the capability, gets a status instead of
samples; a peer whose operation fails is dropped from the rest of that group with
"failed: <reason>".
"""

from __future__ import annotations

import functools
import http.client
import json
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import stats
from bench.peers import REPO, Peer, PeerError, http_request, in_threads

API = "/v1.41"  # the newest version all three accept (dockerd 20.10's; podman 4.3's compat)


@dataclass
class Figure:
    id: str
    title: str
    unit: str
    section: str
    measures: str
    samples: dict[str, list[float]] = field(default_factory=dict)
    status: dict[str, str] = field(default_factory=dict)

    def record(self, peer: str, value: float) -> None:
        self.samples.setdefault(peer, []).append(value)

    def as_dict(self, peers: Sequence[Peer]) -> dict[str, Any]:
        results: dict[str, Any] = {}
        for p in peers:
            status = self.status.get(p.id)
            samples = self.samples.get(p.id, [])
            if status is None and samples:
                results[p.id] = {"status": "ok", "summary": stats.summarize(samples).as_dict(),
                                 "samples": [round(s, 4) for s in samples]}
            else:
                results[p.id] = {"status": status or "n/a"}
        return {"id": self.id, "title": self.title, "unit": self.unit,
                "section": self.section, "measures": self.measures, "results": results}


@dataclass
class Plan:
    """How many repetitions each group makes."""

    network_rounds: int
    ls_rounds: int
    api_rounds: int
    run_rounds: int
    connect_rounds: int
    endpoints: int
    memory: bool
    cnm_repeat: int
    cnm_endpoints: int
    dns_rounds: int
    dns_seconds: int
    iperf_rounds: int
    iperf_seconds: int
    port_rounds: int
    many_ports: int
    log_rounds: int
    log_lines: int
    log_timeout: float
    log_drivers: tuple[str, ...] = ("json-file", "local")


# Quick keeps under 5 minutes with smaller counts (the table's n column and the figures'
# titles say which): 30 endpoints instead of 100/1,000, 100 published ports instead of
# 500, 100,000 log lines instead of 1,000,000, 2-second loads.
QUICK = Plan(network_rounds=5, ls_rounds=5, api_rounds=10, run_rounds=4, connect_rounds=4,
             endpoints=30, memory=False, cnm_repeat=5, cnm_endpoints=30,
             dns_rounds=1, dns_seconds=2, iperf_rounds=1, iperf_seconds=2, port_rounds=1,
             many_ports=100, log_rounds=1, log_lines=100_000, log_timeout=120)
# Full: about an hour on a loaded 2-CPU machine, three quarters of it the 1,000 endpoints
FULL = Plan(network_rounds=30, ls_rounds=20, api_rounds=100, run_rounds=20,
            connect_rounds=20, endpoints=1000, memory=True, cnm_repeat=20, cnm_endpoints=1000,
            dns_rounds=3, dns_seconds=5, iperf_rounds=3, iperf_seconds=5, port_rounds=3,
            many_ports=500, log_rounds=2, log_lines=1_000_000, log_timeout=600)

GROUPS = ("network-cli", "network-ls", "network-api", "run", "connect", "dns", "ports",
          "ports-start", "logs", "endpoints", "cnm")

NETWORKS = "Networks"
CONTAINERS = "Containers"


class Interleaver:
    """Runs one group: rounds of steps, each step once per active peer, in peer order."""

    def __init__(self, peers: Sequence[Peer], figures: Sequence[Figure],
                 log: Callable[[str], None]) -> None:
        self.active = list(peers)
        self.figures = list(figures)
        self.log = log

    def drop(self, peer: Peer, why: str) -> None:
        self.log(f"bench:   {peer.label}: {why}")
        for f in self.figures:
            f.status[peer.id] = f"failed: {why}"
        self.active = [p for p in self.active if p is not peer]

    def step(self, fn: Callable[[Peer], object]) -> None:
        """Runs fn(peer) for each active peer, in order (fn records its own samples)."""
        for p in list(self.active):
            try:
                fn(p)
            except (PeerError, OSError, ValueError, KeyError, http.client.HTTPException) as e:
                self.drop(p, f"{type(e).__name__}: {e}" if not isinstance(e, PeerError)
                          else str(e))


def _status_for(p: Peer, need: str) -> str | None:
    """The status a peer gets instead of samples, or None when it can take part."""
    if p.status != "ok":
        return p.status
    if need == "network_cli" and not p.network_cli:
        return "n/a"
    if need == "api":
        if not p.api:
            return "n/a"
        return None if p.api_socket() else p.api_status
    if need == "containers" and p.containers != "ok":
        return p.containers
    return None


def _eligible(peers: Sequence[Peer], figures: Sequence[Figure], need: str) -> list[Peer]:
    out = []
    for p in peers:
        st = _status_for(p, need)
        if st is None:
            out.append(p)
        else:
            for f in figures:
                f.status[p.id] = st
    return out


def _timed(f: Figure, peer: Peer, cmd: Callable[[], Any]) -> float:
    r = cmd()
    r.check()
    f.record(peer.id, r.ms)
    return float(r.ms)


# -- networks ------------------------------------------------------------------------

def network_cli(peers: Sequence[Peer], plan: Plan, log: Callable[[str], None]) -> list[Figure]:
    create = Figure("net_create_cli", "network create, CLI", "ms", NETWORKS,
                    "`docker network create NAME` (muslin CLI: `muslin network create`, "
                    "Podman: `podman network create`) timed as a whole command, fork to exit; "
                    "a bridge network with a subnet from the default pools.")
    rm = Figure("net_rm_cli", "network rm, CLI", "ms", NETWORKS,
                "`docker network rm NAME` (likewise per peer) of the network just made, "
                "timed as a whole command.")
    run = Interleaver(_eligible(peers, [create, rm], "network_cli"), [create, rm], log)
    # names carry the peer: the docker CLI and the muslin CLI share one muslind
    run.step(lambda p: p.network_create(f"bnw-{p.id}").check())
    run.step(lambda p: p.network_rm(f"bnw-{p.id}").check())
    for i in range(plan.network_rounds):
        def do_create(p: Peer, i: int = i) -> float:
            return _timed(create, p, lambda: p.network_create(f"bn{i}-{p.id}"))

        def do_rm(p: Peer, i: int = i) -> float:
            return _timed(rm, p, lambda: p.network_rm(f"bn{i}-{p.id}"))

        run.step(do_create)
        run.step(do_rm)
    return [create, rm]


def network_ls(peers: Sequence[Peer], plan: Plan, log: Callable[[str], None]) -> list[Figure]:
    ls = Figure("net_ls_cli", "network ls, CLI", "ms", NETWORKS,
                "`docker network ls` (`muslin network ls`, `podman network ls`) with the "
                "predefined networks only, timed as a whole command.")
    run = Interleaver(_eligible(peers, [ls], "network_cli"), [ls], log)
    run.step(lambda p: p.network_ls().check())
    for _ in range(plan.ls_rounds):
        run.step(lambda p: _timed(ls, p, p.network_ls))
    return [ls]


def _api_create(sock: str, name: str) -> tuple[str, float]:
    status, body, ms = http_request(sock, "POST", f"{API}/networks/create",
                                    {"Name": name, "Driver": "bridge", "CheckDuplicate": True})
    if status != 201:
        raise PeerError(f"POST /networks/create: {status} {body[:200]!r}")
    return str(json.loads(body)["Id"]), ms


def _api_delete(sock: str, net_id: str) -> float:
    status, body, ms = http_request(sock, "DELETE", f"{API}/networks/{net_id}")
    if status not in (200, 204):
        raise PeerError(f"DELETE /networks/{net_id[:12]}: {status} {body[:200]!r}")
    return ms


def network_api(peers: Sequence[Peer], plan: Plan, log: Callable[[str], None]) -> list[Figure]:
    create = Figure("net_create_api", "POST /networks/create, API", "ms", NETWORKS,
                    "a raw HTTP request over the unix socket on a fresh connection, timed "
                    "in-process from connect to the whole answer read; body "
                    '`{"Name", "Driver": "bridge", "CheckDuplicate": true}`, API v1.41. '
                    "Podman answers through `podman system service` (its Docker-compatible "
                    "API).")
    delete = Figure("net_rm_api", "DELETE /networks/{id}, API", "ms", NETWORKS,
                    "a raw HTTP DELETE of the network just made, timed likewise.")
    run = Interleaver(_eligible(peers, [create, delete], "api"), [create, delete], log)
    ids: dict[str, str] = {}

    def do_create(p: Peer, name: str, record: bool) -> None:
        sock = p.api_socket()
        assert sock is not None
        ids[p.id], ms = _api_create(sock, name)
        if record:
            create.record(p.id, ms)

    def do_delete(p: Peer, record: bool) -> None:
        sock = p.api_socket()
        assert sock is not None
        ms = _api_delete(sock, ids.pop(p.id))
        if record:
            delete.record(p.id, ms)

    run.step(lambda p: do_create(p, f"baw-{p.id}", False))
    run.step(lambda p: do_delete(p, False))
    for i in range(plan.api_rounds):
        run.step(functools.partial(lambda i, p: do_create(p, f"ba{i}-{p.id}", True), i))
        run.step(lambda p: do_delete(p, True))
    return [create, delete]


# -- containers ----------------------------------------------------------------------

def _setup_networks(run: Interleaver, names: Sequence[tuple[str, str]]) -> None:
    for name, subnet in names:
        run.step(functools.partial(lambda n, s, p: p.network_create(n, "--subnet", s).check(),
                                   name, subnet))


def _teardown(peers: Sequence[Peer], containers: Sequence[str], networks: Sequence[str],
              log: Callable[[str], None], rm_timeout: float | None = None) -> None:
    """Removes a group's containers (untimed; many: peers side by side) and networks."""
    if len(containers) > 10:
        in_threads(lambda p: p.remove_containers(list(containers), threaded=True), peers,
                   len(peers))
    for p in peers:
        if containers and len(containers) <= 10:
            p.remove_containers(list(containers), timeout=rm_timeout)
        for n in networks:
            r = p.network_remove_all(n)
            if r.rc != 0:
                log(f"bench:   {p.label}: teardown: network rm {n}: {r.err.strip()[:200]}")


def containers_run(peers: Sequence[Peer], plan: Plan, log: Callable[[str], None]
                   ) -> list[Figure]:
    none = Figure("run_none", "run -d, --network none", "ms", CONTAINERS,
                  "`docker run -d --network none busybox sleep` (`podman run -d ...`, with "
                  "`--ulimit` and `--cgroup-parent`): create and start a container without "
                  "networking, timed until the CLI returns (container running); removed "
                  "untimed afterwards.")
    bridge = Figure("run_bridge", "run -d, user bridge", "ms", CONTAINERS,
                    "the same on a user-defined bridge network (`--network benchnet --dns "
                    "<stub>`): the container gets a veth, an address and DNS.")
    share = Figure("run_net_share", "run -d, the network's share", "ms", CONTAINERS,
                   "per round (paired: the two runs side by side), `run -d` on the bridge "
                   "minus `run -d --network none`: what networking adds to a container's "
                   "start (the issue's goal for muslin: at most 20 ms).")
    eligible = _eligible(peers, [none, bridge, share], "containers")
    run = Interleaver(eligible, [none, bridge, share], log)
    _setup_networks(run, [("benchnet", "10.90.0.0/16")])
    made: list[str] = []
    try:
        run.step(lambda p: p.run_container("rn-warm", "none").check())
        run.step(lambda p: p.run_container("rb-warm", "benchnet").check())
        made += ["rn-warm", "rb-warm"]
        for i in range(plan.run_rounds):
            made += [f"rn-{i}", f"rb-{i}"]

            def run_none(p: Peer, i: int = i) -> float:
                return _timed(none, p, lambda: p.run_container(f"rn-{i}", "none"))

            def run_bridge(p: Peer, i: int = i) -> float:
                return _timed(bridge, p, lambda: p.run_container(f"rb-{i}", "benchnet"))

            def remove(p: Peer, i: int = i) -> None:
                p.remove_containers([f"rn-{i}", f"rb-{i}"])

            run.step(run_none)
            run.step(run_bridge)
            run.step(remove)
        for p in eligible:
            if p.id not in share.status:
                for d in stats.paired_differences(none.samples.get(p.id, []),
                                                  bridge.samples.get(p.id, [])):
                    share.record(p.id, d)
    finally:
        _teardown(eligible, made, ["benchnet"], log)
    return [none, bridge, share]


def containers_connect(peers: Sequence[Peer], plan: Plan, log: Callable[[str], None]
                       ) -> list[Figure]:
    conn = Figure("connect", "network connect", "ms", CONTAINERS,
                  "`docker network connect benchnet2 c` of a running container (on "
                  "benchnet) to a second bridge network, timed as a whole command.")
    disc = Figure("disconnect", "network disconnect", "ms", CONTAINERS,
                  "`docker network disconnect benchnet2 c`, timed likewise.")
    eligible = _eligible(peers, [conn, disc], "containers")
    run = Interleaver(eligible, [conn, disc], log)
    _setup_networks(run, [("benchnet", "10.90.0.0/16"), ("benchnet2", "10.91.0.0/16")])
    try:
        run.step(lambda p: p.run_container("cd-ctr", "benchnet").check())
        run.step(lambda p: p.connect("benchnet2", "cd-ctr").check())
        run.step(lambda p: p.disconnect("benchnet2", "cd-ctr").check())
        for _ in range(plan.connect_rounds):
            run.step(lambda p: _timed(conn, p, lambda: p.connect("benchnet2", "cd-ctr")))
            run.step(lambda p: _timed(disc, p, lambda: p.disconnect("benchnet2", "cd-ctr")))
    finally:
        _teardown(eligible, ["cd-ctr"], ["benchnet2", "benchnet"], log)
    return [conn, disc]


def endpoints(peers: Sequence[Peer], plan: Plan, log: Callable[[str], None]) -> list[Figure]:
    n = plan.endpoints
    raw = Figure("_ep_raw", "", "ms", CONTAINERS, "")
    eligible = _eligible(peers, [raw], "containers")
    run = Interleaver(eligible, [raw], log)
    _setup_networks(run, [("epnet", "10.92.0.0/16")])
    memory: dict[str, dict[str, float]] = {}
    t0 = time.monotonic()
    try:
        def one(p: Peer, i: int) -> float:
            try:
                return _timed(raw, p, lambda: p.run_container(f"ep-{i}", "epnet"))
            except PeerError as e:
                raise PeerError(f"container {i + 1}: {e}") from None

        for i in range(n):
            run.step(functools.partial(lambda i, p: one(p, i), i))
            if i % 100 == 99:
                log(f"bench:   {i + 1}/{n} endpoints per peer ({time.monotonic() - t0:.0f} s)")
        if plan.memory:
            time.sleep(2)
            for p in run.active:
                memory[p.id] = p.memory()
    finally:
        _teardown(eligible, [f"ep-{i}" for i in range(n)], ["epnet"], log)
    out: list[Figure] = []
    scales = [s for s in (100, 1000) if s <= n] or [n]
    first = Figure("ep_first10", "run -d, endpoints 1–10 on one bridge", "ms", CONTAINERS,
                   f"`run -d --network epnet` of containers one after another on one bridge "
                   f"({n} in all, none removed in between): the first 10.")
    out.append(first)
    lasts = []
    for s in scales:
        lasts.append((s, Figure(f"ep{s}_last10", f"run -d, endpoints {s - 9:,}–{s:,}", "ms",
                                CONTAINERS, f"the same run's containers {s - 9}–{s} (with "
                                f"{s - 10} already on the bridge).")))
    growths = [(s, Figure(f"ep{s}_growth", f"growth, endpoints {s - 9:,}–{s:,} / 1–10", "×",
                          CONTAINERS, f"median of containers {s - 9}–{s} over median of the "
                          "first 10 (1.00: no slow-down with scale)")) for s in scales]
    for p in peers:
        st = raw.status.get(p.id)
        samples = raw.samples.get(p.id, [])
        # a peer that failed part-way keeps the figures its samples cover
        if len(samples) >= 10:
            first.samples[p.id] = samples[:10]
        elif st is not None:
            first.status[p.id] = st
        for (s, f), (_, g) in zip(lasts, growths, strict=True):
            if len(samples) < s:
                f.status[p.id] = g.status[p.id] = st or "n/a"
                continue
            f.samples[p.id] = samples[s - 10:s]
            ratio = stats.growth(samples[:s], 10)
            if ratio is not None:
                g.samples[p.id] = [ratio]
    out += [f for _, f in lasts] + [g for _, g in growths]
    if plan.memory:
        daemon = Figure("rss_daemon", f"daemon RSS with {n:,} endpoints", "MB", "Memory",
                        f"resident memory of the daemon with {n:,} running containers on one "
                        "bridge: dockerd + its containerd; muslind; Podman has no daemon, "
                        "shown is aardvark-dns, its DNS server (MiB).")
        monitors = Figure("pss_monitors", f"container monitors PSS, {n:,} containers", "MB",
                          "Memory", "proportional set size summed over the per-container "
                          "monitors: containerd-shim-runc-v2 (Docker), conmon (Podman, "
                          "muslin) (MiB).")
        for p in peers:
            st = raw.status.get(p.id)
            if st is not None or p.id not in memory or not memory[p.id]:
                daemon.status[p.id] = monitors.status[p.id] = st or "n/a"
                continue
            daemon.samples[p.id] = [memory[p.id]["daemon"]]
            if "monitors" in memory[p.id]:
                monitors.samples[p.id] = [memory[p.id]["monitors"]]
            else:
                monitors.status[p.id] = "n/a"
        out += [daemon, monitors]
    return out


# -- the in-process CNM core (muslin only) --------------------------------------------

_CNM_CHILD = """
import json, sys, tempfile
from bench import cnm_inprocess
base = sys.argv[1]

class _Tempfile:  # keeps its directory (and mounts) under the bench's run directory
    @staticmethod
    def mkdtemp(prefix=None, suffix=None, dir=None):
        return tempfile.mkdtemp(prefix=prefix, suffix=suffix, dir=base)

cnm_inprocess.tempfile = _Tempfile
print(json.dumps(cnm_inprocess.run(int(sys.argv[2]), int(sys.argv[3]))))
"""


def cnm(run_dir: Path, plan: Plan, log: Callable[[str], None]) -> dict[str, Any]:
    """bench/cnm_inprocess.py's run() in a child process (same private mount namespace),
    its figures unchanged."""
    base = run_dir / "cnm"
    base.mkdir(parents=True, exist_ok=True)
    try:
        r = subprocess.run([sys.executable, "-c", _CNM_CHILD, str(base), str(plan.cnm_repeat),
                            str(plan.cnm_endpoints)], capture_output=True, text=True,
                           timeout=1800, cwd=REPO)
    except subprocess.TimeoutExpired:
        return {"status": "failed: timed out after 1800 s"}
    if r.returncode != 0:
        last = (r.stderr.strip() or f"exit {r.returncode}").splitlines()[-1]
        return {"status": f"failed: {last[:300]}"}
    try:
        figures = json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"status": f"failed: no JSON in its output: {r.stdout[-200:]!r}"}
    return {"status": "ok", "repeat": plan.cnm_repeat, "endpoints": plan.cnm_endpoints,
            "figures": figures}
