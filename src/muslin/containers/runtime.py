"""Containers under runc, each held by its own conmon: create, start, stop, exec, logs.

Owns the life of containers on this machine and their files:

    root/<id>/container.json   the spec, image id and creation time (written last:
                               a directory without it is a create that never finished)
    root/<id>/upper, work      the container's overlayfs layers
    root/<id>/bundle/          config.json, rootfs (the overlay mount), conmon's attach
                               socket and ctl/winsz fifos
    root/<id>/hosts, hostname, resolv.conf (+ .hash)   bind-mounted, rewritten in place
    root/<id>/ctr.log          the log (conmon's k8s-file)
    root/<id>/exit, oom        written by conmon when the container exits
    root/<id>/started, conmon.json, start_error.json   written here
    run_dir/runc/<id>/         runc's state (`runc --root run_dir/runc`)
    run_dir/exits/<id>         conmon's exit file, for watchers
    run_dir/tmp/               conmon's short-lived console sockets (tty containers)

Everything is recoverable from those files: a new Runtime (after the daemon died)
finds running containers through runc's state and conmon's pid (`adopt`). conmon
runs in the instance's host network namespace (`host_netns`), so a container
without a namespace of its own lands there, and everything a lab test starts lives
in lab namespaces. Must not create or configure networks: the container joins the
namespace path its spec names (a sandbox's, made by `muslin.cnm`).
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import fcntl
import hashlib
import json
import os
import re
import resource
import secrets
import shutil
import signal
import struct
import subprocess
import termios
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any

from muslin import lockfile
from muslin.containers import etcfiles, logs, monitor, mounts, oci
from muslin.containers.images import ImageStore
from muslin.containers.monitor import Attachment, ConmonFiles, Runc, RuncError
from muslin.containers.spec import ContainerSpec, signal_number
from muslin.errors import Conflict, InvalidParameter, MuslinError, NotFound
from muslin.fdwait import readable
from muslin.kernel import netns

ZERO_TIME = "0001-01-01T00:00:00Z"
_HEX64 = re.compile(r"[0-9a-f]{64}")
_RLIMITS = {name[len("RLIMIT_"):].lower(): getattr(resource, name)
            for name in dir(resource) if name.startswith("RLIMIT_")}


def new_id() -> str:
    """A container id as Docker makes them: 64 hex digits."""
    return secrets.token_hex(32)


def _now_ns() -> int:
    return time.time_ns()


def _write(path: str, data: str | bytes, mode: int = 0o644) -> None:
    """Atomically (by rename) writes a file."""
    tmp = f"{path}.{secrets.token_hex(4)}.tmp"
    with open(tmp, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def _write_in_place(path: str, data: str) -> None:
    """Rewrites a bind-mounted file: same inode (a rename would not be seen inside)."""
    with open(path, "r+b" if os.path.exists(path) else "wb") as f:
        f.write(data.encode())
        f.truncate()


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return None


def _sha(data: str) -> str:
    return hashlib.sha256(data.encode()).hexdigest()


@dataclass(frozen=True)
class ContainerInfo:
    """A container as the runtime knows it (a snapshot)."""

    id: str
    name: str
    image_id: str
    created: str
    spec: ContainerSpec
    state: Mapping[str, Any]       # Docker's ContainerState shape
    netns: str | None              # the network namespace it joins (None: the host's)
    monitor_pid: int | None        # conmon's pid while it holds the container
    monitor_alive: bool
    bundle: str
    log_path: str
    hosts_path: str
    hostname_path: str
    resolv_conf_path: str

    @property
    def status(self) -> str:
        return str(self.state["Status"])


class ExecProcess:
    """A process started in a running container (`docker exec`). Without a tty,
    stdin/stdout/stderr are pipes; with one, `pty` is the terminal's master side
    (stdout and stdin both read and write it, stderr is None)."""

    def __init__(self, proc: subprocess.Popen[bytes], *, pty: int | None = None,
                 cleanup: Sequence[str] = ()) -> None:
        self._proc = proc
        self._cleanup = list(cleanup)
        self.pty = pty
        self.pid = proc.pid
        self.stdin: IO[bytes] | None
        self.stdout: IO[bytes] | None
        self.stderr: IO[bytes] | None
        if pty is not None:
            self.stdout = os.fdopen(pty, "rb", buffering=0)
            self.stdin = os.fdopen(os.dup(pty), "wb", buffering=0)
            self.stderr = None
        else:
            self.stdin, self.stdout, self.stderr = proc.stdin, proc.stdout, proc.stderr

    @property
    def exit_code(self) -> int | None:
        code = self._proc.poll()
        if code is not None:
            self._done()
        return None if code is None else self._code(code)

    @staticmethod
    def _code(code: int) -> int:
        return 128 - code if code < 0 else code

    def _done(self) -> None:
        for p in self._cleanup:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(p)
        self._cleanup.clear()

    def wait(self, timeout: float | None = None) -> int:
        """The exit code (Docker's: 128+N when killed by signal N)."""
        code = self._proc.wait(timeout)
        self._done()
        return self._code(code)

    def communicate(self, input: bytes | None = None, timeout: float | None = None
                    ) -> tuple[bytes, bytes, int]:
        """Feeds input, reads all output; (stdout, stderr, exit code)."""
        if self.pty is None:
            out, err = self._proc.communicate(input, timeout)
            self._done()
            return out or b"", err or b"", self._code(self._proc.returncode)
        assert self.stdout is not None and self.stdin is not None
        if input:
            self.stdin.write(input)
        chunks = []
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not readable(self.stdout, left):
                raise subprocess.TimeoutExpired(self._proc.args, timeout or 0)
            try:
                chunk = self.stdout.read(65536)
            except OSError as e:  # EIO: the last holder of the terminal is gone
                if e.errno != errno.EIO:
                    raise
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks), b"", self.wait(timeout)

    def resize(self, height: int, width: int) -> None:
        """Resizes the terminal (no-op without one): ours, then runc copies the size
        to the container's when told (SIGWINCH)."""
        if self.pty is not None:
            fcntl.ioctl(self.pty, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))
            with contextlib.suppress(ProcessLookupError):
                self._proc.send_signal(signal.SIGWINCH)

    def kill(self, sig: int | str = "SIGKILL") -> None:
        """Signals the process (runc exec passes the signal on)."""
        with contextlib.suppress(ProcessLookupError):
            self._proc.send_signal(signal_number(sig))

    def close(self) -> None:
        for s in (self.stdin, self.stdout, self.stderr):
            if s is not None:
                with contextlib.suppress(OSError):
                    s.close()
        self._done()


