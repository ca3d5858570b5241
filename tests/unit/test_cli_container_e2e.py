"""End-to-end tests of the container and image verbs against a fake Engine API.

`FakeEngine` listens on a unix socket in a tmp dir and answers like dockerd 27: it
records every request (so the tests check what the CLI sends), answers attach and exec
start by hijacking the connection (`101 UPGRADED`, then docker's multiplexed frames, or
raw bytes with a tty), and runs tiny fake programs: `echo ARGS`, `fail CODE` (writes to
stdout and stderr, exits CODE), `cat` (echoes stdin), `nope` (not found at start).
No root, no real daemon.
"""

from __future__ import annotations

import hashlib
import io
import json
import socketserver
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from muslin.cli.main import main
from muslin.cli.stream import frame

API = "/v1.47"


class Ctr:
    def __init__(self, cid: str, name: str, body: dict[str, Any]) -> None:
        self.id, self.name, self.body = cid, name, body
        self.cmd: list[str] = (body.get("Entrypoint") or []) + (body.get("Cmd") or [])
        self.tty = bool(body.get("Tty"))
        self.state = "created"
        self.exit_code = 0
        self.created = int(time.time()) - 1800  # "30 minutes ago" for a while
        self.attached = False
        self.started = threading.Event()
        self.exited = threading.Event()
        self.logs: list[tuple[int, bytes]] = []
        self.killed = threading.Event()
        self.signals: list[str] = []

    def program(self, stdin: bytes) -> tuple[list[tuple[int, bytes]], int]:
        return program(self.cmd, stdin)


def program(cmd: list[str], stdin: bytes) -> tuple[list[tuple[int, bytes]], int]:
    if not cmd:
        return [], 0
    if cmd[0] == "echo":
        return [(1, (" ".join(cmd[1:]) + "\n").encode())], 0
    if cmd[0] == "fail":
        return [(1, b"partial out\n"), (2, b"oops\n")], int(cmd[1])
    if cmd[0] == "cat":
        return [(1, stdin)], 0
    return [], 0


