"""The CLI's Engine API client: HTTP/1.1 over the daemon's unix socket.

Owns host resolution (`-H`, MUSLIN_HOST, default unix:///run/muslin/muslin.sock),
API version negotiation as docker does it (GET /_ping, its `API-Version` header,
min(server, 1.47), then every path under /v<version>), JSON requests and streamed
responses, and docker's texts for failures: `Cannot connect to the muslin daemon at
... Is muslind running?` and `Error response from daemon: <message>`.

It speaks HTTP itself instead of using http.client: that module imports email.* and
ssl, ~55 ms on these machines, more than the whole CLI's start-up budget. It needs
request writing, Content-Length and chunked bodies, and keep-alive; nothing else.
"""

from __future__ import annotations

import json
import socket

from muslin.cli.errors import StatusError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
    from typing import Any

DEFAULT_HOST = "unix:///run/muslin/muslin.sock"
API_VERSION = "1.47"  # the newest this client speaks (Docker Engine 27)
FALLBACK_API_VERSION = "1.24"  # docker's assumption when /_ping names none
USER_AGENT = "muslin-cli (linux)"

_STATUS_TEXT = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
                405: "Method Not Allowed", 409: "Conflict", 500: "Internal Server Error",
                501: "Not Implemented", 503: "Service Unavailable"}


class DaemonUnavailable(StatusError):
    """No daemon listens on the socket (missing, refused)."""

    def __init__(self, host: str) -> None:
        super().__init__(f"Cannot connect to the muslin daemon at {host}. Is muslind running?")
        self.host = host


class APIError(StatusError):
    """The daemon answered with an error status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"Error response from daemon: {message}")
        self.status = status
        self.daemon_message = message


def resolve_host(flag_value: str | None, env: Mapping[str, str]) -> str:
    """The daemon's address from -H, else MUSLIN_HOST, else the default socket."""
    host = flag_value or env.get("MUSLIN_HOST", "") or DEFAULT_HOST
    host = host.strip()
    if host.startswith("/"):
        host = "unix://" + host
    if not host.startswith("unix://") or len(host) <= len("unix://"):
        raise StatusError(f'invalid host "{host}": muslin connects only to unix:// sockets', 1)
    return host


def socket_path(host: str) -> str:
    return host[len("unix://"):]


def version_less(a: str, b: str) -> bool:
    """versions.LessThan for "1.47"-style versions."""
    def parts(v: str) -> list[int]:
        out = []
        for p in v.split("."):
            try:
                out.append(int(p))
            except ValueError:
                out.append(0)
        return out

    pa, pb = parts(a), parts(b)
    n = max(len(pa), len(pb))
    return pa + [0] * (n - len(pa)) < pb + [0] * (n - len(pb))


_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def quote(s: str, safe: bytes = b"") -> str:
    """Percent-encode `s` (UTF-8); `safe` bytes are kept as they are."""
    keep = _SAFE | frozenset(safe)
    return "".join(chr(b) if b in keep else f"%{b:02X}" for b in s.encode())


def query_string(query: Mapping[str, str]) -> str:
    """url.Values.Encode: keys sorted, QueryEscape (space as +)."""
    return "&".join(f"{quote(k, b' ').replace(' ', '+')}={quote(v, b' ').replace(' ', '+')}"
                    for k, v in sorted(query.items()))


def path_segment(s: str) -> str:
    return quote(s, b"!$&'()*+,;=:@")


