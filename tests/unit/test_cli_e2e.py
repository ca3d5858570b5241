"""End-to-end tests of the `muslin` CLI against a fake Engine API on a unix socket.

The fake daemon (`FakeEngine`) answers like dockerd 27 with canned Docker-shaped JSON
and records every request, so the tests check both what the CLI sends and what it
prints. No root, no real daemon.
"""

from __future__ import annotations

import io
import json
import os
import socketserver
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from muslin.cli.main import main

BRIDGE_ID = "7fca4eb8c647f3f1a8d5e1c9b2a4d6e8f0a1b2c3d4e5f60718293a4b5c6d7e8f"
HOST_ID = "cf03ee007fb4a2b8c9d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6"
NONE_ID = "9f904ee27bf5b6c7d8e9f0a1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f"


def network(name: str, ident: str, driver: str, subnet: str | None = None,
            gateway: str | None = None, **extra: Any) -> dict[str, Any]:
    cfg = [] if subnet is None else [{"Subnet": subnet, "Gateway": gateway}]
    obj: dict[str, Any] = {
        "Name": name, "Id": ident, "Created": "2024-05-01T10:00:00.123456789Z",
        "Scope": "local", "Driver": driver, "EnableIPv6": False,
        "IPAM": {"Driver": "default", "Options": None, "Config": cfg},
        "Internal": False, "Attachable": False, "Ingress": False,
        "ConfigFrom": {"Network": ""}, "ConfigOnly": False, "Containers": {},
        "Options": {}, "Labels": {},
    }
    obj.update(extra)
    return obj


