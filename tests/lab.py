"""The kernel test lab: throwaway network namespaces, hosts, links and processes.

Everything the lab makes lives under LAB_ROOT (/run/muslin-lab). Each test run (one
pytest process) owns a run directory `run-<pid>-<random>/` holding an `owner` file
(pid and start time of the pytest process), a record of every process the lab spawns
(`procs/`, pid plus start time so that a recycled pid is never killed) and of any
cgroup (`cgroups`). Each `Lab` (one per test) owns a directory below its run
(`lab-<n>/`) with its namespaces (bind-mounted nsfs files made by
`muslin.kernel.netns.create`), its hosts' state/run/exec directories and its logs.

Rules kept here: links, routes and addresses are made only inside namespaces under
LAB_ROOT (every helper checks), namespaces are entered with `nsenter --net=PATH`
or setns (never `ip netns exec`), and waits poll with a deadline.

`sweep()` removes whatever dead runs left behind (after a run killed with kill -9),
`sweep(all_runs=True)` everything. As a command: `python tests/lab.py sweep [--all]`.
The sweep needs nothing but the standard library.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import dataclasses
import errno
import ipaddress
import itertools
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from muslin.kernel import Host, Links

T = TypeVar("T")

# Resolved, so that it compares with the mount table's canonical paths.
LAB_ROOT = Path(os.path.realpath(os.environ.get("MUSLIN_LAB_ROOT", "/run/muslin-lab")))
TESTS_DIR = Path(__file__).resolve().parent
SRC_DIR = TESTS_DIR.parent / "src"
MNT_DETACH = 2
# The namespace this process started in (the machine's, for a test run): snapshots
# look at the machine through it, whatever thread asks.
_ROOT_NS_FD = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
_ROOT_NS = f"/proc/{os.getpid()}/fd/{_ROOT_NS_FD}"


class LabError(Exception):
    """The lab was asked for something it will not do, or could not clean up."""


class LabCommandError(subprocess.CalledProcessError):
    """A command run with `Lab.run` failed; the message shows its output."""

    def __str__(self) -> str:
        return (f"{super().__str__()}\n--- stdout ---\n{self.stdout or ''}"
                f"--- stderr ---\n{self.stderr or ''}")


# -- privileges and tools ------------------------------------------------------

def in_ci() -> bool:
    return os.environ.get("CI") == "true"


def unavailable(reason: str) -> None:
    """Skips the current test, or fails it under CI=true (kernel tests never skip in CI)."""
    import pytest

    if in_ci():
        pytest.fail(f"{reason} (CI=true: kernel tests fail instead of skipping)", pytrace=False)
    pytest.skip(reason)


def _cap_eff() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    return 0


def require_root() -> None:
    """Kernel tests need root with CAP_SYS_ADMIN and CAP_NET_ADMIN."""
    if os.geteuid() != 0:
        unavailable("kernel tests need root")
        return
    caps = _cap_eff()
    for bit, name in ((21, "CAP_SYS_ADMIN"), (12, "CAP_NET_ADMIN")):
        if not caps & (1 << bit):
            unavailable(f"kernel tests need {name}")


def require_tools(*names: str) -> None:
    missing = [n for n in names if shutil.which(n) is None]
    if missing:
        unavailable(f"missing tools: {', '.join(missing)}")


# -- waiting -------------------------------------------------------------------

def wait_until(predicate: Callable[[], T], timeout: float = 10.0, what: str = "condition",
               interval: float = 0.01) -> T:
    """Polls predicate until it returns something truthy (returned) or timeout passes."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except Exception as e:  # retried until the deadline
            last_error = e
        if time.monotonic() >= deadline:
            msg = f"timed out after {timeout}s waiting for {what}"
            if last_error is not None:
                msg += f" (last error: {last_error!r})"
            raise TimeoutError(msg)
        time.sleep(interval)
        interval = min(interval * 2, 0.2)


# -- processes -----------------------------------------------------------------