class FakeEngine(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True

    def __init__(self, path: str) -> None:
        self.requests: list[dict[str, Any]] = []
        self.containers: dict[str, Ctr] = {}
        self.execs: dict[str, dict[str, Any]] = {}
        self.images: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()
        self.add_image(b"busybox-rootfs", ["busybox:latest"])
        super().__init__(path, _Handler)

    def add_image(self, data: bytes, tags: list[str]) -> str:
        ident = "sha256:" + hashlib.sha256(data).hexdigest()
        img = self.images.setdefault(ident, {
            "Id": ident, "RepoTags": [], "RepoDigests": [], "Created": int(time.time()) - 60,
            "Size": len(data) * 1000, "SharedSize": -1, "Containers": -1,
            "Config": {"Cmd": ["sh"]}})
        for t in tags:
            for other in self.images.values():
                if t in other["RepoTags"]:
                    other["RepoTags"].remove(t)
            img["RepoTags"].append(t)
        return ident

    def find_image(self, ref: str) -> dict[str, Any] | None:
        ref = ref.removeprefix("docker.io/library/")
        if ":" not in ref.rsplit("/", 1)[-1] and not ref.startswith("sha256:"):
            ref += ":latest"
        for img in self.images.values():
            if ref in img["RepoTags"] or img["Id"] == ref or img["Id"][7:].startswith(ref):
                return img
        return None

    def find(self, ref: str) -> Ctr | None:
        for c in self.containers.values():
            if ref in (c.id, c.name) or (len(ref) >= 3 and c.id.startswith(ref)):
                return c
        return None

    def finish(self, c: Ctr, code: int) -> None:
        c.exit_code = code
        c.state = "exited"
        c.exited.set()
        if c.body["HostConfig"].get("AutoRemove"):
            self.containers.pop(c.id, None)

    def last(self, method: str, path: str) -> dict[str, Any]:
        return [r for r in self.requests if r["method"] == method and r["path"] == path][-1]

    def paths(self) -> list[str]:
        return [f"{r['method']} {r['path']}" for r in self.requests if r["path"] != "/_ping"]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FakeEngine

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def address_string(self) -> str:
        return "unix"

    def reply(self, status: int, body: Any = None, raw: bytes | None = None,
              ctype: str = "application/json") -> None:
        data = raw if raw is not None else (
            b"" if body is None else json.dumps(body).encode() + b"\n")
        self.send_response(status)
        self.send_header("Api-Version", "1.47")
        if data or body is not None:
            self.send_header("Content-Type", ctype)
        if status not in (204, 304):
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data:
            self.wfile.write(data)

    def error(self, status: int, message: str) -> None:
        self.reply(status, {"message": message})

    def read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", ""):
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def handle_any(self) -> None:
        url = urlsplit(self.path)
        raw = self.read_body()
        query = {k: v if len(v) > 1 else v[0] for k, v in parse_qs(url.query).items()}
        body: Any = None
        if raw and "json" in self.headers.get("Content-Type", ""):
            body = json.loads(raw)
        self.server.requests.append({
            "method": self.command, "path": unquote(url.path), "query": query, "body": body,
            "raw": raw, "headers": dict(self.headers.items())})
        path = unquote(url.path)
        if path == "/_ping":
            self.reply(200, raw=b"OK", ctype="text/plain")
            return
        assert path.startswith(API + "/"), path
        getattr(self, "route_" + self.command.lower())(path[len(API):], query, body or {},
                                                       raw)

    do_GET = do_POST = do_DELETE = handle_any

    # -- hijacked streams -----------------------------------------------------------

    def hijack(self, tty: bool) -> None:
        assert self.headers.get("Upgrade") == "tcp"
        assert self.headers.get("Connection") == "Upgrade"
        ctype = ("application/vnd.docker.raw-stream" if tty
                 else "application/vnd.docker.multiplexed-stream")
        self.wfile.write(f"HTTP/1.1 101 UPGRADED\r\nContent-Type: {ctype}\r\n"
                         "Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n".encode())
        self.wfile.flush()
        self.close_connection = True

    def write_output(self, out: list[tuple[int, bytes]], tty: bool) -> None:
        for stream, data in out:
            self.wfile.write(data if tty else frame(stream, data))
            self.wfile.flush()

    def attach(self, c: Ctr, query: dict[str, str]) -> None:
        c.attached = True
        self.hijack(c.tty)
        assert c.started.wait(10), "never started"
        stdin = self.rfile.read() if query.get("stdin") == "1" else b""
        if c.cmd[:1] == ["sleep"]:  # runs until a signal comes
            assert c.killed.wait(10)
            out, code = [(1, f"got {c.signals[-1]}\n".encode())], 130
        else:
            out, code = c.program(stdin)
        c.logs = out
        self.write_output(out, c.tty)
        self.server.finish(c, code)

    # -- routes ---------------------------------------------------------------------------

    def route_post(self, route: str, query: dict[str, str], body: Any, raw: bytes) -> None:
        srv = self.server
        parts = route.strip("/").split("/")
        if route == "/containers/create":
            if srv.find_image(body["Image"]) is None:
                ref = body["Image"] if ":" in body["Image"] else body["Image"] + ":latest"
                self.error(404, f"No such image: {ref}")
                return
            name = query.get("name") or f"ctr{len(srv.containers)}"
            if srv.find(name) is not None:
                self.error(409, f'Conflict. The container name "/{name}" is already in use')
                return
            cid = hashlib.sha256(name.encode()).hexdigest()
            srv.containers[cid] = Ctr(cid, name, body)
            self.reply(201, {"Id": cid, "Warnings": []})
            return
        if route == "/images/create":
            if query.get("fromSrc") == "-":
                ident = srv.add_image(raw, [query["repo"]] if query.get("repo") else [])
                self.reply(200, raw=json.dumps({"status": ident}).encode() + b"\n")
            else:
                self.error(404, f"pull access denied for {query.get('fromImage')}, "
                                "repository does not exist or may require 'docker login'")
            return
        if route == "/images/load":
            assert self.headers.get("Content-Type") == "application/x-tar"
            srv.add_image(raw, ["loaded:latest"])
            self.reply(200, raw=b'{"stream":"Loaded image: loaded:latest\\n"}\n')
            return
        if parts[0] == "images" and parts[-1] == "tag":
            img = srv.find_image("/".join(parts[1:-1]))
            if img is None:
                self.error(404, f"No such image: {'/'.join(parts[1:-1])}")
                return
            repo = query["repo"].removeprefix("docker.io/library/")
            srv.add_image(b"", [])  # unrelated, keeps ids stable
            img["RepoTags"].append(f"{repo}:{query.get('tag', 'latest')}")
            self.reply(201)
            return
        if parts[0] == "exec":
            ex = srv.execs[parts[1]]
            if parts[2] == "start":
                if body.get("Detach"):
                    ex["ExitCode"] = program(ex["Cmd"], b"")[1]
                    self.reply(200)
                    return
                self.hijack(ex["Tty"])
                stdin = self.rfile.read() if ex["AttachStdin"] else b""
                out, code = program(ex["Cmd"], stdin)
                self.write_output(out, ex["Tty"])
                ex["ExitCode"] = code
            return
        c = srv.find(parts[1])
        if c is None:
            self.error(404, f"No such container: {parts[1]}")
            return
        action = parts[2]
        if action == "attach":
            self.attach(c, query)
        elif action == "start":
            if c.state == "running":
                self.reply(304)
                return
            if c.cmd[:1] == ["nope"]:
                self.error(400, 'failed to create task for container: exec: "nope": '
                                "executable file not found in $PATH: unknown")
                return
            c.state = "running"
            c.started.set()
            if not c.attached:  # nobody to feed it: it runs and ends now
                out, code = c.program(b"")
                c.logs = out
                srv.finish(c, code)
            self.reply(204)
        elif action == "wait":
            # as moby: the head as soon as the wait is registered, the body at the exit
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.flush()
            assert c.exited.wait(10)
            if query.get("condition") == "removed":
                deadline = time.monotonic() + 5
                while c.id in srv.containers and time.monotonic() < deadline:
                    time.sleep(0.01)
            data = json.dumps({"StatusCode": c.exit_code, "Error": None}).encode() + b"\n"
            self.wfile.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(data), data))
        elif action in ("stop", "kill", "restart", "pause", "unpause"):
            if c.state != "running" and action in ("kill", "pause"):
                self.error(409, f"Container {c.id} is not running")
                return
            if action == "kill" and c.cmd[:1] == ["sleep"]:
                c.signals.append(query.get("signal", "KILL"))
                c.killed.set()
                self.reply(204)
                return
            c.state = {"stop": "exited", "kill": "exited", "restart": "running",
                       "pause": "paused", "unpause": "running"}[action]
            self.reply(204)
        elif action == "rename":
            c.name = query["name"]
            self.reply(204)
        elif action == "exec":
            if c.state != "running":
                self.error(409, f"container {c.id} is not running")
                return
            ident = f"{len(srv.execs):064x}"
            srv.execs[ident] = dict(body, ExitCode=None)
            self.reply(201, {"Id": ident})
        elif action == "resize":
            self.reply(200)
        else:
            self.error(404, "page not found")

    def route_get(self, route: str, query: dict[str, str], body: Any, raw: bytes) -> None:
        srv = self.server
        parts = route.strip("/").split("/")
        if route == "/containers/json":
            out = []
            for c in srv.containers.values():
                if c.state != "running" and query.get("all") != "1":
                    continue
                status = ("Up 5 seconds" if c.state == "running"
                          else f"Exited ({c.exit_code}) 2 seconds ago"
                          if c.state == "exited" else "Created")
                out.append({"Id": c.id, "Names": ["/" + c.name], "Image": c.body["Image"],
                            "ImageID": "sha256:" + "1" * 64, "Command": " ".join(c.cmd),
                            "Created": c.created, "State": c.state, "Status": status,
                            "Ports": [{"IP": "0.0.0.0", "PrivatePort": 80,
                                       "PublicPort": 8080, "Type": "tcp"}]
                            if c.body["HostConfig"].get("PortBindings") else [],
                            "Labels": c.body.get("Labels") or {}})
            self.reply(200, out)
        elif route == "/images/json":
            imgs = [i for i in srv.images.values() if i["RepoTags"] or query.get("all")]
            self.reply(200, [{k: v for k, v in i.items() if k != "Config"} for i in imgs])
        elif parts[0] == "images":
            img = srv.find_image("/".join(parts[1:-1]))
            if img is None:
                self.error(404, f"No such image: {'/'.join(parts[1:-1])}")
            else:
                self.reply(200, img)
        elif parts[0] == "networks":
            if parts[1] == "bridge":
                self.reply(200, {"Name": "bridge", "Id": "b" * 64, "Driver": "bridge"})
            else:
                self.error(404, f"network {parts[1]} not found")
        elif parts[0] == "exec":
            ex = srv.execs[parts[1]]
            self.reply(200, {"ID": parts[1], "Running": False, "ExitCode": ex["ExitCode"]})
        elif parts[0] == "containers":
            c = srv.find(parts[1])
            if c is None:
                self.error(404, f"No such container: {parts[1]}")
            elif parts[2] == "json":
                bindings = c.body["HostConfig"].get("PortBindings") or {}
                self.reply(200, {
                    "Id": c.id, "Name": "/" + c.name, "Image": "sha256:" + "1" * 64,
                    "State": {"Status": c.state, "Running": c.state in ("running", "paused"),
                              "Paused": c.state == "paused", "Restarting": False,
                              "ExitCode": c.exit_code},
                    "Config": {"Tty": c.tty, "OpenStdin": c.body.get("OpenStdin", False),
                               "Image": c.body["Image"], "Cmd": c.body.get("Cmd")},
                    "HostConfig": c.body["HostConfig"],
                    "NetworkSettings": {"Ports": {
                        k: [{"HostIp": b["HostIp"] or "0.0.0.0",
                             "HostPort": b["HostPort"] or "32768"} for b in v]
                        for k, v in bindings.items()}},
                })
            elif parts[2] == "logs":
                self.send_response(200)
                self.send_header("Content-Type", "application/vnd.docker.multiplexed-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for stream, data in c.logs:
                    data = data if c.tty else frame(stream, data)
                    for piece in (data[:5], data[5:]):  # frames split across chunks
                        if piece:
                            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.wfile.write(b"0\r\n\r\n")
        else:
            self.error(404, "page not found")

    def route_delete(self, route: str, query: dict[str, str], body: Any, raw: bytes) -> None:
        srv = self.server
        parts = route.strip("/").split("/")
        if parts[0] == "images":
            name = "/".join(parts[1:])
            img = srv.find_image(name)
            if img is None:
                self.error(404, f"No such image: {name}")
                return
            full = name if ":" in name else f"{name}:latest"
            if full in img["RepoTags"] and len(img["RepoTags"]) > 1:
                img["RepoTags"].remove(full)
                self.reply(200, [{"Untagged": full}])
                return
            del srv.images[img["Id"]]
            self.reply(200, [{"Untagged": t} for t in img["RepoTags"]]
                       + [{"Deleted": img["Id"]}])
            return
        c = srv.find(parts[1])
        if c is None:
            self.error(404, f"No such container: {parts[1]}")
        elif c.state == "running" and query.get("force") != "1":
            self.error(409, f"cannot remove container \"/{c.name}\": container is running: "
                            "stop the container before removing or force remove")
        else:
            del srv.containers[c.id]
            self.reply(204)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[FakeEngine]:
    srv = FakeEngine(str(tmp_path / "muslin.sock"))
    t = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


class Run:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err


def muslin(engine: FakeEngine, *argv: str, stdin: str = "") -> Run:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdin=io.StringIO(stdin), stdout=out, stderr=err,
                env={"MUSLIN_HOST": f"unix://{engine.server_address}", "HOME": "/root"})
    return Run(code, out.getvalue(), err.getvalue())


