"""Engine API handlers for containers, exec and images, in Docker's shapes: create,
start, stop, kill, restart, wait, remove, rename, list, inspect, logs, attach and exec
(hijacked connections with Docker's multiplexed frames), and image import, load, list,
inspect, tag and remove. Blocking work runs on the Engine's worker threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import struct
import threading
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from muslin.api import filters, shapes
from muslin.api.http import Request, Response
from muslin.api.router import Router, body_json
from muslin.errors import Conflict, InvalidParameter, NotFound, Unavailable
from muslin.units import human_duration

if TYPE_CHECKING:
    from muslin.api.engine import Engine
    from muslin.daemon.containers import ContainerManager

Doc = dict[str, Any]
STREAMS = {"stdin": 0, "stdout": 1, "stderr": 2}


def frame(stream: str, data: bytes) -> bytes:
    """Docker's multiplexed stream frame: [type, 0, 0, 0, big-endian length] + data."""
    return struct.pack(">BxxxI", STREAMS[stream], len(data)) + data


def _iso(ts: float | str | None) -> str:
    if not ts:
        return "0001-01-01T00:00:00Z"
    if isinstance(ts, str):
        return ts
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f000Z")


def _status(state: Doc) -> str:
    if state["Running"]:
        started = _parse_time(state.get("StartedAt"))
        text = f"Up {human_duration(time.time() - started)}" if started else "Up"
        return text + (" (Paused)" if state.get("Paused") else "")
    if state["Status"] == "created":
        return "Created"
    word = "Restarting" if state.get("Restarting") else "Exited"
    finished = _parse_time(state.get("FinishedAt"))
    if not finished:
        return f"{word} ({state['ExitCode']})"
    return f"{word} ({state['ExitCode']}) {human_duration(time.time() - finished)} ago"


def _state(state: Any, doc: Doc) -> Doc:
    """The runtime's state, and Docker's "restarting" while a restart policy waits out
    its back-off."""
    out = dict(state)
    if doc.get("restarting") and not out["Running"]:
        out.update(Status="restarting", Restarting=True)
    return out


def _parse_time(value: Any) -> float:
    if not value or str(value).startswith("0001"):
        return 0.0
    text = str(value).replace("Z", "+00:00")
    main, _, rest = text.partition(".")
    if rest:
        frac, _, tz = rest.partition("+")
        text = f"{main}.{frac[:6]}+{tz}" if tz else f"{main}.{frac[:6]}"
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return 0.0


def _endpoint_settings(ep: Any, net: Any, cfg: Doc) -> Doc:
    info = ep.info()
    gw4 = (info.get("join") or {}).get("gateway4") or ""
    gw6 = (info.get("join") or {}).get("gateway6") or ""
    v4, v6 = info.get("ipv4") or "", info.get("ipv6") or ""
    ipam = cfg.get("IPAMConfig")
    return {
        "IPAMConfig": ipam if ipam else None, "Links": cfg.get("Links"),
        "Aliases": info.get("aliases") or None, "MacAddress": info.get("mac", ""),
        "DriverOpts": cfg.get("DriverOpts"), "NetworkID": net.id, "EndpointID": ep.id,
        "Gateway": gw4, "IPAddress": v4.split("/")[0] if v4 else "",
        "IPPrefixLen": int(v4.split("/")[1]) if v4 else 0, "IPv6Gateway": gw6,
        "GlobalIPv6Address": v6.split("/")[0] if v6 else "",
        "GlobalIPv6PrefixLen": int(v6.split("/")[1]) if v6 else 0,
        "DNSNames": [info["name"], *(info.get("aliases") or [])] if net.name != "bridge"
        else None,
    }


def _unjoined_settings(mgr: ContainerManager, name: str, cfg: Doc) -> Doc:
    """A configured network the container has no endpoint on (it does not run)."""
    try:
        net_id = mgr.ctl.network(name).id
    except NotFound:
        net_id = ""
    return {
        "IPAMConfig": cfg.get("IPAMConfig") or None, "Links": cfg.get("Links"),
        "Aliases": cfg.get("Aliases") or None, "MacAddress": cfg.get("MacAddress") or "",
        "DriverOpts": cfg.get("DriverOpts"), "NetworkID": net_id, "EndpointID": "",
        "Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "",
        "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "DNSNames": None,
    }


