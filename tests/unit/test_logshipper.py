"""The log shipper on plain files (no conmon): resuming from its recorded place with
every line once, cutting its files back after a crash, blocking retries, non-blocking
drops, and the spool's hand-over when "conmon" reopens it."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from muslin.containers.logs import LogEntry
from muslin.logdrivers import options, shipper
from muslin.logdrivers.options import Rotation
from muslin.logdrivers.senders import FileSink, Sink
from muslin.logdrivers.shipper import Shipper

CID = "ab" * 32


def spool_lines(path: Path, start: int, n: int, stream: str = "stdout") -> None:
    with open(path, "ab") as f:
        for i in range(start, start + n):
            f.write(f"2026-11-28T06:37:03.{i:09d}Z {stream} F line{i}\n".encode())


class Collect:
    """A receiver that fails its first `fail` sends."""

    def __init__(self, fail: int = 0) -> None:
        self.fail = fail
        self.got: list[bytes] = []

    def send(self, entries: Sequence[LogEntry]) -> None:
        if self.fail:
            self.fail -= 1
            raise OSError("receiver down")
        self.got += [e.data for e in entries]

    def close(self) -> None:
        pass


def run(tmp: Path, cfg: options.LogConfig, remote: Sink | None = None,
        alive: bool = False) -> Shipper:
    json_path = str(tmp / f"{CID}-json.log")

    def sinks() -> tuple[FileSink | None, FileSink | None, Sink | None]:
        driver = FileSink(json_path, "json-file", cfg.rotation) \
            if cfg.driver == "json-file" else None
        cache = FileSink(str(tmp / "cache.log"), "local", cfg.cache) if cfg.cache else None
        return driver, cache, remote

    s = Shipper(CID, str(tmp), cfg, alive=lambda: alive, bundle=str(tmp / "bundle"),
                sinks=sinks).start()
    if not alive:
        assert s.done.wait(10)
    return s


def json_lines(tmp: Path) -> list[str]:
    with open(tmp / f"{CID}-json.log") as f:
        return [json.loads(line)["log"] for line in f]


def test_resume_ships_each_line_once_and_cuts_back_after_a_crash(tmp_path: Path) -> None:
    cfg = options.parse("json-file", {})
    spool_lines(tmp_path / "ctr.log", 0, 100)
    run(tmp_path, cfg)
    assert json_lines(tmp_path) == [f"line{i}\n" for i in range(100)]
    spool_lines(tmp_path / "ctr.log", 100, 50)
    run(tmp_path, cfg)
    assert json_lines(tmp_path) == [f"line{i}\n" for i in range(150)]
    # a crash after writing, before recording: the extra record goes, then comes back once
    state = json.loads((tmp_path / "logship.json").read_text())
    state["off"] -= len(b"2026-11-28T06:37:03.000000149Z stdout F line149\n")
    with open(tmp_path / f"{CID}-json.log", "rb") as f:
        state["files"]["driver"] -= len(f.readlines()[-1])
    (tmp_path / "logship.json").write_text(json.dumps(state))
    with open(tmp_path / f"{CID}-json.log", "a") as f:
        f.write('{"log":"torn')  # half a record, as a kill -9 can leave
    run(tmp_path, cfg)
    assert json_lines(tmp_path) == [f"line{i}\n" for i in range(150)]


def test_blocking_retries_until_the_receiver_takes_it(tmp_path: Path) -> None:
    cfg = options.parse("syslog", {"syslog-address": "udp://127.0.0.1:9"})
    spool_lines(tmp_path / "ctr.log", 0, 20)
    rx = Collect(fail=3)
    run(tmp_path, cfg, rx)
    assert rx.got == [f"line{i}\n".encode() for i in range(20)]
    # the cache has them too (syslog cannot be read)
    cache = (tmp_path / "cache.log").read_bytes()
    assert cache.count(b"line") == 20


def test_non_blocking_drops_beyond_the_buffer_and_never_waits(tmp_path: Path) -> None:
    cfg = options.parse("gelf", {"gelf-address": "udp://127.0.0.1:9",
                                 "mode": "non-blocking", "max-buffer-size": "100b"})
    spool_lines(tmp_path / "ctr.log", 0, 1000)
    rx = Collect(fail=10**9)
    s = run(tmp_path, cfg, rx)
    state = json.loads((tmp_path / "logship.json").read_text())
    assert state["off"] == os.path.getsize(tmp_path / "ctr.log") and s.error is None
    assert rx.got == []


def test_the_spool_is_handed_over_when_conmon_reopens_it(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shipper, "SPOOL_ROTATE", 2000)
    spool = tmp_path / "ctr.log"
    (tmp_path / "bundle").mkdir()
    ctl = tmp_path / "bundle" / "ctl"
    os.mkfifo(ctl)
    stop = threading.Event()
    written = [0]
    rotations = [0]
    lock = threading.Lock()

    def conmon() -> None:
        """Writes lines; on "2 0 0" on its ctl fifo, renames a fresh file over the log."""
        fd = os.open(ctl, os.O_RDONLY | os.O_NONBLOCK)
        keep = os.open(ctl, os.O_WRONLY | os.O_NONBLOCK)  # as conmon: never EOF
        try:
            while not stop.is_set():
                with lock:
                    spool_lines(spool, written[0], 10)
                    written[0] += 10
                try:
                    msg = os.read(fd, 100)
                except BlockingIOError:
                    msg = b""
                if msg.startswith(b"2 "):
                    with lock:
                        tmp = str(spool) + ".tmp"
                        open(tmp, "wb").close()
                        os.rename(tmp, spool)
                        rotations[0] += 1
                time.sleep(0.002)
        finally:
            os.close(fd)
            os.close(keep)

    t = threading.Thread(target=conmon)
    t.start()
    cfg = options.parse("json-file", {})
    alive = [True]
    json_path = str(tmp_path / f"{CID}-json.log")
    s = Shipper(CID, str(tmp_path), cfg, alive=lambda: alive[0], bundle=str(tmp_path / "bundle"),
                sinks=lambda: (FileSink(json_path, "json-file", Rotation()), None, None)).start()
    try:
        deadline = time.monotonic() + 20
        while rotations[0] < 3 or written[0] < 600:
            assert time.monotonic() < deadline, "conmon was never asked to reopen the log"
            time.sleep(0.01)
    finally:
        stop.set()
        t.join()
        alive[0] = False
        assert s.done.wait(10)
    assert json_lines(tmp_path) == [f"line{i}\n" for i in range(written[0])]
    assert not (tmp_path / "ctr.log.shipping").exists()


def test_pending_says_when_a_shipper_is_needed(tmp_path: Path) -> None:
    assert not shipper.pending(str(tmp_path))
    spool_lines(tmp_path / "ctr.log", 0, 5)
    assert shipper.pending(str(tmp_path))
    run(tmp_path, options.parse("json-file", {}))
    assert not shipper.pending(str(tmp_path))
    spool_lines(tmp_path / "ctr.log", 5, 1)
    assert shipper.pending(str(tmp_path))
