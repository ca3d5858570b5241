"""A minimal Docker v1 plugin server for the example plugins: JSON over HTTP on a
unix socket (stdlib only), one method per path, `{"Err": ...}` on failure.

Third-party code: it knows nothing of muslin and speaks only the plugin protocol.
"""

from __future__ import annotations

import json
import os
import socketserver
import sys
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any

CONTENT_TYPE = "application/vnd.docker.plugins.v1.2+json"
Handler = Callable[[dict[str, Any]], dict[str, Any]]


class PluginFailure(Exception):
    """Answered as {"Err": message} with status 500, as Docker's plugin helpers do."""


def make_server(socket_path: str, implements: list[str], methods: dict[str, Handler]
                ) -> socketserver.UnixStreamServer:
    """A threaded server bound to socket_path (a stale socket file is replaced)."""

    class Request(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt: str, *args: Any) -> None:
            sys.stderr.write(f"{self.command} {self.path}: " + (fmt % args) + "\n")

        def _answer(self, status: int, doc: dict[str, Any]) -> None:
            body = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", CONTENT_TYPE)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            name = self.path.lstrip("/")
            if name == "Plugin.Activate":
                self._answer(200, {"Implements": implements})
                return
            method = methods.get(name)
            if method is None:
                self._answer(404, {"Err": f"{name} is not implemented"})
                return
            try:
                args = json.loads(raw) if raw.strip() else {}
                self._answer(200, method(args))
            except PluginFailure as e:
                self._answer(500, {"Err": str(e)})
            except Exception as e:  # a bug or a kernel error: still an answer
                self._answer(500, {"Err": f"{type(e).__name__}: {e}"})

    class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
        daemon_threads = True

    os.makedirs(os.path.dirname(socket_path) or ".", exist_ok=True)
    if os.path.exists(socket_path):
        os.unlink(socket_path)
    return Server(socket_path, Request)


def serve(socket_path: str, implements: list[str], methods: dict[str, Handler]) -> None:
    """Serves until killed."""
    with make_server(socket_path, implements, methods) as server:
        server.serve_forever()


class State:
    """A JSON file holding the plugin's state, so a restarted plugin carries on."""

    def __init__(self, path: str, empty: dict[str, Any]) -> None:
        self.path = path
        self.data = empty
        if path and os.path.exists(path):
            with open(path) as f:
                self.data = json.load(f)

    def save(self) -> None:
        if not self.path:
            return
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.data, f)
        os.replace(tmp, self.path)
