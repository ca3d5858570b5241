"""Streams of the container verbs: hijacked attach/exec connections, multiplexed frames,
requests answered later, raw request bodies and JSON message streams.

Owns what the plain request/response client does not: a connection handed over to a
byte stream (`POST /containers/{id}/attach`, `POST /exec/{id}/start` sent with
`Connection: Upgrade` / `Upgrade: tcp`; the daemon answers `101 UPGRADED`, or a raw
200 kept open, and the socket then carries the process's bytes both ways); docker's
stdcopy framing of a non-tty stream (8-byte header: stream 0/1/2/3, three zero bytes,
big-endian uint32 length; then the payload); copying stdin in and stdout/stderr out;
the terminal in raw mode for `-t`; signals forwarded to the container (`--sig-proxy`);
a request sent now and answered later on its own connection (`/wait` before `start`,
as docker does); request bodies streamed chunked (`image import`, `image load`); and
docker's jsonmessage display of progress streams.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket

from muslin.cli.client import Connection, DaemonUnavailable, quote
from muslin.cli.errors import StatusError
from muslin.fdwait import readable

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping
    from typing import Any, TextIO

    from muslin.cli.client import Client, Response

STDIN, STDOUT, STDERR, SYSTEMERR = 0, 1, 2, 3
HEADER_LEN = 8
_UPGRADE = {"Connection": "Upgrade", "Upgrade": "tcp"}


# -- frames ----------------------------------------------------------------------------


class Demux:
    """docker's stdcopy.StdCopy, incremental: bytes in, (stream, payload) frames out.
    A frame of stream 3 (systemerr) is the daemon's error and ends the copy; a partial
    frame left at end of stream is dropped, as stdcopy does."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        self._buf += data
        out: list[tuple[int, bytes]] = []
        buf = self._buf
        while len(buf) >= HEADER_LEN:
            kind = buf[0]
            if kind not in (STDIN, STDOUT, STDERR, SYSTEMERR):
                raise StatusError(f"Unrecognized input header: {kind}")
            size = int.from_bytes(buf[4:8], "big")
            if len(buf) < HEADER_LEN + size:
                break
            payload = bytes(buf[HEADER_LEN:HEADER_LEN + size])
            del buf[:HEADER_LEN + size]
            if kind == SYSTEMERR:
                raise StatusError("error from daemon in stream: "
                                  + payload.decode("utf-8", "replace"))
            out.append((STDERR if kind == STDERR else STDOUT, payload))
        return out


def frame(stream: int, payload: bytes) -> bytes:
    """One multiplexed frame (what the daemon writes; for tests and tools)."""
    return bytes((stream, 0, 0, 0)) + len(payload).to_bytes(4, "big") + payload


class Sink:
    """Bytes out to a text stream: through its binary buffer when it has one (a real
    stdout), else decoded as UTF-8 (a test's StringIO)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._buffer: Any = getattr(stream, "buffer", None)
        self._decoder: Any = None

    def write(self, data: bytes) -> None:
        if not data:
            return
        if self._buffer is not None:
            self.stream.flush()
            self._buffer.write(data)
            self._buffer.flush()
            return
        if self._decoder is None:
            import codecs

            self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self.stream.write(self._decoder.decode(data))

    def close(self) -> None:
        if self._decoder is not None:
            self.stream.write(self._decoder.decode(b"", final=True))
        self.stream.flush()


def copy_output(chunks: Iterator[bytes], tty: bool, out: Sink, err: Sink) -> None:
    """A container's output: raw bytes to stdout with a tty, else demultiplexed."""
    try:
        if tty:
            for chunk in chunks:
                out.write(chunk)
            return
        demux = Demux()
        for chunk in chunks:
            for kind, payload in demux.feed(chunk):
                (err if kind == STDERR else out).write(payload)
    finally:
        out.close()
        err.close()


# -- connections -------------------------------------------------------------------------


