"""The bench's driver: `bench/run [--quick] [--only GROUP ...]` (as root) ends up here.

Two processes:
- the outer one stays in the machine's namespaces: it sweeps dead runs, snapshots the
  root namespace (links, `ip netns list`, nft and iptables rules, sysctls, mounts,
  cgroups), starts the inner one, and afterwards ends whatever is left, removes the run's
  cgroups and directories, restores the sysctls, checks the snapshot again and writes
  bench/results/latest.{json,md,png};
- the inner one runs in a private mount namespace (`unshare --mount`), so that every
  mount the peers make (namespaces, overlayfs, the bind mounts over /run/netns,
  /run/containerd, /etc/docker, ...) lives and dies there and the machine's mount table
  never sees one. It starts the peers, runs the figures and stops the peers.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import functools
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from bench import dataplane, figures, host, image, logbench, report
from bench.peers import (
    REPO,
    STUB_DNS,
    Context,
    DockerdPeer,
    MuslinCliPeer,
    MuslindPeer,
    Peer,
    PodmanPeer,
    find_docker_cli,
    muslin_prefix,
)

RESULTS = REPO / "bench" / "results"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class Interrupted(BaseException):
    """A signal asked the bench to stop: clean up and leave."""


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench/run", description=(
        "Benchmarks muslin side by side with Debian's dockerd and Podman (netavark)."))
    p.add_argument("--quick", action="store_true", help="a short run (under 5 minutes)")
    p.add_argument("--only", nargs="+", metavar="GROUP", choices=figures.GROUPS,
                   help=f"run only these groups of figures: {', '.join(figures.GROUPS)}")
    p.add_argument("--peers", nargs="+", metavar="PEER",
                   choices=("muslin", "muslin-cli", "dockerd", "podman"),
                   help="compare only these peers (default: all)")
    p.add_argument("--out", type=Path, default=RESULTS,
                   help="where latest.{json,md,png} go (default: bench/results)")
    p.add_argument("--inner", type=Path, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def machine_info() -> dict[str, Any]:
    mem = 0.0
    with contextlib.suppress(OSError), open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) / 1024 / 1024
    os_name = ""
    with contextlib.suppress(OSError):
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                os_name = line.split("=", 1)[1].strip('"')
    with contextlib.suppress(OSError):
        os_name += f" ({Path('/etc/debian_version').read_text().strip()})"
    return {"kernel": platform.release(), "arch": platform.machine(),
            "cpus": os.cpu_count(), "memory_gib": round(mem, 1), "os": os_name,
            "load_before": " ".join(f"{x:.2f}" for x in os.getloadavg())}


# -- the outer process --------------------------------------------------------------

def outer(args: argparse.Namespace, argv: Sequence[str]) -> int:
    if os.geteuid() != 0:
        log("bench: needs root (it starts daemons and makes namespaces): sudo bench/run")
        return 2
    if os.environ.get("CI", "").lower() == "true":
        log("bench: refusing to run under CI=true (the bench never runs in CI)")
        return 2
    host.sweep_dead_runs(log)
    host.BENCH_ROOT.mkdir(parents=True, exist_ok=True)
    while True:  # short: conmon wants Podman's runroot path under 50 characters
        run_id = time.strftime("%m%d-%H%M%S")
        run_dir = host.BENCH_ROOT / run_id
        try:
            run_dir.mkdir()
            break
        except FileExistsError:
            time.sleep(1)
    host.write_json(run_dir / "owner.json",
                    {"pid": os.getpid(), "start": host.start_time(os.getpid()), "mnt_ns": [],
                     "muslin_prefix": muslin_prefix(run_id)})
    host.set_subreaper()
    log(f"bench: run {run_id} ({'quick' if args.quick else 'full'}); "
        "snapshotting the root namespace")
    before = host.snapshot()
    started = datetime.datetime.now(datetime.UTC)
    inner: subprocess.Popen[bytes] | None = None
    stop = {"signal": 0}

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop["signal"] = signum
        if inner is not None and inner.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(inner.pid, signal.SIGTERM)

    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)
    rc_inner = -1

    def on_child(_signum: int, _frame: FrameType | None) -> None:
        if inner is not None:
            host.reap_orphans(keep=inner.pid)

    try:
        inner = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", sys.executable, "-m",
             "bench.suite", "--inner", str(run_dir), *argv],
            cwd=REPO, start_new_session=True,
            preexec_fn=lambda: host.set_parent_death_signal(signal.SIGTERM))
        signal.signal(signal.SIGCHLD, on_child)
        rc_inner = _wait_inner(inner, run_dir)
    finally:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(s, signal.SIG_IGN)
        check = _restore(run_dir, before)
        results = host.read_json(run_dir / "results.json")
        _keep_logs(run_dir, args.out)
        if not check["problems"]:
            shutil.rmtree(run_dir, ignore_errors=True)
            with contextlib.suppress(OSError):
                host.BENCH_ROOT.rmdir()  # when empty: no other run is going on
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(s, signal.SIG_DFL)
    finished = datetime.datetime.now(datetime.UTC)
    ok = _finish(results, check, args, started, finished, rc_inner, stop["signal"])
    return 0 if ok else 1


def _wait_inner(inner: subprocess.Popen[bytes], run_dir: Path) -> int:
    """Waits for the inner process; meanwhile reaps the orphans (shims, conmons) that
    end: we are the run's subreaper."""
    recorded = False
    while True:
        try:
            rc = inner.wait(timeout=0.5)
            return rc
        except subprocess.TimeoutExpired:
            pass
        host.reap_orphans(keep=inner.pid)
        if not recorded:
            info = host.read_json(run_dir / "inner.json")
            if info:
                owner = host.read_json(run_dir / "owner.json", {})
                owner["mnt_ns"] = [info["mnt_ns"]]
                host.write_json(run_dir / "owner.json", owner)
                recorded = True


