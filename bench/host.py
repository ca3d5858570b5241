"""The machine side of the bench: snapshots of the root namespace, restoring sysctls,
processes, mounts, cgroups and directories the bench made, and sweeping dead runs.

`diff_states` is pure (unit-tested); the rest reads /proc, /sys and runs nft/iptables.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Collection, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from muslin.containers.monitor import rss_kib  # noqa: F401  (the package's one, for peers.py)

BENCH_ROOT = Path("/run/muslin-bench")
CGROUP_ROOT = Path("/sys/fs/cgroup")
SYSCTLS = ("net/ipv4/ip_forward", "net/ipv4/conf/all/forwarding",
           "net/ipv4/conf/all/route_localnet", "net/ipv6/conf/all/forwarding",
           "net/ipv6/conf/default/forwarding")
SYSCTL_DIRS = ("net/bridge",)
# Paths that the peers write to outside their own directories even when told where to
# keep their state (found by watching them): each gets a bind mount from the run
# directory inside the bench's private mount namespace, so nothing lands on the machine.
OVERLAID = ("/etc/docker", "/opt/containerd", "/run/containerd", "/run/docker",
            "/run/netns", "/run/runc", "/run/containers", "/var/lib/containers",
            "/var/cache/containers")

_libc = ctypes.CDLL(None, use_errno=True)
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p,
                        ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong,
                        ctypes.c_ulong]
CLONE_NEWNET = 0x40000000
MS_BIND = 0x1000
MNT_DETACH = 2
PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36


def _check(rc: int, what: str) -> None:
    if rc != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"{what}: {os.strerror(e)}")


def setns_net(fd: int) -> None:
    _check(_libc.setns(fd, CLONE_NEWNET), "setns")


def bind_mount(src: str, dst: str) -> None:
    _check(_libc.mount(src.encode(), dst.encode(), None, MS_BIND, None), f"mount {dst}")


def umount_lazy(path: str) -> None:
    _check(_libc.umount2(path.encode(), MNT_DETACH), f"umount {path}")


def set_subreaper() -> None:
    """Orphans of our children are re-parented to us, so we can find and end them."""
    _check(_libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), "prctl")


def set_parent_death_signal(sig: int = signal.SIGTERM) -> None:
    _check(_libc.prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0), "prctl")


# -- processes ---------------------------------------------------------------------

def _ppid_map() -> dict[int, int]:
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        rest = stat[stat.rfind(")") + 2:].split()
        out[int(d)] = int(rest[1])
    return out


def descendants(pid: int) -> list[int]:
    """Every live descendant of pid (not pid itself), parents before children."""
    children: dict[int, list[int]] = {}
    for p, pp in _ppid_map().items():
        children.setdefault(pp, []).append(p)
    out: list[int] = []
    todo = list(children.get(pid, []))
    while todo:
        p = todo.pop(0)
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def mnt_ns_inode(pid: int | str = "self") -> int:
    return os.stat(f"/proc/{pid}/ns/mnt").st_ino


def processes_in_mnt_ns(inode: int) -> list[int]:
    me = os.getpid()
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit() and int(d) != me:
            with contextlib.suppress(OSError):
                if os.stat(f"/proc/{d}/ns/mnt").st_ino == inode:
                    out.append(int(d))
    return out


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2] != "Z"


def reap_children(keep: Iterable[int] = ()) -> None:
    """Collects our exited children except those in keep (a subreaper's orphans)."""
    keep = set(keep)
    me = os.getpid()
    for p, pp in _ppid_map().items():
        if pp == me and p not in keep and not alive(p):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(p, os.WNOHANG)


def reap_orphans(keep: int) -> None:
    """Collects every exited child except `keep` (left for its Popen), at once: a
    subreaper that leaves orphans as zombies would make daemons that watch their
    monitors' pids (kill(pid, 0)) wait for ever."""
    while True:
        try:
            info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return
        if info is None or info.si_pid == keep:
            return
        with contextlib.suppress(ChildProcessError):
            os.waitpid(info.si_pid, 0)


def end_processes(pids: Iterable[int], grace: float = 5.0) -> list[str]:
    """SIGTERM, then SIGKILL after grace seconds, to the given pids (ours). Returns
    descriptions of those that needed SIGKILL or would not die."""
    pids = [p for p in pids if p != os.getpid() and alive(p)]
    names = {p: cmdline(p)[:120] for p in pids}
    for p in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(p, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        _reap()
        time.sleep(0.1)
    killed = []
    for p in pids:
        if alive(p):
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGKILL)
            killed.append(f"{p} {names[p]}")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        _reap()
        time.sleep(0.1)
    return killed


def _reap() -> None:
    """Collects exited children (we are a subreaper: orphans become ours)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def pss_kib(pid: int) -> int:
    """Proportional set size in KiB (shared pages split among their users)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


# -- mounts ------------------------------------------------------------------------

def mount_points(pid: int | str = "self") -> list[str]:
    out = []
    with open(f"/proc/{pid}/mountinfo") as f:
        for line in f:
            point = line.split()[4]
            out.append(point.encode().decode("unicode_escape"))
    return out


def under(path: str, top: str | Path) -> bool:
    top = str(top).rstrip("/")
    return path == top or path.startswith(top + "/")


def unmount_under(top: str | Path) -> list[str]:
    """Lazily unmounts every mount at or below top, newest first; returns errors."""
    errors: list[str] = []
    for _ in range(5):
        points = [p for p in mount_points() if under(p, top)]
        if not points:
            return []
        errors = []
        for p in reversed(points):
            try:
                umount_lazy(p)
            except OSError as e:
                if e.errno not in (errno.EINVAL, errno.ENOENT):
                    errors.append(f"umount {p}: {e.strerror}")
    return errors or [f"mounts remain under {top}"]


# -- cgroups -----------------------------------------------------------------------

def cgroup_hierarchies() -> list[Path]:
    if not CGROUP_ROOT.is_dir():
        return []
    out = []
    for d in sorted(CGROUP_ROOT.iterdir()):
        if d.is_dir() and not d.is_symlink() and (d / "cgroup.procs").exists():
            out.append(d)
    if (CGROUP_ROOT / "cgroup.procs").exists():  # pure cgroup v2
        out.append(CGROUP_ROOT)
    return out


def top_cgroups() -> list[str]:
    """Every first-level cgroup of every hierarchy, as 'hierarchy/name'."""
    out = []
    for h in cgroup_hierarchies():
        with contextlib.suppress(OSError):
            out += [f"{h.name}/{c.name}" for c in h.iterdir() if c.is_dir()]
    return sorted(out)


def remove_cgroup_tree(name: str) -> list[str]:
    """Removes the cgroup `name` (first level) in every hierarchy, deepest first; ends
    processes still in it (they can only be ours: the name is the run's). Errors."""
    errors = []
    for h in cgroup_hierarchies():
        top = h / name
        if not top.is_dir():
            continue
        for d, _subdirs, _files in sorted(os.walk(top), key=lambda t: -t[0].count("/")):
            with contextlib.suppress(OSError):
                pids = [int(x) for x in Path(d, "cgroup.procs").read_text().split()]
                if pids:
                    end_processes(pids, grace=2)
            try:
                os.rmdir(d)
            except OSError as e:
                if e.errno != errno.ENOENT:
                    errors.append(f"rmdir {d}: {e.strerror}")
    return errors


# -- root namespace snapshot ------------------------------------------------------

@dataclass
class RootState:
    """What the bench must leave as it found, seen from the machine's namespaces."""

    links: list[str] = field(default_factory=list)
    netns: list[str] = field(default_factory=list)
    nft_ruleset: list[str] = field(default_factory=list)
    iptables: dict[str, list[str]] = field(default_factory=dict)
    sysctls: dict[str, str] = field(default_factory=dict)
    bench_mounts: list[str] = field(default_factory=list)
    other_mounts: list[str] = field(default_factory=list)
    cgroups: list[str] = field(default_factory=list)
    modules: list[str] = field(default_factory=list)
    all_sysctls: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _run_lines(argv: list[str]) -> list[str] | None:
    if not shutil.which(argv[0]):
        return None
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        return [f"<{argv[0]} failed: {e}>"]
    if r.returncode != 0:
        return [f"<{' '.join(argv)} exit {r.returncode}: {r.stderr.strip()[:200]}>"]
    return r.stdout.splitlines()


_COUNTERS = re.compile(r"\[\d+:\d+\]")


def normalize_iptables(lines: Iterable[str]) -> list[str]:
    """iptables-save output without comments, timestamps and counters."""
    return [_COUNTERS.sub("[-]", ln) for ln in lines
            if ln.strip() and not ln.startswith("#")]


def read_sysctls() -> dict[str, str]:
    out = {}
    for key in SYSCTLS:
        with contextlib.suppress(OSError):
            out[key.replace("/", ".")] = Path("/proc/sys", key).read_text().strip()
    for d in SYSCTL_DIRS:
        p = Path("/proc/sys", d)
        if p.is_dir():
            for f in sorted(p.iterdir()):
                with contextlib.suppress(OSError):
                    out[f"{d}/{f.name}".replace("/", ".")] = f.read_text().strip()
    return out


# counters and random values `sysctl -a` shows that change by themselves
VOLATILE_SYSCTLS = ("fs.dentry-state", "fs.file-nr", "fs.inode-nr", "fs.inode-state",
                    "fs.aio-nr", "kernel.ns_last_pid", "kernel.random.", "kernel.pty.nr",
                    "net.netfilter.nf_conntrack_count", "fs.quota.")


def parse_sysctl_a(lines: Iterable[str]) -> dict[str, str]:
    """`sysctl -a` output as key -> value, without the volatile keys."""
    out = {}
    for line in lines:
        key, sep, value = line.partition(" = ")
        if sep and not key.startswith(VOLATILE_SYSCTLS):
            out[key.strip()] = " ".join(value.split())
    return out


def restore_sysctls(before: Mapping[str, str]) -> list[str]:
    """Writes back every sysctl whose value changed; returns what it restored."""
    now = read_sysctls()
    done = []
    for k, v in before.items():
        if k in now and now[k] != v:
            path = Path("/proc/sys", k.replace(".", "/"))
            try:
                path.write_text(v + "\n")
                done.append(f"{k}: {now[k]} -> {v}")
            except OSError as e:
                done.append(f"{k}: could not restore {v}: {e.strerror}")
    return done


def snapshot() -> RootState:
    """The root namespace as this process sees it (call it from the root namespaces)."""
    links = []
    for name in sorted(os.listdir("/sys/class/net")):
        try:
            addr = Path("/sys/class/net", name, "address").read_text().strip()
        except OSError:
            addr = "?"
        links.append(f"{name} {addr}")
    netns = _run_lines(["ip", "netns", "list"]) or []
    nft = _run_lines(["nft", "-s", "list", "ruleset"]) or []
    ipt: dict[str, list[str]] = {}
    for tool in ("iptables-save", "ip6tables-save", "iptables-legacy-save",
                 "ip6tables-legacy-save"):
        lines = _run_lines([tool])
        if lines is not None:
            ipt[tool] = normalize_iptables(lines)
    mounts = mount_points()
    modules = []
    with contextlib.suppress(OSError), open("/proc/modules") as f:
        modules = sorted(line.split()[0] for line in f)
    return RootState(
        links=links, netns=sorted(netns), nft_ruleset=[ln for ln in nft if ln.strip()],
        iptables=ipt, sysctls=read_sysctls(),
        bench_mounts=sorted(p for p in mounts if under(p, BENCH_ROOT)),
        other_mounts=sorted(p for p in mounts if not under(p, BENCH_ROOT)),
        cgroups=top_cgroups(), modules=modules,
        all_sysctls=parse_sysctl_a(_run_lines(["sysctl", "-a"]) or []))


def _list_diff(name: str, a: list[str], b: list[str]) -> list[str]:
    out = []
    rest = list(a)
    for x in b:
        if x in rest:
            rest.remove(x)
        else:
            out.append(f"{name}: + {x}")
    out += [f"{name}: - {x}" for x in rest]
    return out


def diff_states(before: RootState, after: RootState,
                own: Collection[str] | None = None) -> tuple[list[str], list[str]]:
    """(differences that fail the check, differences that are only worth a note).

    Fails: links, `ip netns list`, nft ruleset, iptables rules, the sysctls, mounts under
    /run/muslin-bench, first-level cgroups. Notes: other mounts (other work on the
    machine, e.g. a concurrent test run, makes and removes its own) and kernel modules
    loaded meanwhile (they cannot be unloaded safely)."""
    others: list[str] = []
    fails = _list_diff("link", before.links, after.links)
    fails += _list_diff("netns", before.netns, after.netns)
    fails += _list_diff("nft", before.nft_ruleset, after.nft_ruleset)
    for tool in sorted(set(before.iptables) | set(after.iptables)):
        fails += _list_diff(tool, before.iptables.get(tool, []), after.iptables.get(tool, []))
    for k in sorted(set(before.sysctls) | set(after.sysctls)):
        a, b = before.sysctls.get(k), after.sysctls.get(k)
        if a != b:
            fails.append(f"sysctl {k}: {a} -> {b}")
    added = 0
    for k in sorted(set(before.all_sysctls) | set(after.all_sysctls)):
        a, b = before.all_sysctls.get(k), after.all_sysctls.get(k)
        if k in before.sysctls or a == b:
            continue
        if a is not None and b is not None:
            fails.append(f"sysctl {k}: {a} -> {b}")
        else:  # a key that came or went: a module loaded meanwhile (noted below)
            added += 1
    if added:
        others_notes = [f"{added} sysctl key(s) appeared or went (a module loaded meanwhile)"]
    else:
        others_notes = []
    fails += _list_diff("mount", before.bench_mounts, after.bench_mounts)
    for line in _list_diff("cgroup", before.cgroups, after.cgroups):
        (fails if _peer_cgroup(line.split(" ", 2)[2], own) else others).append(line)
    notes = _mount_notes(before.other_mounts, after.other_mounts)
    by_name: dict[str, set[str]] = {}
    for c in others:  # "cgroup: + memory/name": one note per name, not per hierarchy
        sign, entry = c.split(" ", 2)[1:]
        by_name.setdefault(f"{sign}{entry.split('/', 1)[-1]}", set()).add(entry.split("/")[0])
    if by_name:
        notes.append("cgroups of other work changed meanwhile (not the bench's): "
                     + ", ".join(sorted(by_name)))
    notes += [f"kernel module loaded during the run: {m}"
              for m in sorted(set(after.modules) - set(before.modules))]
    return fails, notes + others_notes


# first-level cgroups the bench's runs or the peers' defaults would make
PEER_CGROUPS = ("docker", "libpod_parent", "machine.slice", "system.slice", "podman",
                "containerd", "muslin")


def _peer_cgroup(entry: str, own: Collection[str] | None = None) -> bool:
    """True for 'hierarchy/name' entries the bench or a peer could have made (a run's
    muslind takes the instance prefix `mb` + six digits); with own (this run's names),
    another bench run's cgroups (one going on beside this one) are not this run's."""
    name = entry.split("/", 1)[-1]
    if name.startswith("muslin-bench") or re.fullmatch(r"mb\d{6}", name) is not None:
        return own is None or name in own
    return name in PEER_CGROUPS


def _mount_notes(before: list[str], after: list[str]) -> list[str]:
    """Other work's mount changes, counted per directory (three levels deep)."""
    counts: dict[str, list[int]] = {}
    for line in _list_diff("", before, after):
        sign, path = line[2], line[4:]
        top = "/".join(path.split("/")[:4]) or "/"
        counts.setdefault(top, [0, 0])[0 if sign == "+" else 1] += 1
    return [f"mounts of other work changed meanwhile (not the bench's): {top}: "
            f"+{a} -{r}" for top, (a, r) in sorted(counts.items())]


CHECKED = ["links (names and MACs)", "`ip netns list`", "`nft list ruleset`",
           "iptables/ip6tables rules (iptables-save, ip6tables-save)",
           "every sysctl of `sysctl -a` (the volatile counters aside)",
           "mounts under /run/muslin-bench (other mounts: noted)",
           "the bench's and the peers' default cgroups"]


# -- run directories ---------------------------------------------------------------

def write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False))
    os.replace(tmp, path)


