"""Waiting for one file descriptor to become readable, at any descriptor number.

`select.select` cannot watch a descriptor numbered 1024 (FD_SETSIZE) or above: glibc
aborts the whole process ("bit out of range 0 - FD_SETSIZE on fd_set"), which is where a
daemon with a few hundred containers (pidfds, DNS sockets, pipes) gets. `readable` uses
poll(2), which has no such limit. Owns nothing else: no reading, no retries.
"""

from __future__ import annotations

import select
from typing import Protocol


class _HasFileno(Protocol):
    def fileno(self) -> int: ...


def readable(fd: int | _HasFileno, timeout: float | None) -> bool:
    """True when fd is readable (or at EOF, hung up or in error: a read will tell) within
    timeout seconds (None: wait for ever)."""
    p = select.poll()
    p.register(fd, select.POLLIN | select.POLLPRI)
    ms = None if timeout is None else max(0, int(timeout * 1000 + 0.999))
    return bool(p.poll(ms))
