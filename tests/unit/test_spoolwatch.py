"""The spool watch wakes a shipper when its spool is written or replaced, and only
then (temporary directories; inotify is the kernel's, no root needed). One inotify
queue delivers events in order, so a later marker event shows an earlier non-event."""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from pathlib import Path

from muslin.logdrivers.spoolwatch import SpoolWatch


class Kicks:
    def __init__(self) -> None:
        self.seen: Counter[str] = Counter()
        self.cond = threading.Condition()

    def kick(self, name: str) -> None:
        with self.cond:
            self.seen[name] += 1
            self.cond.notify_all()

    def wait_for(self, name: str, count: int, timeout: float = 5) -> None:
        deadline = time.monotonic() + timeout
        with self.cond:
            while self.seen[name] < count:
                left = deadline - time.monotonic()
                assert left > 0, f"{name}: {self.seen[name]} kicks, {count} wanted"
                self.cond.wait(left)


def test_kicks_on_the_spool_only_and_stops_after_remove(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    kicks = Kicks()
    watch = SpoolWatch("ctr.log")
    markers = 0

    def settled() -> int:  # every earlier event of a handled: its kick count now
        nonlocal markers
        markers += 1
        (b / "ctr.log").write_text(f"marker {markers}\n")
        kicks.wait_for("b", markers)
        return kicks.seen["a"]

    try:
        watch.add(str(a), lambda: kicks.kick("a"))
        watch.add(str(b), lambda: kicks.kick("b"))
        (a / "ctr.log").write_text("a line\n")  # conmon writes the spool: a kick
        kicks.wait_for("a", 1)
        before = settled()
        (a / "logship.json").write_text("{}")  # the shipper's own files: no kick
        (a / "other").write_text("x")
        assert settled() == before
        os.rename(a / "ctr.log", a / "ctr.log.shipping")
        (a / "ctr.log").write_text("")  # conmon's new spool after a rotation: a kick
        kicks.wait_for("a", before + 1)
        watch.remove(str(a))
        before = settled()
        with open(a / "ctr.log", "a") as f:
            f.write("more\n")  # no longer watched
        assert settled() == before
        watch.remove(str(a))  # again: quiet
    finally:
        watch.close()
