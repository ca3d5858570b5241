"""Engine API handlers of the daemon itself: ping, version, info, events, and the
routes the docker CLI and docker-py call on the side, answered as Docker answers
when the feature is off (swarm inactive, no plugins).
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from muslin import __version__
from muslin.api import filters
from muslin.api.http import Request, Response
from muslin.api.router import API_VERSION, MIN_API_VERSION, Router, error

if TYPE_CHECKING:
    from muslin.api.engine import Engine

NOT_A_MANAGER = ('This node is not a swarm manager. Use "docker swarm init" or "docker swarm '
                 'join" to connect this node to swarm and try again.')


def _ping_headers() -> list[tuple[str, str]]:
    return [("API-Version", API_VERSION), ("OSType", "linux"),
            ("Docker-Experimental", "false"), ("Builder-Version", "1"),
            ("Swarm", "inactive"), ("Cache-Control", "no-cache, no-store, must-revalidate"),
            ("Pragma", "no-cache")]


def version_doc() -> dict[str, Any]:
    uname = platform.uname()
    return {
        "Platform": {"Name": "muslin"},
        "Components": [{"Name": "Engine", "Version": __version__, "Details": {
            "ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION, "Os": "linux",
            "Arch": _arch(), "KernelVersion": uname.release}}],
        "Version": __version__,
        "ApiVersion": API_VERSION,
        "MinAPIVersion": MIN_API_VERSION,
        "GitCommit": "",
        "GoVersion": f"python{platform.python_version()}",
        "Os": "linux",
        "Arch": _arch(),
        "KernelVersion": uname.release,
        "BuildTime": "",
    }


def _arch() -> str:
    m = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(m, m)


def _mem_total() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def info_doc(engine: Engine) -> dict[str, Any]:
    d = engine.daemon_info
    nets = engine.ctl.networks()
    return {
        "ID": d.get("id", ""),
        "Containers": 0, "ContainersRunning": 0, "ContainersPaused": 0,
        "ContainersStopped": 0, "Images": 0,
        "Driver": "muslin", "DriverStatus": [],
        "Plugins": {"Volume": [], "Network": sorted({n.driver for n in nets} |
                                                    {"bridge", "host", "macvlan", "null"}),
                    "Authorization": [], "Log": ["json-file"]},
        "MemoryLimit": False, "SwapLimit": False, "CpuCfsPeriod": False,
        "CpuCfsQuota": False, "CPUShares": False, "CPUSet": False, "PidsLimit": False,
        "OomKillDisable": False, "IPv4Forwarding": True, "BridgeNfIptables": True,
        "BridgeNfIp6tables": True, "Debug": d.get("debug", False), "NFd": _nfd(),
        "NGoroutines": 0, "SystemTime": datetime.now().astimezone().isoformat(),
        "LoggingDriver": d.get("log_driver", "json-file"), "CgroupDriver": "cgroupfs",
        "CgroupVersion": "2" if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else "1",
        "NEventsListener": 0, "KernelVersion": platform.release(),
        "OperatingSystem": _os_name(), "OSVersion": "", "OSType": "linux",
        "Architecture": platform.machine(), "IndexServerAddress": "",
        "RegistryConfig": None, "NCPU": os.cpu_count() or 1, "MemTotal": _mem_total(),
        "GenericResources": [], "DockerRootDir": d.get("data_root", ""),
        "HttpProxy": "", "HttpsProxy": "", "NoProxy": "", "Name": platform.node(),
        "Labels": [], "ExperimentalBuild": False, "ServerVersion": __version__,
        "Runtimes": {"runc": {"path": "runc"}}, "DefaultRuntime": "runc",
        "Swarm": {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive",
                  "ControlAvailable": False, "Error": "", "RemoteManagers": None},
        "LiveRestoreEnabled": d.get("live_restore", False), "Isolation": "default",
        "InitBinary": "", "ContainerdCommit": {"ID": ""}, "RuncCommit": {"ID": ""},
        "InitCommit": {"ID": ""}, "SecurityOptions": [], "Warnings": d.get("warnings", []),
    }


def _nfd() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return 0


def _os_name() -> str:
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return "Linux"


def _time_arg(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def _event_matches(e: dict[str, Any], f: filters.Filters) -> bool:
    if "type" in f and e["Type"] not in f["type"]:
        return False
    if "event" in f and e["Action"] not in f["event"]:
        return False
    if "network" in f and e["Type"] == "network":
        actor = e["Actor"]
        return actor["ID"] in f["network"] or actor["Attributes"].get("name") in f["network"]
    return True


def register(router: Router, engine: Engine) -> None:
    async def ping(req: Request, version: str) -> Response:
        return Response(200, b"OK", [("Content-Type", "text/plain; charset=utf-8"),
                                     *_ping_headers()])

    async def get_version(req: Request, version: str) -> Response:
        return Response.json(version_doc())

    async def get_info(req: Request, version: str) -> Response:
        return Response.json(await engine.call(info_doc, engine))

    async def events(req: Request, version: str) -> Response:
        f = filters.parse(req.arg("filters"), ("type", "event", "network", "container",
                                               "scope", "label"))
        since = _time_arg(req.arg("since"))
        until = _time_arg(req.arg("until"))
        queue = engine.events.subscribe()
        past = engine.events.history(int(since * 1e9)) if since is not None else []

        async def stream() -> AsyncIterator[bytes]:
            try:
                for e in past:
                    if until is not None and e["time"] > until:
                        return
                    if _event_matches(e, f):
                        yield (json.dumps(e) + "\n").encode()
                while True:
                    timeout = None if until is None else max(0.0, until - time.time())
                    try:
                        e = await asyncio.wait_for(queue.get(), timeout)
                    except TimeoutError:
                        return
                    if _event_matches(e, f):
                        yield (json.dumps(e) + "\n").encode()
            finally:
                engine.events.unsubscribe(queue)

        return Response(200, headers=[("Content-Type", "application/json")], stream=stream())

    async def swarm(req: Request, version: str) -> Response:
        return error(503, NOT_A_MANAGER)

    async def swarm_leave(req: Request, version: str) -> Response:
        return error(503, "This node is not part of a swarm")

    async def empty_list(req: Request, version: str) -> Response:
        return Response.json([])

    router.add("GET", "/_ping", ping)
    router.add("GET", "/version", get_version)
    router.add("GET", "/info", get_info)
    router.add("GET", "/events", events)
    router.add("GET", "/swarm", swarm)
    router.add("POST", "/swarm/leave", swarm_leave)
    for path in ("/services", "/nodes", "/tasks", "/secrets", "/configs"):
        router.add("GET", path, swarm)
    router.add("GET", "/plugins", empty_list)