def read_json(path: Path, default: Any = None) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return default


def remove_created_paths(paths: Iterable[str]) -> list[str]:
    """Removes directories the bench made on the machine (as mount points), deepest first,
    only when empty; returns what it could not remove."""
    left = []
    for p in sorted(set(paths), key=lambda s: -s.count("/")):
        try:
            os.rmdir(p)
        except FileNotFoundError:
            pass
        except OSError as e:
            left.append(f"{p}: {e.strerror}")
    return left


def sweep_dead_runs(log: Any = print) -> None:
    """Cleans what earlier runs killed with SIGKILL left: their processes (found by the
    private mount namespace they ran in), cgroups, directories made on the machine and
    their run directories."""
    if not BENCH_ROOT.is_dir():
        return
    for run in sorted(BENCH_ROOT.iterdir()):
        owner = read_json(run / "owner.json", {})
        pid, start = owner.get("pid"), owner.get("start")
        if pid and start and _start_time(pid) == start:
            continue  # a live run
        log(f"bench: sweeping a dead run: {run}")
        for inode in owner.get("mnt_ns", []):
            end_processes(processes_in_mnt_ns(inode))
        for name in (f"muslin-bench-{run.name}", owner.get("muslin_prefix", "")):
            for e in remove_cgroup_tree(name) if name else []:
                log(f"bench: sweep: {e}")
        for e in remove_created_paths(read_json(run / "created-paths.json", [])):
            log(f"bench: sweep: left {e}")
        if not any(under(p, run) for p in mount_points()):
            shutil.rmtree(run, ignore_errors=True)
        else:
            log(f"bench: sweep: mounts remain under {run}; kept")


def _start_time(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    return stat[stat.rfind(")") + 2:].split()[19]


def start_time(pid: int) -> str | None:
    return _start_time(pid)