def inspect_doc(mgr: ContainerManager, doc: Doc) -> Doc:
    info = mgr.runtime.get(doc["id"])
    state = _state(info.state, doc)
    cfg = doc["config"]
    spec = info.spec
    networks = {}
    for ep, net in mgr.endpoints_of(doc):
        networks[net.name] = _endpoint_settings(ep, net, doc["networks"].get(net.name) or {})
    for name, cfg in mgr.wanted_networks(doc).items():  # not joined (yet): as dockerd
        if name not in networks:
            networks[name] = _unjoined_settings(mgr, name, cfg)
    primary = networks.get("bridge") or {}
    sandbox = None
    if doc.get("sandbox_id"):
        with contextlib.suppress(NotFound):
            sandbox = mgr.ctl.sandbox(doc["sandbox_id"])
    argv = list(spec.entrypoint or []) + list(spec.cmd or [])
    return {
        "Id": doc["id"], "Created": _iso(doc["created"]),
        "Path": argv[0] if argv else "", "Args": argv[1:], "State": state,
        "Image": doc["image_id"], "ResolvConfPath": info.resolv_conf_path,
        "HostnamePath": info.hostname_path, "HostsPath": info.hosts_path,
        "LogPath": mgr.logs.log_path(doc) if mgr.logs is not None else info.log_path,
        "Name": "/" + doc["name"],
        "RestartCount": doc.get("restart_count", 0), "Driver": "overlay",
        "Platform": "linux", "MountLabel": "", "ProcessLabel": "", "AppArmorProfile": "",
        "ExecIDs": None,
        "HostConfig": {"NetworkMode": doc["network_mode"] if doc["network_mode"] != "bridge"
                       or not doc["host_config"].get("NetworkMode") else "bridge",
                       **{k: v for k, v in doc["host_config"].items() if k != "NetworkMode"},
                       "PortBindings": doc["host_config"].get("PortBindings") or {},
                       "AutoRemove": bool(doc.get("auto_remove"))},
        "GraphDriver": {"Name": "overlay", "Data": None}, "Mounts": [],
        "Config": {
            "Hostname": cfg.get("Hostname") or doc["id"][:12],
            "Domainname": cfg.get("Domainname") or "", "User": cfg.get("User") or "",
            "AttachStdin": bool(cfg.get("AttachStdin")),
            "AttachStdout": bool(cfg.get("AttachStdout")),
            "AttachStderr": bool(cfg.get("AttachStderr")), "Tty": bool(cfg.get("Tty")),
            "OpenStdin": bool(cfg.get("OpenStdin")), "StdinOnce": bool(cfg.get("StdinOnce")),
            "Env": cfg.get("Env") or None, "Cmd": cfg.get("Cmd"), "Image": doc["image"],
            "Volumes": None, "WorkingDir": cfg.get("WorkingDir") or "",
            "Entrypoint": cfg.get("Entrypoint"), "OnBuild": None,
            "Labels": cfg.get("Labels") or {}, "ExposedPorts": cfg.get("ExposedPorts"),
        },
        "NetworkSettings": {
            "Bridge": "", "SandboxID": sandbox.id if sandbox else "",
            "SandboxKey": sandbox.netns_path if sandbox else "", "HairpinMode": False,
            "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0,
            "Ports": mgr.published_view(doc), "SecondaryIPAddresses": None,
            "SecondaryIPv6Addresses": None, "EndpointID": primary.get("EndpointID", ""),
            "Gateway": primary.get("Gateway", ""),
            "GlobalIPv6Address": primary.get("GlobalIPv6Address", ""),
            "GlobalIPv6PrefixLen": primary.get("GlobalIPv6PrefixLen", 0),
            "IPAddress": primary.get("IPAddress", ""),
            "IPPrefixLen": primary.get("IPPrefixLen", 0),
            "IPv6Gateway": primary.get("IPv6Gateway", ""),
            "MacAddress": primary.get("MacAddress", ""), "Networks": networks,
        },
    }