class Response:
    """A response: status, headers (lower-case names), and a body to read or stream."""

    def __init__(self, conn: Connection, status: int, headers: dict[str, str],
                 body_kind: str, length: int) -> None:
        self._conn = conn
        self.status = status
        self.headers = headers
        self._kind = body_kind  # "none" | "length" | "chunked" | "close"
        self._left = length
        self.done = body_kind == "none" or (body_kind == "length" and length == 0)

    def chunks(self) -> Iterator[bytes]:
        """The body as it arrives."""
        f = self._conn.rfile
        if f is None:
            return
        try:
            if self._kind == "length":
                while self._left > 0:
                    data = f.read1(min(self._left, 65536))
                    if not data:
                        raise ConnectionError("unexpected EOF")
                    self._left -= len(data)
                    yield data
            elif self._kind == "chunked":
                while True:
                    line = f.readline(65537)
                    if not line:
                        raise ConnectionError("unexpected EOF")
                    size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                    if size == 0:
                        while f.readline(65537) not in (b"\r\n", b"\n", b""):
                            pass
                        break
                    while size > 0:
                        data = f.read1(min(size, 65536))
                        if not data:
                            raise ConnectionError("unexpected EOF")
                        size -= len(data)
                        yield data
                    f.readline(3)
            elif self._kind == "close":
                while True:
                    data = f.read1(65536)
                    if not data:
                        break
                    yield data
        except ValueError:
            raise ConnectionError("malformed chunked encoding") from None
        self.done = True
        if self._kind == "close" or self.headers.get("connection", "").lower() == "close":
            self._conn.close()

    def read(self) -> bytes:
        return b"".join(self.chunks())

    def json(self) -> Any:
        return json.loads(self.read() or b"null")