class FakeEngine(socketserver.ThreadingUnixStreamServer):
    """A tiny dockerd stand-in: networks, version, info, events; records requests."""

    daemon_threads = True

    def __init__(self, path: str, api_version: str = "1.47") -> None:
        self.api_version = api_version
        self.requests: list[dict[str, Any]] = []
        self.networks: dict[str, dict[str, Any]] = {}
        for n in (network("bridge", BRIDGE_ID, "bridge", "172.17.0.0/16", "172.17.0.1",
                          Options={"com.docker.network.bridge.default_bridge": "true"}),
                  network("host", HOST_ID, "host"), network("none", NONE_ID, "null")):
            self.networks[n["Id"]] = n
        self.events: list[dict[str, Any]] = [
            {"Type": "network", "Action": "create",
             "Actor": {"ID": BRIDGE_ID, "Attributes": {"type": "bridge", "name": "bridge"}},
             "scope": "local", "time": 1714557600, "timeNano": 1714557600123456789},
        ]
        super().__init__(path, _Handler)

    def find(self, ref: str) -> dict[str, Any] | None:
        for n in self.networks.values():
            if ref in (n["Id"], n["Name"]) or (len(ref) >= 3 and n["Id"].startswith(ref)):
                return n
        return None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FakeEngine

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def address_string(self) -> str:
        return "unix"

    def reply(self, status: int, body: Any = None, headers: dict[str, str] | None = None
              ) -> None:
        data = b"" if body is None else json.dumps(body).encode() + b"\n"
        self.send_response(status)
        self.send_header("Api-Version", self.server.api_version)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        if status != 204:
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def error(self, status: int, message: str) -> None:
        self.reply(status, {"message": message})

    def handle_any(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        self.server.requests.append({"method": self.command, "path": url.path,
                                     "query": query,
                                     "body": json.loads(raw) if raw else None})
        path = unquote(url.path)
        if path == "/_ping":
            self.send_response(200)
            self.send_header("Api-Version", self.server.api_version)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", "2")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(b"OK")
            return
        prefix = f"/v{self.server.api_version}"
        if not path.startswith(prefix + "/"):
            self.error(400, f"client version mismatch: {path}")
            return
        route = path[len(prefix):]
        getattr(self, "route_" + self.command.lower())(route, query, raw)

    do_GET = do_POST = do_DELETE = do_HEAD = handle_any

    def route_head(self, route: str, query: dict[str, str], raw: bytes) -> None:
        self.error(404, "page not found")

    def route_get(self, route: str, query: dict[str, str], raw: bytes) -> None:
        srv = self.server
        if route == "/networks":
            nets = list(srv.networks.values())
            flt = json.loads(query.get("filters", "{}"))
            for name in flt.get("name", {}):
                nets = [n for n in nets if name in n["Name"]]
            for drv in flt.get("driver", {}):
                nets = [n for n in nets if n["Driver"] == drv]
            self.reply(200, nets)
        elif route.startswith("/networks/"):
            n = srv.find(route[len("/networks/"):])
            if n is None:
                self.error(404, f"network {route[len('/networks/'):]} not found")
            else:
                self.reply(200, n)
        elif route == "/version":
            self.reply(200, {
                "Platform": {"Name": "muslin"},
                "Components": [{"Name": "Engine", "Version": "0.1.0", "Details": {
                    "ApiVersion": "1.47", "MinAPIVersion": "1.24", "Os": "linux",
                    "Arch": "amd64", "Experimental": "false", "GitCommit": "abc1234",
                    "BuildTime": "2025-01-22T13:41:48.000000000+00:00"}}],
                "Version": "0.1.0", "ApiVersion": "1.47", "MinAPIVersion": "1.24",
                "Os": "linux", "Arch": "amd64", "KernelVersion": "6.1.0"})
        elif route == "/info":
            self.reply(200, {"Containers": 2, "ContainersRunning": 1, "ContainersPaused": 0,
                             "ContainersStopped": 1, "Images": 0, "ServerVersion": "0.1.0",
                             "Plugins": {"Volume": [], "Network": ["bridge", "host", "null"],
                                         "Log": []},
                             "Swarm": {"LocalNodeState": "inactive"},
                             "KernelVersion": "6.1.0", "OperatingSystem": "Debian GNU/Linux 12",
                             "OSType": "linux", "Architecture": "x86_64", "NCPU": 2,
                             "MemTotal": 2087428096, "Name": "host1", "ID": "ABCD",
                             "DockerRootDir": "/var/lib/muslin", "Debug": False,
                             "ExperimentalBuild": False, "LiveRestoreEnabled": False,
                             "Warnings": ["WARNING: bridge-nf-call-iptables is disabled"]})
        elif route == "/events":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for ev in srv.events:
                data = json.dumps(ev).encode() + b"\n"
                # split each event across two chunks, as a slow daemon might
                for part in (data[:10], data[10:]):
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                    self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.close_connection = True
        else:
            self.error(404, "page not found")

    def route_post(self, route: str, query: dict[str, str], raw: bytes) -> None:
        srv = self.server
        body = json.loads(raw) if raw else {}
        if route == "/networks/create":
            if any(n["Name"] == body["Name"] for n in srv.networks.values()):
                self.error(409, f"network with name {body['Name']} already exists")
                return
            ident = f"{len(srv.networks):064x}"
            cfg = body.get("IPAM", {}).get("Config") or []
            srv.networks[ident] = network(body["Name"], ident, body.get("Driver", "bridge"),
                                          Labels=body.get("Labels") or {},
                                          IPAM={"Driver": "default", "Options": {},
                                                "Config": cfg})
            self.reply(201, {"Id": ident, "Warning": ""})
        elif route == "/networks/prune":
            gone = [n["Name"] for n in srv.networks.values()
                    if n["Name"] not in ("bridge", "host", "none") and not n["Containers"]]
            srv.networks = {k: n for k, n in srv.networks.items() if n["Name"] not in gone}
            self.reply(200, {"NetworksDeleted": gone})
        elif route.startswith("/networks/") and route.endswith(("/connect", "/disconnect")):
            ref = route[len("/networks/"):].rsplit("/", 1)[0]
            if srv.find(ref) is None:
                self.error(404, f"network {ref} not found")
            elif body.get("Container") == "ghost":
                self.error(404, "No such container: ghost")
            else:
                self.reply(200)
        else:
            self.error(404, "page not found")

    def route_delete(self, route: str, query: dict[str, str], raw: bytes) -> None:
        srv = self.server
        ref = route[len("/networks/"):]
        n = srv.find(ref)
        if n is None:
            self.error(404, f"network {ref} not found")
        elif n["Name"] in ("bridge", "host", "none"):
            self.error(403, f"{n['Name']} is a pre-defined network and cannot be removed")
        else:
            del srv.networks[n["Id"]]
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


def muslin(engine: FakeEngine | str, *argv: str, stdin: str = "") -> Run:
    host = engine if isinstance(engine, str) else f"unix://{engine.server_address}"
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdin=io.StringIO(stdin), stdout=out, stderr=err,
                env={"MUSLIN_HOST": host})
    return Run(code, out.getvalue(), err.getvalue())