def encode_query(query: Mapping[str, str | list[str]]) -> str:
    """url.Values.Encode: keys sorted, a list as the key repeated (`changes=a&changes=b`)."""
    def q(s: str) -> str:
        return quote(s, b" ").replace(" ", "+")

    parts = []
    for k in sorted(query):
        value = query[k]
        for v in value if isinstance(value, list) else [value]:
            parts.append(f"{q(k)}={q(v)}")
    return "&".join(parts)


def _target(client: Client, path: str, query: Mapping[str, str | list[str]] | None) -> str:
    target = f"/v{client.negotiate()}{path}"
    return target + ("?" + encode_query(query) if query else "")


def _raise_for(client: Client, conn: Connection, resp: Response, target: str) -> None:
    if resp.status >= 400:
        try:
            raise client._error(resp, target)
        finally:
            conn.close()


class Hijacked:
    """A connection handed over to a byte stream: read the process's output from it,
    write its input to it."""

    def __init__(self, conn: Connection, resp: Response) -> None:
        self.conn = conn
        self.resp = resp
        self.content_type = resp.headers.get("content-type", "")

    def chunks(self) -> Iterator[bytes]:
        """The output as it comes, until the daemon closes the stream."""
        if self.resp.status != 101:  # a raw 200: the body runs until the connection ends
            try:
                yield from self.resp.chunks()
            except ConnectionError:
                return
            return
        f = self.conn.rfile
        while f is not None:
            try:
                data = f.read1(65536)
            except (ConnectionError, OSError, ValueError):
                return
            if not data:
                return
            yield data

    def send(self, data: bytes) -> None:
        if self.conn.sock is not None:
            self.conn.sock.sendall(data)

    def close_write(self) -> None:
        """docker's CloseWrite: the process's stdin reaches end of file."""
        if self.conn.sock is not None:
            with contextlib.suppress(OSError):
                self.conn.sock.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self.conn.close()


def hijack(client: Client, path: str, query: Mapping[str, str] | None = None,
           body: Any = None) -> Hijacked:
    """POST `path` asking for the connection (docker's postHijacked), on a connection
    of its own: the client's keep-alive one stays free for other calls."""
    target = _target(client, path, query)
    conn = Connection(client.conn.path, client.host)
    headers = dict(_UPGRADE)
    data = None
    if body is None:
        headers["Content-Type"] = "text/plain"
    else:
        data = json.dumps(body).encode()
    resp = conn.request("POST", target, data, headers)
    _raise_for(client, conn, resp, target)
    return Hijacked(conn, resp)