# -- run ---------------------------------------------------------------------------------


def test_run_detached(engine: FakeEngine) -> None:
    r = muslin(engine, "run", "-d", "--name", "web", "-p", "8080:80", "-e", "HOME",
               "busybox", "echo", "hi")
    assert r.code == 0, r.err
    cid = hashlib.sha256(b"web").hexdigest()
    assert (r.out, r.err) == (cid + "\n", "")
    assert engine.paths() == ["POST /v1.47/containers/create",
                              f"POST /v1.47/containers/{cid}/start"]
    create = engine.requests[1]
    assert create["query"] == {"name": "web"}
    body = create["body"]
    assert body["Image"] == "busybox" and body["Cmd"] == ["echo", "hi"]
    assert body["Env"] == ["HOME=/root"]
    assert (body["AttachStdin"], body["AttachStdout"], body["AttachStderr"]) == (False,) * 3
    assert body["HostConfig"]["PortBindings"] == {"80/tcp": [{"HostIp": "",
                                                              "HostPort": "8080"}]}
    assert body["ExposedPorts"] == {"80/tcp": {}}


def test_run_foreground_streams_and_exit_code(engine: FakeEngine) -> None:
    r = muslin(engine, "run", "--name", "job", "busybox", "fail", "3")
    assert (r.code, r.out, r.err) == (3, "partial out\n", "oops\n")
    cid = hashlib.sha256(b"job").hexdigest()
    # docker's order: attach, then wait (its head read before start), then start
    assert engine.paths() == [
        "POST /v1.47/containers/create", f"POST /v1.47/containers/{cid}/attach",
        f"POST /v1.47/containers/{cid}/wait", f"POST /v1.47/containers/{cid}/start"]
    attach = engine.last("POST", f"/v1.47/containers/{cid}/attach")
    assert attach["query"] == {"stream": "1", "stdout": "1", "stderr": "1"}
    assert engine.last("POST", f"/v1.47/containers/{cid}/wait")["query"] == {
        "condition": "next-exit"}
    r = muslin(engine, "run", "--rm", "busybox", "echo", "hello", "world")
    assert (r.code, r.out, r.err) == (0, "hello world\n", "")
    waits = [q for q in engine.requests if q["path"].endswith("/wait")]
    assert waits[-1]["query"] == {"condition": "removed"}
    assert engine.containers.keys() == {cid}  # the --rm one is gone