def test_ls_table_like_docker(engine: FakeEngine) -> None:
    r = muslin(engine, "network", "ls")
    assert r.code == 0, r.err
    assert r.out == (
        "NETWORK ID     NAME      DRIVER    SCOPE\n"
        "7fca4eb8c647   bridge    bridge    local\n"
        "cf03ee007fb4   host      host      local\n"
        "9f904ee27bf5   none      null      local\n"
    )
    # version negotiated once, then versioned paths
    assert [q["path"] for q in engine.requests] == ["/_ping", "/v1.47/networks"]
    assert engine.requests[1]["query"] == {}


def test_ls_quiet_notrunc_filter_format(engine: FakeEngine) -> None:
    r = muslin(engine, "network", "ls", "-q")
    assert r.out.split() == [BRIDGE_ID[:12], HOST_ID[:12], NONE_ID[:12]]
    r = muslin(engine, "network", "ls", "--no-trunc", "-q", "-f", "name=bri")
    assert r.out == BRIDGE_ID + "\n"
    assert json.loads(engine.requests[-1]["query"]["filters"]) == {"name": {"bri": True}}
    r = muslin(engine, "network", "ls", "--format", "{{.Name}}: {{.Driver}} {{.IPv6}}")
    assert r.out == "bridge: bridge false\nhost: host false\nnone: null false\n"
    r = muslin(engine, "network", "ls", "--format", "table {{.Name}}\\t{{upper .Driver}}")
    assert r.out == ("NAME      DRIVER\n"
                     "bridge    BRIDGE\n"
                     "host      HOST\n"
                     "none      NULL\n")
    r = muslin(engine, "network", "ls", "-f", "driver=null", "--format", "{{json .}}")
    assert json.loads(r.out) == {
        "CreatedAt": "2024-05-01 10:00:00.123456789 +0000 UTC", "Driver": "null",
        "ID": NONE_ID[:12], "IPv6": "false", "Internal": "false", "Labels": "",
        "Name": "none", "Scope": "local"}
    assert r.out.startswith('{"CreatedAt":')  # keys sorted, compact, like docker


def test_ls_bad_template(engine: FakeEngine) -> None:
    r = muslin(engine, "network", "ls", "--format", "{{.Nope}}")
    assert r.code == 1
    assert r.err == ("template parsing error: template: :1:2: executing \"\" at <.Nope>: "
                     "can't evaluate field Nope in type *network.networkContext\n")


def test_inspect_pretty_json_and_missing(engine: FakeEngine) -> None:
    r = muslin(engine, "network", "inspect", "bridge")
    assert r.code == 0
    assert r.out.startswith('[\n    {\n        "Name": "bridge",\n        "Id": "')
    assert json.loads(r.out)[0]["Id"] == BRIDGE_ID
    assert '"Containers": {},' in r.out  # empty objects stay compact, as json.Indent does
    r = muslin(engine, "network", "inspect", "host", "nosuch")
    assert r.code == 1
    assert [n["Name"] for n in json.loads(r.out)] == ["host"]
    assert r.err == "Error: No such network: nosuch\n"
    r = muslin(engine, "network", "inspect", "nosuch")
    assert (r.code, r.out, r.err) == (1, "[]\n", "Error: No such network: nosuch\n")


