"""The embedded DNS server: one resolver per sandbox, all on the daemon's asyncio loop.

`DnsService(ctl, loop)` follows the controller's events ("join", "leave",
"sandbox-delete", "rename"; it stops listening when closed). When a sandbox gets its first
network with embedded DNS, the event's thread (the controller's worker, never the
loop) opens a UDP and a TCP socket bound to 127.0.0.11 on random high ports INSIDE the
sandbox's namespace (a short-lived thread that entered it,
`muslin.kernel.netns.run_in`) and writes the sandbox's `ip muslin_dns` table
(`muslin.dns.rules`) that redirects 127.0.0.11:53 there; then it hands the sockets to
the loop with `call_soon_threadsafe`. So when `join` returns, the sandbox's
127.0.0.11:53 answers. When its last DNS network goes, the table is removed and the
sockets closed. `restore()` reopens every resolver after a daemon restart, on the
ports the sandbox's table still names when they are free (conntrack entries of the old
redirects stay valid), else on new ones.

Answers come from `muslin.dns.records`, rebuilt from the store (on an executor thread)
after a change and cached until the next one; a query that arrives while a rebuild is
due waits for it, so a join or a leave shows in the very next answer.

Other names are forwarded: to the sandbox's upstreams (sandbox "dns", at most 3) from
sockets opened in the sandbox's namespace (made in batches on a thread inside it; a
loopback upstream is asked from the host namespace, as Docker does), or, when it has
none, to the host's resolv.conf servers from the instance's host namespace
(`ctl.host.netns_path`). Each forward uses a fresh socket (a random source port) and
the query as the client sent it; each upstream gets one try with a timeout, the next
one is asked on SERVFAIL, REFUSED, a timeout or an error; a truncated reply is passed
on (TC set) so the client asks again over TCP, which forwards over TCP. At most
`max_inflight` (1,024, as Docker) forwards per sandbox are in flight; beyond,
REFUSED. A sandbox only on internal networks gets no forwarding (SERVFAIL). An
upstream's UDP reply larger than the client takes (512 bytes, or its EDNS size) is
passed on as header and question with TC set.

Self-repair: every `repair_every` seconds (30) an executor thread lists each running
resolver's table in its sandbox and writes it again when it is not what was written
(`nft flush ruleset` inside a container with CAP_NET_ADMIN, a deleted chain).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import logging
import os
import socket
import struct
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from muslin.dns import rules
from muslin.dns.message import (
    REFUSED,
    SERVFAIL,
    Forward,
    Responder,
    error_reply,
    fit_udp,
    rcode_of,
    reply_matches,
)
from muslin.dns.records import (
    DEFAULT_TTL,
    NameRecord,
    Records,
    has_dns,
    parse_resolv_conf,
    upstream_list,
)
from muslin.kernel import Nft, netns

log = logging.getLogger("muslin.dns")


class _Host(Protocol):
    netns_path: str | None


class ControllerLike(Protocol):
    """What the service needs of muslin.cnm.Controller (a layer above this one)."""

    @property
    def store(self) -> Any: ...
    @property
    def host(self) -> _Host: ...
    def add_listener(self, fn: Callable[[str, Any, Any], None]) -> None: ...
    def remove_listener(self, fn: Callable[[str, Any, Any], None]) -> None: ...


Doc = dict[str, Any]
Upstream = tuple[str, int, str]

MAX_INFLIGHT: Final = 1024
DEFAULT_TIMEOUT: Final = 2.0
MAX_TCP_CLIENTS: Final = 128
TCP_IDLE: Final = 10.0
UDP_BURST: Final = 64
POOL_MIN_BATCH: Final = 4
POOL_MAX_BATCH: Final = 64
POOL_KEEP: Final = 4
TRIM_EVERY: Final = 30.0
REPAIR_EVERY: Final = 30.0


# -- work inside a namespace (on a thread that entered it; never the loop) ---------

def _bind(sock: socket.socket, port: int | None) -> None:
    if port:
        try:
            sock.bind((rules.RESOLVER_IP, port))
            return
        except OSError:
            pass
    sock.bind((rules.RESOLVER_IP, 0))


def _open_listeners() -> tuple[socket.socket, socket.socket]:
    """On a thread inside the sandbox: the UDP and TCP sockets on 127.0.0.11 and the
    table redirecting port 53 to them (reusing the ports an earlier table names)."""
    nft = Nft()
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        old_udp, old_tcp = rules.ports(nft.list_table(rules.FAMILY, rules.TABLE))
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        _bind(udp, old_udp)
        _bind(tcp, old_tcp)
        tcp.listen(128)
        udp.setblocking(False)
        tcp.setblocking(False)
        with contextlib.suppress(OSError):
            udp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        # always rewritten (one atomic batch): repairs a table someone changed
        nft.run(rules.table(udp.getsockname()[1], tcp.getsockname()[1]))
        return udp, tcp
    except BaseException:
        udp.close()
        tcp.close()
        raise
    finally:
        nft.close()


def _repair_table(udp_port: int, tcp_port: int) -> bool:
    """On a thread inside the sandbox: True when the table is as written, else it is
    written again (one atomic batch) and False."""
    nft = Nft()
    try:
        if rules.intact(nft.list_table(rules.FAMILY, rules.TABLE), udp_port, tcp_port):
            return True
        nft.run(rules.table(udp_port, tcp_port))
        return False
    finally:
        nft.close()


def _remove_table() -> None:
    nft = Nft()
    try:
        nft.run(rules.remove())
    finally:
        nft.close()


def _new_sockets(family: int, kind: int, count: int) -> list[socket.socket]:
    out = []
    try:
        for _ in range(count):
            s = socket.socket(family, kind)
            s.setblocking(False)
            out.append(s)
    except OSError:
        if not out:
            raise
    return out


# -- sockets for forwarding, made in a namespace in batches -------------------------

class SocketPool:
    """Unconnected non-blocking sockets made inside one namespace (None: the
    process's own, made on the spot). Each forward takes a fresh one."""

    def __init__(self, loop: asyncio.AbstractEventLoop, netns_path: str | None) -> None:
        self.loop = loop
        self.netns_path = netns_path
        self._idle: dict[tuple[int, int], list[socket.socket]] = {}
        self._refill: dict[tuple[int, int], asyncio.Task[None]] = {}
        self._batch: dict[tuple[int, int], int] = {}
        self._closed = False

    async def take(self, family: int, kind: int) -> socket.socket:
        if self._closed:
            raise OSError(errno.EBADF, "the resolver is closed")
        if self.netns_path is None:
            return _new_sockets(family, kind, 1)[0]
        key = (family, kind)
        while True:
            idle = self._idle.setdefault(key, [])
            if idle:
                return idle.pop()
            task = self._refill.get(key)
            if task is None:
                task = self.loop.create_task(self._fill(key))
                self._refill[key] = task
            # The task leaves sockets in idle (or fails) before it is done, so a new
            # turn of this loop always finds sockets or starts another refill.
            await asyncio.shield(task)
            if self._closed:
                raise OSError(errno.EBADF, "the resolver is closed")

    async def _fill(self, key: tuple[int, int]) -> None:
        family, kind = key
        batch = self._batch.get(key, POOL_MIN_BATCH)
        self._batch[key] = min(batch * 2, POOL_MAX_BATCH)
        make = functools.partial(_new_sockets, family, kind, batch)
        try:
            socks = await self.loop.run_in_executor(None, netns.run_in, self.netns_path, make)
        except Exception as e:
            if isinstance(e, OSError):
                raise
            raise OSError(errno.EIO, f"cannot make sockets in {self.netns_path}: {e}") from e
        finally:
            self._refill.pop(key, None)
        if self._closed:
            for s in socks:
                s.close()
            return
        self._idle.setdefault(key, []).extend(socks)

    def trim(self) -> None:
        """Closes idle sockets beyond a few and lets the batch size shrink again."""
        for key, idle in self._idle.items():
            while len(idle) > POOL_KEEP:
                idle.pop().close()
            self._batch[key] = POOL_MIN_BATCH

    def close(self) -> None:
        self._closed = True
        for idle in self._idle.values():
            for s in idle:
                s.close()
        self._idle.clear()


@functools.lru_cache(maxsize=256)
def _parsed(specs: tuple[str, ...]) -> tuple[Upstream, ...]:
    return tuple(upstream_list(specs))


def _sockaddr(up: Upstream) -> tuple[int, tuple[Any, ...]]:
    host, port, scope = up
    if ":" in host:
        scope_id = int(scope) if scope.isdigit() else 0
        return socket.AF_INET6, (host, port, 0, scope_id)
    return socket.AF_INET, (host, port)


def _is_loopback(host: str) -> bool:
    return host.startswith("127.") or host == "::1"


async def _recv_exact(loop: asyncio.AbstractEventLoop, sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = await loop.sock_recv(sock, n - len(buf))
        if not chunk:
            raise ConnectionError("upstream closed the connection")
        buf += chunk
    return bytes(buf)


@dataclass
class Stats:
    """Counters of one service (all sandboxes)."""

    received: int = 0
    local: int = 0
    forwarded: int = 0
    refused: int = 0
    servfail: int = 0
    dropped: int = 0
    upstream_errors: int = 0


# -- one sandbox's resolver (loop side) -----------------------------------------

class SandboxResolver:
    """The resolver of one sandbox: its UDP socket read by the loop, its TCP server,
    and its pool of forwarding sockets."""

    def __init__(self, service: DnsService, sandbox_id: str, netns_path: str,
                 udp: socket.socket, tcp: socket.socket) -> None:
        self.service = service
        self.sandbox_id = sandbox_id
        self.netns_path = netns_path
        self.udp = udp
        self.tcp = tcp
        self.ports = (udp.getsockname()[1], tcp.getsockname()[1])
        self.loop = service.loop
        self.pool = SocketPool(self.loop, netns_path)
        self.inflight = 0
        self.tcp_clients = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False

    # -- life --
    def start(self) -> None:
        self.loop.add_reader(self.udp.fileno(), self._udp_ready)
        self._spawn(self._start_tcp())

    async def _start_tcp(self) -> None:
        server = await asyncio.start_server(self._tcp_client, sock=self.tcp,
                                            backlog=128)
        if self._closed:
            server.close()
        else:
            self._server = server

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            self.loop.remove_reader(self.udp.fileno())
        self.udp.close()
        if self._server is not None:
            self._server.close()
        else:
            self.tcp.close()
        self.pool.close()
        for t in list(self._tasks):
            t.cancel()

    def _spawn(self, coro: Any) -> None:
        task = self.loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- UDP --
    def _udp_ready(self) -> None:
        svc = self.service
        sock = self.udp
        for _ in range(UDP_BURST):
            try:
                data, addr = sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            svc.stats.received += 1
            responder = svc.responder(self.sandbox_id)
            if responder is _STALE:
                self._spawn(self._udp_later(data, addr))
                continue
            try:
                out = (responder.handle(data, tcp=False) if isinstance(responder, Responder)
                       else error_reply(data, REFUSED))
            except Exception:  # never let one packet stop the resolver
                log.exception("embedded DNS: answering a query failed")
                out = error_reply(data, SERVFAIL)
            if out is None:
                svc.stats.dropped += 1
            elif isinstance(out, Forward):
                assert isinstance(responder, Responder)
                self._forward_udp(out, addr, responder.view.upstreams)
            else:
                svc.stats.local += 1
                self._send(out, addr)

    def _send(self, out: bytes, addr: Any) -> None:
        try:
            self.udp.sendto(out, addr)
        except OSError:  # a full buffer: the client asks again
            self.service.stats.dropped += 1

    async def _udp_later(self, data: bytes, addr: Any) -> None:
        out = await self.answer(data, tcp=False)
        if out is not None and not self._closed:
            self._send(out, addr)

    def _forward_udp(self, fwd: Forward, addr: Any, upstreams: tuple[str, ...]) -> None:
        if self.inflight >= self.service.max_inflight:
            self.service.stats.refused += 1
            out = error_reply(fwd.query, REFUSED)
            if out is not None:
                self._send(out, addr)
            return
        self.inflight += 1
        self._spawn(self._udp_forwarded(fwd, addr, upstreams))

    async def _udp_forwarded(self, fwd: Forward, addr: Any, upstreams: tuple[str, ...]
                             ) -> None:
        out = await self.forward(fwd, upstreams, tcp=False)
        if out is not None and not self._closed:
            self._send(out, addr)

    # -- any transport --
    async def answer(self, data: bytes, *, tcp: bool) -> bytes | None:
        """The reply to one query (local, forwarded or an error), or None (drop)."""
        responder = await self.service.fresh_responder(self.sandbox_id)
        try:
            out = (responder.handle(data, tcp=tcp) if responder is not None
                   else error_reply(data, REFUSED))
        except Exception:
            log.exception("embedded DNS: answering a query failed")
            return error_reply(data, SERVFAIL)
        if isinstance(out, Forward):
            assert responder is not None
            if self.inflight >= self.service.max_inflight:
                self.service.stats.refused += 1
                return error_reply(data, REFUSED)
            self.inflight += 1
            return await self.forward(out, responder.view.upstreams, tcp=tcp)
        if out is None:
            self.service.stats.dropped += 1
        else:
            self.service.stats.local += 1
        return out

    async def forward(self, fwd: Forward, specs: tuple[str, ...], *, tcp: bool
                      ) -> bytes | None:
        """Asks the upstreams (the sandbox's specs, else the host's) in turn. The
        caller counted the forward in `inflight`; it is uncounted here when done."""
        svc = self.service
        svc.stats.forwarded += 1
        try:
            if specs:
                targets = [(svc.host_pool if _is_loopback(u[0]) else self.pool, u)
                           for u in _parsed(specs)]
            else:
                targets = [(svc.host_pool, u) for u in svc.host_upstreams]
            last: bytes | None = None
            for pool, up in targets:
                try:
                    reply = await (self._ask_tcp(pool, up, fwd) if tcp
                                   else self._ask_udp(pool, up, fwd))
                except (OSError, TimeoutError, ConnectionError, asyncio.IncompleteReadError):
                    svc.stats.upstream_errors += 1
                    continue
                except Exception:  # a bug must not leave the client without an answer
                    log.exception("embedded DNS: forwarding to %s failed", up[0])
                    svc.stats.upstream_errors += 1
                    continue
                if rcode_of(reply) in (SERVFAIL, REFUSED):
                    last = reply
                    continue
                return reply if tcp else fit_udp(reply, fwd.limit)
            svc.stats.servfail += 1
            return last if last is not None else error_reply(fwd.query, SERVFAIL)
        finally:
            self.inflight -= 1

    async def _ask_udp(self, pool: SocketPool, up: Upstream, fwd: Forward) -> bytes:
        family, addr = _sockaddr(up)
        sock = await pool.take(family, socket.SOCK_DGRAM)
        try:
            sock.connect(addr)
            async with asyncio.timeout(self.service.timeout):
                await self.loop.sock_sendall(sock, fwd.query)
                while True:
                    reply = await self.loop.sock_recv(sock, 65535)
                    if reply_matches(fwd, reply):
                        return reply
        finally:
            sock.close()

    async def _ask_tcp(self, pool: SocketPool, up: Upstream, fwd: Forward) -> bytes:
        family, addr = _sockaddr(up)
        sock = await pool.take(family, socket.SOCK_STREAM)
        try:
            async with asyncio.timeout(self.service.timeout):
                await self.loop.sock_connect(sock, addr)
                await self.loop.sock_sendall(sock, struct.pack("!H", len(fwd.query))
                                             + fwd.query)
                while True:
                    (n,) = struct.unpack("!H", await _recv_exact(self.loop, sock, 2))
                    reply = await _recv_exact(self.loop, sock, n)
                    if reply_matches(fwd, reply):
                        return reply
        finally:
            sock.close()

    # -- TCP --
    async def _tcp_client(self, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        if self.tcp_clients >= MAX_TCP_CLIENTS or self._closed:
            writer.close()
            return
        self.tcp_clients += 1
        try:
            while not self._closed:
                async with asyncio.timeout(TCP_IDLE):
                    (n,) = struct.unpack("!H", await reader.readexactly(2))
                    data = await reader.readexactly(n)
                self.service.stats.received += 1
                out = await self.answer(data, tcp=True)
                if out is None:
                    break
                writer.write(struct.pack("!H", len(out)) + out)
                await writer.drain()
        except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
            pass
        except Exception:
            log.exception("embedded DNS: a TCP client failed")
        finally:
            self.tcp_clients -= 1
            writer.close()


_STALE: Final = object()
_MISSING: Final = object()


class DnsService:
    """The embedded DNS of one controller, served on one asyncio loop.

    The daemon makes it after the Controller and calls `await astart()` (subscribes
    to the controller's events and restores every sandbox's resolver), and
    `await aclose()` on the way out, before closing the Controller. From another
    thread: `start()` and `close()`. Keyword arguments: host_upstreams (the servers
    for sandboxes without their own; None reads resolv_conf, again whenever the
    file changes), ttl, timeout (seconds per upstream try), max_inflight (forwards
    per sandbox), repair_every (seconds between checks of the sandboxes' redirect
    tables, see `repair`; 0: never).
    """

    def __init__(self, ctl: ControllerLike, loop: asyncio.AbstractEventLoop, *,
                 host_upstreams: Sequence[str] | None = None,
                 resolv_conf: str = "/etc/resolv.conf", ttl: int = DEFAULT_TTL,
                 timeout: float = DEFAULT_TIMEOUT, max_inflight: int = MAX_INFLIGHT,
                 repair_every: float = REPAIR_EVERY) -> None:
        self.ctl = ctl
        self.loop = loop
        self.ttl = ttl
        self.timeout = timeout
        self.max_inflight = max_inflight
        self.repair_every = repair_every
        self.resolv_conf = resolv_conf
        self._host_specs = list(host_upstreams) if host_upstreams is not None else None
        self.host_upstreams: list[Upstream] = []
        self._resolv_stamp: tuple[float, int] | None = None
        self.reload_host_upstreams()
        self.stats = Stats()
        # shared with the controller's threads (under _lock)
        self._lock = threading.Lock()
        self._gen = 0
        self._leaving: set[str] = set()
        self._extra: dict[str, list[NameRecord]] = {}
        self._sb_locks: dict[str, threading.Lock] = {}
        self._active: dict[str, tuple[int, int]] = {}
        self._subscribed = False
        self._closed = False
        # the loop's own
        self.host_pool = SocketPool(loop, ctl.host.netns_path)
        self._resolvers: dict[str, SandboxResolver] = {}
        self._records: Records | None = None
        self._built_gen = -1
        self._responders: dict[str, Responder | None] = {}
        self._rebuild: asyncio.Task[None] | None = None
        self._trim: asyncio.TimerHandle | None = None
        self._repair: asyncio.TimerHandle | None = None

    # -- life -------------------------------------------------------------------
    def reload_host_upstreams(self) -> None:
        """Re-reads the host's servers (resolv_conf, unless given explicitly) when the
        file changed since the last reading."""
        specs = self._host_specs
        if specs is None:
            try:
                st = os.stat(self.resolv_conf)
                stamp = (st.st_mtime, st.st_ino)
                if stamp == self._resolv_stamp:
                    return
                with open(self.resolv_conf) as f:
                    specs = parse_resolv_conf(f.read())
                self._resolv_stamp = stamp
            except OSError as e:
                log.warning("embedded DNS: cannot read %s: %s", self.resolv_conf, e)
                specs = []
        self.host_upstreams = upstream_list(specs)

    def start(self) -> None:
        """Subscribes to the controller and restores every resolver. Blocking: call
        it from a thread other than the loop's (or `await astart()`)."""
        if not self._subscribed:
            self._subscribed = True
            self.ctl.add_listener(self._on_event)
            self.loop.call_soon_threadsafe(self._schedule_trim)
            if self.repair_every > 0:
                self.loop.call_soon_threadsafe(self._schedule_repair)
        self.restore()

    async def astart(self) -> None:
        await self.loop.run_in_executor(None, self.start)

    def restore(self) -> None:
        """Opens a resolver for every sandbox on a network with embedded DNS that has
        none yet (after a daemon restart: all of them)."""
        recs, _gen = self._snapshot()
        for sb_id in recs.dns_sandboxes():
            path = str(recs.sandbox(sb_id)["netns_path"])
            try:
                self._ensure(sb_id, path)
            except Exception as e:
                log.error("embedded DNS: cannot start the resolver of sandbox %s: %s",
                          sb_id[:12], e)

    async def aclose(self) -> None:
        """Closes every resolver's sockets (their tables stay: restore reuses them)."""
        with self._lock:
            self._closed = True
            self._active.clear()
        if self._subscribed:
            self._subscribed = False
            self.ctl.remove_listener(self._on_event)
        for r in list(self._resolvers.values()):
            r.close()
        self._resolvers.clear()
        self.host_pool.close()
        if self._trim is not None:
            self._trim.cancel()
        if self._repair is not None:
            self._repair.cancel()

    def close(self) -> None:
        """aclose() from another thread."""
        asyncio.run_coroutine_threadsafe(self.aclose(), self.loop).result()

    # -- records for services (any thread) -------------------------------------
    def set_records(self, key: str, records: Sequence[NameRecord]) -> None:
        """Publishes (replaces) a group of general records under key; [] removes."""
        with self._lock:
            if records:
                self._extra[key] = list(records)
            else:
                self._extra.pop(key, None)
            self._gen += 1

    def invalidate(self) -> None:
        """Marks the records stale (after a change the controller sends no event for,
        such as a rename)."""
        with self._lock:
            self._gen += 1

    def repair(self) -> list[str]:
        """Checks the redirect table of every running resolver's sandbox and writes
        again the ones that are missing or changed (someone ran `nft flush ruleset`
        inside the container): the ids of the sandboxes repaired. Blocking (a thread
        per sandbox enters its namespace); the service calls it every repair_every
        seconds on an executor thread, so a flushed table answers again within that."""
        with self._lock:
            active = dict(self._active)
        repaired = []
        for sb_id, (udp_port, tcp_port) in active.items():
            with self._sb_lock(sb_id):
                with self._lock:
                    if self._active.get(sb_id) != (udp_port, tcp_port):
                        continue  # stopped or restarted meanwhile
                try:
                    doc = self.ctl.store.get("sandbox", sb_id)
                    if doc is None or not netns.is_netns(doc["netns_path"]):
                        continue
                    if not netns.run_in(doc["netns_path"], functools.partial(
                            _repair_table, udp_port, tcp_port)):
                        log.warning("embedded DNS: the redirect table of sandbox %s was "
                                    "changed; written again", sb_id[:12])
                        repaired.append(sb_id)
                except Exception as e:
                    log.warning("embedded DNS: checking the table of sandbox %s: %s",
                                sb_id[:12], e)
        return repaired

    # -- what tests and the daemon can ask ---------------------------------------
    def ports(self, sandbox_id: str) -> tuple[int, int] | None:
        """The (udp, tcp) ports of the sandbox's resolver, or None."""
        with self._lock:
            return self._active.get(sandbox_id)

    # -- the controller's events (its threads) -------------------------------------
    def _on_event(self, event: str, ep: Doc | None, sb: Doc) -> None:
        if self._closed:
            return
        sb_id = sb["id"]
        if event == "join":
            assert ep is not None
            with self._lock:
                self._leaving.discard(ep["id"])
                self._gen += 1
            if self._needs_dns(sb, without=None):
                self._ensure(sb_id, sb["netns_path"])
        elif event == "leave":
            assert ep is not None
            with self._lock:
                self._leaving.add(ep["id"])
                self._gen += 1
            if not self._needs_dns(sb, without=ep["id"]):
                self._stop(sb_id, sb["netns_path"], remove_rules=True)
        elif event == "sandbox-delete":
            with self._lock:
                self._gen += 1
            self._stop(sb_id, sb["netns_path"], remove_rules=False)
        elif event == "rename":
            self.invalidate()

    def _needs_dns(self, sb: Doc, without: str | None) -> bool:
        store = self.ctl.store
        for ep_id in sb.get("endpoints", []):
            if ep_id == without:
                continue
            ep = store.get("endpoint", ep_id)
            if ep is None or ep.get("status") not in ("joined", "joining"):
                continue
            net = store.get("network", ep["network_id"])
            if net is not None and has_dns(net):
                return True
        return False

    def _sb_lock(self, sb_id: str) -> threading.Lock:
        with self._lock:
            return self._sb_locks.setdefault(sb_id, threading.Lock())

    def _ensure(self, sb_id: str, path: str) -> None:
        with self._sb_lock(sb_id):
            with self._lock:
                if sb_id in self._active or self._closed:
                    return
            udp, tcp = netns.run_in(path, _open_listeners)
            ports = (udp.getsockname()[1], tcp.getsockname()[1])
            with self._lock:
                closed = self._closed
                if not closed:
                    self._active[sb_id] = ports
            if closed or not self._call(self._attach, sb_id, path, udp, tcp):
                udp.close()
                tcp.close()
                with self._lock:
                    self._active.pop(sb_id, None)

    def _stop(self, sb_id: str, path: str, *, remove_rules: bool) -> None:
        with self._sb_lock(sb_id):
            with self._lock:
                was = self._active.pop(sb_id, None)
                if not remove_rules:
                    self._sb_locks.pop(sb_id, None)
            if was is None:
                return
            if remove_rules and netns.is_netns(path):
                try:
                    netns.run_in(path, _remove_table)
                except Exception as e:
                    log.warning("embedded DNS: removing the table of sandbox %s: %s",
                                sb_id[:12], e)
            self._call(self._detach, sb_id)

    def _call(self, fn: Callable[..., None], *args: Any) -> bool:
        try:
            self.loop.call_soon_threadsafe(fn, *args)
            return True
        except RuntimeError:  # the loop is closed
            return False

    # -- the loop's side ------------------------------------------------------------
    def _attach(self, sb_id: str, path: str, udp: socket.socket, tcp: socket.socket) -> None:
        old = self._resolvers.pop(sb_id, None)
        if old is not None:
            old.close()
        if self._closed:
            udp.close()
            tcp.close()
            return
        r = SandboxResolver(self, sb_id, path, udp, tcp)
        self._resolvers[sb_id] = r
        r.start()

    def _detach(self, sb_id: str) -> None:
        r = self._resolvers.pop(sb_id, None)
        if r is not None:
            r.close()

    def _schedule_trim(self) -> None:
        if self._closed:
            return
        self.host_pool.trim()
        for r in self._resolvers.values():
            r.pool.trim()
        self.reload_host_upstreams()
        self._trim = self.loop.call_later(TRIM_EVERY, self._schedule_trim)

    def _schedule_repair(self) -> None:
        if self._closed:
            return
        future = self.loop.run_in_executor(None, self.repair)

        def again(_f: asyncio.Future[list[str]]) -> None:
            if not self._closed:
                self._repair = self.loop.call_later(self.repair_every, self._schedule_repair)

        future.add_done_callback(again)

    def responder(self, sb_id: str) -> Responder | object | None:
        """The sandbox's current Responder, None (no view), or _STALE (rebuild due)."""
        if self._built_gen != self._gen or self._records is None:
            return _STALE
        r = self._responders.get(sb_id, _MISSING)
        if r is _MISSING:
            view = self._records.view(sb_id)
            r = Responder(view, self.ttl) if view is not None else None
            self._responders[sb_id] = r
        return r

    async def fresh_responder(self, sb_id: str) -> Responder | None:
        """The sandbox's Responder once the records are current (None: no view)."""
        for _ in range(10):
            r = self.responder(sb_id)
            if r is not _STALE:
                return r if isinstance(r, Responder) else None
            task = self._rebuild
            if task is None:
                task = self.loop.create_task(self._rebuild_records())
                self._rebuild = task
            try:
                await asyncio.shield(task)
            except Exception:
                log.exception("embedded DNS: reading the records failed")
                return None
        r = self.responder(sb_id)
        return r if isinstance(r, Responder) else None

    async def _rebuild_records(self) -> None:
        """Installs records read from the store; done only once they are installed."""
        try:
            recs, gen = await self.loop.run_in_executor(None, self._snapshot)
        finally:
            self._rebuild = None
        if gen > self._built_gen:
            self._records = recs
            self._built_gen = gen
            self._responders = {}

    def _snapshot(self) -> tuple[Records, int]:
        """Reads the store (on an executor thread) and builds the records."""
        with self._lock:
            gen = self._gen
            leaving = set(self._leaving)
            extra = [r for group in self._extra.values() for r in group]
        with self.ctl.store.transaction() as t:
            networks = t.list("network")
            endpoints = t.list("endpoint")
            sandboxes = t.list("sandbox")
        status = {e["id"]: e.get("status") for e in endpoints}
        done = {i for i in leaving if status.get(i) not in ("joined", "leaving")}
        if done:
            with self._lock:
                self._leaving -= done
        recs = Records.build(networks, endpoints, sandboxes, extra,
                             exclude=leaving | {i for i, s in status.items()
                                                if s == "leaving"})
        return recs, gen