def _restore(run_dir: Path, before: host.RootState) -> dict[str, Any]:
    """Ends what is left, removes the run's cgroups and directories made on the machine,
    restores the sysctls and compares the root namespace with the snapshot."""
    problems: list[str] = []
    notes: list[str] = []
    inner_info = host.read_json(run_dir / "inner.json", {})
    host.reap_children()
    left = set(host.descendants(os.getpid()))
    if inner_info.get("mnt_ns"):
        left |= set(host.processes_in_mnt_ns(int(inner_info["mnt_ns"])))
    left = {p for p in left if host.alive(p)}
    if left:
        notes.append(f"ended {len(left)} process(es) the run left: "
                     + "; ".join(host.cmdline(p)[:60] for p in sorted(left))[:400])
        problems += [f"process would not die: {k}" for k in host.end_processes(left)
                     if host.alive(int(k.split()[0]))]
    problems += host.remove_cgroup_tree(f"muslin-bench-{run_dir.name}")
    problems += host.remove_cgroup_tree(muslin_prefix(run_dir.name))
    problems += [f"left on the machine: {e}" for e in
                 host.remove_created_paths(host.read_json(run_dir / "created-paths.json", []))]
    for p in host.mount_points():
        if host.under(p, run_dir):
            problems.append(f"mount left in the root mount namespace: {p}")
    restored = host.restore_sysctls(before.sysctls)
    if restored:
        notes.append("restored sysctls: " + "; ".join(restored))
    after = host.snapshot()
    fails, more_notes = host.diff_states(
        before, after, own={f"muslin-bench-{run_dir.name}", muslin_prefix(run_dir.name)})
    # the cgroup check: a run's own cgroup (removed above) is the only one it makes
    return {"unchanged": not fails and not problems, "differences": fails + problems,
            "problems": problems, "checked": host.CHECKED, "notes": notes + more_notes}


def _keep_logs(run_dir: Path, out: Path) -> None:
    """Copies the peers' logs next to the results (bench/results/logs/, not committed)."""
    dest = out / "logs"
    shutil.rmtree(dest, ignore_errors=True)
    for f in sorted(run_dir.glob("*/*.log")):
        with contextlib.suppress(OSError):
            dest.mkdir(parents=True, exist_ok=True)
            shutil.copy(f, dest / f"{f.parent.name}-{f.name}")