def test_inspect_format(engine: FakeEngine) -> None:
    r = muslin(engine, "network", "inspect", "-f", "{{.IPAM.Config}}", "bridge")
    assert r.out == "[{172.17.0.0/16  172.17.0.1 map[]}]\n"  # the typed struct, like docker
    r = muslin(engine, "network", "inspect", "--format",
               "{{range .IPAM.Config}}{{.Subnet}}{{end}} {{.Id}} {{json .Options}}", "bridge")
    assert r.out == (f'172.17.0.0/16 {BRIDGE_ID} '
                     '{"com.docker.network.bridge.default_bridge":"true"}\n')
    r = muslin(engine, "network", "inspect", "-f", "{{.Created}}", "bridge", "host")
    assert r.out == "2024-05-01 10:00:00.123456789 +0000 UTC\n" * 2
    r = muslin(engine, "network", "inspect", "-f", "json", "none")
    assert r.out.startswith('[{"Name":"none",') and r.out.endswith("}]\n")
    r = muslin(engine, "network", "inspect", "-f", "{{.Nope}}", "none")
    assert r.code == 1 and "map has no entry for key \"Nope\"" in r.err
    r = muslin(engine, "network", "inspect", "-f", "{{.Name", "none")
    assert r.code == 64 and r.err.startswith("template parsing error: template: :1:")


def test_create_sends_docker_body(engine: FakeEngine) -> None:
    r = muslin(engine, "network", "create", "-d", "bridge", "--subnet", "10.1.0.0/16",
               "--subnet=fd00::/64", "--gateway", "fd00::1", "--ip-range", "10.1.1.0/24",
               "--gateway=10.1.0.1", "--aux-address", "router=10.1.0.2", "--label",
               "env=test", "--label", "solo", "-o", "com.docker.network.bridge.name=br9",
               "--ipv6", "--internal", "localnet")
    assert r.code == 0, r.err
    ident = r.out.strip()
    assert len(ident) == 64
    body = engine.requests[-1]["body"]
    assert engine.requests[-1]["path"] == "/v1.47/networks/create"
    assert body == {
        "Name": "localnet", "Driver": "bridge", "Scope": "", "EnableIPv6": True,
        "IPAM": {"Driver": "default", "Options": {}, "Config": [
            {"Subnet": "10.1.0.0/16", "IPRange": "10.1.1.0/24", "Gateway": "10.1.0.1",
             "AuxiliaryAddresses": {"router": "10.1.0.2"}},
            {"Subnet": "fd00::/64", "Gateway": "fd00::1"}]},
        "Internal": True, "Attachable": False, "Ingress": False, "ConfigOnly": False,
        "ConfigFrom": None, "Options": {"com.docker.network.bridge.name": "br9"},
        "Labels": {"env": "test", "solo": ""},
    }
    r = muslin(engine, "network", "ls", "--format", "{{.Name}} {{.Labels}} {{.Label \"env\"}}",
               "-f", "name=localnet")
    assert r.out == "localnet env=test,solo= test\n"
    # a second create of the same name: the daemon's error, as docker prints it
    r = muslin(engine, "network", "create", "localnet")
    assert (r.code, r.out) == (1, "")
    assert r.err == "Error response from daemon: network with name localnet already exists\n"


def test_create_ipam_errors_are_local(engine: FakeEngine) -> None:
    r = muslin(engine, "network", "create", "--gateway", "10.0.0.1", "x")
    assert (r.code, r.err) == (1, "every ip-range or gateway must have a corresponding subnet\n")
    r = muslin(engine, "network", "create", "--subnet", "10.0.0.0/24", "--gateway",
               "10.9.0.1", "x")
    assert (r.code, r.err) == (1, "no matching subnet for gateway 10.9.0.1\n")
    assert all(q["path"] != "/v1.47/networks/create" for q in engine.requests)


