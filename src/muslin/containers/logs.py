"""A container's log: conmon's k8s-file, read back as Docker's `logs` shows it.

conmon (not muslind) writes each container's stdout and stderr to `ctr.log` in the
CRI ("k8s-file") format: one record per line, `<RFC3339Nano time> <stream> <P|F>
<bytes>`, P marking a partial line. That keeps the log written while muslind is
down and loses nothing (raw bytes, nanosecond times, the stream). This module owns
reading it: parsing, since/until/tail filters, following, and rendering Docker's
json-file lines (`{"log","stream","time"}`) for the logging drivers. Must not start
or signal processes: `follow` asks the caller, through `running()`, whether more
can come.
"""

from __future__ import annotations

import calendar
import json
import os
import time
from collections.abc import Callable, Iterator
from typing import NamedTuple

_BLOCK = 64 * 1024


class LogEntry(NamedTuple):
    """One record of the log: (stream, time, data), `time` in nanoseconds since the
    epoch. A full line keeps its newline; a partial record (a line longer than
    conmon's 8 KiB buffer, or output without a final newline) has none, as Docker's
    json-file entries of a split line."""

    stream: str
    time: int
    data: bytes

    @property
    def time_rfc3339(self) -> str:
        return format_time(self.time)


def parse_time(ts: bytes | str) -> int:
    """Nanoseconds since the epoch of an RFC 3339 time with any number of fraction
    digits and a Z or ±hh:mm offset (conmon writes the local offset)."""
    s = ts.decode() if isinstance(ts, bytes) else ts
    if s.endswith("Z"):
        body, off = s[:-1], 0
    else:
        body, sign, tail = s[:-6], s[-6], s[-5:]
        if sign not in "+-" or tail[2] != ":":
            raise ValueError(f"bad time {s!r}")
        off = (int(tail[:2]) * 3600 + int(tail[3:]) * 60) * (1 if sign == "+" else -1)
    whole, _, frac = body.partition(".")
    secs = calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S")) - off
    nanos = int((frac + "000000000")[:9]) if frac else 0
    return secs * 1_000_000_000 + nanos


def format_time(ns: int) -> str:
    """RFC 3339 with nanoseconds in UTC, as Docker writes log times."""
    secs, nanos = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{nanos:09d}Z"


def parse_line(line: bytes) -> tuple[str, int, bool, bytes] | None:
    """(stream, time, partial, content) of one k8s-file record (without its newline),
    or None when it is not one."""
    try:
        ts, stream, tag, content = line.split(b" ", 3)
    except ValueError:
        # "<time> <stream> F" with empty content has no trailing space on some writers
        parts = line.split(b" ")
        if len(parts) != 3:
            return None
        ts, stream, tag = parts
        content = b""
    if tag not in (b"P", b"F") or stream not in (b"stdout", b"stderr"):
        return None
    try:
        t = parse_time(ts)
    except ValueError:
        return None
    return stream.decode(), t, tag == b"P", content


def to_json_file_line(entry: LogEntry) -> bytes:
    """Docker's json-file record of an entry (one JSON object and a newline)."""
    return json.dumps({"log": entry.data.decode("utf-8", "replace"), "stream": entry.stream,
                       "time": entry.time_rfc3339}, ensure_ascii=False).encode() + b"\n"


def _tail_offset(path: str, n: int) -> int:
    """The offset where the last n records of the file begin (0 when it has fewer)."""
    with open(path, "rb") as fh:
        pos = fh.seek(0, os.SEEK_END)
        buf = b""
        while pos > 0:
            step = min(_BLOCK, pos)
            pos -= step
            fh.seek(pos)
            buf = fh.read(step) + buf
            if pos > 0 and b"\n" not in buf:
                continue
            first = 0 if pos == 0 else buf.index(b"\n") + 1  # the first line may be cut
            lines, o = [], first
            for line in buf[first:].split(b"\n"):
                lines.append((o, line))
                o += len(line) + 1
            found = 0
            for o, line in reversed(lines):
                if parse_line(line) is not None:
                    found += 1
                    if found == n + 1:
                        return pos + o + len(line) + 1
        return 0