def proc_stat(pid: int) -> tuple[str, int, int] | None:
    """(state, process group, start time in clock ticks) of pid, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    rest = data[data.rindex(")") + 2:].split()
    return rest[0], int(rest[2]), int(rest[19])


def start_time(pid: int) -> int | None:
    st = proc_stat(pid)
    return st[2] if st else None


def alive(pid: int, start: int | None = None) -> bool:
    """True when pid runs (not a zombie) and, if given, started at `start`."""
    st = proc_stat(pid)
    if st is None or st[0] in ("Z", "X"):
        return False
    return start is None or st[2] == start


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _ancestors() -> set[int]:
    out = {os.getpid()}
    pid = os.getpid()
    while pid > 1:
        try:
            with open(f"/proc/{pid}/stat") as f:
                data = f.read()
        except OSError:
            break
        pid = int(data[data.rindex(")") + 2:].split()[1])
        out.add(pid)
    return out


def _signal_verified(pid: int, start: int, sig: int) -> bool:
    """Sends sig to pid only if it is still the process that started at `start`."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return False
    except OSError:  # no pidfd: a small race remains
        fd = -1
    try:
        st = proc_stat(pid)
        if st is None or st[2] != start or st[0] in ("Z", "X"):
            return False
        if fd >= 0:
            signal.pidfd_send_signal(fd, sig)
        else:
            os.kill(pid, sig)
        return True
    except ProcessLookupError:
        return False
    finally:
        if fd >= 0:
            os.close(fd)


def _group_members(pgid: int, not_before: int) -> list[tuple[int, int]]:
    """(pid, start) of live processes in process group pgid that started at/after not_before."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        st = proc_stat(int(entry))
        if st and st[1] == pgid and st[2] >= not_before and st[0] not in ("Z", "X"):
            out.append((int(entry), st[2]))
    return out


def kill_verified(pid: int, start: int, *, group: bool = True, timeout: float = 10.0) -> bool:
    """SIGKILLs the process that started at `start` (and its process group, which the
    lab makes for each spawned process) and waits until it is gone. Returns True if
    something was killed. A pid reused by another process is left alone."""
    mine = _ancestors()
    victims: list[tuple[int, int]] = []
    if pid not in mine and alive(pid, start):
        victims.append((pid, start))
    if group:
        st = proc_stat(pid)
        # While a member of group `pid` lives, the kernel cannot hand out that pid
        # again: a live process with pid but another start time means the group is gone.
        if st is None or st[2] == start:
            victims += [(p, s) for p, s in _group_members(pid, start)
                        if p not in mine and (p, s) not in victims]
    killed = [(p, s) for p, s in victims if _signal_verified(p, s, signal.SIGKILL)]

    def gone() -> bool:
        for p, _s in killed:
            _reap(p)
        return not any(alive(p, s) for p, s in killed)

    wait_until(gone, timeout, what=f"killed processes {[p for p, _ in killed]} to exit")
    return bool(killed)


def _netns_inode_of_tasks() -> Iterable[tuple[int, int]]:
    """(pid, net namespace inode) of every task (thread) on the machine."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            tids = os.listdir(f"/proc/{entry}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                link = os.readlink(f"/proc/{entry}/task/{tid}/ns/net")
            except OSError:
                continue
            m = re.match(r"net:\[(\d+)\]", link)
            if m:
                yield int(entry), int(m.group(1))


def processes_in(inodes: set[int]) -> list[int]:
    """Pids of processes (other than this one and its ancestors) with a task in one of
    the given network namespaces."""
    if not inodes:
        return []
    mine = _ancestors()
    return sorted({pid for pid, ino in _netns_inode_of_tasks() if ino in inodes
                   and pid not in mine})


def kill_in_namespaces(inodes: set[int]) -> list[int]:
    """SIGKILLs every process living in one of the namespaces (they are all the lab's)."""
    killed = []
    for pid in processes_in(inodes):
        st = start_time(pid)
        if st is not None and kill_verified(pid, st, group=False):
            killed.append(pid)
    return killed


# -- mounts --------------------------------------------------------------------

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]


def _unescape(path: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), path)


def mount_points() -> list[str]:
    """Every mount point of this process's mount namespace, in mount order."""
    with open("/proc/self/mountinfo") as f:
        return [_unescape(line.split()[4]) for line in f]


def _under(path: str, top: Path | str) -> bool:
    top = str(top).rstrip("/")
    return path == top or path.startswith(top + "/")


def unmount_under(top: Path | str) -> tuple[list[str], list[str]]:
    """Lazily unmounts every mount at or below top, deepest (and newest) first.
    Returns (unmounted, errors)."""
    done: list[str] = []
    errors: list[str] = []
    for _ in range(100):
        points = [p for p in mount_points() if _under(p, top)]
        if not points:
            break
        order = sorted(enumerate(points), key=lambda ip: (ip[1].count("/"), ip[0]), reverse=True)
        progress = False
        for _i, p in order:
            if _libc.umount2(p.encode(), MNT_DETACH) == 0:
                done.append(p)
                progress = True
            else:
                e = ctypes.get_errno()
                if e not in (errno.EINVAL, errno.ENOENT):
                    errors.append(f"umount {p}: {os.strerror(e)}")
        if not progress:
            break
    return done, errors