def test_rm_prints_names_and_errors(engine: FakeEngine) -> None:
    muslin(engine, "network", "create", "a1")
    muslin(engine, "network", "create", "a2")
    r = muslin(engine, "network", "rm", "a1", "nosuch", "bridge", "a2")
    assert r.code == 1
    assert r.out == "a1\na2\n"
    assert r.err == ("Error response from daemon: network nosuch not found\n"
                     "Error response from daemon: bridge is a pre-defined network and "
                     "cannot be removed\n")
    r = muslin(engine, "network", "rm", "-f", "nosuch")
    assert (r.code, r.out, r.err) == (0, "", "")


def test_connect_disconnect(engine: FakeEngine) -> None:
    r = muslin(engine, "network", "connect", "--alias", "web,www", "--ip", "172.17.0.9",
               "bridge", "c1")
    assert (r.code, r.out, r.err) == (0, "", "")
    assert engine.requests[-1]["path"] == "/v1.47/networks/bridge/connect"
    assert engine.requests[-1]["body"] == {
        "Container": "c1",
        "EndpointConfig": {"IPAMConfig": {"IPv4Address": "172.17.0.9"},
                           "Aliases": ["web", "www"]}}
    r = muslin(engine, "network", "disconnect", "-f", "bridge", "c1")
    assert r.code == 0
    assert engine.requests[-1]["body"] == {"Container": "c1", "Force": True}
    r = muslin(engine, "network", "connect", "bridge", "ghost")
    assert (r.code, r.err) == (1, "Error response from daemon: No such container: ghost\n")


def test_prune_prompt(engine: FakeEngine) -> None:
    muslin(engine, "network", "create", "old")
    r = muslin(engine, "network", "prune", stdin="n\n")
    assert r.code == 0
    assert r.out == ("WARNING! This will remove all custom networks not used by at least one "
                     "container.\nAre you sure you want to continue? [y/N] ")
    assert all(q["path"] != "/v1.47/networks/prune" for q in engine.requests)
    r = muslin(engine, "network", "prune", stdin="y\n")
    assert r.out.endswith("[y/N] Deleted Networks:\nold\n\n")
    r = muslin(engine, "network", "prune", "-f", "--filter", "until=24h")
    assert (r.code, r.out) == (0, "")
    assert json.loads(engine.requests[-1]["query"]["filters"]) == {"until": {"24h": True}}


def test_version_and_info(engine: FakeEngine) -> None:
    r = muslin(engine, "version")
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert lines[0] == "Client:"
    assert lines[2] == " API version:       1.47"
    assert "Server: muslin" in lines
    assert "  API version:      1.47 (minimum version 1.24)" in lines
    assert "  Built:            Wed Jan 22 13:41:48 2025" in lines
    r = muslin(engine, "version", "--format", "{{.Server.Version}} {{.Client.APIVersion}}")
    assert r.out == "0.1.0 1.47\n"
    engine.api_version = "1.44"
    r = muslin(engine, "version", "-f", "{{.Client.APIVersion}}")
    assert r.out == "1.44\n"
    r = muslin(engine, "info")
    assert r.code == 0
    assert "\nServer:\n Containers: 2\n  Running: 1\n" in r.out
    assert " Total Memory: 1.944GiB\n" in r.out
    assert "  Network: bridge host null\n" in r.out
    assert r.err == "WARNING: bridge-nf-call-iptables is disabled\n"
    r = muslin(engine, "info", "--format", "{{.Name}} {{.NCPU}}")
    assert r.out == "host1 2\n"


def test_events_stream(engine: FakeEngine) -> None:
    r = muslin(engine, "system", "events", "--since", "10m", "--filter", "type=network")
    assert r.code == 0, r.err
    line = r.out.rstrip("\n")
    assert line.endswith(f" network create {BRIDGE_ID} (name=bridge, type=bridge)")
    assert ".123456789" in line.split(" ")[0]
    q = engine.requests[-1]["query"]
    assert json.loads(q["filters"]) == {"type": {"network": True}}
    assert q["since"].isdigit()
    r = muslin(engine, "events", "--format", "{{.Type}}/{{.Action}}/{{.Actor.Attributes.name}}")
    assert r.out == "network/create/bridge\n"