def test_run_interactive_and_tty(engine: FakeEngine) -> None:
    r = muslin(engine, "run", "-i", "busybox", "cat", stdin="line 1\nline 2\n")
    assert (r.code, r.out) == (0, "line 1\nline 2\n")
    create = engine.last("POST", "/v1.47/containers/create")["body"]
    assert (create["OpenStdin"], create["AttachStdin"], create["StdinOnce"]) == (True,) * 3
    attach = [q for q in engine.requests if q["path"].endswith("/attach")][-1]
    assert attach["query"]["stdin"] == "1"
    # a tty: raw bytes, stderr joins stdout
    r = muslin(engine, "run", "-t", "busybox", "fail", "0")
    assert (r.code, r.out, r.err) == (0, "partial out\noops\n", "")
    # -it needs a terminal on stdin
    r = muslin(engine, "run", "-it", "busybox", "sh")
    assert (r.code, r.err) == (1, "the input device is not a TTY\n")


def test_run_forwards_signals(engine: FakeEngine) -> None:
    """--sig-proxy (the default without a tty): Ctrl-C goes to the container, and the
    CLI exits with the container's status."""
    import os
    import signal

    def interrupt() -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            c = engine.find("sleeper")
            if c is not None and c.started.is_set():
                time.sleep(0.3)
                os.kill(os.getpid(), signal.SIGINT)
                return
            time.sleep(0.01)

    before = signal.getsignal(signal.SIGINT)  # SIG_IGN when pytest runs in the background
    threading.Thread(target=interrupt, daemon=True).start()
    r = muslin(engine, "run", "--name", "sleeper", "busybox", "sleep")
    assert (r.code, r.out) == (130, "got INT\n")
    c = engine.find("sleeper")
    assert c is not None and c.signals == ["INT"]
    assert engine.last("POST", f"/v1.47/containers/{c.id}/kill")["query"] == {"signal": "INT"}
    assert signal.getsignal(signal.SIGINT) is before  # restored


