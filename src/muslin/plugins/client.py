"""One HTTP POST to a plugin over a unix or TCP socket (TLS when the spec asks),
spoken with h11: Docker's plugin content type, a deadline per call, the status
and body back. Must not retry, interpret bodies or know plugin methods.
"""

from __future__ import annotations

import socket
import ssl
import time

import h11

from muslin.plugins.discovery import PluginAddress

CONTENT_TYPE = "application/vnd.docker.plugins.v1.2+json"
MAX_BODY = 16 * 1024 * 1024


class ConnectFailed(Exception):
    """No connection could be made (no socket, refused): the plugin is not there."""


class CallFailed(Exception):
    """The connection broke or timed out before a whole response came back."""


def _connect(addr: PluginAddress, timeout: float) -> socket.socket:
    try:
        path = addr.unix_path
        if path is not None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            try:
                sock.connect(path)
            except BaseException:
                sock.close()
                raise
            return sock
        host, port = addr.host_port
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as e:
        raise ConnectFailed(f"dial {addr.url}: {e.strerror or e}") from None
    if addr.scheme == "https" or addr.tls is not None:
        ctx = ssl.create_default_context(cafile=(addr.tls.ca_file or None)
                                         if addr.tls else None)
        if addr.tls is not None:
            if addr.tls.insecure_skip_verify:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            if addr.tls.cert_file:
                ctx.load_cert_chain(addr.tls.cert_file, addr.tls.key_file or None)
        try:
            sock = ctx.wrap_socket(sock, server_hostname=host)
        except (OSError, ssl.SSLError) as e:
            sock.close()
            raise ConnectFailed(f"TLS handshake with {addr.url}: {e}") from None
    return sock


def post(addr: PluginAddress, path: str, body: bytes, timeout: float) -> tuple[int, bytes]:
    """POST body to path; returns (status, response body)."""
    deadline = time.monotonic() + timeout
    sock = _connect(addr, timeout)
    conn = h11.Connection(h11.CLIENT)
    try:
        head = h11.Request(method="POST", target=path, headers=[
            ("Host", "plugin"), ("Accept", CONTENT_TYPE), ("Content-Type", CONTENT_TYPE),
            ("Content-Length", str(len(body))), ("Connection", "close")])
        sock.sendall(conn.send(head) + conn.send(h11.Data(data=body))
                     + conn.send(h11.EndOfMessage()))
        status = 0
        chunks: list[bytes] = []
        size = 0
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError
                sock.settimeout(left)
                conn.receive_data(sock.recv(65536))
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                size += len(event.data)
                if size > MAX_BODY:
                    raise CallFailed(f"{addr.url}{path}: response larger than {MAX_BODY} bytes")
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                return status, b"".join(chunks)
            elif isinstance(event, h11.ConnectionClosed):
                raise CallFailed(f"{addr.url}{path}: connection closed before a response")
    except TimeoutError:
        raise CallFailed(f"{addr.url}{path}: no answer within {timeout:g}s (timeout)") from None
    except h11.RemoteProtocolError:
        raise CallFailed(f"{addr.url}{path}: the connection closed before a whole "
                         "response (the plugin died or broke the protocol)") from None
    except OSError as e:
        raise CallFailed(f"{addr.url}{path}: {e.strerror or e}") from None
    finally:
        sock.close()