def _nsfs_dev() -> int:
    return os.stat("/proc/self/ns/net").st_dev


def netns_inodes_under(top: Path | str) -> set[int]:
    """Inodes of the network namespaces pinned at or below top."""
    dev = _nsfs_dev()
    out = set()
    for p in mount_points():
        if _under(p, top):
            with contextlib.suppress(OSError):
                st = os.stat(p)
                if st.st_dev == dev:
                    out.add(st.st_ino)
    return out


def runc_delete_under(top: Path | str) -> tuple[list[str], list[str]]:
    """`runc --root D delete --force ID` for every runc state D/ID/state.json below top.
    Best effort; nothing happens without runc."""
    runc = shutil.which("runc")
    done: list[str] = []
    errors: list[str] = []
    if runc is None or not os.path.isdir(top):
        return done, errors
    for dirpath, _dirs, files in os.walk(top):
        if "state.json" not in files:
            continue
        root, cid = os.path.split(dirpath)
        try:
            r = subprocess.run([runc, "--root", root, "delete", "--force", cid],
                               capture_output=True, text=True, timeout=30)
            if r.returncode == 0:
                done.append(f"{root}/{cid}")
            else:
                errors.append(f"runc delete {cid}: {r.stderr.strip()}")
        except (OSError, subprocess.SubprocessError) as e:
            errors.append(f"runc delete {cid}: {e}")
    return done, errors


# -- runs ----------------------------------------------------------------------

@dataclass
class Run:
    """This process's run directory: its owner record and its records of processes."""

    dir: Path
    pid: int
    _labs: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def id(self) -> str:
        return self.dir.name

    @classmethod
    def create(cls) -> Run:
        pid = os.getpid()
        for _ in range(10):
            LAB_ROOT.mkdir(mode=0o755, parents=True, exist_ok=True)
            d = LAB_ROOT / f"run-{pid}-{secrets.token_hex(3)}"
            try:
                d.mkdir(mode=0o755)
            except FileNotFoundError:  # a sweep removed an empty LAB_ROOT meanwhile
                continue
            (d / "procs").mkdir()
            owner = {"pid": pid, "start": start_time(pid), "argv": sys.argv,
                     "created": time.time()}
            tmp = d / "owner.tmp"
            tmp.write_text(json.dumps(owner))
            tmp.rename(d / "owner")
            return cls(dir=d, pid=pid)
        raise LabError(f"cannot create a run directory under {LAB_ROOT}")

    def new_lab_dir(self) -> Path:
        d = self.dir / f"lab-{next(self._labs)}"
        d.mkdir(mode=0o755)
        return d

    def record_process(self, pid: int, argv: Sequence[str], ns: str | None = None) -> Path:
        start = start_time(pid)
        rec = self.dir / "procs" / f"{pid}.{start}"
        rec.write_text(json.dumps({"pid": pid, "start": start, "argv": list(argv), "ns": ns}))
        return rec

    def record_cgroup(self, path: str) -> None:
        with self._lock, open(self.dir / "cgroups", "a") as f:
            f.write(path + "\n")


_RUN: Run | None = None
_RUN_LOCK = threading.Lock()


def current_run() -> Run:
    """This process's run (made on first use)."""
    global _RUN
    with _RUN_LOCK:
        if _RUN is None or _RUN.pid != os.getpid() or not _RUN.dir.is_dir():
            _RUN = Run.create()
        return _RUN


def _run_owner(run_dir: Path) -> tuple[int, int | None] | None:
    try:
        owner = json.loads((run_dir / "owner").read_text())
        return int(owner["pid"]), owner.get("start")
    except (OSError, ValueError, KeyError):
        m = re.match(r"run-(\d+)-", run_dir.name)
        return (int(m.group(1)), None) if m else None


def run_alive(run_dir: Path) -> bool:
    """True while the run's owner process lives (a recycled pid does not count)."""
    owner = _run_owner(run_dir)
    return owner is not None and alive(*owner)


def run_dirs() -> list[Path]:
    if not LAB_ROOT.is_dir():
        return []
    return sorted(p for p in LAB_ROOT.iterdir() if p.name.startswith("run-") and p.is_dir())