def list_doc(mgr: ContainerManager, doc: Doc) -> Doc:
    info = mgr.runtime.get(doc["id"])
    spec = info.spec
    argv = list(spec.entrypoint or []) + list(spec.cmd or [])
    ports: list[Doc] = [{"IP": b.host_ip or "0.0.0.0", "PrivatePort": b.container_port,
                         "PublicPort": b.host_port, "Type": b.proto}
                        for b in mgr.ports_of(doc)]
    for key, entries in mgr.published_view(doc).items():  # exposed, not published
        if entries is None:
            port, _, proto = key.partition("/")
            ports.append({"PrivatePort": int(port), "Type": proto or "tcp"})
    networks = {net.name: _endpoint_settings(ep, net, doc["networks"].get(net.name) or {})
                for ep, net in mgr.endpoints_of(doc)}
    return {
        "Id": doc["id"], "Names": ["/" + doc["name"]], "Image": doc["image"],
        "ImageID": doc["image_id"], "Command": _command(argv), "Created": int(doc["created"]),
        "Ports": ports, "Labels": doc["config"].get("Labels") or {},
        "State": _state(info.state, doc)["Status"],
        "Status": _status(_state(info.state, doc)),
        "HostConfig": {"NetworkMode": doc["network_mode"]},
        "NetworkSettings": {"Networks": networks}, "Mounts": [],
    }


def _command(argv: list[str]) -> str:
    """dockerd's Command of a listed container: arguments with a space in quotes."""
    return " ".join([argv[0], *(f"'{a}'" if " " in a else a for a in argv[1:])]) \
        if argv else ""


def _matches(mgr: ContainerManager, doc: Doc, f: filters.Filters) -> bool:
    state = _state(mgr.runtime.state(doc["id"]), doc)
    if "status" in f and state["Status"] not in f["status"]:
        return False
    if "name" in f and not filters.regex_any(f["name"], "/" + doc["name"]):
        return False
    if "id" in f and not any(doc["id"].startswith(v) for v in f["id"]):
        return False
    if "label" in f and not filters.labels_match(f["label"], doc["config"].get("Labels") or {}):
        return False
    if "network" in f:
        names = {net.name for _, net in mgr.endpoints_of(doc)} | {net.id for _, net in
                                                                  mgr.endpoints_of(doc)}
        if not names & set(f["network"]):
            return False
    if "exited" in f and (state["Status"] != "exited"
                          or str(state["ExitCode"]) not in f["exited"]):
        return False
    return not ("ancestor" in f and not any(_is_ancestor(mgr, doc, v) for v in f["ancestor"]))


def _is_ancestor(mgr: ContainerManager, doc: Doc, ref: str) -> bool:
    """Docker's ancestor filter: the image by name, id or id prefix."""
    try:
        return bool(mgr.runtime.images.get(ref).id == doc["image_id"])
    except NotFound:
        return False


def _created_bounds(mgr: ContainerManager, f: filters.Filters) -> tuple[float, float]:
    """The before/since filters as bounds on the creation time (exclusive)."""
    low, high = float("-inf"), float("inf")
    for ref in f.get("since", []):
        low = max(low, float(mgr.resolve(ref)["created"]))
    for ref in f.get("before", []):
        high = min(high, float(mgr.resolve(ref)["created"]))
    return low, high


