"""Engine API handlers for networks: list, inspect, create, remove, connect,
disconnect and prune, in Docker's shapes and with Docker's errors.

Controller calls run on the daemon's worker threads (`Engine.call`), never on the
event loop. Must not touch the kernel.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from muslin import ipam
from muslin.api import filters, shapes
from muslin.api.http import Request, Response
from muslin.api.router import Router, body_json
from muslin.errors import Forbidden, InvalidParameter, NotFound

if TYPE_CHECKING:
    from muslin.api.engine import Engine
    from muslin.cnm import Controller

Doc = dict[str, Any]

LIST_FILTERS = ("dangling", "driver", "id", "label", "name", "scope", "type")
PRUNE_FILTERS = ("until", "label", "label!")


def _containers(ctl: Controller, net_id: str) -> dict[str, Doc]:
    out: dict[str, Doc] = {}
    for ep in ctl._endpoint_docs(net_id):
        if ep.get("sandbox_id"):
            sb = ctl.store.get("sandbox", ep["sandbox_id"])
            if sb is not None:
                out[sb["key"]] = shapes.endpoint_in_network(ep)
    return out


def _inspect(ctl: Controller, name_or_id: str) -> Doc:
    net = ctl.network(name_or_id)
    return shapes.network(net.info(), _containers(ctl, net.id))


def _list(ctl: Controller, f: filters.Filters) -> list[Doc]:
    out = []
    for net in ctl.networks():
        doc = net.info()
        if "name" in f and not filters.regex_any(f["name"], doc["name"]):
            continue
        if "id" in f and not filters.regex_any(f["id"], doc["id"]):
            continue
        if "driver" in f and doc["driver"] not in f["driver"]:
            continue
        if "label" in f and not filters.labels_match(f["label"], doc["labels"]):
            continue
        if "scope" in f and doc.get("scope", "local") not in f["scope"]:
            continue
        if "type" in f:
            for t in f["type"]:
                if t not in ("custom", "builtin"):
                    raise InvalidParameter(f"invalid filter: 'type'='{t}'")
            kind = "builtin" if doc.get("predefined") else "custom"
            if kind not in f["type"]:
                continue
        if "dangling" in f:
            dangling = not doc.get("predefined") and not ctl._endpoint_docs(doc["id"])
            if dangling != filters.boolean(f["dangling"], "dangling"):
                continue
        out.append(shapes.network(doc))
    return out


def _pool(i: int, cfg: Any) -> ipam.IPAMPool:
    where = f"IPAM.Config[{i}]."
    if not isinstance(cfg, dict):
        raise InvalidParameter(f"invalid value for IPAM.Config[{i}]: expected an object, got "
                               f"{shapes.json_type(cfg)}")
    subnet = shapes.get(cfg, "Subnet", str, "", where=where)
    if not subnet:
        raise InvalidParameter(f"invalid value for {where}Subnet: a subnet in CIDR notation "
                               "is required")
    return ipam.IPAMPool(
        subnet=subnet,
        ip_range=shapes.get(cfg, "IPRange", str, None, where=where) or None,
        gateway=shapes.get(cfg, "Gateway", str, None, where=where) or None,
        aux_addresses=shapes.string_map(cfg, "AuxiliaryAddresses", where=where))


def parse_create(body: Mapping[str, Any]) -> dict[str, Any]:
    """The keyword arguments of Controller.create_network, from Docker's create body."""
    name = shapes.get(body, "Name", str, "")
    scope = shapes.get(body, "Scope", str, "")
    if scope not in ("", "local"):
        raise InvalidParameter(f"invalid value for Scope: {scope!r}: only local networks are "
                               "supported (swarm mode is off)")
    if shapes.get(body, "Ingress", bool, False):
        raise Forbidden("ingress networks can only be created in swarm mode")
    if shapes.get(body, "ConfigOnly", bool, False):
        raise InvalidParameter("invalid value for ConfigOnly: config-only networks are not "
                               "supported yet")
    config_from = shapes.get(body, "ConfigFrom", dict, {})
    if shapes.get(config_from, "Network", str, "", where="ConfigFrom."):
        raise InvalidParameter("invalid value for ConfigFrom: config-only networks are not "
                               "supported yet")
    shapes.get(body, "CheckDuplicate", bool, False)
    ipam_body = shapes.get(body, "IPAM", dict, {})
    configs = shapes.get(ipam_body, "Config", list, [], where="IPAM.")
    return {
        "name": name,
        "driver": shapes.get(body, "Driver", str, "") or "bridge",
        "ipam": [_pool(i, c) for i, c in enumerate(configs)],
        "options": shapes.string_map(body, "Options"),
        "internal": shapes.get(body, "Internal", bool, False),
        "labels": shapes.string_map(body, "Labels"),
        "ipam_driver": shapes.get(ipam_body, "Driver", str, "", where="IPAM.") or "default",
        "ipam_options": shapes.string_map(ipam_body, "Options", where="IPAM."),
        "enable_ipv6": bool(shapes.get(body, "EnableIPv6", bool, False)),
        "attachable": shapes.get(body, "Attachable", bool, False),
    }