def recorded_processes(run_dir: Path) -> list[tuple[int, int, list[str]]]:
    """(pid, start, argv) of the processes a run recorded."""
    out = []
    procs = run_dir / "procs"
    if procs.is_dir():
        for rec in procs.iterdir():
            try:
                d = json.loads(rec.read_text())
                out.append((int(d["pid"]), int(d["start"]), list(d.get("argv", []))))
            except (OSError, ValueError, KeyError, TypeError):
                continue
    return out


# -- the sweep -----------------------------------------------------------------

@dataclass
class SweepReport:
    runs: list[str] = field(default_factory=list)
    killed: list[int] = field(default_factory=list)
    runc: list[str] = field(default_factory=list)
    cgroups: list[str] = field(default_factory=list)
    unmounted: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def merge(self, other: SweepReport) -> None:
        for k in ("runs", "killed", "runc", "cgroups", "unmounted", "errors"):
            getattr(self, k).extend(getattr(other, k))

    def __str__(self) -> str:
        return (f"swept {len(self.runs)} run(s), killed {len(self.killed)} process(es), "
                f"{len(self.runc)} runc container(s), {len(self.cgroups)} cgroup(s), "
                f"unmounted {len(self.unmounted)}; errors: {self.errors or 'none'}")


def _remove_cgroups(run_dir: Path, report: SweepReport) -> None:
    try:
        paths = (run_dir / "cgroups").read_text().split()
    except OSError:
        return
    for cg in sorted(set(paths), key=lambda p: p.count("/"), reverse=True):
        if not os.path.isdir(cg):
            continue
        try:
            with open(os.path.join(cg, "cgroup.procs")) as f:
                pids = [int(x) for x in f.read().split()]
            for pid in pids:
                st = start_time(pid)
                if st is not None:
                    kill_verified(pid, st, group=False)
            os.rmdir(cg)
            report.cgroups.append(cg)
        except (OSError, TimeoutError) as e:
            report.errors.append(f"cgroup {cg}: {e}")


def sweep_run(run_dir: Path) -> SweepReport:
    """Removes everything a run made, alive or not: containers, processes, cgroups,
    mounts (which unpins its namespaces, and so removes their links), its directory."""
    report = SweepReport(runs=[run_dir.name])
    inodes = netns_inodes_under(run_dir)
    done, errs = runc_delete_under(run_dir)
    report.runc += done
    report.errors += errs
    for pid, start, _argv in recorded_processes(run_dir):
        try:
            if kill_verified(pid, start):
                report.killed.append(pid)
        except TimeoutError as e:
            report.errors.append(str(e))
    try:
        report.killed += kill_in_namespaces(inodes)
    except TimeoutError as e:
        report.errors.append(str(e))
    _remove_cgroups(run_dir, report)
    done, errs = unmount_under(run_dir)
    report.unmounted += done
    report.errors += errs
    if any(_under(p, run_dir) for p in mount_points()):
        report.errors.append(f"mounts remain under {run_dir}; directory kept")
    else:
        shutil.rmtree(run_dir, ignore_errors=True)
        if run_dir.exists():
            report.errors.append(f"could not remove {run_dir}")
    return report


def sweep(all_runs: bool = False) -> SweepReport:
    """Removes what dead runs left (owner gone or its pid recycled); with all_runs,
    every run's, live ones included. Also unmounts stray mounts under LAB_ROOT that
    belong to no live run, and removes LAB_ROOT itself when it ends up empty."""
    report = SweepReport()
    live: list[Path] = []
    for run_dir in run_dirs():
        if all_runs or not run_alive(run_dir):
            report.merge(sweep_run(run_dir))
        else:
            live.append(run_dir)
    # Mounts below LAB_ROOT outside every live run (a run directory removed by hand).
    stray = {p for p in mount_points() if _under(p, LAB_ROOT)
             and not any(_under(p, r) for r in live)}
    if stray:
        inodes = set()
        dev = _nsfs_dev()
        for p in stray:
            with contextlib.suppress(OSError):
                st = os.stat(p)
                if st.st_dev == dev:
                    inodes.add(st.st_ino)
        report.killed += kill_in_namespaces(inodes)
        for p in sorted(stray, key=lambda p: p.count("/"), reverse=True):
            done, errs = unmount_under(p)
            report.unmounted += done
            report.errors += errs
    if all_runs and LAB_ROOT.is_dir():
        for p in LAB_ROOT.iterdir():
            if not p.name.startswith("run-"):
                with contextlib.suppress(OSError):
                    shutil.rmtree(p) if p.is_dir() else p.unlink()
    with contextlib.suppress(OSError):
        LAB_ROOT.rmdir()  # only when empty
    return report