class _Pump:
    """Moves a blocking source's chunks onto the event loop through a queue."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.queue: asyncio.Queue[tuple[str, bytes] | None] = asyncio.Queue()

    def run(self, produce: Callable[[Callable[[str, bytes], None]], None]) -> None:
        def target() -> None:
            def put(stream: str, data: bytes) -> None:
                self.loop.call_soon_threadsafe(self.queue.put_nowait, (stream, data))

            try:
                produce(put)
            finally:
                self.loop.call_soon_threadsafe(self.queue.put_nowait, None)

        threading.Thread(target=target, daemon=True, name="muslin-pump").start()


def register(router: Router, engine: Engine, mgr: ContainerManager) -> None:
    execs: dict[str, Doc] = {}

    def publish(action: str, cid: str, attrs: dict[str, str]) -> None:
        engine.events.publish_threadsafe("container", action, cid, attrs)

    mgr._on_event = publish

    async def create(req: Request, version: str) -> Response:
        body = shapes.body_object(body_json(req))
        cid, warnings = await engine.call(mgr.create, req.arg("name"), body)
        return Response.json({"Id": cid, "Warnings": warnings}, 201)

    async def start(req: Request, version: str, id: str) -> Response:
        doc = await engine.call(mgr.resolve, id)
        if (await engine.call(mgr.runtime.state, doc["id"]))["Running"]:
            return Response.empty(304)
        await engine.call(mgr.start, id)
        return Response.empty(204)

    async def stop(req: Request, version: str, id: str) -> Response:
        t = req.arg("t") or req.arg("timeout")
        stopped = await engine.call(mgr.stop, id, int(t) if t else None, req.arg("signal"))
        return Response.empty(204 if stopped else 304)

    async def kill(req: Request, version: str, id: str) -> Response:
        doc = await engine.call(mgr.resolve, id)
        if not (await engine.call(mgr.runtime.state, doc["id"]))["Running"]:
            raise Conflict(f"Cannot kill container: {id}: container {doc['id']} is not "
                           "running")
        await engine.call(mgr.kill, id, req.arg("signal") or "SIGKILL")
        return Response.empty(204)

    async def restart(req: Request, version: str, id: str) -> Response:
        t = req.arg("t")
        await engine.call(mgr.restart, id, int(t) if t else None)
        return Response.empty(204)

    async def pause(req: Request, version: str, id: str) -> Response:
        doc = await engine.call(mgr.resolve, id)
        await engine.call(mgr.runtime.pause, doc["id"])
        return Response.empty(204)

    async def unpause(req: Request, version: str, id: str) -> Response:
        doc = await engine.call(mgr.resolve, id)
        await engine.call(mgr.runtime.unpause, doc["id"])
        return Response.empty(204)

    async def wait(req: Request, version: str, id: str) -> Response:
        doc = await engine.call(mgr.resolve, id)
        condition = req.arg("condition") or "not-running"
        if condition not in ("not-running", "next-exit", "removed"):
            raise InvalidParameter(f"invalid condition: {condition!r}: accepted are "
                                   "not-running, next-exit and removed")

        async def body() -> AsyncIterator[bytes]:
            # As dockerd: the headers go out at once (clients wait for them before they
            # start the container), the status when the condition holds.
            code = await _in_thread(mgr.runtime.wait, doc["id"], condition)
            yield (json.dumps({"StatusCode": code, "Error": None}) + "\n").encode()

        return Response(200, headers=[("Content-Type", "application/json")], stream=body())

    async def remove(req: Request, version: str, id: str) -> Response:
        await engine.call(lambda: mgr.remove(id, force=req.flag("force")))
        return Response.empty(204)

    async def rename(req: Request, version: str, id: str) -> Response:
        name = req.arg("name")
        if not name:
            raise InvalidParameter("invalid value for name: a new name is required")
        await engine.call(mgr.rename, id, name)
        return Response.empty(204)

    async def inspect(req: Request, version: str, id: str) -> Response:
        doc = await engine.call(mgr.resolve, id)
        return Response.json(await engine.call(inspect_doc, mgr, doc))

    async def list_containers(req: Request, version: str) -> Response:
        f = filters.parse(req.arg("filters"), ("status", "name", "id", "label", "network",
                                               "ancestor", "exited", "before", "since"))
        show_all = req.flag("all")

        def build() -> list[Doc]:
            out = []
            bounds = _created_bounds(mgr, f)
            for doc in sorted(mgr.records(), key=lambda d: -d["created"]):
                state = _state(mgr.runtime.state(doc["id"]), doc)
                if not show_all and not (state["Running"] or state["Restarting"]) \
                        and "status" not in f and "exited" not in f:
                    continue
                if not bounds[0] < doc["created"] < bounds[1]:
                    continue
                if _matches(mgr, doc, f):
                    out.append(list_doc(mgr, doc))
            return out

        return Response.json(await engine.call(build))

    async def logs(req: Request, version: str, id: str) -> Response:
        doc = await engine.call(mgr.resolve, id)
        tty = bool(doc["config"].get("Tty"))
        tail_arg = req.arg("tail")
        tail = None if not tail_arg or tail_arg == "all" else int(tail_arg)
        since, until = req.arg("since") or "", req.arg("until") or ""
        follow = req.flag("follow")
        if mgr.logs is not None:  # the daemon's log drivers: since/until exact to the ns
            reader = mgr.logs.read
        else:
            def reader(d: Doc, since: str, until: str, **kw: Any) -> Any:
                return mgr.runtime.logs(d["id"], since=float(since or 0) or None,
                                        until=float(until or 0) or None, **kw)
        entries = await engine.call(lambda: reader(
            doc, since=since, until=until, tail=tail, timestamps=req.flag("timestamps"),
            follow=follow, stdout=req.flag("stdout"), stderr=req.flag("stderr")))
        pump = _Pump(asyncio.get_running_loop())
        def produce(put: Callable[[str, bytes], None]) -> None:
            for e in entries:
                put(e.stream, e.data)

        pump.run(produce)

        async def stream() -> AsyncIterator[bytes]:
            while (item := await pump.queue.get()) is not None:
                yield item[1] if tty else frame(*item)

        ctype = "application/vnd.docker.raw-stream" if tty else \
            "application/vnd.docker.multiplexed-stream"
        return Response(200, headers=[("Content-Type", ctype)], stream=stream())

    async def attach(req: Request, version: str, id: str) -> Response:
        doc = await engine.call(mgr.resolve, id)
        tty = bool(doc["config"].get("Tty"))
        want_stdin = req.flag("stdin")
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[Any] = loop.create_future()
        await engine.call(mgr.wait_attach, id,
                          lambda att: loop.call_soon_threadsafe(ready.set_result, att))

        async def hijack(leftover: bytes, reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter) -> None:
            att = await ready
            pump = _Pump(loop)

            def produce(put: Callable[[str, bytes], None]) -> None:
                while (item := att.recv()) is not None:
                    put(*item)

            pump.run(produce)
            feeder = asyncio.create_task(_feed_stdin(leftover, reader, att.send,
                                                     att.close_stdin, engine)) \
                if want_stdin else None
            try:
                while (item := await pump.queue.get()) is not None:
                    writer.write(item[1] if tty else frame(*item))
                    await writer.drain()
            finally:
                if feeder is not None:
                    feeder.cancel()
                att.close()
                writer.close()

        ctype = "application/vnd.docker.raw-stream" if tty else \
            "application/vnd.docker.multiplexed-stream"
        return Response(200, headers=[("Content-Type", ctype)], hijack=hijack)

    async def exec_create(req: Request, version: str, id: str) -> Response:
        body = shapes.body_object(body_json(req))
        doc = await engine.call(mgr.resolve, id)
        state = await engine.call(mgr.runtime.state, doc["id"])
        if not state["Running"]:
            raise Conflict(f"container {doc['id']} is not running")
        if state["Paused"]:
            raise Conflict(f"Container {doc['id']} is paused, unpause the container before "
                           "exec")
        cmd = shapes.get(body, "Cmd", list, [])
        if not cmd:
            raise InvalidParameter("No exec command specified")
        exec_id = secrets.token_hex(32)
        execs[exec_id] = {"ID": exec_id, "ContainerID": doc["id"], "Running": False,
                          "ExitCode": None, "Pid": 0, "OpenStdin": bool(body.get("AttachStdin")),
                          "OpenStdout": True, "OpenStderr": True, "CanRemove": False,
                          "DetachKeys": "", "ProcessConfig": {
                              "tty": bool(body.get("Tty")), "entrypoint": str(cmd[0]),
                              "arguments": [str(a) for a in cmd[1:]], "privileged": False,
                              "user": body.get("User") or ""},
                          "_body": body}
        return Response.json({"Id": exec_id}, 201)

    async def exec_inspect(req: Request, version: str, id: str) -> Response:
        e = execs.get(id)
        if e is None:
            raise NotFound(f"No such exec instance: {id}")
        return Response.json({k: v for k, v in e.items() if not k.startswith("_")})

    async def exec_start(req: Request, version: str, id: str) -> Response:
        e = execs.get(id)
        if e is None:
            raise NotFound(f"No such exec instance: {id}")
        if e["Running"] or e["ExitCode"] is not None:
            raise Conflict(f"Exec {id} has already been started")
        body = shapes.body_object(body_json(req, required=False))
        cfg = e["_body"]
        tty = bool(body.get("Tty", cfg.get("Tty")))
        argv = [str(a) for a in cfg["Cmd"]]
        size = body.get("ConsoleSize") or cfg.get("ConsoleSize")
        console = (int(size[0]), int(size[1])) if isinstance(size, list) and len(size) == 2 \
            and all(isinstance(x, int) and x > 0 for x in size) else None
        proc = await engine.call(lambda: mgr.runtime.exec(
            e["ContainerID"], argv, tty=tty, env=[str(x) for x in cfg.get("Env") or []],
            workdir=str(cfg.get("WorkingDir") or ""), user=str(cfg.get("User") or ""),
            stdin=bool(cfg.get("AttachStdin")), console_size=console))
        e.update(Running=True, Pid=proc.pid, _proc=proc)

        async def finish() -> None:
            e["ExitCode"] = await _in_thread(proc.wait)
            e["Running"] = False

        if body.get("Detach"):
            asyncio.get_running_loop().create_task(finish())
            return Response.empty(200)
        loop = asyncio.get_running_loop()

        async def hijack(leftover: bytes, reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter) -> None:
            pump = _Pump(loop)
            sources = [("stdout", proc.stdout)] + ([("stderr", proc.stderr)]
                                                   if proc.stderr is not None else [])
            for stream_name, src in sources:
                def produce(put: Callable[[str, bytes], None], src: Any = src,
                            name: str = stream_name) -> None:
                    while True:
                        try:
                            chunk = src.read1(65536) if hasattr(src, "read1") else \
                                src.read(65536)
                        except OSError:
                            break
                        if not chunk:
                            break
                        put(name, chunk)
                pump.run(produce)
            feeder = None
            if cfg.get("AttachStdin") and proc.stdin is not None:
                stdin = proc.stdin

                def send(data: bytes) -> None:
                    stdin.write(data)
                    stdin.flush()

                feeder = asyncio.create_task(_feed_stdin(leftover, reader, send, stdin.close,
                                                         engine))
            open_sources = len(sources)
            try:
                while open_sources:
                    item = await pump.queue.get()
                    if item is None:
                        open_sources -= 1
                        continue
                    writer.write(item[1] if tty else frame(*item))
                    await writer.drain()
                await finish()
            finally:
                if feeder is not None:
                    feeder.cancel()
                writer.close()

        ctype = "application/vnd.docker.raw-stream" if tty else \
            "application/vnd.docker.multiplexed-stream"
        return Response(200, headers=[("Content-Type", ctype)], hijack=hijack)

    async def resize(req: Request, version: str, id: str) -> Response:
        doc = await engine.call(mgr.resolve, id)
        h, w = int(req.arg("h") or 0), int(req.arg("w") or 0)
        if h and w:
            with contextlib.suppress(Exception):
                await engine.call(mgr.runtime.resize, doc["id"], h, w)
        return Response.empty(200)

    async def exec_resize(req: Request, version: str, id: str) -> Response:
        e = execs.get(id)
        if e is None:
            raise NotFound(f"No such exec instance: {id}")
        h, w = int(req.arg("h") or 0), int(req.arg("w") or 0)
        proc = e.get("_proc")
        if h and w and proc is not None and e["Running"]:
            await engine.call(proc.resize, h, w)
        return Response.empty(200)

    # -- images ------------------------------------------------------------------------
    images = mgr.runtime.images

    async def image_create(req: Request, version: str) -> Response:
        src = req.arg("fromSrc")
        if src != "-":
            wanted = req.arg("fromImage") or src or ""
            raise Unavailable(f"pull access denied for {wanted}: no registry is reachable from "
                              "this host; use `image import` or `image load`")
        repo, tag = req.arg("repo") or "", req.arg("tag") or ""
        ref: str | None = f"{repo}:{tag}" if repo and tag else repo or None
        import io

        img = await engine.call(lambda: images.import_tar(io.BytesIO(req.body), ref,
                                                          message=req.arg("message") or ""))
        return Response.json({"status": img.id})

    async def image_load(req: Request, version: str) -> Response:
        import io

        loaded = await engine.call(lambda: images.load(io.BytesIO(req.body)))
        lines = []
        for img in loaded:
            for tag in img.repo_tags or [img.id]:
                label = "Loaded image" if img.repo_tags else "Loaded image ID"
                lines.append({"stream": f"{label}: {tag}\n"})
        return Response(200, b"".join((json.dumps(x) + "\n").encode()
                                      for x in lines), [("Content-Type", "application/json")])

    async def image_list(req: Request, version: str) -> Response:
        def build() -> list[Doc]:
            out = []
            for img in images.list():
                d = images.inspect(img.id)
                out.append({"Id": d["Id"], "ParentId": "", "RepoTags": d["RepoTags"] or [],
                            "RepoDigests": [], "Created": int(_parse_time(d["Created"])),
                            "Size": d["Size"], "SharedSize": -1, "VirtualSize": d["Size"],
                            "Labels": (d.get("Config") or {}).get("Labels") or {},
                            "Containers": -1})
            return out

        return Response.json(await engine.call(build))

    async def image_inspect(req: Request, version: str, name: str) -> Response:
        return Response.json(await engine.call(images.inspect, name))

    async def image_tag(req: Request, version: str, name: str) -> Response:
        repo, tag = req.arg("repo") or "", req.arg("tag") or "latest"
        await engine.call(images.tag, name, f"{repo}:{tag}")
        return Response.empty(201)

    async def image_remove(req: Request, version: str, name: str) -> Response:
        result = await engine.call(lambda: images.remove(name, force=req.flag("force")))
        return Response.json(result)

    router.add("POST", "/containers/create", create)
    router.add("GET", "/containers/json", list_containers)
    router.add("GET", "/containers/{id}/json", inspect)
    router.add("POST", "/containers/{id}/start", start)
    router.add("POST", "/containers/{id}/stop", stop)
    router.add("POST", "/containers/{id}/kill", kill)
    router.add("POST", "/containers/{id}/restart", restart)
    router.add("POST", "/containers/{id}/pause", pause)
    router.add("POST", "/containers/{id}/unpause", unpause)
    router.add("POST", "/containers/{id}/wait", wait)
    router.add("POST", "/containers/{id}/rename", rename)
    router.add("DELETE", "/containers/{id}", remove)
    router.add("GET", "/containers/{id}/logs", logs)
    router.add("POST", "/containers/{id}/attach", attach)
    router.add("POST", "/containers/{id}/resize", resize)
    router.add("POST", "/containers/{id}/exec", exec_create)
    router.add("POST", "/exec/{id}/start", exec_start)
    router.add("GET", "/exec/{id}/json", exec_inspect)
    router.add("POST", "/exec/{id}/resize", exec_resize)
    router.add("POST", "/images/create", image_create)
    router.add("POST", "/images/load", image_load)
    router.add("GET", "/images/json", image_list)
    router.add("GET", "/images/{name*}/json", image_inspect)
    router.add("POST", "/images/{name*}/tag", image_tag)
    router.add("DELETE", "/images/{name*}", image_remove)


async def _in_thread(fn: Callable[..., Any], *args: Any) -> Any:
    """Runs a call that may block for as long as a container lives (wait) on a thread of
    its own, so it never holds one of the Engine's bounded workers."""
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[Any] = loop.create_future()

    def settle(result: Any, error: BaseException | None) -> None:
        if fut.done():
            return
        if error is not None:
            fut.set_exception(error)
        else:
            fut.set_result(result)

    def run() -> None:
        try:
            result = fn(*args)
        except BaseException as error:  # handed to the awaiting coroutine
            loop.call_soon_threadsafe(settle, None, error)
            return
        loop.call_soon_threadsafe(settle, result, None)

    threading.Thread(target=run, daemon=True, name="muslin-wait").start()
    return await fut


async def _feed_stdin(leftover: bytes, reader: asyncio.StreamReader,
                      send: Callable[[bytes], None], close: Callable[[], None],
                      engine: Engine) -> None:
    try:
        if leftover:
            await engine.call(send, leftover)
        while data := await reader.read(65536):
            await engine.call(send, data)
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            close()
