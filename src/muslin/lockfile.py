"""An exclusive lock file that says which process holds a directory (flock + pid).

Owns only taking the lock; the holder closes the returned fd to release it. Must not
decide which directories are locked.
"""

from __future__ import annotations

import fcntl
import os

from muslin.errors import Conflict


def take(path: str, what: str) -> int:
    """Locks path (creating it) and writes this pid into it; Conflict naming `what` and the
    holder's pid when another process has it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        other = os.pread(fd, 32, 0).decode(errors="replace").strip() or "another process"
        os.close(fd)
        raise Conflict(f"{what} is in use by pid {other}") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd
