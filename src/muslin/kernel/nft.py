"""nftables through libnftables' JSON API, in-process (ctypes on libnftables.so.1).

Each `run` is one batch, which the kernel applies atomically: all of it or none.
A refused batch raises KernelError carrying libnftables' own error text. A context
talks to the namespace of the thread that made it; use it only on that thread.
Must not build rules: muslin.firewall plans them as data.

libnftables waits for a batch's answer with select(2) on the netlink socket it opens in
nft_ctx_new: numbered 1024 (FD_SETSIZE) or above, glibc aborts the whole process ("bit
out of range 0 - FD_SETSIZE on fd_set"), as muslind did at its ~200th container (each
sandbox's resolver makes a context once its descriptors are past 1023). So some
descriptors below 1024 are held from the first use on, two of them are let go just
before each nft_ctx_new (one for the socket, one for a thread opening a descriptor at
that moment): the kernel gives the socket the lowest free number, which is checked (a
context whose socket landed higher is made again); closing a context takes its socket's
number back at once, before the daemon's other threads (pipes, pidfds, sockets of new
containers) would. When no number below 1024 is free at all (a daemon with about a
thousand containers), a context runs its commands through the `nft` program instead
(`nft -j -a -f -`, the same JSON), started from the calling thread, so in its namespace:
the child's descriptor table is small, and nothing ever aborts.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import socket
import subprocess
import threading
from typing import Any

from muslin.errors import KernelError, MissingKernelFeature

NFT_CTX_OUTPUT_HANDLE = 1 << 3
NFT_CTX_OUTPUT_JSON = 1 << 4

_lib: ctypes.CDLL | None = None
FD_SETSIZE = 1024
_SPARES = 32
NETLINK_NETFILTER = 12
_spares: list[int] = []
_spares_lock = threading.RLock()


def _hold_spares() -> None:
    """Tops the held low descriptors up to _SPARES (those the kernel still numbers
    below FD_SETSIZE). Call with _spares_lock held."""
    while len(_spares) < _SPARES:
        fd = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        if fd >= FD_SETSIZE:
            os.close(fd)
            return
        _spares.append(fd)


def _is_nft_socket(fd: int) -> bool:
    """True when fd is a NETLINK_NETFILTER socket (a context's, made under our lock)."""
    try:
        dup = os.dup(fd)
    except OSError:
        return False
    try:
        sock = socket.socket(fileno=dup)
    except OSError:
        os.close(dup)
        return False
    with sock:
        return sock.family == socket.AF_NETLINK and sock.proto == NETLINK_NETFILTER


class _NoLowDescriptor(Exception):
    """No descriptor number below FD_SETSIZE could be had for a context's socket."""


def _new_context(lib: ctypes.CDLL) -> int | None:
    """nft_ctx_new with two low descriptor numbers free for its socket; a context whose
    socket still landed higher (other threads took both numbers) is freed and made
    again; _NoLowDescriptor when no low number is free (never glibc's abort)."""
    with _spares_lock:
        for _attempt in range(4):
            freed = _spares[:2]
            del _spares[:2]
            for fd in freed:
                os.close(fd)
            # The socket takes the lowest free number: one of the freed spares, or a lower
            # hole some other descriptor left (the probe finds it). Either is low enough.
            probe = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
            os.close(probe)
            landing = {fd for fd in (probe, *freed) if fd < FD_SETSIZE}
            if not landing:
                break
            ctx: int | None = lib.nft_ctx_new(0)
            low = any(_is_nft_socket(fd) for fd in landing)
            _hold_spares()
            if not ctx or low:
                return ctx
            lib.nft_ctx_free(ctx)
        raise _NoLowDescriptor()


def _nft_program() -> str:
    found = shutil.which("nft") or shutil.which("nft", path="/usr/sbin:/sbin")
    if found is None:
        raise MissingKernelFeature("nftables (the nft program)", "the nftables package")
    return found


def _load() -> ctypes.CDLL:
    global _lib
    if _lib is None:
        try:
            lib = ctypes.CDLL("libnftables.so.1")
        except OSError as e:
            raise MissingKernelFeature(
                "nftables (libnftables.so.1)", "the libnftables1 package"
            ) from e
        lib.nft_ctx_new.restype = ctypes.c_void_p
        lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
        lib.nft_ctx_free.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_output_set_flags.argtypes = [ctypes.c_void_p, ctypes.c_uint]
        lib.nft_ctx_buffer_output.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_buffer_error.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_get_output_buffer.restype = ctypes.c_char_p
        lib.nft_ctx_get_output_buffer.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_get_error_buffer.restype = ctypes.c_char_p
        lib.nft_ctx_get_error_buffer.argtypes = [ctypes.c_void_p]
        lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.nft_run_cmd_from_buffer.restype = ctypes.c_int
        with _spares_lock:
            _hold_spares()
        _lib = lib
    return _lib


class Nft:
    """One libnftables context (JSON in, JSON out)."""

    def __init__(self) -> None:
        self._lib = _load()
        self._program: str | None = None  # set: commands go to the nft program
        try:
            ctx = _new_context(self._lib)
        except _NoLowDescriptor:
            self._program = _nft_program()
            self._ctx: int | None = None
            return
        if not ctx:
            raise KernelError("nft_ctx_new failed")
        self._ctx = ctx
        self._lib.nft_ctx_output_set_flags(ctx, NFT_CTX_OUTPUT_JSON | NFT_CTX_OUTPUT_HANDLE)
        self._lib.nft_ctx_buffer_output(ctx)
        self._lib.nft_ctx_buffer_error(ctx)

    @property
    def in_child(self) -> bool:
        """True when this context runs its commands through the nft program."""
        return self._program is not None

    def close(self) -> None:
        self._program = None
        if self._ctx:
            with _spares_lock:  # the socket's low number back to the spares at once,
                self._lib.nft_ctx_free(self._ctx)  # before another thread's open takes it
                self._ctx = None
                _hold_spares()

    def _cmd(self, text: str) -> Any:
        if self._program is not None:
            return self._cmd_in_child(self._program, text)
        assert self._ctx, "nft context closed"
        rc = self._lib.nft_run_cmd_from_buffer(self._ctx, text.encode())
        out = self._lib.nft_ctx_get_output_buffer(self._ctx) or b""
        err = self._lib.nft_ctx_get_error_buffer(self._ctx) or b""
        if rc != 0:
            raise KernelError(f"nftables refused the change: {err.decode().strip()}")
        return json.loads(out) if out.strip() else None

    @staticmethod
    def _cmd_in_child(program: str, text: str) -> Any:
        # started from this thread: the child is in this thread's network namespace
        proc = subprocess.run([program, "-j", "-a", "-f", "-"], input=text.encode(),
                              capture_output=True, check=False)
        if proc.returncode != 0:
            raise KernelError("nftables refused the change: "
                              + proc.stderr.decode(errors="replace").strip())
        out = proc.stdout.decode()
        return json.loads(out) if out.strip() else None

    def run(self, commands: list[dict[str, Any]]) -> None:
        """Applies the commands as one atomic batch."""
        if commands:
            self._cmd(json.dumps({"nftables": commands}))

    def list_table(self, family: str, name: str) -> list[dict[str, Any]] | None:
        """The table's objects as libnftables' JSON, or None when it does not exist."""
        try:
            res = self._cmd(json.dumps({"nftables": [
                {"list": {"table": {"family": family, "name": name}}}]}))
        except KernelError as e:
            if "No such file or directory" in str(e):
                return None
            raise
        items: list[dict[str, Any]] = res.get("nftables", []) if res else []
        return [i for i in items if "metainfo" not in i]

    def table_names(self) -> list[tuple[str, str]]:
        res = self._cmd(json.dumps({"nftables": [{"list": {"tables": {}}}]}))
        return [(i["table"]["family"], i["table"]["name"])
                for i in (res or {}).get("nftables", []) if "table" in i]

    def chain_rules(self, family: str, table: str, chain: str) -> int | None:
        """How many rules a chain holds, or None when it (or its table) does not exist."""
        try:
            res = self._cmd(json.dumps({"nftables": [{"list": {"chain": {
                "family": family, "table": table, "name": chain}}}]}))
        except KernelError as e:
            if "No such file or directory" in str(e):
                return None
            raise
        return sum(1 for i in (res or {}).get("nftables", []) if "rule" in i)