class Runtime:
    """The containers of one muslin instance: state under root, runc's under run_dir.

    One Runtime per root at a time (a lock file says so). Thread-safe: one lock per
    container; nothing else is shared. `close()` leaves containers running: they are
    conmon's, and a new Runtime adopts them.
    """

    def __init__(self, root: str, run_dir: str, *, images: ImageStore | None = None,
                 host_netns: str | None = None, cgroup_parent: str = "/muslin",
                 runc: str | None = None, conmon: str | None = None) -> None:
        self.root = os.path.abspath(root)
        self.run_dir = os.path.abspath(run_dir)
        if not cgroup_parent.startswith("/") or ".." in cgroup_parent.split("/"):
            raise InvalidParameter(f"cgroup parent must be an absolute path: {cgroup_parent}")
        self.cgroup_parent = cgroup_parent.rstrip("/") or "/muslin"
        self.host_netns = host_netns
        self.images = images or ImageStore(os.path.join(os.path.dirname(self.root), "images"))
        self.images.running_check = self._is_running
        runc_bin = runc or shutil.which("runc") or "/usr/sbin/runc"
        self.conmon = conmon or shutil.which("conmon") or "/usr/bin/conmon"
        for tool in (runc_bin, self.conmon):
            if not os.access(tool, os.X_OK):
                raise MuslinError(f"{tool} not found: install Debian's runc and conmon")
        self.exit_dir = os.path.join(self.run_dir, "exits")
        self.tmp_dir = os.path.join(self.run_dir, "tmp")
        for d in (self.root, os.path.join(self.run_dir, "runc"), self.exit_dir, self.tmp_dir):
            os.makedirs(d, mode=0o700, exist_ok=True)
        self.runc = Runc(runc_bin, os.path.join(self.run_dir, "runc"))
        self._lockfd = lockfile.take(os.path.join(self.root, "runtime.lock"),
                                     f"container root {self.root}")
        self._locks: dict[str, threading.RLock] = {}
        self._locks_mutex = threading.Lock()
        self._host: netns.NetnsThread | None = None
        if host_netns is not None:
            self._host = netns.NetnsThread(host_netns, "muslin-runtime-host")

    # -- life --------------------------------------------------------------------
    def close(self) -> None:
        """Lets go of the root; containers keep running."""
        if self._lockfd < 0:
            return
        if self._host is not None:
            self._host.close()
            self._host = None
        os.close(self._lockfd)
        self._lockfd = -1

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _locked(self, cid: str) -> Iterator[None]:
        with self._locks_mutex:
            lock = self._locks.setdefault(cid, threading.RLock())
        with lock:
            yield

    # -- paths and records -------------------------------------------------------------
    def _dir(self, cid: str) -> str:
        return os.path.join(self.root, cid)

    def _bundle(self, cid: str) -> str:
        return os.path.join(self.root, cid, "bundle")

    def _record(self, cid: str) -> dict[str, Any]:
        raw = _read(os.path.join(self._dir(cid), "container.json"))
        if raw is None:
            raise NotFound(f"No such container: {cid}")
        doc: dict[str, Any] = json.loads(raw)
        return doc

    def _spec(self, cid: str) -> ContainerSpec:
        return ContainerSpec.from_json(self._record(cid)["spec"])

    def resolve(self, id_or_prefix: str) -> str:
        """A container's full id from its id or a unique prefix of it."""
        if _HEX64.fullmatch(id_or_prefix) and os.path.exists(
                os.path.join(self._dir(id_or_prefix), "container.json")):
            return id_or_prefix
        if re.fullmatch(r"[0-9a-f]{1,64}", id_or_prefix):
            found = [c for c in self._ids() if c.startswith(id_or_prefix)]
            if len(found) == 1:
                return found[0]
            if len(found) > 1:
                raise NotFound(f"multiple IDs found with provided prefix: {id_or_prefix}")
        raise NotFound(f"No such container: {id_or_prefix}")

    def _ids(self) -> list[str]:
        return sorted(d for d in os.listdir(self.root) if _HEX64.fullmatch(d)
                      and os.path.exists(os.path.join(self.root, d, "container.json")))

    def container_dir(self, cid: str) -> str:
        """The directory of the container's files (its log spool `ctr.log` among them)."""
        return self._dir(cid)

    def monitor_alive(self, cid: str) -> bool:
        """True while the container's conmon lives (it may still write its log)."""
        pid, start = self._conmon(cid)
        return monitor.alive(pid, start)

    def _conmon(self, cid: str) -> tuple[int | None, int | None]:
        raw = _read(os.path.join(self._dir(cid), "conmon.json"))
        if not raw:
            return None, None
        d = json.loads(raw)
        return int(d["pid"]), int(d["start"])

    def _files(self, cid: str) -> ConmonFiles:
        d = self._dir(cid)
        return ConmonFiles(bundle=self._bundle(cid), container_pidfile=os.path.join(d, "pidfile"),
                           conmon_pidfile=os.path.join(d, "conmon.pid"),
                           exit_dir=self.exit_dir, persist_dir=d,
                           log_path=os.path.join(d, "ctr.log"))

    def _machine_hard(self) -> dict[str, int]:
        out = {}
        for name, res in _RLIMITS.items():
            hard = resource.getrlimit(res)[1]
            out[name] = -1 if hard == resource.RLIM_INFINITY else hard
        return out

    # -- create ------------------------------------------------------------------------
    def create(self, spec: ContainerSpec) -> None:
        """Writes the container's bundle: its overlay rootfs (mounted), /etc files and
        runc's config.json. Nothing runs until `start`."""
        spec.validate()
        img = self.images.get(spec.image)
        with self._locked(spec.id):
            d = self._dir(spec.id)
            try:
                os.mkdir(d, 0o700)
            except FileExistsError:
                raise Conflict(f"container {spec.id} exists already") from None
            try:
                lower = self.images.hold(img.id, spec.id)
            except BaseException:
                os.rmdir(d)
                raise
            try:
                self._create(spec, img.id, lower, img.container_config)
            except BaseException:
                self._remove_files(spec.id)
                self.images.release(img.id, spec.id)
                raise

    def _create(self, spec: ContainerSpec, image_id: str, lower: str,
                image_config: Mapping[str, Any]) -> None:
        d, bundle = self._dir(spec.id), self._bundle(spec.id)
        rootfs = os.path.join(bundle, "rootfs")
        for sub in ("upper", "work", "bundle", "bundle/rootfs"):
            os.makedirs(os.path.join(d, sub), mode=0o755, exist_ok=True)
        mounts.mount_overlay(lower, os.path.join(d, "upper"), os.path.join(d, "work"), rootfs)
        passwd = _read(os.path.join(rootfs, "etc/passwd")) or ""
        group = _read(os.path.join(rootfs, "etc/group")) or ""
        uid, gid = oci.resolve_user(oci.user_of(spec, image_config), passwd, group)
        hostname = spec.effective_hostname
        host_mode = spec.network_mode == "host"
        hosts = spec.etc_hosts
        if hosts is None:
            hosts = (etcfiles.host_network_hosts(_read("/etc/hosts") or "") if host_mode
                     else etcfiles.build_hosts())
        resolv = spec.resolv_conf
        if resolv is None:
            host_resolv = _read("/etc/resolv.conf") or ""
            resolv = (etcfiles.resolv_conf_host(host_resolv) if host_mode
                      else etcfiles.resolv_conf_legacy(host_resolv))
        _write(os.path.join(d, "hosts"), hosts)
        _write(os.path.join(d, "hostname"), etcfiles.hostname_file(hostname))
        _write(os.path.join(d, "resolv.conf"), resolv)
        _write(os.path.join(d, "resolv.conf.hash"), _sha(resolv))
        etc = {"/etc/hosts": os.path.join(d, "hosts"),
               "/etc/hostname": os.path.join(d, "hostname"),
               "/etc/resolv.conf": os.path.join(d, "resolv.conf")}
        config = oci.build_config(
            spec, image_config, rootfs=rootfs, uid=uid, gid=gid, etc_files=etc,
            netns=self._netns_of(spec), cgroups_path=f"{self.cgroup_parent}/{spec.id}",
            machine_hard=self._machine_hard())
        _write(os.path.join(bundle, "config.json"), json.dumps(config, indent=1))
        _write(os.path.join(d, "container.json"), json.dumps(
            {"spec": spec.to_json(), "image_id": image_id, "created": logs.format_time(_now_ns()),
             "netns": self._netns_of(spec)}, indent=1))

    def _netns_of(self, spec: ContainerSpec) -> str | None:
        return spec.netns if spec.netns is not None else self.host_netns

    def _remove_files(self, cid: str) -> None:
        d = self._dir(cid)
        mounts.unmount(os.path.join(d, "bundle", "rootfs"))
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(self.exit_dir, cid))
        gone = os.path.join(self.root, f".gone-{cid[:12]}-{secrets.token_hex(4)}")
        with contextlib.suppress(FileNotFoundError):
            os.rename(d, gone)
            shutil.rmtree(gone)

    # -- state -------------------------------------------------------------------------
    def state(self, cid: str) -> dict[str, Any]:
        """Docker's ContainerState: Status (created, running, paused, exited), Running,
        Paused, Restarting, OOMKilled, Dead, Pid, ExitCode, Error, StartedAt,
        FinishedAt; read from runc's state and conmon's files, nothing else."""
        d = self._dir(cid)
        if not os.path.exists(os.path.join(d, "container.json")):
            raise NotFound(f"No such container: {cid}")
        started = _read(os.path.join(d, "started"))
        status, pid = "created", 0
        st = self.runc.state_file(cid)
        if st is not None and monitor.proc_start(int(st["init_process_pid"])) == int(
                st["init_process_start"]):
            if self.runc.created_not_started(cid):
                status = "created"
            else:
                pid = int(st["init_process_pid"])
                status = "paused" if self._frozen(st) else "running"
        elif started:
            status = "exited"
        exit_code, finished, error = 0, ZERO_TIME, ""
        if status == "exited":
            exit_code, finished, error = self._exit(cid)
        elif status == "created":
            err = _read(os.path.join(d, "start_error.json"))
            if err:
                e = json.loads(err)
                exit_code, error = int(e["ExitCode"]), str(e["Error"])
        return {
            "Status": status, "Running": status in ("running", "paused"),
            "Paused": status == "paused", "Restarting": False,
            "OOMKilled": os.path.exists(os.path.join(d, "oom")), "Dead": False,
            "Pid": pid, "ExitCode": exit_code, "Error": error,
            "StartedAt": (started or ZERO_TIME).strip(), "FinishedAt": finished,
        }

    def _exit(self, cid: str) -> tuple[int, str, str]:
        """(exit code, FinishedAt, error) of an exited container."""
        path = os.path.join(self._dir(cid), "exit")
        pid, start = self._conmon(cid)
        # conmon writes the file right after it reaps the container
        deadline = time.monotonic() + 2
        while not os.path.exists(path) and monitor.alive(pid, start) \
                and time.monotonic() < deadline:
            time.sleep(0.002)
        try:
            code = int((_read(path) or "").strip())
            return code, logs.format_time(os.stat(path).st_mtime_ns), ""
        except (ValueError, FileNotFoundError):
            return 255, ZERO_TIME, "the container's monitor (conmon) exited without its code"

    @staticmethod
    def _frozen(st: Mapping[str, Any]) -> bool:
        freezer = (st.get("cgroup_paths") or {}).get("freezer")
        if not freezer:
            return False
        return (_read(os.path.join(freezer, "freezer.state")) or "").strip() == "FROZEN"

    def _is_running(self, cid: str) -> bool:
        try:
            return bool(self.state(cid)["Running"])
        except NotFound:
            return False

    def get(self, id_or_prefix: str) -> ContainerInfo:
        cid = self.resolve(id_or_prefix)
        rec = self._record(cid)
        spec = ContainerSpec.from_json(rec["spec"])
        d = self._dir(cid)
        pid, start = self._conmon(cid)
        up = monitor.alive(pid, start)
        return ContainerInfo(
            id=cid, name=spec.name, image_id=str(rec["image_id"]), created=str(rec["created"]),
            spec=spec, state=self.state(cid), netns=rec.get("netns"),
            monitor_pid=pid if up else None, monitor_alive=up, bundle=self._bundle(cid),
            log_path=os.path.join(d, "ctr.log"), hosts_path=os.path.join(d, "hosts"),
            hostname_path=os.path.join(d, "hostname"),
            resolv_conf_path=os.path.join(d, "resolv.conf"))

    def list(self) -> builtins.list[ContainerInfo]:
        out = []
        for cid in self._ids():
            with contextlib.suppress(NotFound):
                out.append(self.get(cid))
        return out

    def adopt(self) -> builtins.list[ContainerInfo]:
        """After a restart: finishes what a dead Runtime left half-done (a create
        without its record is undone) and returns the containers still held by a live
        conmon (running or paused), ready to be served again."""
        for entry in os.listdir(self.root):
            path = os.path.join(self.root, entry)
            if entry.startswith(".gone-"):
                with contextlib.suppress(OSError):
                    mounts.unmount(os.path.join(path, "bundle", "rootfs"))
                    shutil.rmtree(path)
            elif _HEX64.fullmatch(entry) and not os.path.exists(
                    os.path.join(path, "container.json")):
                with self._locked(entry):
                    self._remove_files(entry)
                    self.images.release_all(entry)
        return [c for c in self.list() if c.monitor_alive and c.state["Running"]]

    # -- start -------------------------------------------------------------------------
    def start(self, cid: str, *, attach: bool = False, timeout: float = 30,
              before_start: Callable[[], None] | None = None) -> Attachment | None:
        """Starts the container under a new conmon (which outlives this process), and
        returns once runc reports it running (or already gone). With attach, connects
        to its output before it runs, so nothing is missed. before_start runs once the
        container is created, before its process runs; what it raises undoes the
        creation. A running container is left alone (None)."""
        with self._locked(cid):
            st = self.state(cid)
            if st["Running"]:
                return None
            spec = self._spec(cid)
            d, bundle = self._dir(cid), self._bundle(cid)
            self._clear_run_files(cid)
            rootfs = os.path.join(bundle, "rootfs")
            if not mounts.is_mounted(rootfs):  # after a reboot
                lower = self.images.held_rootfs(self._record(cid)["image_id"])
                mounts.mount_overlay(lower, os.path.join(d, "upper"), os.path.join(d, "work"),
                                     rootfs)
            argv = monitor.conmon_argv(
                self.conmon, self.runc, cid, spec.name, self._files(cid), tty=spec.tty,
                stdin=spec.open_stdin, leave_stdin_open=not spec.stdin_once,
                log_size_max=spec.log_size_max)
            spawn = self._host.call if self._host is not None else None
            try:
                monitor.launch(argv, cwd=d, tmpdir=self.tmp_dir, spawn=spawn, timeout=timeout)
            except RuncError as e:
                if self.runc.state_file(cid) is not None:  # created, too late: undo
                    with contextlib.suppress(RuncError):
                        self.runc.delete(cid, force=True)
                self._start_failed(cid, str(e))
                raise self._start_error(str(e)) from None
            conmon_pid = int((_read(os.path.join(d, "conmon.pid")) or "0").strip() or 0)
            start = monitor.proc_start(conmon_pid) if conmon_pid else None
            _write(os.path.join(d, "conmon.json"),
                   json.dumps({"pid": conmon_pid, "start": start or 0}))
            if before_start is not None:
                try:
                    before_start()
                except BaseException:
                    with contextlib.suppress(RuncError):
                        self.runc.delete(cid, force=True)
                    if conmon_pid and start is not None:  # it records the exit: let it
                        monitor.wait_gone(conmon_pid, start, 5)
                    raise
            attachment = Attachment.connect(bundle) if attach else None
            _write(os.path.join(d, "started"), logs.format_time(_now_ns()))
            try:
                self.runc.start(cid)
            except RuncError as e:
                if attachment is not None:
                    attachment.close()
                with contextlib.suppress(RuncError):
                    self.runc.delete(cid, force=True)
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(d, "started"))
                self._start_failed(cid, str(e))
                raise self._start_error(str(e)) from None
            deadline = time.monotonic() + timeout
            while self.runc.created_not_started(cid) and time.monotonic() < deadline:
                time.sleep(0.001)
            return attachment

    def _clear_run_files(self, cid: str) -> None:
        d = self._dir(cid)
        for p in (os.path.join(d, "exit"), os.path.join(d, "oom"), os.path.join(d, "started"),
                  os.path.join(d, "start_error.json"), os.path.join(d, "conmon.json"),
                  os.path.join(d, "conmon.pid"), os.path.join(d, "pidfile"),
                  os.path.join(self.exit_dir, cid)):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(p)
        if self.runc.state_file(cid) is not None:  # the last run's, stopped
            with contextlib.suppress(RuncError):
                self.runc.delete(cid, force=True)

    def _start_failed(self, cid: str, message: str) -> None:
        code = 127 if ("not found" in message or "no such file" in message) else (
            126 if "permission denied" in message else 128)
        _write(os.path.join(self._dir(cid), "start_error.json"),
               json.dumps({"ExitCode": code, "Error": message}))

    @staticmethod
    def _start_error(message: str) -> MuslinError:
        text = f"OCI runtime create failed: {message}"
        if "executable file not found" in message or "no such file or directory" in message:
            return InvalidParameter(text)
        return RuncError(text)

    # -- signals and waiting -------------------------------------------------------------
    def _require_running(self, cid: str) -> dict[str, Any]:
        st = self.state(cid)
        if not st["Running"]:
            raise Conflict(f"Container {cid} is not running")
        return st

    def kill(self, cid: str, signal: int | str = "SIGKILL") -> None:
        """Sends a signal to the container's main process."""
        sig = signal_number(signal)
        with self._locked(cid):
            self._require_running(cid)
            try:
                self.runc.kill(cid, sig)
            except RuncError as e:
                if not self.state(cid)["Running"]:
                    raise Conflict(f"Container {cid} is not running") from None
                raise e

    def stop(self, cid: str, timeout: float | None = None, signal: int | str | None = None
             ) -> bool:
        """Docker's stop: the stop signal, then SIGKILL after timeout seconds (the
        spec's by default; negative: wait for ever). False if it was not running.
        Other calls (kill, exec, state) go on while it waits."""
        with self._locked(cid):
            st = self.state(cid)
            if not st["Running"]:
                return False
            spec = self._spec(cid)
            sig = signal_number(signal if signal is not None else spec.stop_signal)
            t = spec.stop_timeout if timeout is None else timeout
            self._signal(cid, sig, st["Paused"])
        if self._wait_exit(cid, None if t < 0 else t):
            return True
        with self._locked(cid):
            st = self.state(cid)
            if st["Running"]:
                self._signal(cid, signal_number("SIGKILL"), st["Paused"])
        if not self._wait_exit(cid, 30):
            raise MuslinError(f"container {cid} did not exit after SIGKILL")
        return True

    def _signal(self, cid: str, sig: int, paused: bool) -> None:
        with contextlib.suppress(RuncError):
            self.runc.kill(cid, sig)
        if paused:  # a frozen process gets its signal when thawed
            with contextlib.suppress(RuncError):
                self.runc.resume(cid)

    def _wait_exit(self, cid: str, timeout: float | None) -> bool:
        """Waits until the container is no longer running (conmon has recorded it)."""
        pid, start = self._conmon(cid)
        if pid and start and monitor.alive(pid, start):
            if not monitor.wait_gone(pid, start, timeout):
                return False
            return not self.state(cid)["Running"]
        # no monitor (killed?): watch the init process itself
        deadline = None if timeout is None else time.monotonic() + timeout
        interval = 0.005
        while self.state(cid)["Running"]:
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(interval)
            interval = min(interval * 2, 0.1)
        return True

    def pause(self, cid: str) -> None:
        with self._locked(cid):
            st = self._require_running(cid)
            if st["Paused"]:
                raise Conflict(f"Container {cid} is already paused")
            self.runc.pause(cid)

    def unpause(self, cid: str) -> None:
        with self._locked(cid):
            st = self.state(cid)
            if not st["Paused"]:
                raise Conflict(f"Container {cid} is not paused")
            self.runc.resume(cid)

    def wait(self, cid: str, condition: str = "not-running", timeout: float | None = None
             ) -> int:
        """Docker's wait: blocks until the condition holds and returns the exit code.
        "not-running": now if it is not running; "next-exit": the next exit even if
        it is not running yet; "removed": until `delete`. TimeoutError after timeout."""
        if condition not in ("not-running", "next-exit", "removed"):
            raise InvalidParameter(f"invalid condition: {condition!r}")
        deadline = None if timeout is None else time.monotonic() + timeout

        def left() -> float | None:
            return None if deadline is None else max(0.0, deadline - time.monotonic())

        st = self.state(cid)
        code = int(st["ExitCode"])
        if condition == "not-running" and not st["Running"]:
            return code
        if condition == "next-exit" and not st["Running"]:
            before = st["StartedAt"]
            interval = 0.005
            while True:  # until it starts (again): `started` is written once conmon holds it
                st = self.state(cid)
                if st["StartedAt"] not in (before, ZERO_TIME):
                    break
                if deadline is not None and time.monotonic() >= deadline:
                    raise TimeoutError(f"container {cid} did not start and exit in time")
                time.sleep(interval)
                interval = min(interval * 2, 0.1)
        if st["Running"] or condition == "next-exit":
            if not self._wait_exit(cid, left()):
                raise TimeoutError(f"container {cid} is still running")
            code = int(self.state(cid)["ExitCode"])
        if condition == "removed":
            interval = 0.005
            while os.path.exists(os.path.join(self._dir(cid), "container.json")):
                if deadline is not None and time.monotonic() >= deadline:
                    raise TimeoutError(f"container {cid} was not removed in time")
                time.sleep(interval)
                interval = min(interval * 2, 0.1)
        return code

    # -- delete ------------------------------------------------------------------------
    def delete(self, cid: str, force: bool = False) -> None:
        """Removes the container: runc's state, its monitor, its overlay mount, its
        cgroups (runc's), its files and its hold on the image. A running container
        needs force (then it is killed)."""
        with self._locked(cid):
            rec = self._record(cid)
            st = self.state(cid)
            if st["Running"] and not force:
                name = ContainerSpec.from_json(rec["spec"]).name or cid
                raise Conflict(f'cannot remove container "/{name}": container is running: '
                               "stop the container before removing or force remove")
            if self.runc.state_file(cid) is not None:
                with contextlib.suppress(RuncError):
                    self.runc.delete(cid, force=True)
            pid, start = self._conmon(cid)
            if pid and start and not monitor.wait_gone(pid, start, 10):
                raise MuslinError(f"the monitor of container {cid} (pid {pid}) did not exit")
            if self.runc.state_file(cid) is not None:
                self.runc.delete(cid, force=True)
            self._remove_files(cid)
            self.images.release(str(rec["image_id"]), cid)

    # -- exec ----------------------------------------------------------------------------
    def exec(self, cid: str, argv: Sequence[str], *, tty: bool = False,
             env: Sequence[str] = (), workdir: str = "", user: str = "",
             stdin: bool = True, timeout: float = 30,
             console_size: tuple[int, int] | None = None) -> ExecProcess:
        """`docker exec`: runs argv in the running container (its namespaces, cgroup,
        capabilities and environment, plus env), through `runc exec`. console_size:
        the terminal's (height, width) from the start (24x80 without)."""
        st = self.state(cid)
        if not st["Running"]:
            raise Conflict(f"Container {cid} is not running")
        if st["Paused"]:
            raise Conflict(f"Container {cid} is paused, unpause the container before exec")
        d, bundle = self._dir(cid), self._bundle(cid)
        with open(os.path.join(bundle, "config.json")) as f:
            config = json.load(f)
        uid_gid = None
        if user:
            rootfs = os.path.join(bundle, "rootfs")
            uid_gid = oci.resolve_user(user, _read(os.path.join(rootfs, "etc/passwd")) or "",
                                       _read(os.path.join(rootfs, "etc/group")) or "")
        proc_spec = oci.exec_process(config["process"], argv, tty=tty, env=env,
                                     workdir=workdir, uid_gid=uid_gid)
        spec_path = os.path.join(d, f"exec-{secrets.token_hex(6)}.json")
        _write(spec_path, json.dumps(proc_spec))
        args = ["exec", "--process", spec_path]
        if not tty:
            try:
                proc = subprocess.Popen(
                    self.runc.argv(*args, cid),
                    stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
            except BaseException:
                os.unlink(spec_path)
                raise
            return ExecProcess(proc, cleanup=[spec_path])
        # runc runs the terminal itself when it stays in the foreground: its stdio is a
        # terminal of ours (made raw by runc), its exit status the process's.
        master, slave = os.openpty()
        try:
            height, width = console_size or (24, 80)
            fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))
            proc = subprocess.Popen(self.runc.argv(*args, cid), stdin=slave, stdout=slave,
                                    stderr=slave, start_new_session=True)
        except BaseException:
            os.close(master)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(spec_path)
            raise
        finally:
            os.close(slave)
        return ExecProcess(proc, pty=master, cleanup=[spec_path])

    # -- terminal, attach, logs, /etc files ---------------------------------------------
    def resize(self, cid: str, height: int, width: int) -> None:
        """Resizes the container's terminal (no-op without one)."""
        self._require_running(cid)
        if not self._spec(cid).tty:
            return
        try:
            monitor.resize(self._bundle(cid), height, width)
        except OSError as e:
            if e.errno in (errno.ENXIO, errno.ENOENT):
                raise Conflict(f"Container {cid} is not running") from None
            raise

    def attach(self, cid: str) -> Attachment:
        """A connection to the running container's stdio through conmon."""
        self._require_running(cid)
        return Attachment.connect(self._bundle(cid))

    def logs(self, cid: str, *, since: float | None = None, until: float | None = None,
             tail: int | None = None, timestamps: bool = False, follow: bool = False,
             stdout: bool = True, stderr: bool = True) -> Iterator[logs.LogEntry]:
        """The container's output: (stream, time in ns, bytes) per line, oldest first.
        since/until are Unix times in seconds (Docker's), tail the number of last
        lines; with timestamps each line starts with its RFC 3339 time; with follow,
        goes on until the container has exited."""
        cid = self.resolve(cid)
        path = os.path.join(self._dir(cid), "ctr.log")

        def running() -> bool:
            pid, start = self._conmon(cid)
            return monitor.alive(pid, start)

        entries = logs.read(path, since=None if since is None else int(since * 1e9),
                            until=None if until is None else int(until * 1e9), tail=tail,
                            stdout=stdout, stderr=stderr, follow=follow, running=running)
        if not timestamps:
            return entries
        return (e._replace(data=logs.with_timestamp(e)) for e in entries)

    def update_etc(self, cid: str, *, hosts: str | None = None,
                   resolv_conf: str | None = None, force: bool = False) -> bool:
        """Rewrites /etc/hosts and /etc/resolv.conf in place (network connect and
        disconnect). resolv.conf is left alone when the user has edited it (Docker's
        rule), unless force; returns False then."""
        with self._locked(cid):
            d = self._dir(self.resolve(cid))
            if hosts is not None:
                _write_in_place(os.path.join(d, "hosts"), hosts)
            if resolv_conf is None:
                return True
            path = os.path.join(d, "resolv.conf")
            known = _read(path + ".hash")
            if not force and known is not None and _sha(_read(path) or "") != known.strip():
                return False
            _write_in_place(path, resolv_conf)
            _write(path + ".hash", _sha(resolv_conf))
            return True

    def stop_all(self, timeout: float | None = None) -> builtins.list[str]:
        """Stops every running container (Docker's default when the daemon stops)."""
        stopped = []
        for c in self.list():
            if c.state["Running"] and self.stop(c.id, timeout):
                stopped.append(c.id)
        return stopped
