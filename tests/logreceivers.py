"""Log receivers for tests, listening on 127.0.0.1 inside a lab namespace (where the
muslind under test runs): UDP and TCP collectors (syslog, GELF) and a Splunk HTTP
Event Collector. Each runs on a thread of the test process; its socket was made
inside the namespace, so it stays there."""

from __future__ import annotations

import contextlib
import http.server
import json
import socket
import ssl
import threading
from typing import Any

from muslin.kernel import netns


class UdpReceiver:
    def __init__(self, ns: str) -> None:
        self.sock = netns.run_in(ns, lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.datagrams: list[bytes] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while True:
            try:
                data = self.sock.recv(65535)
            except OSError:
                return
            with self._lock:
                self.datagrams.append(data)

    def received(self) -> list[bytes]:
        with self._lock:
            return list(self.datagrams)

    def close(self) -> None:
        self.sock.close()


class TcpReceiver:
    """Accepts connections and keeps everything sent on them, in order."""

    def __init__(self, ns: str) -> None:
        self.sock = netns.run_in(ns, lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.data = bytearray()
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    def _read(self, conn: socket.socket) -> None:
        with conn:
            while True:
                try:
                    chunk = conn.recv(65536)
                except OSError:
                    return
                if not chunk:
                    return
                with self._lock:
                    self.data += chunk

    def received(self) -> bytes:
        with self._lock:
            return bytes(self.data)

    def close(self) -> None:
        self.sock.close()


class HecServer:
    """A Splunk HTTP Event Collector: keeps (Authorization header, events) per POST."""

    def __init__(self, ns: str, tls: ssl.SSLContext | None = None) -> None:
        self.posts: list[tuple[str, str, list[dict[str, Any]]]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                events = []
                decoder = json.JSONDecoder()
                text, i = body.decode(), 0
                while i < len(text):
                    doc, i = decoder.raw_decode(text, i)
                    events.append(doc)
                outer.posts.append((self.path, self.headers.get("Authorization") or "",
                                    events))
                reply = b'{"text":"Success","code":0}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = netns.run_in(ns, lambda: http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), Handler))
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self) -> list[dict[str, Any]]:
        return [e for _, _, evs in list(self.posts) for e in evs]

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.server.shutdown()
        self.server.server_close()