class Connection:
    """One keep-alive connection to a unix socket."""

    def __init__(self, path: str, host: str) -> None:
        self.path = path
        self.host = host
        self.sock: socket.socket | None = None
        self.rfile: Any = None

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(self.path)
        except PermissionError:
            sock.close()
            raise StatusError(
                "permission denied while trying to connect to the muslin daemon socket at "
                f"{self.host}: connect: permission denied", 1) from None
        except OSError:
            sock.close()
            raise DaemonUnavailable(self.host) from None
        self.sock = sock
        self.rfile = sock.makefile("rb")

    def close(self) -> None:
        if self.rfile is not None:
            self.rfile.close()
            self.rfile = None
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def request(self, method: str, target: str, body: bytes | None,
                headers: Mapping[str, str]) -> Response:
        reused = self.sock is not None
        for attempt in (0, 1):
            if self.sock is None:
                self.connect()
            try:
                self._send(method, target, body, headers)
                return self._read_head(method)
            except (ConnectionError, BrokenPipeError, _EmptyReply):
                self.close()
                if not reused or attempt:
                    raise DaemonUnavailable(self.host) from None
        raise AssertionError("unreachable")

    def _send(self, method: str, target: str, body: bytes | None,
              headers: Mapping[str, str]) -> None:
        lines = [f"{method} {target} HTTP/1.1", "Host: muslin", f"User-Agent: {USER_AGENT}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        if body is not None:
            lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
        elif method in ("POST", "PUT"):
            lines.append("Content-Length: 0")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")
        assert self.sock is not None
        self.sock.sendall(head + (body or b""))

    def _read_head(self, method: str) -> Response:
        f = self.rfile
        while True:
            line = f.readline(65537)
            if not line:
                raise _EmptyReply()
            parts = line.decode("latin-1").split(None, 2)
            if len(parts) < 2 or not parts[0].startswith("HTTP/"):
                raise StatusError(f"error during connect: malformed HTTP response {line!r}", 1)
            status = int(parts[1])
            headers: dict[str, str] = {}
            while True:
                h = f.readline(65537)
                if h in (b"\r\n", b"\n", b""):
                    break
                name, _, value = h.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            if 100 <= status < 200 and status != 101:
                continue
            break
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            kind, length = "none", 0
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            kind, length = "chunked", 0
        elif "content-length" in headers:
            kind, length = "length", int(headers["content-length"])
        else:
            kind, length = "close", 0
        if parts[0] == "HTTP/1.0" and headers.get("connection", "").lower() != "keep-alive":
            headers["connection"] = "close"
        return Response(self, status, headers, kind, length)


class _EmptyReply(Exception):
    """The peer closed before a status line (a stale keep-alive connection)."""


class Client:
    """Engine API calls; the version is negotiated on the first call."""

    def __init__(self, host: str) -> None:
        self.host = host
        self.conn = Connection(socket_path(host), host)
        self.api_version: str | None = None

    def close(self) -> None:
        self.conn.close()

    def negotiate(self) -> str:
        if self.api_version is None:
            resp = self.conn.request("GET", "/_ping", None, {})
            server = resp.headers.get("api-version", "") or FALLBACK_API_VERSION
            self._drain(resp)
            self.api_version = server if version_less(server, API_VERSION) else API_VERSION
        return self.api_version

    def _drain(self, resp: Response) -> bytes:
        try:
            return resp.read()
        except ConnectionError:
            self.conn.close()
            raise DaemonUnavailable(self.host) from None

    def request(self, method: str, path: str, *, query: Mapping[str, str] | None = None,
                body: Any = None) -> Response:
        """Send a request under /v<version>; raises APIError for an error status. The
        caller reads or streams the response."""
        version = self.negotiate()
        target = f"/v{version}{path}"
        if query:
            target += "?" + query_string(query)
        data = None if body is None else json.dumps(body).encode()
        resp = self.conn.request(method, target, data, {})
        if resp.status >= 400:
            raise self._error(resp, target)
        return resp

    def _error(self, resp: Response, target: str) -> APIError:
        body = self._drain(resp)
        ctype = resp.headers.get("content-type", "")
        message = ""
        if "application/json" in ctype:
            try:
                obj = json.loads(body)
                message = str(obj.get("message", "")) if isinstance(obj, dict) else ""
            except ValueError:
                message = body.decode("utf-8", "replace")
        else:
            message = body.decode("utf-8", "replace")
        message = message.strip()
        if not body:
            status = _STATUS_TEXT.get(resp.status, str(resp.status))
            message = (f"request returned {status} for API route and version "
                       f"http://muslin{target}, check if the server supports the requested "
                       "API version")
        return APIError(resp.status, message)

    def call(self, method: str, path: str, *, query: Mapping[str, str] | None = None,
             body: Any = None) -> bytes:
        """A request whose whole body is returned as bytes."""
        return self._drain(self.request(method, path, query=query, body=body))

    def get_json(self, path: str, query: Mapping[str, str] | None = None) -> Any:
        data = self.call("GET", path, query=query)
        return json.loads(data) if data else None

    def post_json(self, path: str, body: Any = None, query: Mapping[str, str] | None = None
                  ) -> Any:
        data = self.call("POST", path, query=query, body=body)
        return json.loads(data) if data.strip() else None

    def stream_json(self, path: str, query: Mapping[str, str] | None = None
                    ) -> Iterator[Any]:
        """The JSON values of a streamed body (GET /events) as they arrive."""
        resp = self.request("GET", path, query=query)
        decoder = json.JSONDecoder()
        buf = ""
        pending = b""
        try:
            for chunk in resp.chunks():
                pending += chunk
                try:
                    buf += pending.decode()
                    pending = b""
                except UnicodeDecodeError:
                    continue  # a character split across chunks
                while True:
                    buf = buf.lstrip()
                    if not buf:
                        break
                    try:
                        value, end = decoder.raw_decode(buf)
                    except ValueError:
                        break  # incomplete: wait for more
                    buf = buf[end:]
                    yield value
        except ConnectionError:
            self.conn.close()
            raise StatusError("unexpected EOF", 1) from None
        if buf.strip():
            raise StatusError("unexpected EOF", 1)


def filters_query(filters: Mapping[str, Mapping[str, bool]]) -> dict[str, str]:
    """The `filters` query parameter docker sends (absent when there are none)."""
    if not filters:
        return {}
    return {"filters": json.dumps(filters, separators=(",", ":"))}