class Pending:
    """A request sent now whose answer is read later (docker sends `/wait` before
    `start` so that no exit is missed, and reads it when the stream ends)."""

    def __init__(self, client: Client, method: str, path: str,
                 query: Mapping[str, str] | None = None) -> None:
        self.client = client
        self.method = method
        self.target = _target(client, path, query)
        self.conn = Connection(client.conn.path, client.host)
        self.resp: Response | None = None
        self.conn.connect()
        try:
            self.conn._send(method, self.target, None, {})
        except OSError:
            self.conn.close()
            raise DaemonUnavailable(client.host) from None

    def wait_head(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for the answer's head: a daemon that, like moby,
        sends it once the wait is registered lets `start` follow without a race."""
        sock = self.conn.sock
        if self.resp is not None:
            return True
        if sock is None:
            return False
        try:
            if readable(sock, timeout):
                self.resp = self.conn._read_head(self.method)
        except Exception:  # a broken answer: json() reports it later
            return False
        return self.resp is not None

    def json(self) -> Any:
        """The answer's JSON body (blocks until the daemon answers)."""
        try:
            resp = self.resp if self.resp is not None else self.conn._read_head(self.method)
            _raise_for(self.client, self.conn, resp, self.target)
            data = resp.read()
        except StatusError:
            raise
        except OSError as e:
            raise StatusError(f"error waiting for container: {e or 'unexpected EOF'}") from None
        except Exception:
            raise StatusError("error waiting for container: unexpected EOF") from None
        finally:
            self.conn.close()
        return json.loads(data) if data.strip() else None

    def close(self) -> None:
        self.conn.close()


def post_body(client: Client, path: str, query: Mapping[str, str | list[str]] | None,
              read: Callable[[], bytes], content_type: str | None = None) -> Response:
    """POST a body streamed from `read()` (b"" at its end) with chunked encoding, as
    docker streams a tarball; returns the response (raises APIError for an error)."""
    target = _target(client, path, query)
    conn = client.conn
    if conn.sock is None:
        conn.connect()
    assert conn.sock is not None
    lines = [f"POST {target} HTTP/1.1", "Host: muslin", "User-Agent: muslin-cli (linux)",
             "Transfer-Encoding: chunked"]
    if content_type:
        lines.append(f"Content-Type: {content_type}")
    sent_all = True
    try:
        conn.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace"))
        while True:
            data = read()
            if not data:
                break
            conn.sock.sendall(b"%x\r\n%s\r\n" % (len(data), data))
        conn.sock.sendall(b"0\r\n\r\n")
    except OSError:
        sent_all = False  # the daemon may have answered (an error) before reading it all
    try:
        resp = conn._read_head("POST")
    except Exception:
        conn.close()
        raise DaemonUnavailable(client.host) from None
    if resp.status >= 400:
        raise client._error(resp, target)
    if not sent_all:
        conn.close()
        raise DaemonUnavailable(client.host)
    return resp


def json_values(resp: Response) -> Iterator[Any]:
    """The JSON values of a streamed body, as they arrive."""
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
                continue
            while True:
                buf = buf.lstrip()
                if not buf:
                    break
                try:
                    value, end = decoder.raw_decode(buf)
                except ValueError:
                    break
                buf = buf[end:]
                yield value
    except ConnectionError:
        raise StatusError("unexpected EOF") from None
    if buf.strip():
        raise StatusError("unexpected EOF")


def display_json_messages(resp: Response, out: TextIO) -> None:
    """jsonmessage.DisplayJSONMessagesStream for a stream that is not a terminal:
    `status`/`stream` lines as they come, progress bars left out, an `error` ends it
    (its message is the command's error, exit 1)."""
    for msg in json_values(resp):
        if not isinstance(msg, dict):
            continue
        if msg.get("errorDetail") or msg.get("error"):
            detail = msg.get("errorDetail") or {}
            text = detail.get("message") if isinstance(detail, dict) else None
            if isinstance(detail, dict) and detail.get("code") == 401:
                raise StatusError("authentication is required")
            raise StatusError(str(text or msg.get("error") or ""))
        if "aux" in msg:
            continue
        progress = msg.get("progressDetail")
        if not msg.get("stream") and isinstance(progress, dict) and (
                progress.get("current") or progress.get("total")):
            continue  # a progress bar: terminals only
        line = ""
        if msg.get("timeNano") or msg.get("time"):
            from muslin.cli.views import event_time

            line += event_time(int(msg.get("timeNano") or 0), int(msg.get("time") or 0)) + " "
        if msg.get("id"):
            line += f"{msg['id']}: "
        if msg.get("from"):
            line += f"(from {msg['from']}) "
        if msg.get("progress") and not msg.get("stream"):
            line += f"{msg.get('status', '')} {msg['progress']}"
        elif msg.get("stream"):
            line += str(msg["stream"])
        else:
            line += f"{msg.get('status', '')}\n"
        out.write(line)
        out.flush()


# -- stdin, terminals, signals ---------------------------------------------------------


def is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def terminal_size(stream: Any) -> tuple[int, int]:
    """(height, width) of the terminal behind `stream`, (0, 0) when it is none (docker's
    GetTtySize)."""
    if not is_terminal(stream):
        return 0, 0
    try:
        size = os.get_terminal_size(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return 0, 0
    return size.lines, size.columns


def stdin_reader(stream: TextIO) -> Callable[[], bytes]:
    """A function returning the next bytes of stdin as soon as there are any (b"" at end
    of file): os.read on its descriptor, else the text stream encoded."""
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        fd = -1
    if fd >= 0:
        def read_fd() -> bytes:
            try:
                return os.read(fd, 32768)
            except OSError:
                return b""

        return read_fd

    def read_text() -> bytes:
        return stream.read(32768).encode()

    return read_text


def feed_stdin(h: Hijacked, read: Callable[[], bytes]) -> None:
    """Copy stdin into the stream on a daemon thread; at its end, close our side of the
    connection for writing (the process sees end of file)."""
    import threading

    def run() -> None:
        try:
            while True:
                data = read()
                if not data:
                    break
                h.send(data)
        except OSError:
            return
        h.close_write()

    threading.Thread(target=run, name="muslin-stdin", daemon=True).start()


class RawTerminal:
    """stdin's terminal in raw mode while attached with a tty (restored on exit)."""

    def __init__(self, stream: Any) -> None:
        self.fd = -1
        self.saved: Any = None
        if is_terminal(stream):
            try:
                self.fd = stream.fileno()
            except (AttributeError, OSError, ValueError):
                self.fd = -1

    def __enter__(self) -> RawTerminal:
        if self.fd >= 0:
            import termios
            import tty

            try:
                self.saved = termios.tcgetattr(self.fd)
                tty.setraw(self.fd)
            except termios.error:
                self.saved = None
        return self

    def __exit__(self, *exc: object) -> None:
        if self.saved is not None:
            import termios

            with contextlib.suppress(termios.error):
                termios.tcsetattr(self.fd, termios.TCSADRAIN, self.saved)


# signals docker's ForwardAllSignals passes on, as the names it sends
_PROXIED = ("HUP", "INT", "QUIT", "USR1", "USR2", "TERM", "ALRM", "CONT", "TSTP", "TTIN",
            "TTOU")


class Signals:
    """Signal handlers for the time of a stream (main thread only; restored on exit).
    `proxy` gets docker's signal name (e.g. "INT") for each forwarded signal; `winch`
    is called on SIGWINCH."""

    def __init__(self, proxy: Callable[[str], None] | None = None,
                 winch: Callable[[], None] | None = None) -> None:
        self.proxy = proxy
        self.winch = winch
        self.saved: list[tuple[int, Any]] = []

    def __enter__(self) -> Signals:
        import signal
        import threading

        if threading.current_thread() is not threading.main_thread():
            return self

        def install(num: int, handler: Callable[[int, Any], None]) -> None:
            with contextlib.suppress(OSError, ValueError):
                self.saved.append((num, signal.signal(num, handler)))

        if self.proxy is not None:
            proxy = self.proxy
            def forward(name: str) -> Callable[[int, Any], None]:
                return lambda _n, _f: proxy(name)

            for name in _PROXIED:
                num = getattr(signal, "SIG" + name, None)
                if num is not None:
                    install(num, forward(name))
        if self.winch is not None:
            winch = self.winch
            install(signal.SIGWINCH, lambda _n, _f: winch())
        return self

    def __exit__(self, *exc: object) -> None:
        import signal

        for num, old in reversed(self.saved):
            with contextlib.suppress(OSError, ValueError, TypeError):
                signal.signal(num, old)
        self.saved.clear()


def side_call(client: Client, method: str, path: str,
              query: Mapping[str, str] | None = None) -> None:
    """A request on a connection of its own, its answer ignored (a forwarded signal, a
    resize): safe from a signal handler while the main connection is in use."""
    try:
        target = _target(client, path, query)
        conn = Connection(client.conn.path, client.host)
        try:
            resp = conn.request(method, target, None, {})
            resp.read()
        finally:
            conn.close()
    except (StatusError, OSError, ValueError):
        pass
