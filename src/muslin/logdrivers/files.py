"""The log file formats: Docker's json-file lines and muslin's `local` records, their
rotated file sets (max-size, max-file, compress) and reading them back as `logs`
shows them (tail, since/until, stream selection, follow across rotations).

`local` format (muslin's own, compact, binary, tail-friendly): each record is
`<u32 length><u8 flags><3 bytes zero><i64 time in ns>` + data + `<u32 length>`
(little-endian; flags bit 0: stderr, bit 1: partial line). The trailing length
lets a reader walk back from the end for `--tail` without scanning the file.

Rotation as Docker's loggerutils: `path` is written; at max-size it becomes
`path.1` (gzip-compressed to `path.1.gz` with compress), older ones shift up, and
no more than max-file files are kept. Owns files only: no sockets, no threads.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import shutil
import struct
from collections import deque
from collections.abc import Callable, Iterator
from typing import BinaryIO, Protocol

from muslin.containers.logs import LogEntry, follow_file, format_time, parse_time, selector
from muslin.logdrivers.options import Rotation

_BLOCK = 64 * 1024
_LOCAL_HEAD = struct.Struct("<IB3xq")
_LOCAL_TAIL = struct.Struct("<I")


def rfc3339nano(ns: int) -> str:
    """Go's time.RFC3339Nano in UTC: trailing zeros of the fraction dropped."""
    text = format_time(ns)  # ...ss.nnnnnnnnnZ
    whole, frac = text[:-1].split(".")
    frac = frac.rstrip("0")
    return f"{whole}.{frac}Z" if frac else f"{whole}Z"


class Format(Protocol):
    name: str

    def encode(self, entry: LogEntry, attrs: dict[str, str] | None = None) -> bytes: ...

    def decode(self, buf: bytes) -> tuple[list[LogEntry], int]:
        """The whole records at the start of buf and how many bytes they use."""
        ...

    def tail_start(self, fh: BinaryIO, n: int) -> tuple[int, int]:
        """(offset, count): where the last n records of the open file begin and how
        many there are from there (fewer than n when the file has fewer)."""
        ...


class JsonFileFormat:
    """Docker's json-file: `{"log","stream","time"}` and optional "attrs", one a line."""

    name = "json-file"

    def encode(self, entry: LogEntry, attrs: dict[str, str] | None = None) -> bytes:
        doc: dict[str, object] = {"log": entry.data.decode("utf-8", "replace"),
                                  "stream": entry.stream}
        if attrs:
            doc["attrs"] = attrs
        doc["time"] = rfc3339nano(entry.time)
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"

    def decode(self, buf: bytes) -> tuple[list[LogEntry], int]:
        out: list[LogEntry] = []
        end = buf.rfind(b"\n") + 1
        for line in buf[:end].split(b"\n"):
            if not line:
                continue
            try:
                d = json.loads(line)
                out.append(LogEntry(str(d["stream"]), parse_time(str(d["time"])),
                                    str(d["log"]).encode()))
            except (ValueError, KeyError, TypeError):
                continue  # a torn or foreign line
        return out, end

    def tail_start(self, fh: BinaryIO, n: int) -> tuple[int, int]:
        size = fh.seek(0, os.SEEK_END)
        pos, count, buf = size, 0, b""
        if n <= 0:
            return size, 0
        while pos > 0:
            step = min(_BLOCK, pos)
            pos -= step
            fh.seek(pos)
            buf = fh.read(step)
            # newlines in this block, from the end; the file's last byte is a newline
            idx = len(buf)
            while True:
                idx = buf.rfind(b"\n", 0, idx)
                if idx < 0:
                    break
                if pos + idx == size - 1:
                    continue
                count += 1
                if count == n:
                    return pos + idx + 1, count
        return 0, count + 1 if size else 0  # the first line has no newline before it


class LocalFormat:
    """muslin's compact `local` records (see the module docstring)."""

    name = "local"

    def encode(self, entry: LogEntry, attrs: dict[str, str] | None = None) -> bytes:
        data = entry.data
        partial = not data.endswith(b"\n")
        flags = (1 if entry.stream == "stderr" else 0) | (2 if partial else 0)
        return _LOCAL_HEAD.pack(len(data), flags, entry.time) + data + \
            _LOCAL_TAIL.pack(len(data))

    def decode(self, buf: bytes) -> tuple[list[LogEntry], int]:
        out: list[LogEntry] = []
        pos, head = 0, _LOCAL_HEAD.size
        while len(buf) - pos >= head + 4:
            length, flags, t = _LOCAL_HEAD.unpack_from(buf, pos)
            end = pos + head + length + 4
            if end > len(buf):
                break
            data = buf[pos + head:pos + head + length]
            out.append(LogEntry("stderr" if flags & 1 else "stdout", t, data))
            pos = end
        return out, pos

    def tail_start(self, fh: BinaryIO, n: int) -> tuple[int, int]:
        pos = self._last_boundary(fh)
        count = 0
        while pos > 0 and count < n:
            start = self._record_before(fh, pos)
            if start is None:
                break
            pos, count = start, count + 1
        return pos, count

    @staticmethod
    def _record_before(fh: BinaryIO, end: int) -> int | None:
        """Where the record ending at `end` starts; None unless its head and its
        trailing length agree (`end` is not a record's end)."""
        head = _LOCAL_HEAD.size
        if end < head + 4:
            return None
        fh.seek(end - 4)
        (length,) = _LOCAL_TAIL.unpack(fh.read(4))
        start = end - 4 - length - head
        if start < 0:
            return None
        fh.seek(start)
        raw = fh.read(head)
        if len(raw) < head or raw[5:8] != b"\0\0\0" or _LOCAL_HEAD.unpack(raw)[0] != length:
            return None
        return int(start)

    def _last_boundary(self, fh: BinaryIO) -> int:
        """The end of the last whole record: the file's end, unless a writer is
        halfway through a record (then the records are walked from the start)."""
        size = fh.seek(0, os.SEEK_END)
        if size == 0 or self._record_before(fh, size) is not None:
            return size
        pos, head = 0, _LOCAL_HEAD.size
        while True:
            fh.seek(pos)
            raw = fh.read(head)
            if len(raw) < head:
                return pos
            nxt = pos + head + _LOCAL_HEAD.unpack(raw)[0] + 4
            if nxt > size:
                return pos
            pos = nxt