def test_run_missing_image_and_start_errors(engine: FakeEngine) -> None:
    r = muslin(engine, "run", "nosuch")
    assert r.code == 125
    assert r.err == (
        "Unable to find image 'nosuch:latest' locally\n"
        "muslin: Error response from daemon: pull access denied for docker.io/library/nosuch,"
        " repository does not exist or may require 'docker login'.\n"
        "See 'muslin run --help'.\n")
    pull = engine.last("POST", "/v1.47/images/create")
    assert pull["query"] == {"fromImage": "docker.io/library/nosuch", "tag": "latest"}
    r = muslin(engine, "run", "--name", "x", "busybox", "nope")
    assert r.code == 127
    assert r.err == ('muslin: Error response from daemon: failed to create task for '
                     'container: exec: "nope": executable file not found in $PATH: unknown.\n')
    r = muslin(engine, "run", "-p", "80/xtp", "busybox")
    assert (r.code, r.err) == (125, "muslin: invalid proto: xtp.\n"
                                    "See 'muslin run --help'.\n")
    r = muslin(engine, "container", "create", "--bogus", "busybox")
    assert (r.code, r.err) == (125, "unknown flag: --bogus\n"
                                    "See 'muslin container create --help'.\n")
    r = muslin(engine, "create", "BadName")
    assert (r.code, r.err) == (1, "invalid reference format: repository name "
                                  "(library/BadName) must be lowercase\n")