def test_daemon_not_running(tmp_path: Path) -> None:
    host = f"unix://{tmp_path}/absent.sock"
    r = muslin(host, "network", "ls")
    assert (r.code, r.out) == (1, "")
    assert r.err == f"Cannot connect to the muslin daemon at {host}. Is muslind running?\n"
    # a socket file nobody listens on: connection refused, same message
    import socket

    path = tmp_path / "dead.sock"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(path))
    s.close()
    r = muslin(f"unix://{path}", "network", "inspect", "x")
    assert r.err == (f"Cannot connect to the muslin daemon at unix://{path}. "
                     "Is muslind running?\n")


def test_default_socket_and_subprocess(tmp_path: Path) -> None:
    """The real entry point, as a process: default host, one line, exit 1."""
    env = {k: v for k, v in os.environ.items() if k not in ("MUSLIN_HOST", "DOCKER_HOST")}
    if os.path.exists("/run/muslin/muslin.sock"):
        pytest.skip("a muslind is running on this machine")
    p = subprocess.run([sys.executable, "-m", "muslin.cli", "network", "ls"], env=env,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1
    assert p.stdout == ""
    assert p.stderr == ("Cannot connect to the muslin daemon at "
                        "unix:///run/muslin/muslin.sock. Is muslind running?\n")


def test_usage_errors_and_help(engine: FakeEngine) -> None:
    r = muslin(engine, "network", "ls", "--bogus")
    assert (r.code, r.err) == (125, "unknown flag: --bogus\nSee 'muslin network ls --help'.\n")
    r = muslin(engine, "network", "create")
    assert r.code == 1
    assert r.err == ('"muslin network create" requires exactly 1 argument.\n'
                     "See 'muslin network create --help'.\n\n"
                     "Usage:  muslin network create [OPTIONS] NETWORK\n\nCreate a network\n")
    r = muslin(engine, "bogus")
    assert (r.code, r.err) == (1, "muslin: 'bogus' is not a muslin command.\n"
                                  "See 'muslin --help'\n")
    r = muslin(engine, "network", "--help")
    assert r.code == 0
    assert r.out.startswith("\nUsage:  muslin network COMMAND\n\nManage networks\n\nCommands:\n"
                            "  connect     Connect a container to a network\n")
    assert r.out.endswith("\nRun 'muslin network COMMAND --help' for more information on a "
                          "command.\n")
    r = muslin(engine, "--help")
    assert "Management Commands:\n  container   Manage containers\n" in r.out
    assert "\n  network     Manage networks\n" in r.out
    assert engine.requests == []  # help and usage errors never touch the socket


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_colour_only_on_a_terminal(engine: FakeEngine) -> None:
    host = f"unix://{engine.server_address}"
    for env, coloured in (({}, True), ({"NO_COLOR": "1"}, False), ({"TERM": "dumb"}, False)):
        out = _Tty()
        main(["network", "prune"], stdin=io.StringIO("n\n"), stdout=out, stderr=io.StringIO(),
             env={"MUSLIN_HOST": host, **env})
        assert out.getvalue().startswith("\x1b[1;33mWARNING!\x1b[0m This will") == coloured
    # piped output is plain everywhere
    for argv in (["network", "ls"], ["network", "inspect", "bridge"], ["version"], ["info"]):
        r = muslin(engine, *argv)
        assert "\x1b[" not in r.out + r.err


def test_info_and_version_without_daemon(tmp_path: Path) -> None:
    host = f"unix://{tmp_path}/absent.sock"
    line = f"Cannot connect to the muslin daemon at {host}. Is muslind running?\n"
    r = muslin(host, "info")
    assert (r.code, r.err) == (1, line)
    assert r.out.startswith("Client:\n Version:")
    r = muslin(host, "version")
    assert (r.code, r.err) == (1, line)
    assert r.out.startswith("Client:\n") and "Server" not in r.out
