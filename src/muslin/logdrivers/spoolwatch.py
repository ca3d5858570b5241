"""Wakes log shippers when conmon writes their container's spool: one inotify
instance and one thread for all containers, instead of every idle shipper polling
(a thousand idle shippers polling four times a second kept a core busy).

Watches a container's directory (the spool is replaced there when it rotates) and
calls the shipper's kick for events on the spool's name only. Owns the inotify
descriptor and its thread; must not read spools or know the shipper's state.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable

from inotify_simple import INotify, flags

log = logging.getLogger("muslin.logdrivers")

# a write, a new spool (conmon's reopen), or one moved in
_MASK = flags.MODIFY | flags.CREATE | flags.MOVED_TO


class SpoolWatch:
    """Calls a callback whenever the named file in a watched directory changes."""

    def __init__(self, spool_name: str) -> None:
        self._name = spool_name
        self._ino = INotify()
        self._lock = threading.Lock()
        self._by_wd: dict[int, Callable[[], None]] = {}
        self._wd_of: dict[str, int] = {}
        self._closed = False
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name="muslin-spoolwatch")
        self._thread.start()

    def add(self, directory: str, kick: Callable[[], None]) -> None:
        """Watches directory (again: the new kick replaces the old one)."""
        with self._lock:
            if self._closed:
                return
            wd = self._ino.add_watch(directory, _MASK)
            self._by_wd[wd] = kick
            self._wd_of[directory] = wd

    def remove(self, directory: str) -> None:
        with self._lock:
            wd = self._wd_of.pop(directory, None)
            if wd is None:
                return
            self._by_wd.pop(wd, None)
            with contextlib.suppress(OSError):  # gone with its directory already
                self._ino.rm_watch(wd)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._by_wd.clear()
            self._wd_of.clear()
        self._thread.join(timeout=5)
        self._ino.close()

    def _run(self) -> None:
        while not self._closed:
            try:
                events = self._ino.read(timeout=500)
            except OSError as e:
                log.error("log spool watch failed: %s (shippers poll instead)", e)
                return
            kicks = []
            with self._lock:
                for ev in events:
                    if ev.mask & flags.IGNORED:
                        self._by_wd.pop(ev.wd, None)
                    elif ev.name == self._name and ev.wd in self._by_wd:
                        kicks.append(self._by_wd[ev.wd])
            for kick in kicks:
                kick()