def test_create_start_stop_rm(engine: FakeEngine) -> None:
    r = muslin(engine, "container", "create", "--name", "svc", "busybox", "echo", "x")
    cid = hashlib.sha256(b"svc").hexdigest()
    assert (r.code, r.out) == (0, cid + "\n")
    r = muslin(engine, "start", "svc", "ghost")
    assert r.code == 1
    assert r.out == "svc\n"
    assert r.err == ("Error response from daemon: No such container: ghost\n"
                     "Error: failed to start containers: ghost\n")
    engine.containers[cid].state = "running"
    r = muslin(engine, "stop", "-t", "3", "svc")
    assert (r.code, r.out) == (0, "svc\n")
    assert engine.last("POST", "/v1.47/containers/svc/stop")["query"] == {"t": "3"}
    r = muslin(engine, "kill", "-s", "HUP", "svc")
    assert (r.code, r.err) == (1, f"Error response from daemon: Container {cid} is not "
                                  "running\n")
    r = muslin(engine, "rm", "svc", "ghost")
    assert (r.code, r.out, r.err) == (1, "svc\n", "Error response from daemon: No such "
                                                  "container: ghost\n")
    r = muslin(engine, "rm", "-f", "ghost")  # -f: reported, not an error
    assert (r.code, r.err) == (0, "Error response from daemon: No such container: ghost\n")
    assert engine.last("DELETE", "/v1.47/containers/ghost")["query"] == {"force": "1"}


def test_start_attach(engine: FakeEngine) -> None:
    muslin(engine, "create", "--name", "a1", "busybox", "fail", "2")
    r = muslin(engine, "start", "-a", "a1")
    assert (r.code, r.out, r.err) == (2, "partial out\n", "oops\n")
    r = muslin(engine, "start", "-a", "a1", "b1")
    assert (r.code, r.err) == (1, "you cannot start and attach multiple containers at "
                                  "once\n")


# -- exec, logs, attach, wait ---------------------------------------------------------


def test_exec_exit_code_and_stdin(engine: FakeEngine) -> None:
    muslin(engine, "run", "-d", "--name", "srv", "busybox", "sleep")
    c = engine.find("srv")
    assert c is not None
    c.state = "running"
    r = muslin(engine, "exec", "-e", "X=1", "-w", "/tmp", "srv", "fail", "7")
    assert (r.code, r.out, r.err) == (7, "partial out\n", "oops\n")
    create = engine.last("POST", "/v1.47/containers/srv/exec")["body"]
    assert create == {"User": "", "Privileged": False, "Tty": False, "AttachStdin": False,
                      "AttachStderr": True, "AttachStdout": True, "Detach": False,
                      "DetachKeys": "", "Env": ["X=1"], "WorkingDir": "/tmp",
                      "Cmd": ["fail", "7"]}
    exec_id = f"{0:064x}"
    assert engine.last("POST", f"/v1.47/exec/{exec_id}/start")["body"] == {
        "Detach": False, "Tty": False}
    assert engine.paths()[-1] == f"GET /v1.47/exec/{exec_id}/json"
    r = muslin(engine, "exec", "-i", "srv", "cat", stdin="ping\n")
    assert (r.code, r.out) == (0, "ping\n")
    r = muslin(engine, "exec", "-d", "srv", "fail", "1")
    assert (r.code, r.out, r.err) == (0, "", "")
    r = muslin(engine, "exec", "ghost", "ls")
    assert (r.code, r.err) == (1, "Error response from daemon: No such container: ghost\n")
    c.state = "exited"
    r = muslin(engine, "exec", "srv", "ls")
    assert (r.code, r.err) == (1, f"Error response from daemon: container {c.id} is not "
                                  "running\n")
    r = muslin(engine, "exec", "srv")
    assert r.code == 1 and r.err.startswith('"muslin exec" requires at least 2 arguments.')


def test_logs_frames(engine: FakeEngine) -> None:
    muslin(engine, "run", "--name", "l1", "busybox", "fail", "1")
    r = muslin(engine, "logs", "--tail", "10", "-t", "--since", "1700000000", "l1")
    assert (r.code, r.out, r.err) == (0, "partial out\n", "oops\n")
    c = engine.find("l1")
    assert c is not None
    q = engine.last("GET", f"/v1.47/containers/{c.id}/logs")["query"]
    assert q == {"stdout": "1", "stderr": "1", "since": "1700000000", "timestamps": "1",
                 "tail": "10"}
    r = muslin(engine, "logs", "-f", "l1")
    assert engine.last("GET", f"/v1.47/containers/{c.id}/logs")["query"]["follow"] == "1"
    r = muslin(engine, "logs", "nosuch")
    assert (r.code, r.err) == (1, "Error response from daemon: No such container: nosuch\n")