FORMATS: dict[str, Format] = {"json-file": JsonFileFormat(), "local": LocalFormat()}


# -- writing ---------------------------------------------------------------------------

def rotated_names(path: str, max_file: int) -> list[str]:
    """The rotated files of a set that exist, oldest first (not the current one)."""
    out = []
    for i in range(max(max_file, 1) + 4, 0, -1):
        for name in (f"{path}.{i}.gz", f"{path}.{i}"):
            if os.path.exists(name):
                out.append(name)
    return out


class RotatingFile:
    """The current file of a rotated set, appended to. `size` is what has been written
    and flushed; the shipper records it, and `truncate_to` cuts back to a recorded size
    after a crash so no record is written twice."""

    def __init__(self, path: str, rotation: Rotation, mode: int = 0o640) -> None:
        self.path = path
        self.rotation = rotation
        self.mode = mode
        self._fh: BinaryIO | None = None
        self.size = 0
        self._open()

    def _open(self) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
                     self.mode)
        self._fh = os.fdopen(fd, "ab")
        self.size = os.fstat(fd).st_size

    def truncate_to(self, size: int) -> None:
        if self.size > size >= 0:
            assert self._fh is not None
            os.ftruncate(self._fh.fileno(), size)
            self.size = size

    def write(self, records: list[bytes]) -> bool:
        """Appends records (rotating before one that would pass max-size) and flushes.
        True if the set rotated."""
        assert self._fh is not None
        rotated = False
        limit = self.rotation.max_size
        batch: list[bytes] = []
        pending = 0
        for rec in records:
            if limit > 0 and self.size + pending > 0 and self.size + pending + len(rec) > limit:
                self._fh.write(b"".join(batch))
                self.size += pending
                batch, pending = [], 0
                self.rotate()
                rotated = True
            batch.append(rec)
            pending += len(rec)
        if batch:
            self._fh.write(b"".join(batch))
            self.size += pending
        self._fh.flush()
        return rotated

    def rotate(self) -> None:
        assert self._fh is not None
        self._fh.flush()
        keep = self.rotation.max_file
        if keep <= 1:
            os.ftruncate(self._fh.fileno(), 0)
            self.size = 0
            return
        self._fh.close()
        for name in (f"{self.path}.{keep - 1}", f"{self.path}.{keep - 1}.gz"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name)
        for i in range(keep - 2, 0, -1):
            for ext in ("", ".gz"):
                with contextlib.suppress(FileNotFoundError):
                    os.rename(f"{self.path}.{i}{ext}", f"{self.path}.{i + 1}{ext}")
        os.rename(self.path, f"{self.path}.1")
        if self.rotation.compress:
            _gzip(f"{self.path}.1")
        self._open()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def _gzip(path: str) -> None:
    tmp = f"{path}.gz.tmp"
    with open(path, "rb") as src, gzip.open(tmp, "wb", compresslevel=6) as dst:
        shutil.copyfileobj(src, dst)
    os.replace(tmp, f"{path}.gz")
    os.unlink(path)


def remove_set(path: str) -> None:
    for name in [*rotated_names(path, 64), path]:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)


# -- reading ---------------------------------------------------------------------------

def _read_whole(name: str) -> bytes:
    if name.endswith(".gz"):
        with gzip.open(name, "rb") as f:
            return f.read()
    with open(name, "rb") as f:
        return f.read()


def read(path: str, fmt: Format, *, since: int | None = None, until: int | None = None,
         tail: int | None = None, stdout: bool = True, stderr: bool = True,
         follow: bool = False, running: Callable[[], bool] | None = None,
         poll: float = 0.05) -> Iterator[LogEntry]:
    """The entries of a rotated set, oldest first: since/until in ns (inclusive,
    exclusive), tail the number of last records (None: all). With follow, waits for
    more while `running()` says more can come, and follows the current file across
    rotations."""
    wanted = selector(since, until, stdout, stderr)
    old = rotated_names(path, 64)
    start = 0
    if tail is not None:
        # the current file's last records, then older files' until there are enough
        need = tail
        try:
            with open(path, "rb") as fh:
                start, found = fmt.tail_start(fh, need)
        except FileNotFoundError:
            start, found = 0, 0
        need -= found
        olds: deque[LogEntry] = deque(maxlen=max(need, 0))
        if need > 0:
            for name in old:
                with contextlib.suppress(FileNotFoundError):
                    entries, _ = fmt.decode(_read_whole(name))
                    olds.extend(entries)
        for e in olds if need > 0 else ():
            if wanted(e):
                yield e
    else:
        for name in old:
            try:
                entries, _ = fmt.decode(_read_whole(name))
            except FileNotFoundError:
                continue
            for e in entries:
                if until is not None and e.time >= until:
                    return
                if wanted(e):
                    yield e
    yield from follow_file(path, start, fmt.decode, wanted, until=until, follow=follow,
                           running=running, poll=poll)
