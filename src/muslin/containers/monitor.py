"""conmon and runc: the processes that hold a container, and the files they leave.

Owns how muslin talks to them: conmon's command line and its sync pipe (conmon runs
`runc create`, reports the container's pid, keeps its stdio, writes its log and,
when it exits, its exit code), conmon's attach socket (stdout/stderr frames out,
stdin in) and control fifo (terminal resize), runc's subcommands and the state file
runc keeps per container, and process identity checks (pid plus start time, so a
recycled pid is never mistaken). Must not decide what a container is or when to
act on it: `muslin.containers.runtime` does.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from muslin.errors import MuslinError
from muslin.fdwait import readable

T = TypeVar("T")

STDOUT_PIPE = 2  # conmon's frame tags on the attach socket
STDERR_PIPE = 3
_ATTACH_BUF = 32768 + 1
_CHILD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class RuncError(MuslinError):
    """runc (or conmon on its behalf) failed; the message is runc's."""


# -- processes -------------------------------------------------------------------

def proc_start(pid: int) -> int | None:
    """The start time (clock ticks since boot) of a live, non-zombie pid, or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    rest = data[data.rindex(")") + 2:].split()
    if rest[0] in ("Z", "X"):
        return None
    return int(rest[19])


def alive(pid: int | None, start: int | None) -> bool:
    return bool(pid) and pid is not None and start is not None and proc_start(pid) == start


def wait_gone(pid: int, start: int, timeout: float | None) -> bool:
    """Waits until the process (pid, start) has exited; True if it has. Uses a pidfd
    (no polling); falls back to polling where there is none."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    except OSError:
        fd = -1
    try:
        if proc_start(pid) != start:
            return True
        if fd >= 0:
            return readable(fd, timeout) or proc_start(pid) != start
        deadline = None if timeout is None else time.monotonic() + timeout
        interval = 0.005
        while proc_start(pid) == start:
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(interval)
            interval = min(interval * 2, 0.1)
        return True
    finally:
        if fd >= 0:
            os.close(fd)


def rss_kib(pid: int) -> int:
    """The resident set size of pid in KiB (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:  # gone (or going: ESRCH)
        pass
    return 0


# -- runc --------------------------------------------------------------------------

def _runc_message(stderr: str) -> str:
    """runc's error text without its logrus decoration."""
    msgs = []
    for line in stderr.strip().splitlines():
        if 'msg="' in line:
            msg = line.split('msg="', 1)[1].rsplit('"', 1)[0]
            msgs.append(msg.replace('\\"', '"'))
        elif line.strip():
            msgs.append(line.strip())
    return "; ".join(msgs) or "runc failed"


class Runc:
    """runc with muslin's state root (`runc --root ROOT ...`)."""

    def __init__(self, binary: str, root: str) -> None:
        self.binary = binary
        self.root = root

    def argv(self, *args: str) -> list[str]:
        return [self.binary, "--root", self.root, *args]

    def run(self, *args: str, timeout: float = 60) -> str:
        r = subprocess.run(self.argv(*args), capture_output=True, text=True, timeout=timeout,
                           stdin=subprocess.DEVNULL, check=False)
        if r.returncode != 0:
            raise RuncError(_runc_message(r.stderr))
        return r.stdout

    def state_file(self, cid: str) -> dict[str, Any] | None:
        """runc's own record of a container (state.json), or None."""
        try:
            with open(os.path.join(self.root, cid, "state.json")) as f:
                doc: dict[str, Any] = json.load(f)
                return doc
        except (FileNotFoundError, ValueError):
            return None

    def created_not_started(self, cid: str) -> bool:
        """True while runc's init waits for `runc start` (its exec fifo exists)."""
        return os.path.exists(os.path.join(self.root, cid, "exec.fifo"))

    def start(self, cid: str) -> None:
        self.run("start", cid)

    def kill(self, cid: str, sig: int) -> None:
        self.run("kill", cid, str(sig))

    def pause(self, cid: str) -> None:
        self.run("pause", cid)

    def resume(self, cid: str) -> None:
        self.run("resume", cid)

    def delete(self, cid: str, force: bool = False) -> None:
        self.run("delete", *(["--force"] if force else []), cid)


# -- conmon ------------------------------------------------------------------------

@dataclass(frozen=True)
class ConmonFiles:
    """Where conmon reads and writes for one container."""

    bundle: str          # config.json; conmon adds the attach socket, ctl and winsz fifos
    container_pidfile: str
    conmon_pidfile: str
    exit_dir: str        # conmon writes exit_dir/<id> (for watchers)
    persist_dir: str     # and persist_dir/exit (kept with the container)
    log_path: str        # k8s-file


def conmon_argv(conmon: str, runc: Runc, cid: str, name: str, files: ConmonFiles, *,
                tty: bool, stdin: bool, leave_stdin_open: bool,
                log_size_max: int | None = None) -> list[str]:
    """conmon's command line: double-forking (no --sync), the attach socket in the
    bundle (--full-attach: no socket dir and no 108-byte path limit), no exit command,
    no syslog, runc with muslin's state root."""
    argv = [conmon, "-c", cid, "-u", cid, "-n", name or cid, "-r", runc.binary,
            "-b", files.bundle, "-p", files.container_pidfile, "-P", files.conmon_pidfile,
            "--exit-dir", files.exit_dir, "--persist-dir", files.persist_dir,
            "--full-attach", "-l", f"k8s-file:{files.log_path}", "--log-level", "error",
            "--runtime-arg", f"--root={runc.root}"]
    if tty:
        argv.append("-t")
    if stdin:
        argv.append("-i")
        if leave_stdin_open:
            argv.append("--leave-stdin-open")
    if log_size_max:
        argv += ["--log-size-max", str(log_size_max)]
    return argv


def launch(argv: Sequence[str], *, cwd: str, tmpdir: str,
           spawn: Callable[[Callable[[], subprocess.Popen[bytes]]], subprocess.Popen[bytes]]
           | None = None, timeout: float = 30) -> int:
    """Starts conmon, which runs `runc create`, and waits on its sync pipe for the
    container's pid (returned) or runc's error (raised as RuncError). conmon's first
    process exits at once; the second lives as long as the container. `spawn` runs
    the Popen where conmon must start (a thread in the instance's host namespace);
    tmpdir is where conmon puts the short-lived console socket of a tty container
    (its path must fit in 108 bytes)."""
    r, w = os.pipe2(os.O_CLOEXEC)
    try:
        env = {"PATH": _CHILD_PATH, "TMPDIR": tmpdir, "_OCI_SYNCPIPE": str(w)}

        def popen() -> subprocess.Popen[bytes]:
            return subprocess.Popen(list(argv), cwd=cwd, env=env, pass_fds=(w,),
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE, start_new_session=True)

        proc = spawn(popen) if spawn is not None else popen()
        os.close(w)
        w = -1
        try:
            _, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise RuncError(f"conmon did not start within {timeout}s") from None
        if proc.returncode != 0:
            raise RuncError("conmon failed: " + (err.decode(errors="replace").strip()
                                                 or f"exit {proc.returncode}"))
        deadline = time.monotonic() + timeout
        buf = b""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuncError(f"runc create did not finish within {timeout}s")
            if not readable(r, left):
                continue
            chunk = os.read(r, 65536)
            if not chunk:
                raise RuncError("conmon exited before the container was created")
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                try:
                    msg = json.loads(line)
                except ValueError:
                    continue
                value = int(msg.get("data", msg.get("pid", -1)))
                if value < 0:
                    raise RuncError(_runc_message(str(msg.get("message", "")))
                                    if msg.get("message") else "runc create failed")
                return value
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)


def _connect_in(directory: str, name: str, kind: int) -> socket.socket:
    """Connects to the unix socket directory/name whatever the length of its path
    (sun_path holds 108 bytes): through /proc/self/fd when it is long."""
    path = os.path.join(directory, name)
    sock = socket.socket(socket.AF_UNIX, kind | socket.SOCK_CLOEXEC)
    if len(path.encode()) < 100:
        sock.connect(path)
        return sock
    dfd = os.open(directory, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        sock.connect(f"/proc/self/fd/{dfd}/{name}")
    except BaseException:
        sock.close()
        raise
    finally:
        os.close(dfd)
    return sock


class Attachment:
    """A connection to conmon's attach socket: the container's output as
    ("stdout"|"stderr", bytes) frames as it is written (no replay: that is the log's
    job), and its stdin (when the container was created with open_stdin)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    @classmethod
    def connect(cls, bundle: str) -> Attachment:
        return cls(_connect_in(bundle, "attach", socket.SOCK_SEQPACKET))

    def fileno(self) -> int:
        return self.sock.fileno()

    def recv(self, timeout: float | None = None) -> tuple[str, bytes] | None:
        """The next frame, or None at the end (the container exited, or conmon closed
        the connection). Raises TimeoutError after timeout seconds without one."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(_ATTACH_BUF)
        except TimeoutError:
            raise TimeoutError("no output from the container") from None
        except ConnectionResetError:
            return None
        if not data:
            return None
        stream = "stderr" if data[0] == STDERR_PIPE else "stdout"
        return stream, data[1:]

    def read_all(self, timeout: float | None = None) -> tuple[bytes, bytes]:
        """(stdout, stderr) until the end."""
        out, err = bytearray(), bytearray()
        while (frame := self.recv(timeout)) is not None:
            (err if frame[0] == "stderr" else out).extend(frame[1])
        return bytes(out), bytes(err)

    def send(self, data: bytes) -> None:
        """Writes to the container's stdin."""
        view = memoryview(data)
        while view:
            n = self.sock.send(view[:_ATTACH_BUF - 1])
            view = view[n:]

    def close_stdin(self) -> None:
        """Ends the container's stdin (unless it was created to keep it open)."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Attachment:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def resize(bundle: str, height: int, width: int) -> None:
    """Asks conmon to resize the container's terminal (its ctl fifo)."""
    fd = os.open(os.path.join(bundle, "ctl"), os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        os.write(fd, f"1 {height} {width}\n".encode())
    finally:
        os.close(fd)


def reopen_log(bundle: str) -> bool:
    """Asks conmon to start a new log file (its ctl fifo, message 2: conmon renames a
    fresh file over the log path). False when no conmon listens."""
    try:
        fd = os.open(os.path.join(bundle, "ctl"), os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        os.write(fd, b"2 0 0\n")
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return str(sig)