def test_attach_wait_rename(engine: FakeEngine) -> None:
    muslin(engine, "create", "--name", "w1", "busybox", "fail", "4")
    r = muslin(engine, "attach", "w1")
    assert (r.code, r.err) == (1, "You cannot attach to a stopped container, start it "
                                  "first\n")
    muslin(engine, "start", "w1")
    r = muslin(engine, "wait", "w1", "ghost")
    assert (r.code, r.out, r.err) == (1, "4\n", "Error response from daemon: No such "
                                                "container: ghost\n")
    r = muslin(engine, "rename", "w1", "w2")
    assert (r.code, r.out) == (0, "")
    assert engine.find("w2") is not None
    r = muslin(engine, "rename", "ghost", "x")
    assert (r.code, r.err) == (1, "Error response from daemon: No such container: ghost\n"
                                  "Error: failed to rename container named ghost\n")


# -- ps, inspect, port ----------------------------------------------------------------


def test_ps(engine: FakeEngine) -> None:
    r = muslin(engine, "ps")
    assert r.out == "CONTAINER ID   IMAGE     COMMAND   CREATED   STATUS    PORTS     NAMES\n"
    muslin(engine, "run", "-d", "--name", "up", "-p", "8080:80", "busybox", "echo", "hi")
    engine.containers[hashlib.sha256(b"up").hexdigest()].state = "running"
    muslin(engine, "run", "-d", "--name", "done", "busybox", "fail", "1")
    r = muslin(engine, "container", "ls", "-a")
    lines = r.out.splitlines()
    assert lines[0] == ("CONTAINER ID   IMAGE     COMMAND     CREATED          STATUS"
                        "                     PORTS                  NAMES")
    up = hashlib.sha256(b"up").hexdigest()[:12]
    assert lines[1] == (f'{up}   busybox   "echo hi"   30 minutes ago   Up 5 seconds'
                        "               0.0.0.0:8080->80/tcp   up")
    assert lines[2].endswith('"fail 1"    30 minutes ago   Exited (1) 2 seconds ago'
                             "                          done")
    assert engine.last("GET", "/v1.47/containers/json")["query"] == {"all": "1"}
    r = muslin(engine, "ps", "-q")
    assert r.out == up + "\n"
    r = muslin(engine, "ps", "-a", "--format", "{{.Names}}\\t{{.State}}", "-f", "status=exited",
               "-n", "2")
    assert r.out == "up\trunning\ndone\texited\n"
    q = engine.last("GET", "/v1.47/containers/json")["query"]
    assert q == {"all": "1", "limit": "2", "filters": '{"status":{"exited":true}}'}
    r = muslin(engine, "ps", "--format", "{{.Nope}}")
    assert r.code == 1 and "can't evaluate field Nope in type *formatter.ContainerContext" \
        in r.err


def test_inspect_and_port(engine: FakeEngine) -> None:
    muslin(engine, "run", "-d", "--name", "p1", "-p", "127.0.0.1:8080:80", "-p", "53/udp",
           "busybox")
    r = muslin(engine, "port", "p1")
    assert r.out == "53/udp -> 0.0.0.0:32768\n80/tcp -> 127.0.0.1:8080\n"
    r = muslin(engine, "port", "p1", "80/tcp")
    assert r.out == "127.0.0.1:8080\n"
    r = muslin(engine, "port", "p1", "443")
    assert (r.code, r.err) == (1, "Error: No public port '443' published for p1\n")
    r = muslin(engine, "container", "inspect", "-f", "{{.Name}} {{.State.Running}}", "p1")
    assert r.out == "/p1 false\n"
    r = muslin(engine, "container", "inspect", "p1", "ghost")
    assert r.code == 1 and json.loads(r.out)[0]["Name"] == "/p1"
    assert r.err == "Error response from daemon: No such container: ghost\n"
    # inspect: a container, else an image, else a network
    r = muslin(engine, "inspect", "-f", "{{.Id}}", "p1", "busybox", "bridge")
    ids = r.out.split()
    assert r.code == 0 and ids[0] == hashlib.sha256(b"p1").hexdigest()
    assert ids[1].startswith("sha256:") and ids[2] == "b" * 64
    r = muslin(engine, "inspect", "nothing")
    assert (r.code, r.out, r.err) == (1, "[]\n", "Error: No such object: nothing\n")
    r = muslin(engine, "inspect", "--type", "image", "p1")
    assert (r.code, r.err) == (1, "Error response from daemon: No such image: p1\n")


