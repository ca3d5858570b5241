"""The log-throughput figure (issue 10): lines per second a container writes through a
log driver without losing one, per driver name (`Plan.log_drivers`), interleaved across
the peers.

A container writes N lines of 100 bytes (`yes <99 characters> | head -n N`); the time is
from `run -d` to `wait` returning; afterwards (untimed) `logs` is read back and its lines
counted: a peer that lost a line gets "failed: lost ..." instead of a figure. A driver a
peer does not have is reported as such, never dropped. Must not touch anything but the
peers' CLIs.
"""

from __future__ import annotations

import functools
import subprocess
import time
from collections.abc import Callable, Sequence

from bench import loadtools
from bench.figures import Figure, Interleaver, Plan, _eligible
from bench.peers import NOT_YET, Peer, PeerError

LOGS = "Logs"
LINE = "x" * 99  # + the newline: 100 bytes
KEEP_ALL = "max-size=1g"  # no rotation: every line stays to be counted


def _count_lines(p: Peer, name: str, timeout: float) -> tuple[int, int]:
    """(lines, lines not exactly LINE) of `logs NAME`'s stdout, streamed (never held)."""
    argv, env = p.cli_argv("logs", name)
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=p.preexec())
    lines = bad = 0
    want = (LINE + "\n").encode()
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    tail = b""
    for chunk in iter(lambda: proc.stdout.read(1 << 20), b""):  # type: ignore[union-attr]
        data = tail + chunk
        parts = data.split(b"\n")
        tail = parts.pop()
        lines += len(parts)
        bad += sum(1 for x in parts if x + b"\n" != want)
        if time.monotonic() > deadline:
            proc.kill()
            raise PeerError(f"`logs {name}` still reading after {timeout:.0f} s")
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.wait() != 0:
        raise PeerError(f"`logs {name}` exit {proc.returncode}: {err.strip()[-200:]}")
    if tail:
        lines += 1
        bad += 1
    return lines, bad


def _file_format(p: Peer, name: str) -> str:
    """The format of the container's log file as found on disk ("" when the peer names
    no file)."""
    r = p.cli("inspect", "--format", "{{.LogPath}}", name, timeout=60)
    path = r.out.strip() if r.rc == 0 else ""
    if not path or path == "<no value>":
        return ""
    try:
        with open(path, "rb") as f:
            return loadtools.log_file_format(f.read(256))
    except OSError:
        return ""


def log_throughput(peers: Sequence[Peer], plan: Plan, log: Callable[[str], None],
                   notes: list[str]) -> list[Figure]:
    n = plan.log_lines
    figs = {d: Figure(f"log_{d}", f"log lines/s, {d}", "lines/s", LOGS,
                      f"a container (`--network none --log-driver {d} --log-opt "
                      f"{KEEP_ALL}`) writes {n:,} lines of 100 bytes (`yes ... | head`), "
                      "timed from `run -d` to `wait` returning; `logs` is read back "
                      "afterwards (untimed) and every line counted: a lost or damaged line "
                      "fails the figure (max-size keeps every line in one file, for every "
                      "peer alike: Docker's `local` keeps 5 × 20 MB by default). Podman's "
                      "`json-file` is its k8s-file. The notes say which format each peer's "
                      "file was in. Higher is better.")
            for d in plan.log_drivers}
    formats: set[tuple[str, str]] = set()
    eligible = _eligible(peers, list(figs.values()), "containers")
    run = Interleaver(eligible, list(figs.values()), log)
    cmd = ("sh", "-c", f"yes {LINE} | head -n {n}")
    unsupported: dict[tuple[str, str], str] = {}

    def once(p: Peer, driver: str, name: str) -> None:
        if (p.id, driver) in unsupported:
            return
        try:
            t = time.perf_counter()
            p.run_container(name, "none", "--log-driver", driver, "--log-opt", KEEP_ALL,
                            command=cmd, timeout=plan.log_timeout).check()
            w = p.cli("wait", name, timeout=plan.log_timeout).check()
            seconds = time.perf_counter() - t
            if w.out.strip() not in ("0", ""):
                raise PeerError(f"the writer exited {w.out.strip()}")
            if (p.id, driver) not in formats:
                formats.add((p.id, driver))
                fmt = _file_format(p, name)
                if fmt:
                    notes.append(f"logs: {p.label} with `--log-driver {driver}` wrote its "
                                 f"log file in {fmt} format.")
            lines, bad = _count_lines(p, name, plan.log_timeout)
            p.remove_containers([name])
            if lines != n or bad:
                raise PeerError(f"read back {lines:,} of {n:,} lines ({bad} damaged)")
        except PeerError as e:  # this driver's figure fails; the peer's others go on
            unsupported[p.id, driver] = f"failed: {e}"
            figs[driver].status[p.id] = unsupported[p.id, driver]
            log(f"bench:   {p.label}: {driver}: {e}")
            return
        figs[driver].record(p.id, n / seconds)

    for d in plan.log_drivers:
        run.step(functools.partial(lambda d, p: _warm(p, d, unsupported, figs), d))
    for i in range(plan.log_rounds):
        for d in plan.log_drivers:
            run.step(functools.partial(lambda d, i, p: once(p, d, f"lg-{d}-{i}"), d, i))
    return list(figs.values())


def _warm(p: Peer, driver: str, unsupported: dict[tuple[str, str], str],
          figs: dict[str, Figure]) -> None:
    """One short container per driver first: untimed, and it finds drivers a peer lacks
    (reported "not supported yet: <its error>", the peer stays for the other drivers)."""
    name = f"lg-warm-{driver}"
    r = p.run_container(name, "none", "--log-driver", driver, "--log-opt", KEEP_ALL,
                        command=("echo", "warm"))
    if r.rc != 0:
        msg = (r.err.strip() or r.out.strip() or f"exit {r.rc}").splitlines()[-1]
        lacks = "driver" in msg.lower() and not p.hung_reason
        # muslin (the primary, not compared) may not have a driver *yet*; a peer lacks it
        kind = (NOT_YET if not p.compare else "no such driver") if lacks else "failed"
        unsupported[p.id, driver] = f"{kind}: {msg[:150]}"
        figs[driver].status[p.id] = unsupported[p.id, driver]
        p.remove_containers([name])
        return
    p.cli("wait", name, timeout=60)
    p.remove_containers([name])