def finish_run() -> SweepReport:
    """Sweeps this process's own run (end of a test session)."""
    global _RUN
    with _RUN_LOCK:
        run, _RUN = _RUN, None
    report = sweep_run(run.dir) if run is not None and run.dir.exists() else SweepReport()
    with contextlib.suppress(OSError):
        LAB_ROOT.rmdir()
    return report


# -- machine snapshots -----------------------------------------------------------

@dataclass(frozen=True)
class Snapshot:
    """What the lab must leave as it found: seen from the machine's namespace."""

    netns: tuple[str, ...]
    links: tuple[str, ...]
    mounts: tuple[str, ...]
    nft_tables: tuple[tuple[str, str], ...]
    processes: tuple[str, ...]
    runs: tuple[str, ...]

    def lab_mounts_only(self) -> Snapshot:
        """This snapshot with only the mounts below LAB_ROOT (for comparisons that must
        not trip over other work on the machine, such as a benchmark's mounts)."""
        return dataclasses.replace(
            self, mounts=tuple(m for m in self.mounts if _under(m, LAB_ROOT)))

    def diff(self, other: Snapshot, fields: Sequence[str] | None = None) -> list[str]:
        """Lines naming what `other` (later) has that self lacks (+) and vice versa (-)."""
        out = []
        for name in fields or ("netns", "links", "mounts", "nft_tables", "processes", "runs"):
            a, b = list(getattr(self, name)), list(getattr(other, name))
            for x in b:
                if x in a:
                    a.remove(x)
                else:
                    out.append(f"{name}: + {x}")
            out += [f"{name}: - {x}" for x in a]
        return out


def _in_root_ns(fn: Callable[[], T]) -> T:
    """Runs fn on a fresh thread inside the machine's namespace."""
    from muslin.kernel import netns

    return netns.run_in(_ROOT_NS, fn)


def root_link_names() -> list[str]:
    return sorted(name for _i, name in _in_root_ns(socket.if_nameindex))


def root_nft_tables() -> list[tuple[str, str]]:
    from muslin.kernel.nft import Nft

    def tables() -> list[tuple[str, str]]:
        try:
            nft = Nft()
        except Exception as e:  # no libnftables: still comparable between snapshots
            return [("unavailable", type(e).__name__)]
        try:
            return sorted(nft.table_names())
        finally:
            nft.close()

    return _in_root_ns(tables)