def _finish(results: dict[str, Any] | None, check: dict[str, Any], args: argparse.Namespace,
            started: datetime.datetime, finished: datetime.datetime, rc_inner: int,
            signum: int) -> bool:
    machine_ok = bool(check["unchanged"])
    verdict = ("bench: the machine is as before the run (" + ", ".join(check["checked"])
               + ")") if machine_ok else (
        "bench: FAILED: the machine is NOT as before the run:\n  "
        + "\n  ".join(check["differences"]))
    if results is None:
        log(f"bench: the run produced no results (inner exit {rc_inner}); "
            "bench/results/latest.* left as they were")
        log(verdict)
        return False
    results["started"] = started.strftime("%Y-%m-%d %H:%M UTC")
    results["duration_s"] = (finished - started).total_seconds()
    results["machine_check"] = {k: v for k, v in check.items() if k != "problems"}
    if signum:
        results.setdefault("notes", []).append(
            f"interrupted by signal {signal.Signals(signum).name}: figures incomplete")
    elif rc_inner != 0:
        results.setdefault("notes", []).append(f"the run ended with exit {rc_inner}")
    for f in results.get("figures", []):
        f["ratios"] = report.figure_ratios(
            f, results["primary"], [p["id"] for p in results["peers"] if p.get("compare")])
    args.out.mkdir(parents=True, exist_ok=True)
    host.write_json(args.out / "latest.json", results)
    md = report.render_markdown(results)
    (args.out / "latest.md").write_text(md)
    try:
        report.write_chart(results, str(args.out / "latest.png"))
        chart = f"{args.out / 'latest.png'}"
    except Exception as e:  # the table matters more than the chart
        chart = f"no chart ({type(e).__name__}: {e})"
    print(md)
    log(f"bench: wrote {args.out / 'latest.json'}, {args.out / 'latest.md'}, {chart}")
    for note in check.get("notes", []):
        log(f"bench: note: {note}")
    log(verdict)
    return machine_ok and rc_inner == 0 and not signum


# -- the inner process --------------------------------------------------------------

NOTES = [
    "Podman makes a network's bridge and firewall rules only when its first container "
    "starts: `podman network create`/`rm` write and delete a JSON file; dockerd and "
    "muslind build the bridge (and dockerd its iptables rules) at create.",
    "Each daemon runs in a network namespace of its own (no uplink: nothing can leave the "
    "machine), with its own data, exec and run directories; the whole run lives in a "
    "private mount namespace. Every container's DNS is the bench's stub server "
    f"(`--dns {STUB_DNS}`, in the daemon's namespace; also the run's /etc/resolv.conf, "
    "which aardvark-dns forwards to) and the image is Debian's busybox-static, imported "
    "(never pulled).",
    "Podman containers get `--ulimit nofile=…,nproc=…` and `--cgroup-parent`: root "
    "cannot raise rlimits on these machines and Podman 4.3 ignores containers.conf's "
    "default_ulimits in `run`.",
]


def inner(args: argparse.Namespace) -> int:
    run_dir: Path = args.inner
    host.write_json(run_dir / "inner.json",
                    {"pid": os.getpid(), "mnt_ns": host.mnt_ns_inode()})
    state = {"cleaning": False}

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if not state["cleaning"]:
            state["cleaning"] = True
            raise Interrupted(signal.Signals(signum).name)

    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)
    plan = figures.QUICK if args.quick else figures.FULL
    groups = list(args.only or figures.GROUPS)
    results: dict[str, Any] = {"schema": 1, "mode": "quick" if args.quick else "full",
                               "machine": machine_info(), "primary": "muslin", "peers": [],
                               "figures": [], "notes": [], "groups": groups,
                               "plan": plan.__dict__}
    results["notes"] += NOTES
    peers: list[Peer] = []
    try:
        _overlay(run_dir)
        ctx = Context(run_dir=run_dir, run_id=run_dir.name, log=log,
                      image_tar=image.build(run_dir / "busybox.tar"),
                      docker_cli=find_docker_cli(), env=_clean_env())
        muslin = MuslindPeer(ctx)
        all_peers: list[Peer] = [muslin, MuslinCliPeer(ctx, muslin), DockerdPeer(ctx),
                                 PodmanPeer(ctx)]
        peers = [p for p in all_peers if not args.peers or p.id in args.peers]
        for p in peers:
            p.start()
        results["peers"] = [_peer_info(p) for p in peers]
        _save(run_dir, results, [])
        done: list[figures.Figure] = []
        runners: dict[str, Callable[..., list[figures.Figure]]] = {
                   "network-cli": figures.network_cli, "network-ls": figures.network_ls,
                   "network-api": figures.network_api, "run": figures.containers_run,
                   "connect": figures.containers_connect, "endpoints": figures.endpoints,
                   "dns": functools.partial(dataplane.dns, run_dir=run_dir),
                   "ports": functools.partial(dataplane.throughput, run_dir=run_dir,
                                             notes=results["notes"]),
                   "ports-start": dataplane.ports_start,
                   "logs": functools.partial(logbench.log_throughput, notes=results["notes"])}
        for g in groups:
            t = time.monotonic()
            log(f"bench: {g} ...")
            try:
                if g == "cnm":
                    results["cnm_inprocess"] = figures.cnm(run_dir, plan, log)
                else:
                    done += runners[g](peers, plan, log)
            except Exception as e:  # a bug in one group must not lose the others
                log(f"bench: {g} crashed:\n{traceback.format_exc()}")
                results["notes"].append(f"group {g} crashed: {type(e).__name__}: {e}")
            log(f"bench: {g} done in {time.monotonic() - t:.0f} s")
            _save(run_dir, results, [f.as_dict(peers) for f in done], peers)
        return 0
    except Interrupted as e:
        results["notes"].append(f"interrupted ({e}) before all figures were done")
        log(f"bench: interrupted ({e}); cleaning up")
        return 130
    finally:
        state["cleaning"] = True
        problems = []
        for p in reversed(peers):
            problems += p.stop()
        mine = host.mnt_ns_inode()
        left = [p for p in set(host.descendants(os.getpid()))
                | set(host.processes_in_mnt_ns(mine)) if host.alive(p)]
        if left:
            problems.append(f"ended {len(left)} leftover process(es): "
                            + "; ".join(host.cmdline(p)[:50] for p in sorted(left))[:300])
            host.end_processes(left)
        problems += host.unmount_under(run_dir)
        for path in reversed(host.OVERLAID):
            with contextlib.suppress(OSError):
                host.umount_lazy(path)
        if problems:
            results["notes"] += [f"clean-up: {p}" for p in problems]
            saved = host.read_json(run_dir / "results.json", {})
            saved.setdefault("notes", []).extend(f"clean-up: {p}" for p in problems)
            if saved:
                host.write_json(run_dir / "results.json", saved)