def _sandbox_of(ctl: Controller, container: str) -> Any:
    try:
        return ctl.sandbox(container)
    except NotFound:
        for sb in ctl.sandboxes():
            if sb.info().get("name") == container or (len(container) >= 3 and
                                                      sb.id.startswith(container)):
                return sb
    raise NotFound(f"No such container: {container}")


def _connect(ctl: Controller, name_or_id: str, body: Mapping[str, Any]) -> None:
    container = shapes.get(body, "Container", str, "")
    if not container:
        raise InvalidParameter("invalid value for Container: a container name or id is "
                               "required")
    cfg = shapes.get(body, "EndpointConfig", dict, {})
    ipam_cfg = shapes.get(cfg, "IPAMConfig", dict, {}, where="EndpointConfig.")
    where = "EndpointConfig.IPAMConfig."
    ip4 = shapes.get(ipam_cfg, "IPv4Address", str, "", where=where) or None
    ip6 = shapes.get(ipam_cfg, "IPv6Address", str, "", where=where) or None
    aliases = shapes.get(cfg, "Aliases", list, [], where="EndpointConfig.")
    mac = shapes.get(cfg, "MacAddress", str, "", where="EndpointConfig.") or None
    prio = shapes.get(cfg, "GwPriority", int, 0, where="EndpointConfig.")
    net = ctl.network(name_or_id)
    sb = _sandbox_of(ctl, container)
    ep_name = sb.info().get("name") or sb.key
    for ep in sb.endpoints():
        if ep.network.id == net.id:
            raise Forbidden(f"endpoint with name {ep_name} already exists in network "
                            f"{net.name}")
    ep = net.create_endpoint(ep_name, ip4, [str(a) for a in aliases], ipv6_address=ip6,
                             mac_address=mac)
    try:
        ep.join(sb, gw_priority=prio)
    except BaseException:
        ep.delete()
        raise


def _disconnect(ctl: Controller, name_or_id: str, body: Mapping[str, Any]) -> None:
    container = shapes.get(body, "Container", str, "")
    shapes.get(body, "Force", bool, False)
    net = ctl.network(name_or_id)
    sb = _sandbox_of(ctl, container)
    for ep in sb.endpoints():
        if ep.network.id == net.id:
            ep.leave(sb)
            ep.delete()
            return
    raise Forbidden(f"container {container} is not connected to network {net.name}")


def _until(value: str) -> float:
    """Docker's `until`: a Unix timestamp, an RFC 3339 date, or a Go duration ago."""
    units = {"s": 1, "m": 60, "h": 3600}
    if value and value[-1] in units and value[:-1].replace(".", "", 1).isdigit():
        return time.time() - float(value[:-1]) * units[value[-1]]
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise InvalidParameter(f"invalid filter 'until={value}': a timestamp, a date or a "
                               "duration such as 24h is expected") from None


