"""Reading conmon's k8s-file log as Docker's `logs` shows it, and json-file lines."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from muslin.containers import logs
from muslin.containers.logs import LogEntry

T0 = logs.parse_time("2026-11-28T06:37:03.392850791+00:00")


def write(path: Path, *records: tuple[str, int, str, bytes]) -> None:
    with open(path, "ab") as f:
        for stream, offset, tag, content in records:
            secs, nanos = divmod(T0 + offset, 10**9)
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{nanos:09d}+00:00"
            f.write(f"{stamp} {stream} {tag} ".encode() + content + b"\n")


def test_times() -> None:
    assert logs.format_time(T0) == "2026-11-28T06:37:03.392850791Z"
    assert logs.parse_time("2026-11-28T07:37:03.392850791+01:00") == T0
    assert logs.parse_time("2026-11-28T01:07:03.392850791-05:30") == T0
    assert logs.parse_time("2026-11-28T06:37:03.3928507Z") == T0 - 91
    assert logs.parse_time("2026-11-28T06:37:03Z") == T0 - 392850791


def test_parse_line() -> None:
    assert logs.parse_line(b"2026-11-28T06:37:03.392850791+00:00 stdout F hello world") == (
        "stdout", T0, False, b"hello world")
    assert logs.parse_line(b"2026-11-28T06:37:03.392850791+00:00 stderr P ") == (
        "stderr", T0, True, b"")
    assert logs.parse_line(b"2026-11-28T06:37:03.392850791+00:00 stdout F") == (
        "stdout", T0, False, b"")
    for bad in (b"", b"garbage", b"2026-11-28T06:37:03Z stdin F x", b"nottime stdout F x",
                b"2026-11-28T06:37:03Z stdout X x"):
        assert logs.parse_line(bad) is None


def test_read_filters_and_tail(tmp_path: Path) -> None:
    p = tmp_path / "ctr.log"
    write(p, ("stdout", 0, "F", b"one"), ("stderr", 10, "F", b"two"),
          ("stdout", 20, "P", b"thr"), ("stdout", 30, "F", b"ee"),
          ("stdout", 40, "F", b"\xff raw bytes"))
    everything = list(logs.read(str(p)))
    assert [(e.stream, e.data) for e in everything] == [
        ("stdout", b"one\n"), ("stderr", b"two\n"), ("stdout", b"thr"), ("stdout", b"ee\n"),
        ("stdout", b"\xff raw bytes\n")]
    assert b"".join(e.data for e in everything if e.stream == "stdout") == (
        b"one\nthree\n\xff raw bytes\n")
    assert [e.data for e in logs.read(str(p), stderr=False)][:1] == [b"one\n"]
    assert [e.data for e in logs.read(str(p), stdout=False)] == [b"two\n"]
    assert [e.data for e in logs.read(str(p), since=T0 + 10, until=T0 + 30)] == [
        b"two\n", b"thr"]
    assert list(logs.read(str(p), tail=2)) == everything[-2:]
    assert list(logs.read(str(p), tail=100)) == everything
    assert list(logs.read(str(p), tail=0)) == []
    assert list(logs.read(str(tmp_path / "none"))) == []


def test_tail_across_blocks(tmp_path: Path) -> None:
    p = tmp_path / "ctr.log"
    write(p, *[("stdout", i, "F", b"x" * 1000 + str(i).encode()) for i in range(300)])
    got = list(logs.read(str(p), tail=150))
    assert len(got) == 150 and got[0].data.endswith(b"150\n") and got[-1].data.endswith(b"299\n")


def test_follow_until_the_writer_is_gone(tmp_path: Path) -> None:
    p = tmp_path / "ctr.log"
    write(p, ("stdout", 0, "F", b"first"))
    running = threading.Event()
    running.set()
    got: list[LogEntry] = []
    reader = threading.Thread(target=lambda: got.extend(
        logs.read(str(p), follow=True, running=running.is_set, poll=0.01)))
    reader.start()
    write(p, ("stdout", 1, "F", b"second"))
    write(p, ("stderr", 2, "F", b"third"))
    running.clear()
    reader.join(10)
    assert not reader.is_alive()
    assert [e.data for e in got] == [b"first\n", b"second\n", b"third\n"]


def test_follow_reopens_a_rotated_file(tmp_path: Path) -> None:
    p = tmp_path / "ctr.log"
    write(p, ("stdout", 0, "F", b"old1"), ("stdout", 1, "F", b"old2"))
    state = {"n": 0}

    def running() -> bool:
        state["n"] += 1
        if state["n"] == 1:  # conmon's size limit: a new, shorter file
            tmp = tmp_path / "new"
            write(tmp, ("stdout", 2, "F", b"new"))
            tmp.rename(p)
            return True
        return False

    assert [e.data for e in logs.read(str(p), follow=True, running=running, poll=0.001)] == [
        b"old1\n", b"old2\n", b"new\n"]


def test_json_file_lines_and_timestamps() -> None:
    e = LogEntry("stderr", T0, b"caf\xc3\xa9 \"q\"\n")
    line = logs.to_json_file_line(e)
    assert line.endswith(b"\n")
    assert json.loads(line) == {"log": "café \"q\"\n", "stream": "stderr",
                                "time": "2026-11-28T06:37:03.392850791Z"}
    assert logs.with_timestamp(e) == b"2026-11-28T06:37:03.392850791Z " + e.data
    assert e.time_rfc3339 == "2026-11-28T06:37:03.392850791Z"