# -- images --------------------------------------------------------------------------


def test_image_import_ls_tag_rmi(engine: FakeEngine, tmp_path: Path) -> None:
    tar = tmp_path / "rootfs.tar"
    tar.write_bytes(b"\0" * 5000)
    r = muslin(engine, "image", "import", "-m", "hello", "-c", "ENV A=1", str(tar),
               "myimg:1.0")
    ident = "sha256:" + hashlib.sha256(b"\0" * 5000).hexdigest()
    assert (r.code, r.out, r.err) == (0, ident + "\n", "")
    req = engine.last("POST", "/v1.47/images/create")
    assert req["query"] == {"fromSrc": "-", "repo": "myimg:1.0", "message": "hello",
                            "changes": "ENV A=1"}
    assert req["raw"] == b"\0" * 5000
    assert req["headers"]["Transfer-Encoding"] == "chunked"
    r = muslin(engine, "images")
    lines = r.out.splitlines()
    assert lines[0] == "REPOSITORY   TAG       IMAGE ID       CREATED              SIZE"
    assert lines[1].startswith("busybox      latest    ")
    assert lines[2] == f"myimg        1.0       {ident[7:19]}   About a minute ago   5MB"
    r = muslin(engine, "image", "ls", "-q", "myimg")
    assert json.loads(engine.last("GET", "/v1.47/images/json")["query"]["filters"]) == {
        "reference": {"myimg": True}}
    r = muslin(engine, "tag", "myimg:1.0", "myimg:2.0")
    assert r.code == 0
    assert engine.last("POST", "/v1.47/images/myimg:1.0/tag")["query"] == {
        "repo": "docker.io/library/myimg", "tag": "2.0"}
    r = muslin(engine, "rmi", "myimg:2.0")
    assert (r.code, r.out) == (0, "Untagged: myimg:2.0\n")
    r = muslin(engine, "image", "rm", "myimg:1.0", "ghost")
    assert r.code == 1
    assert r.out == f"Untagged: myimg:1.0\nDeleted: {ident}\n"
    assert r.err == "Error response from daemon: No such image: ghost\n"
    r = muslin(engine, "image", "import", str(tmp_path / "absent.tar"))
    assert (r.code, r.err) == (1, f"open {tmp_path}/absent.tar: no such file or directory\n")


def test_image_load_inspect_pull(engine: FakeEngine, tmp_path: Path) -> None:
    tar = tmp_path / "image.tar"
    tar.write_bytes(b"docker-save" * 100)
    r = muslin(engine, "image", "load", "-i", str(tar))
    assert (r.code, r.out) == (0, "Loaded image: loaded:latest\n")
    assert engine.last("POST", "/v1.47/images/load")["query"] == {"quiet": "1"}
    r = muslin(engine, "image", "inspect", "-f", "{{.Id}} {{.RepoTags}}", "loaded")
    assert r.out.split(" ", 1)[1] == "[loaded:latest]\n"
    r = muslin(engine, "image", "inspect", "ghost")
    assert (r.code, r.out, r.err) == (1, "[]\n", "Error response from daemon: No such image: "
                                                 "ghost\n")
    r = muslin(engine, "pull", "alpine")
    assert r.code == 1
    assert r.out == "Using default tag: latest\n"
    assert r.err == ("Error response from daemon: pull access denied for "
                     "docker.io/library/alpine, repository does not exist or may require "
                     "'docker login'\n")
    assert engine.last("POST", "/v1.47/images/create")["query"] == {
        "fromImage": "docker.io/library/alpine", "tag": "latest"}


def test_help_and_usage(engine: FakeEngine) -> None:
    r = muslin(engine, "container", "--help")
    assert r.out.startswith("\nUsage:  muslin container COMMAND\n\nManage containers\n")
    assert "\n  ls          List containers\n" in r.out
    r = muslin(engine, "run")
    assert r.code == 1 and r.err.startswith('"muslin run" requires at least 1 argument.')
    r = muslin(engine, "image", "--help")
    assert "\n  import      Import the contents from a tarball to create a filesystem image\n" \
        in r.out
    assert engine.requests == []