def decode_k8s(buf: bytes) -> tuple[list[LogEntry], int]:
    """The entries of the whole k8s-file records at the start of buf, and the bytes
    they use (a partial record keeps no newline)."""
    out: list[LogEntry] = []
    end = buf.rfind(b"\n") + 1
    for line in buf[:max(end - 1, 0)].split(b"\n") if end else ():
        rec = parse_line(line)
        if rec is not None:
            stream, t, partial, content = rec
            out.append(LogEntry(stream, t, content if partial else content + b"\n"))
    return out, end


def read(path: str, *, since: int | None = None, until: int | None = None,
         tail: int | None = None, stdout: bool = True, stderr: bool = True,
         follow: bool = False, running: Callable[[], bool] | None = None,
         poll: float = 0.05) -> Iterator[LogEntry]:
    """The entries of the log at path, oldest first. since/until are nanoseconds
    since the epoch (inclusive/exclusive, Docker's), tail the number of last lines
    (None: all). With follow, waits for more while `running()` says the writer lives,
    and ends once it is gone and the file is drained. A file replaced by conmon's
    size rotation is reopened from its start."""
    try:
        offset = _tail_offset(path, tail) if tail is not None else 0
    except FileNotFoundError:
        offset = 0
    return follow_file(path, offset, decode_k8s, selector(since, until, stdout, stderr),
                       until=until, follow=follow, running=running, poll=poll)


def selector(since: int | None, until: int | None, stdout: bool, stderr: bool
             ) -> Callable[[LogEntry], bool]:
    """Docker's filter of `logs`: the streams asked for, since <= time < until."""
    def wanted(e: LogEntry) -> bool:
        if (e.stream == "stdout" and not stdout) or (e.stream == "stderr" and not stderr):
            return False
        if since is not None and e.time < since:
            return False
        return not (until is not None and e.time >= until)
    return wanted


def follow_file(path: str, offset: int, decode: Callable[[bytes], tuple[list[LogEntry], int]],
                wanted: Callable[[LogEntry], bool], *, until: int | None, follow: bool,
                running: Callable[[], bool] | None, poll: float = 0.05
                ) -> Iterator[LogEntry]:
    """The entries of a log file from offset (records cut by `decode`), then, with
    follow, more as they are written while `running()`; a file replaced by a rotation
    is drained, then the new one read from its start. Ends at the first entry at or
    after until (the file is in time order)."""
    fh = None
    inode = None
    rest = b""
    try:
        while True:
            if fh is None:
                try:
                    fh = open(path, "rb")  # noqa: SIM115 - closed in finally
                    inode = os.fstat(fh.fileno()).st_ino
                    fh.seek(offset)
                except FileNotFoundError:
                    fh = None
            chunk = fh.read(_BLOCK) if fh is not None else b""
            if chunk:
                data = rest + chunk
                entries, used = decode(data)
                rest = data[used:]
                for e in entries:
                    if until is not None and e.time >= until:
                        return
                    if wanted(e):
                        yield e
                continue
            if not follow:
                return
            alive = running() if running is not None else False
            try:
                st = os.stat(path)
                replaced = fh is None or st.st_ino != inode or st.st_size < fh.tell()
            except FileNotFoundError:
                replaced = False
            if replaced and fh is not None:
                if fh.read(1):  # written before the rotation: read it first
                    fh.seek(-1, os.SEEK_CUR)
                    continue
                fh.close()
                fh, offset, rest = None, 0, b""
                continue
            if not alive:
                # one more read: the writer may have written between the read and the check
                if fh is not None:
                    more = fh.read(_BLOCK)
                    if more:
                        fh.seek(-len(more), os.SEEK_CUR)
                        continue
                return
            time.sleep(poll)
    finally:
        if fh is not None:
            fh.close()


def with_timestamp(entry: LogEntry) -> bytes:
    """`docker logs -t`: the entry's data prefixed with its time and a space."""
    return entry.time_rfc3339.encode() + b" " + entry.data
