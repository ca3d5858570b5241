"""HTTP/1.1 over asyncio streams with h11 (sans-I/O): requests in, responses out.

Owns connection handling: keep-alive, bodies, chunked streaming responses, and the
connection hijack Docker uses for attach/exec (101 UPGRADED, then raw bytes).
Must not know routes or Docker semantics.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import h11

log = logging.getLogger("muslin.api.http")

MAX_BODY = 16 * 1024 * 1024


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default

    def flag(self, name: str) -> bool:
        v = (self.arg(name) or "").lower()
        return v in ("1", "true", "yes")


# A hijacked connection's handler: (bytes the client sent past the request, reader, writer).
Hijack = Callable[[bytes, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    stream: AsyncIterator[bytes] | None = None
    hijack: Hijack | None = None

    @classmethod
    def json(cls, value: Any, status: int = 200) -> Response:
        return cls(status, (json.dumps(value) + "\n").encode(),
                   [("Content-Type", "application/json")])

    @classmethod
    def text(cls, value: str, status: int = 200) -> Response:
        return cls(status, value.encode(), [("Content-Type", "text/plain; charset=utf-8")])

    @classmethod
    def empty(cls, status: int = 204) -> Response:
        return cls(status)


Handler = Callable[[Request], Awaitable[Response]]


class HttpServer:
    """Serves `handler` on a unix socket."""

    def __init__(self, handler: Handler, server_header: str = "muslin") -> None:
        self._handler = handler
        self._server_header = server_header
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start_unix(self, path: str) -> None:
        self._server = await asyncio.start_unix_server(self._serve, path=path,
                                                       limit=1 << 20)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for t in list(self._tasks):
            t.cancel()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=1 << 20)
        try:
            while True:
                req = await self._read_request(conn, reader)
                if req is None:
                    break
                try:
                    resp = await self._handler(req)
                except Exception:  # a bug: answer 500, keep serving
                    log.exception("handler failed for %s %s", req.method, req.path)
                    resp = Response.json({"message": "internal error"}, 500)
                hijacked = await self._send(conn, reader, writer, req, resp)
                if hijacked or conn.our_state is h11.MUST_CLOSE:
                    break
                try:
                    conn.start_next_cycle()
                except h11.LocalProtocolError:
                    break
        except (ConnectionError, asyncio.IncompleteReadError, h11.RemoteProtocolError):
            pass
        finally:
            self._tasks.discard(task)
            with contextlib.suppress(Exception):
                writer.close()

    async def _read_request(self, conn: h11.Connection, reader: asyncio.StreamReader
                            ) -> Request | None:
        head: h11.Request | None = None
        body = bytearray()
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await reader.read(65536)
                conn.receive_data(data)
                continue
            if isinstance(event, h11.Request):
                head = event
            elif isinstance(event, h11.Data):
                body += event.data
                if len(body) > MAX_BODY:
                    raise ConnectionError("body too large")
            elif isinstance(event, h11.EndOfMessage):
                assert head is not None
                target = head.target.decode("latin-1")
                parts = urlsplit(target)
                headers = {k.decode().lower(): v.decode("latin-1") for k, v in head.headers}
                return Request(head.method.decode(), parts.path,
                               parse_qs(parts.query, keep_blank_values=True), headers,
                               bytes(body))
            elif isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                return None

    async def _send(self, conn: h11.Connection, reader: asyncio.StreamReader,
                    writer: asyncio.StreamWriter, req: Request, resp: Response) -> bool:
        headers = [("Server", self._server_header), *resp.headers]
        if resp.hijack is not None:
            # Docker's hijack: 101 UPGRADED when the client asked to upgrade, else a raw
            # 200 stream until the connection closes; either way h11 is left behind.
            if req.headers.get("upgrade", "").lower() == "tcp":
                head = "HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
            else:
                head = "HTTP/1.1 200 OK\r\n"
            head += "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
            writer.write(head.encode("latin-1"))
            await writer.drain()
            leftover, _ = conn.trailing_data
            await resp.hijack(bytes(leftover), reader, writer)
            return True
        if resp.stream is not None:
            writer.write(conn.send(h11.Response(status_code=resp.status, headers=headers)))
            await writer.drain()
            try:
                async for chunk in resp.stream:
                    if chunk:
                        writer.write(conn.send(h11.Data(data=chunk)))
                        await writer.drain()
            finally:
                with contextlib.suppress(Exception):
                    writer.write(conn.send(h11.EndOfMessage()))
                    await writer.drain()
            return False
        body = b"" if req.method == "HEAD" else resp.body
        headers.append(("Content-Length", str(len(resp.body))))
        writer.write(conn.send(h11.Response(status_code=resp.status, headers=headers)))
        if body and resp.status not in (204, 304):
            writer.write(conn.send(h11.Data(data=body)))
        writer.write(conn.send(h11.EndOfMessage()))
        await writer.drain()
        return False