def _save(run_dir: Path, results: dict[str, Any], figs: list[dict[str, Any]],
          peers: Sequence[Peer] = ()) -> None:
    results["figures"] = figs
    if peers:
        results["peers"] = [_peer_info(p) for p in peers]
    host.write_json(run_dir / "results.json", results)


def _peer_info(p: Peer) -> dict[str, Any]:
    status = p.status
    if p.ok and p.api and p.api_status != "ok":
        status += f"; API figures: {p.api_status}"
    if p.ok and p.containers not in ("ok", "n/a"):
        status += f"; containers: {p.containers}"
    what = {"muslin": "the docker CLI against muslind", "muslin-cli":
            "the muslin CLI against the same muslind", "dockerd": "the docker CLI against "
            "Debian's dockerd", "podman": "the podman CLI (netavark, aardvark-dns)"}
    version = f"{what.get(p.id, '')}: {p.version}" if p.version else what.get(p.id, "")
    return {"id": p.id, "label": p.label, "version": version, "status": status,
            "compare": p.compare}


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DOCKER_", "CONTAINER_", "CONTAINERS_", "MUSLIN_"))}
    env["PATH"] = env.get("PATH") or "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    env["LC_ALL"] = "C.UTF-8"
    return env


def _overlay(run_dir: Path) -> None:
    """Bind-mounts a directory of the run over each path the peers write to on the
    machine (this mount namespace only). A path made for it is recorded first, so that a
    killed run's sweep removes it too."""
    created: list[str] = host.read_json(run_dir / "created-paths.json", [])
    for path in host.OVERLAID:
        p = Path(path)
        missing = []
        q = p
        while not q.exists():
            missing.append(str(q))
            q = q.parent
        if missing:
            created += missing
            host.write_json(run_dir / "created-paths.json", created)
            p.mkdir(parents=True)
        src = run_dir / "overlay" / path.lstrip("/")
        src.mkdir(parents=True, exist_ok=True)
        host.bind_mount(str(src), path)
    # the peers' upstream resolver is the stub in their own namespace (aardvark-dns and
    # muslind read /etc/resolv.conf for names no --dns covers)
    resolv = run_dir / "overlay" / "resolv.conf"
    resolv.write_text(f"nameserver {STUB_DNS}\n")
    host.bind_mount(str(resolv), str(Path("/etc/resolv.conf").resolve()))


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    # muslind and the muslin CLI run from this checkout's sources (a worktree benches
    # its own code, whatever the interpreter's site-packages hold)
    src = str(REPO / "src")
    if os.environ.get("PYTHONPATH", "").split(":")[0] != src:
        os.environ["PYTHONPATH"] = ":".join(
            x for x in (src, os.environ.get("PYTHONPATH", "")) if x)
    if args.inner:
        return inner(args)
    return outer(args, argv)


if __name__ == "__main__":
    sys.exit(main())
