"""Network namespaces: create one as a bind-mounted file, delete it, run code inside it.

A thread that calls setns moves only itself, so code runs inside a namespace on a
worker thread made for it: either a long-lived `NetnsThread` (one per instance host
namespace) or a short-lived thread per call (`run_in`). The caller's thread, an
asyncio loop's included, never changes namespace. Must not hold policy: which
namespace and what runs there are the callers' business.
"""

from __future__ import annotations

import contextlib
import errno
import os
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from muslin.kernel import _libc

T = TypeVar("T")

_THREAD_NS = "/proc/thread-self/ns/net"


def _run_on_thread(fn: Callable[[], T], name: str) -> T:
    """Runs fn on a fresh thread and returns its result (or raises its error)."""
    box: list[Any] = []
    err: list[BaseException] = []

    def target() -> None:
        try:
            box.append(fn())
        except BaseException as e:  # re-raised on the caller's thread
            err.append(e)

    t = threading.Thread(target=target, name=name, daemon=True)
    t.start()
    t.join()
    if err:
        raise err[0]
    return box[0]  # type: ignore[no-any-return]


def _enter(path: str | None) -> None:
    """Moves the calling thread into the namespace at path (None: stay)."""
    if path is None:
        return
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        _libc.setns(fd)
    finally:
        os.close(fd)


def create(path: str) -> None:
    """Creates a new network namespace and pins it at path (a bind-mounted file).

    Raises FileExistsError when path is already a namespace.
    """
    if is_netns(path):
        raise FileExistsError(errno.EEXIST, f"namespace exists: {path}")

    def make() -> None:
        _libc.unshare(_libc.CLONE_NEWNET)
        fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o444)
        os.close(fd)
        try:
            _libc.bind_mount(_THREAD_NS, path)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(path)
            raise

    _run_on_thread(make, "muslin-netns-create")


def delete(path: str) -> None:
    """Unmounts and removes a pinned namespace; quiet when it is already gone."""
    try:
        _libc.umount(path)
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.ENOENT):
            raise
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


_NSFS_DEV: int | None = None


def is_netns(path: str) -> bool:
    """True when path is a pinned namespace (a file on nsfs)."""
    global _NSFS_DEV
    if _NSFS_DEV is None:
        _NSFS_DEV = os.stat("/proc/self/ns/net").st_dev
    try:
        return os.stat(path).st_dev == _NSFS_DEV
    except FileNotFoundError:
        return False


def inode(path: str | None) -> int:
    """The namespace's identity (its nsfs inode); None means the caller's namespace."""
    return os.stat(path or _THREAD_NS).st_ino


def run_in(path: str | None, fn: Callable[[], T]) -> T:
    """Runs fn inside the namespace at path, on a short-lived thread of its own."""

    def inside() -> T:
        _enter(path)
        return fn()

    return _run_on_thread(inside, "muslin-netns-call")


class NetnsThread:
    """A long-lived worker thread that lives in one namespace and runs calls there.

    Calls are serialised: one at a time, in submission order. Per-thread resources
    (netlink and nftables handles) are made on the thread by `resource` and closed
    with `close`.
    """

    def __init__(self, path: str | None, name: str) -> None:
        self.path = path
        self._queue: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]] | None] = (
            queue.SimpleQueue()
        )
        self._resources: dict[str, Any] = {}
        self._closers: list[Callable[[], None]] = []
        ready: Future[None] = Future()
        self._thread = threading.Thread(
            target=self._main, args=(ready,), name=name, daemon=True
        )
        self._thread.start()
        ready.result()

    def _main(self, ready: Future[None]) -> None:
        try:
            _enter(self.path)
        except BaseException as e:
            ready.set_exception(e)
            return
        ready.set_result(None)
        while True:
            item = self._queue.get()
            if item is None:
                break
            fn, fut = item
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                fut.set_result(fn())
            except BaseException as e:
                fut.set_exception(e)
        for closer in reversed(self._closers):
            with contextlib.suppress(Exception):
                closer()

    def on_thread(self) -> bool:
        return threading.current_thread() is self._thread

    def call(self, fn: Callable[[], T]) -> T:
        """Runs fn on the thread, inside the namespace, and returns its result."""
        if self.on_thread():
            return fn()
        fut: Future[T] = Future()
        self._queue.put((fn, fut))
        return fut.result()

    def resource(self, key: str, make: Callable[[], T], close: Callable[[T], None]) -> T:
        """A per-thread resource, made on first use; call only on the thread."""
        assert self.on_thread(), "resources live on their thread"
        if key not in self._resources:
            value = make()
            self._resources[key] = value
            self._closers.append(lambda: close(value))
        return self._resources[key]  # type: ignore[no-any-return]

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
