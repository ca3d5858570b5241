"""The log shipper of one container: follows the spool conmon writes (its k8s-file,
`ctr.log`) from a persisted read offset and feeds the container's driver and, for a
driver that cannot be read back, the local cache.

Why a spool: conmon, not muslind, holds the container's output, and conmon writes
only files. The spool is durable while muslind is down (live-restore), so a daemon
restart resumes exactly where it stopped: the state file (`logship.json`) records
the spool's inode and offset together with the size of every file this shipper
writes; after a crash, files longer than recorded are cut back and the lines after
the offset are shipped again, so files get each line once. Network receivers get
each line at least once (a crash between a send and the state write repeats it).

The spool is kept small: past `SPOOL_ROTATE` bytes, fully shipped, the shipper
hard-links it to `ctr.log.shipping` and asks conmon (its ctl fifo, "2 0 0": reopen
the log) to start a new `ctr.log`; the old inode is drained through the link, which
then goes. The container never waits on muslind: conmon only appends to a file.

Modes: `blocking` sends in this thread and retries a failed send for ever (the
spool grows meanwhile, nothing is dropped); `non-blocking` hands lines to a sender
thread through a buffer of `max-buffer-size` bytes and drops what does not fit or
fails. (Docker's blocking mode stalls the container's writes on a slow driver; here
only the spool grows. Docker's non-blocking mode drops at the container's side.)
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from muslin.containers import monitor
from muslin.containers.logs import LogEntry, parse_time
from muslin.logdrivers.options import LogConfig
from muslin.logdrivers.senders import FileSink, Sink

log = logging.getLogger("muslin.logs")

SPOOL_ROTATE = 4 * 1024 * 1024
_BLOCK = 256 * 1024
# A shipper is woken when its spool grows (spoolwatch); the poll is a safety net (and
# how it notices that conmon is gone), backing off to _POLL_MAX while idle.
_POLL_MIN, _POLL_MAX = 0.01, 2.0
SPOOL_NAME = "ctr.log"


MAX_LINE = 16 * 1024  # Docker's copier: longer lines go out in parts of this size


def parse_spool(buf: bytes, times: dict[bytes, int], final: bool = False
                ) -> tuple[list[LogEntry], int]:
    """The entries of the whole k8s-file records at the start of buf and the bytes
    they use. conmon cuts a long line into partial ("P") records of its 8 KiB buffer;
    they are joined back, as Docker's copier does, into lines of up to 16 KiB (a
    longer one goes out in partial entries without a newline). An unfinished line at
    the end is left for the next call unless `final` (the writer is gone). `times`
    memoizes conmon's time stamps (one per read of the container's pipe)."""
    out: list[LogEntry] = []
    pend: list[bytes] = []
    pend_stream, pend_time, pend_at, pend_len = "", 0, 0, 0
    pos = used = 0
    while True:
        nl = buf.find(b"\n", pos)
        if nl < 0:
            break
        line, start, pos = buf[pos:nl], pos, nl + 1
        parts = line.split(b" ", 3)
        if len(parts) == 3:
            parts.append(b"")
        if len(parts) != 4 or parts[2] not in (b"P", b"F") or \
                parts[1] not in (b"stdout", b"stderr"):
            if not pend:
                used = pos
            continue
        ts = parts[0]
        t = times.get(ts)
        if t is None:
            try:
                t = parse_time(ts)
            except ValueError:
                if not pend:
                    used = pos
                continue
            if len(times) > 64:
                times.clear()
            times[ts] = t
        stream = parts[1].decode()
        if pend and stream != pend_stream:  # another stream cuts in: out as a part
            out.append(LogEntry(pend_stream, pend_time, b"".join(pend)))
            pend, pend_len = [], 0
        if not pend:
            pend_stream, pend_time, pend_at = stream, t, start
        pend.append(parts[3])
        pend_len += len(parts[3])
        if parts[2] == b"F":
            pend.append(b"\n")
            out.append(LogEntry(stream, pend_time, b"".join(pend)))
            pend, pend_len, used = [], 0, pos
        elif pend_len >= MAX_LINE:
            out.append(LogEntry(stream, pend_time, b"".join(pend)))
            pend, pend_len, used = [], 0, pos
    if pend:
        if final:
            out.append(LogEntry(pend_stream, pend_time, b"".join(pend)))
            used = pos
        else:
            used = pend_at
    return out, used


def _write_json(path: str, doc: object) -> None:
    tmp = f"{path}.{secrets.token_hex(4)}.tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f)
    os.replace(tmp, path)


class _Stopped(Exception):
    """The shipper was stopped while a blocking send was being retried."""


class _NonBlocking:
    """Docker's ring buffer: lines wait here for the sender thread, at most max_bytes
    of them; more are dropped (and counted)."""

    def __init__(self, sink: Sink, max_bytes: int, cid: str) -> None:
        self.cid = cid
        self.sink = sink
        self.max_bytes = max(max_bytes, 1)
        self.queue: deque[LogEntry] = deque()
        self.bytes = 0
        self.dropped = 0
        self.failed = 0
        self.cond = threading.Condition()
        self.closing = False
        self.thread = threading.Thread(target=self._run, daemon=True,
                                       name=f"muslin-logsend-{cid[:12]}")
        self.thread.start()

    def send(self, entries: Sequence[LogEntry]) -> None:
        with self.cond:
            for e in entries:
                if self.bytes + len(e.data) > self.max_bytes:
                    self.dropped += 1
                    continue
                self.queue.append(e)
                self.bytes += len(e.data)
            self.cond.notify()

    def _run(self) -> None:
        while True:
            with self.cond:
                while not self.queue and not self.closing:
                    self.cond.wait()
                if not self.queue:
                    return
                batch = list(self.queue)
                self.queue.clear()
                self.bytes = 0
            try:
                self.sink.send(batch)
            except OSError as e:
                self.failed += len(batch)
                log.debug("log driver send failed, %d lines dropped (non-blocking): %s",
                          len(batch), e)

    def close(self) -> None:
        with self.cond:
            self.closing = True
            self.cond.notify()
        self.thread.join(timeout=5)
        self.sink.close()
        if self.dropped or self.failed:
            log.warning("non-blocking log mode: %d lines dropped (buffer full), %d not "
                        "delivered (receiver errors)", self.dropped, self.failed,
                        extra={"container": self.cid})


def pending(directory: str) -> bool:
    """True when the container's spool holds lines its shipper has not recorded as
    shipped (a shipper is needed even though the container may have exited)."""
    try:
        with open(os.path.join(directory, "logship.json")) as f:
            state = json.load(f)
    except FileNotFoundError:
        return os.path.exists(os.path.join(directory, SPOOL_NAME))
    except ValueError:
        return True
    try:
        st = os.stat(os.path.join(directory, SPOOL_NAME))
    except FileNotFoundError:
        return False
    if os.path.exists(os.path.join(directory, "ctr.log.shipping")):
        return True
    return not (st.st_ino == state.get("ino") and st.st_size <= int(state.get("off") or 0))


class Shipper:
    """One container's shipper thread (`start`, `stop`, `sync`)."""

    def __init__(self, cid: str, directory: str, cfg: LogConfig, *,
                 alive: Callable[[], bool], bundle: str,
                 sinks: Callable[[], tuple[FileSink | None, FileSink | None, Sink | None]]
                 ) -> None:
        self.cid = cid
        self.cfg = cfg
        self.directory = directory
        self.spool = os.path.join(directory, SPOOL_NAME)
        self.shipping = self.spool + ".shipping"
        self.state_path = os.path.join(directory, "logship.json")
        self.alive = alive
        self.bundle = bundle
        self._make_sinks = sinks
        self.files: dict[str, FileSink] = {}
        self.remote: Sink | _NonBlocking | None = None
        self.fd = -1
        self.ino = 0
        self.pos = 0          # read position in the current spool inode
        self.rest = b""       # an unfinished record at pos - len(rest)
        self.filed = 0        # the spool is in the files up to here
        self._in_flight = False
        self.rotating_since = 0.0
        self.error: str | None = None
        self._times: dict[bytes, int] = {}
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._cond = threading.Condition()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True,
                                       name=f"muslin-logs-{cid[:12]}")

    # -- control ---------------------------------------------------------------------
    def start(self) -> Shipper:
        self.thread.start()
        return self

    def kick(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 10) -> None:
        """Ends after the batch in hand, its place recorded: the rest of the spool is
        shipped by the next shipper of the container (a restart, the next daemon)."""
        self._stopping.set()
        self._wake.set()
        self.thread.join(timeout)

    def sync(self, timeout: float = 5) -> bool:
        """Waits until what the spool holds now is in this container's files (its
        json-file or local files, or the cache), or the shipper ended."""
        try:
            st = os.stat(self.spool)
        except FileNotFoundError:
            return True
        target_ino, target = st.st_ino, st.st_size
        deadline = time.monotonic() + timeout
        self.kick()
        with self._cond:
            while not self.done.is_set():
                if self.ino and (self.ino != target_ino or self.filed >= target):
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
                self.kick()
        return True

    @property
    def caught_up(self) -> bool:
        try:
            st = os.stat(self.spool)
        except FileNotFoundError:
            return True
        return self.done.is_set() or (st.st_ino == self.ino and self.pos >= st.st_size)

    # -- state -------------------------------------------------------------------------
    def _load(self) -> dict[str, Any]:
        try:
            with open(self.state_path) as f:
                doc = json.load(f)
            return doc if isinstance(doc, dict) else {}
        except (FileNotFoundError, ValueError):
            return {}

    def _save(self) -> None:
        _write_json(self.state_path, {
            "ino": self.ino, "off": self.pos - len(self.rest),
            "files": {k: s.size for k, s in self.files.items()}, "driver": self.cfg.driver})

    def _open(self, path: str, offset: int) -> None:
        if self.fd >= 0:
            os.close(self.fd)
        self.fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        st = os.fstat(self.fd)
        self.ino = st.st_ino
        self.pos = offset if 0 <= offset <= st.st_size else 0
        self.filed = self.pos
        self.rest = b""

    def _resume(self) -> None:
        state = self._load()
        ino, off = int(state.get("ino") or 0), int(state.get("off") or 0)
        sizes = state.get("files") if isinstance(state.get("files"), dict) else {}
        assert isinstance(sizes, dict)
        for name, sink in self.files.items():
            if ino and name in sizes:
                sink.file.truncate_to(int(sizes[name]))
        with contextlib.suppress(FileNotFoundError):
            if ino and os.stat(self.shipping).st_ino == ino:
                self._open(self.shipping, off)
                return
            os.unlink(self.shipping)
        while True:
            try:
                self._open(self.spool, 0)
                break
            except FileNotFoundError:  # conmon has not made it yet
                if self._stopping.wait(0.02) or not self.alive():
                    with contextlib.suppress(FileNotFoundError):
                        self._open(self.spool, 0)
                    return
        if self.ino == ino:
            self.pos = self.filed = off if off <= os.fstat(self.fd).st_size else 0

    # -- the loop -----------------------------------------------------------------------
    def _run(self) -> None:
        try:
            driver_file, cache, remote = self._make_sinks()
            if driver_file is not None:
                self.files["driver"] = driver_file
            if cache is not None:
                self.files["cache"] = cache
            if remote is not None:
                self.remote = remote if self.cfg.mode == "blocking" else _NonBlocking(
                    remote, self.cfg.max_buffer_size, self.cid)
            self._resume()
            self._loop()
        except _Stopped:
            log.info("log shipping stopped while the %s receiver was down; it resumes "
                     "from the spool", self.cfg.driver, extra={"container": self.cid})
        except Exception as e:  # reported on the container's logs; the daemon goes on
            self.error = str(e)
            log.error("log shipper failed: %s", e, extra={"container": self.cid})
        finally:
            if self.fd >= 0 and not self._in_flight:
                with contextlib.suppress(OSError):
                    self._save()
                os.close(self.fd)
                self.fd = -1
            for sink in self.files.values():
                sink.close()
            if self.remote is not None:
                self.remote.close()
            self.done.set()
            with self._cond:
                self._cond.notify_all()

    def _loop(self) -> None:
        idle = _POLL_MIN
        while self.fd >= 0 and not self._stopping.is_set():
            if self._pump():
                idle = _POLL_MIN
                continue
            if self._stopping.is_set():
                return
            if self._switch_if_rotated():
                continue
            if not self.alive():
                if self._pump():  # written between the last read and the check
                    continue
                if self._switch_if_rotated():
                    continue
                self._flush_partial()
                if self.rotating_since:  # asked, but conmon is gone: no new spool comes
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(self.shipping)
                return
            self._maybe_rotate()
            if self._wake.wait(idle):
                self._wake.clear()
                idle = _POLL_MIN
            else:
                idle = min(idle * 2, _POLL_MAX)

    def _pump(self) -> int:
        chunk = os.pread(self.fd, _BLOCK, self.pos)
        if not chunk:
            return 0
        data = self.rest + chunk if self.rest else chunk
        entries, used = parse_spool(data, self._times)
        self._deliver(entries, self.pos + len(chunk))
        with self._cond:
            self.pos += len(chunk)
            self.rest = data[used:]
            self._cond.notify_all()
        self._save()
        return len(chunk)

    def _flush_partial(self) -> None:
        """The writer is gone: an unfinished line left in `rest` goes out as it is."""
        if not self.rest:
            return
        entries, used = parse_spool(self.rest, self._times, final=True)
        self._deliver(entries, self.pos)
        with self._cond:
            self.rest = self.rest[used:]
        self._save()

    def _deliver(self, entries: list[LogEntry], read_to: int) -> None:
        """To the files, then to the receiver. Until it returns, the files are ahead
        of the recorded state (`_save` must not run: a resumed shipper cuts them back)."""
        self._in_flight = True
        for sink in self.files.values():
            sink.send(entries)
        with self._cond:
            self.filed = read_to
            self._cond.notify_all()
        if self.remote is not None and entries:
            self._send_remote(entries)
        self._in_flight = False

    def _send_remote(self, entries: list[LogEntry]) -> None:
        assert self.remote is not None
        if isinstance(self.remote, _NonBlocking):
            self.remote.send(entries)
            return
        delay, failures = 0.05, 0
        while True:
            try:
                self.remote.send(entries)
                return
            except OSError as e:
                failures += 1
                if failures in (1, 10) or failures % 100 == 0:
                    log.warning("log driver %s: send failed (%d tries), retrying "
                                "(blocking mode): %s", self.cfg.driver, failures, e,
                                extra={"container": self.cid})
                if self._stopping.wait(delay):
                    raise _Stopped() from None
                delay = min(delay * 2, 2.0)

    def _switch_if_rotated(self) -> bool:
        """conmon started a new spool: once the old one is drained, read the new one."""
        try:
            ino = os.stat(self.spool).st_ino
        except FileNotFoundError:
            return False
        if ino == self.ino:
            if self.rotating_since and time.monotonic() - self.rotating_since > 10:
                with contextlib.suppress(FileNotFoundError):  # conmon never did it
                    os.unlink(self.shipping)
                self.rotating_since = 0.0
            return False
        if self._pump():
            return True
        self._open(self.spool, 0)
        self._save()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.shipping)
        self.rotating_since = 0.0
        return True

    def _maybe_rotate(self) -> None:
        if self.rotating_since or self.pos < SPOOL_ROTATE or self.rest:
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.shipping)
        try:
            os.link(self.spool, self.shipping)
        except OSError:
            return
        if os.stat(self.shipping).st_ino != self.ino:
            os.unlink(self.shipping)
            return
        if not monitor.reopen_log(self.bundle):
            os.unlink(self.shipping)
            return
        self.rotating_since = time.monotonic()