def _created(doc: Doc) -> float:
    return datetime.fromisoformat(doc["created"][:26].rstrip("Z") + "+00:00").timestamp()


def _prune(ctl: Controller, f: filters.Filters) -> list[str]:
    until = min((_until(v) for v in f.get("until", [])), default=None)
    deleted = []
    for net in ctl.networks():
        doc = net.info()
        if doc.get("predefined") or ctl._endpoint_docs(doc["id"]):
            continue
        if until is not None and _created(doc) >= until:
            continue
        if "label" in f and not filters.labels_match(f["label"], doc["labels"]):
            continue
        if "label!" in f and any(filters.labels_match([w], doc["labels"])
                                 for w in f["label!"]):
            continue
        try:
            net.delete()
        except (Forbidden, NotFound):
            continue
        deleted.append(doc["name"])
    return deleted


def register(router: Router, engine: Engine) -> None:
    ctl = engine.ctl

    async def list_networks(req: Request, version: str) -> Response:
        f = filters.parse(req.arg("filters"), LIST_FILTERS)
        return Response.json(await engine.call(_list, ctl, f))

    async def inspect(req: Request, version: str, id: str) -> Response:
        scope = req.arg("scope")
        doc = await engine.call(_inspect, ctl, id)
        if scope and scope != doc["Scope"]:
            raise NotFound(f"network {id} not found")
        return Response.json(doc)

    async def create(req: Request, version: str) -> Response:
        kw = parse_create(shapes.body_object(body_json(req)))
        net = await engine.call(lambda: ctl.create_network(**kw))
        engine.events.publish("network", "create", net.id,
                              {"name": kw["name"], "type": kw["driver"]})
        return Response.json({"Id": net.id, "Warning": ""}, 201)

    async def remove(req: Request, version: str, id: str) -> Response:
        def rm() -> tuple[str, str, str]:
            net = ctl.network(id)
            name, driver = net.name, net.driver
            net.delete()
            return net.id, name, driver

        net_id, name, driver = await engine.call(rm)
        engine.events.publish("network", "destroy", net_id, {"name": name, "type": driver})
        return Response.empty(204)

    def _container(ref: str) -> Any:
        if engine.containers is None:
            return None
        try:
            return engine.containers.resolve(ref)
        except NotFound:
            return None

    async def connect(req: Request, version: str, id: str) -> Response:
        body = shapes.body_object(body_json(req))
        ref = shapes.get(body, "Container", str, "")
        if engine.containers is not None and await engine.call(_container, ref):
            cfg = shapes.get(body, "EndpointConfig", dict, {})
            await engine.call(engine.containers.connect, id, ref, cfg)
        else:
            await engine.call(_connect, ctl, id, body)
        engine.events.publish("network", "connect", id, {"container": str(body["Container"])})
        return Response(200)

    async def disconnect(req: Request, version: str, id: str) -> Response:
        body = shapes.body_object(body_json(req))
        ref = shapes.get(body, "Container", str, "")
        if engine.containers is not None and await engine.call(_container, ref):
            await engine.call(engine.containers.disconnect, id, ref)
        else:
            await engine.call(_disconnect, ctl, id, body)
        engine.events.publish("network", "disconnect", id,
                              {"container": str(body.get("Container"))})
        return Response(200)

    async def prune(req: Request, version: str) -> Response:
        f = filters.parse(req.arg("filters"), PRUNE_FILTERS)
        deleted = await engine.call(_prune, ctl, f)
        for name in deleted:
            engine.events.publish("network", "destroy", name, {"name": name})
        return Response.json({"NetworksDeleted": deleted})

    router.add("GET", "/networks", list_networks)
    router.add("POST", "/networks/create", create)
    router.add("POST", "/networks/prune", prune)
    router.add("GET", "/networks/{id}", inspect)
    router.add("DELETE", "/networks/{id}", remove)
    router.add("POST", "/networks/{id}/connect", connect)
    router.add("POST", "/networks/{id}/disconnect", disconnect)