def ip_netns_list() -> list[str]:
    if shutil.which("ip"):
        r = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=30)
        return sorted(line for line in r.stdout.splitlines() if line.strip())
    return sorted(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else []


def snapshot(*, ignore_other_live_runs: bool = False,
             keep_runs: Iterable[str] = ()) -> Snapshot:
    """The machine as the lab sees it. With ignore_other_live_runs, the mounts, process
    records and run directories of other live runs (a concurrent pytest) are left out,
    except those of the runs named in keep_runs."""
    runs = run_dirs()
    skip: list[Path] = []
    if ignore_other_live_runs:
        keep = set(keep_runs)
        skip = [r for r in runs if r.name not in keep and run_alive(r)
                and (_run_owner(r) or (0,))[0] != os.getpid()]
        runs = [r for r in runs if r not in skip]
    procs = []
    for r in runs:
        for pid, start, argv in recorded_processes(r):
            if alive(pid, start):
                procs.append(f"{r.name}/{pid} {' '.join(argv)}")
    return Snapshot(
        netns=tuple(ip_netns_list()),
        links=tuple(root_link_names()),
        mounts=tuple(sorted(p for p in mount_points() if not any(_under(p, s) for s in skip))),
        nft_tables=tuple(root_nft_tables()),
        processes=tuple(sorted(procs)),
        runs=tuple(r.name for r in runs),
    )


# -- the lab -------------------------------------------------------------------

@dataclass(frozen=True)
class LabHost:
    """A namespace standing for one machine, plus the directories of one muslin
    instance there: `muslin.Controller(state_dir=h.state_dir, run_dir=h.run_dir,
    prefix=h.prefix, host_netns=h.netns)`."""

    name: str
    netns: str
    dir: str
    state_dir: str
    run_dir: str
    exec_dir: str
    socket: str
    prefix: str


@dataclass(frozen=True)
class LinkPair:
    """A veth pair made by `Lab.link`: `name_a` (address `ip_a`) in `ns_a`, and so on."""

    ns_a: str
    name_a: str
    cidr_a: str
    ns_b: str
    name_b: str
    cidr_b: str

    @property
    def ip_a(self) -> str:
        return self.cidr_a.split("/")[0]

    @property
    def ip_b(self) -> str:
        return self.cidr_b.split("/")[0]


Namespace = str | LabHost


class Underlay:
    """A bridge in a namespace of its own; `attach` plugs a namespace in with a veth
    and the next free address of the underlay's network."""

    def __init__(self, lab: Lab, name: str = "underlay", cidr: str = "198.51.100.0/24") -> None:
        self.lab = lab
        self.network = ipaddress.ip_network(cidr)
        self.netns = lab.netns(name)
        self.bridge = "br0"
        lab.bridge(self.netns, self.bridge)
        self._ports = itertools.count(1)
        self.members: dict[str, str] = {}

    def attach(self, ns: Namespace, ifname: str = "eth0", address: str | None = None) -> str:
        """Plugs ns in (its end named ifname, up); returns its address as ip/len."""
        path = self.lab.path_of(ns)
        used = {c.split("/")[0] for c in self.members.values()}
        ip = address or next(str(h) for h in self.network.hosts() if str(h) not in used)
        cidr = f"{ip}/{self.network.prefixlen}"
        port = f"p{next(self._ports)}"
        self.lab.veth(self.netns, port, path, ifname)
        self.lab.enslave(self.netns, port, self.bridge)
        self.lab.addr(path, ifname, cidr)
        self.members[path] = cidr
        return cidr


class Lab:
    """One test's lab. Every namespace, process and directory it makes is removed by
    `close()` (or leaving the `with` block), in reverse order, even when the test
    failed. Links need no removal of their own: they all live in lab namespaces,
    which disappear with them."""

    def __init__(self, name: str = "lab", *, run: Run | None = None) -> None:
        self.run_ = run or current_run()
        self.dir = self.run_.new_lab_dir()
        (self.dir / "name").write_text(name + "\n")
        self.alias = f"lab:{self.run_.id}"
        self._cleanups: list[tuple[str, Callable[[], None]]] = []
        self._names: set[str] = set()
        self._namespaces: list[str] = []
        self._kernels: dict[str, Host] = {}
        self._seq = itertools.count(1)
        self._closed = False

    # -- lifetime --
    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def defer(self, what: str, fn: Callable[[], None]) -> None:
        """Registers a cleanup (run in reverse order of registration by close())."""
        self._cleanups.append((what, fn))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        errors: list[str] = []
        _done, errs = runc_delete_under(self.dir)
        errors += errs
        while self._cleanups:
            what, fn = self._cleanups.pop()
            try:
                fn()
            except Exception as e:  # every cleanup runs
                errors.append(f"{what}: {e!r}")
        # Anything still living in a namespace pinned below the lab directory (its own,
        # or a sandbox a test's muslin made) is this test's: kill it while the pins
        # still make the namespaces' inode numbers unambiguous.
        try:
            kill_in_namespaces(netns_inodes_under(self.dir))
        except TimeoutError as e:
            errors.append(str(e))
        # The namespaces go last (they were made first); their links go with them.
        from muslin.kernel import netns

        for path in reversed(self._namespaces):
            try:
                netns.delete(path)
            except OSError as e:
                errors.append(f"delete namespace {path}: {e!r}")
        _done, errs = unmount_under(self.dir)
        errors += errs
        shutil.rmtree(self.dir, ignore_errors=True)
        if errors:
            raise LabError("lab cleanup failed: " + "; ".join(errors))

    # -- namespaces --
    def path(self, name: str) -> str:
        """A fresh path in the lab's directory (for a test's own netns.create)."""
        return str(self.dir / f"{name}-{next(self._seq)}")

    def path_of(self, ns: Namespace) -> str:
        """The pinned namespace's path; refuses anything that is not below LAB_ROOT."""
        from muslin.kernel import netns

        path = ns.netns if isinstance(ns, LabHost) else ns
        try:
            real = os.path.realpath(path)
        except OSError as e:
            raise LabError(f"not a lab namespace: {path} ({e})") from e
        if not _under(real, os.path.realpath(LAB_ROOT)) or not netns.is_netns(real):
            raise LabError(f"not a lab namespace: {path}")
        return real

    def netns(self, name: str) -> str:
        """A new namespace (lo up) pinned below the lab directory; returns its path."""
        from muslin.kernel import in_netns, netns

        if self._closed:
            raise LabError("the lab is closed")
        base, n = name, 2
        while name in self._names:
            name, n = f"{base}-{n}", n + 1
        self._names.add(name)
        d = self.dir / "ns"
        d.mkdir(exist_ok=True)
        path = str(d / name)
        netns.create(path)
        self._namespaces.append(path)

        def lo_up(links: Links) -> None:
            links.set(links.require("lo").index, state="up")

        in_netns(path, lo_up)
        return path

    def host(self, name: str = "host") -> LabHost:
        """A namespace plus the directories, socket and unique prefix of one muslin
        instance. The lab leaves its sysctls alone (muslin sets ip_forward itself)."""
        ns = self.netns(name)
        prefix = "t" + secrets.token_hex(3)[:5]
        d = self.dir / prefix
        dirs = {k: d / k for k in ("state", "run", "exec")}
        for p in dirs.values():
            p.mkdir(parents=True, mode=0o755)
        return LabHost(name=name, netns=ns, dir=str(d), state_dir=str(dirs["state"]),
                       run_dir=str(dirs["run"]), exec_dir=str(dirs["exec"]),
                       socket=str(dirs["run"] / "muslin.sock"), prefix=prefix)

    # -- kernel access --
    def call(self, ns: Namespace, fn: Callable[[Links], T]) -> T:
        """fn(links) inside the namespace (muslin.kernel.in_netns)."""
        from muslin.kernel import in_netns

        return in_netns(self.path_of(ns), fn)

    def kernel(self, ns: Namespace) -> Host:
        """A muslin.kernel.Host living in the namespace (closed with the lab)."""
        from muslin.kernel import Host

        path = self.path_of(ns)
        if path not in self._kernels:
            h = Host(path, name=f"lab-{os.path.basename(path)}")
            self._kernels[path] = h

            def close() -> None:
                self._kernels.pop(path, None)
                h.close()

            self.defer(f"close kernel host {path}", close)
        return self._kernels[path]

    def up(self, ns: Namespace, ifname: str) -> None:
        self.call(ns, lambda links: links.set(links.require(ifname).index, state="up"))

    def veth(self, ns_a: Namespace, name_a: str, ns_b: Namespace, name_b: str, *,
             up: bool = True) -> None:
        """A veth pair: name_a in ns_a, name_b in ns_b (both up unless up=False)."""
        a, b = self.path_of(ns_a), self.path_of(ns_b)
        fd = os.open(b, os.O_RDONLY | os.O_CLOEXEC)
        try:
            def make(links: Links) -> None:
                links.add_veth(name_a, name_b, alias=self.alias, peer_netns_fd=fd)
                if up:
                    links.set(links.require(name_a).index, state="up")

            self.call(a, make)
        finally:
            os.close(fd)
        if up:
            self.up(b, name_b)

    def bridge(self, ns: Namespace, name: str, *, up: bool = True) -> None:
        def make(links: Links) -> None:
            link = links.add_bridge(name, alias=self.alias)
            if up:
                links.set(link.index, state="up")

        self.call(ns, make)

    def enslave(self, ns: Namespace, ifname: str, bridge: str) -> None:
        def attach(links: Links) -> None:
            links.set(links.require(ifname).index, master=links.require(bridge).index)

        self.call(ns, attach)

    def addr(self, ns: Namespace, ifname: str, cidr: str) -> None:
        ip, _, plen = cidr.partition("/")
        prefixlen = int(plen) if plen else (32 if ":" not in ip else 128)
        self.call(ns, lambda links: links.add_address(links.require(ifname).index, ip,
                                                      prefixlen))

    def route(self, ns: Namespace, dst: str, *, via: str | None = None,
              dev: str | None = None) -> None:
        """A route in ns: dst is a prefix or "default"; give via, dev or both."""
        if via is None and dev is None:
            raise LabError("route needs via or dev")

        def add(links: Links) -> None:
            if dev is not None:
                oif = links.require(dev).index
            else:
                assert via is not None
                gw = ipaddress.ip_address(via)
                oif = next((link.index for link in links.marked("")
                            for a in links.addresses(link.index)
                            if gw in ipaddress.ip_interface(a.interface).network), 0)
                if not oif:
                    raise LabError(f"no interface in {ns} reaches {via}")
            if dst == "default":
                if via is None:
                    raise LabError("a default route needs via")
                links.replace_default_route(via, oif)
            else:
                links.add_route(dst, oif=oif, gateway=via)

        self.call(ns, add)

    def link(self, ns_a: Namespace, ns_b: Namespace, cidr_a: str, cidr_b: str, *,
             name_a: str | None = None, name_b: str | None = None) -> LinkPair:
        """A veth pair between two namespaces, both ends up and addressed."""
        tag = secrets.token_hex(3)
        name_a = name_a or f"la{tag}"
        name_b = name_b or f"lb{tag}"
        a, b = self.path_of(ns_a), self.path_of(ns_b)
        self.veth(a, name_a, b, name_b)
        self.addr(a, name_a, cidr_a)
        self.addr(b, name_b, cidr_b)
        return LinkPair(a, name_a, cidr_a, b, name_b, cidr_b)

    def underlay(self, name: str = "underlay", cidr: str = "198.51.100.0/24") -> Underlay:
        return Underlay(self, name, cidr)

    # -- processes --
    def _command(self, ns: Namespace, argv: Sequence[str]) -> list[str]:
        return ["nsenter", f"--net={self.path_of(ns)}", "--", *argv]

    def run(self, ns: Namespace, argv: Sequence[str], *, timeout: float = 30,
            check: bool = True, input: str | None = None,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Runs argv inside ns (`nsenter --net=NS argv`) and waits for it."""
        cmd = self._command(ns, argv)
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE if input is not None
                                else subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env,
                                start_new_session=True)
        rec = self.run_.record_process(proc.pid, argv, cmd[1][len("--net="):])
        try:
            out, err = proc.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            raise LabCommandError(-9, list(argv), out, err + f"\n(timed out after {timeout}s)"
                                  ) from None
        finally:
            if proc.returncode is not None:
                rec.unlink(missing_ok=True)
        if check and proc.returncode != 0:
            raise LabCommandError(proc.returncode, list(argv), out, err)
        return subprocess.CompletedProcess(list(argv), proc.returncode, out, err)

    def spawn(self, ns: Namespace, argv: Sequence[str], *, env: dict[str, str] | None = None,
              cwd: str | None = None, stdout: Any = None, stderr: Any = None,
              stdin: Any = subprocess.DEVNULL) -> subprocess.Popen[bytes]:
        """Starts argv inside ns in a process group of its own, recorded in the run
        directory; stopped (group SIGTERM, then SIGKILL) when the lab closes. Output
        goes to `proc.lab_log` unless stdout/stderr are given."""
        cmd = self._command(ns, argv)
        logs = self.dir / "logs"
        logs.mkdir(exist_ok=True)
        log_path = logs / f"{next(self._seq)}-{os.path.basename(argv[0])}.log"
        log = open(log_path, "wb")  # noqa: SIM115 - kept open by the child only
        try:
            proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdin=stdin,
                                    stdout=stdout if stdout is not None else log,
                                    stderr=stderr if stderr is not None else subprocess.STDOUT
                                    if stdout is None else log,
                                    start_new_session=True)
        finally:
            log.close()
        rec = self.run_.record_process(proc.pid, argv, cmd[1][len("--net="):])
        proc.lab_log = str(log_path)  # type: ignore[attr-defined]
        start = start_time(proc.pid)
        self.defer(f"stop {argv[0]} (pid {proc.pid})", lambda: self._stop(proc, start, rec))
        return proc

    @staticmethod
    def _stop(proc: subprocess.Popen[bytes], start: int | None, rec: Path) -> None:
        if proc.returncode is None:
            # Until the leader is reaped its pid names our group and nothing else.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGTERM)

            def exited() -> bool:
                try:
                    return os.waitid(os.P_PID, proc.pid,
                                     os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
                except ChildProcessError:
                    return True

            with contextlib.suppress(TimeoutError):
                wait_until(exited, timeout=5, what=f"pid {proc.pid} to exit")
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        elif start is not None and proc_stat(proc.pid) is None:
            # Reaped by the test: members left in the group still pin its pid number.
            kill_verified(proc.pid, start)
        rec.unlink(missing_ok=True)

    def wait_until(self, predicate: Callable[[], T], timeout: float = 10.0,
                   what: str = "condition") -> T:
        return wait_until(predicate, timeout, what)


# -- the command -----------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="lab.py", description="the muslin test lab")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sweep", help="remove what dead test runs left behind")
    s.add_argument("--all", action="store_true", help="also the runs of live test processes")
    sub.add_parser("status", help="list the lab's runs")
    a = p.parse_args(argv)
    if a.cmd == "status":
        for r in run_dirs():
            state = "alive" if run_alive(r) else "dead"
            mounts = [m for m in mount_points() if _under(m, r)]
            procs = [x for x in recorded_processes(r) if alive(x[0], x[1])]
            print(f"{r}  {state}  {len(mounts)} mount(s)  {len(procs)} process(es)")
        return 0
    report = sweep(all_runs=a.all)
    print(report)
    return 1 if report.errors else 0


if __name__ == "__main__":
    sys.exit(main())
