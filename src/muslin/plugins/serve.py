"""`muslin plugin serve`: muslin's built-in bridge driver offered to a Docker engine as
a network plugin (Docker's remote driver protocol, server side).

The engine keeps IPAM, the sandbox and the container's addresses; this service
builds what the bridge driver builds (bridge with its gateway and fixed MAC, a veth
pair per joined endpoint, the instance's nftables table unless iptables is off) and
answers Join with the container side of the veth (SrcName, DstPrefix "eth") for the
engine to move into the container. Networks and endpoints persist in its own store,
so a restarted service carries on. Must not touch the engine's objects.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
from collections.abc import Callable
from typing import Any

from muslin import firewall
from muslin.api.http import HttpServer, Request, Response
from muslin.cnm.names import InstanceNames
from muslin.drivers.api import EndpointInfo, NetworkInfo
from muslin.drivers.bridge import BridgeDriver, random_mac
from muslin.errors import InvalidParameter, MuslinError, NotFound
from muslin.firewall import plan
from muslin.kernel import Host, Links, Nft
from muslin.plugins.client import CONTENT_TYPE
from muslin.store import LocalStore

log = logging.getLogger("muslin.plugins.serve")

Doc = dict[str, Any]
GENERIC = "com.docker.network.generic"


def _ipam(req: Doc, key: str) -> list[Doc]:
    data = req.get(key) or []
    if not isinstance(data, list):
        raise InvalidParameter(f"{key}: expected a list")
    return [d for d in data if isinstance(d, dict) and d.get("Pool")]


class DriverService:
    """The plugin's methods over one built-in driver (bridge) and a store."""

    def __init__(self, data_root: str, *, prefix: str = "plugin", iptables: bool = True,
                 host_netns: str | None = None) -> None:
        self.names = InstanceNames(prefix)
        os.makedirs(data_root, mode=0o700, exist_ok=True)
        self.store = LocalStore(os.path.join(data_root, "plugin.db"))
        self.host = Host(host_netns, name=f"muslin-{prefix}-plugin")
        self.driver = BridgeDriver(self.host, self.names.mark)
        self.iptables = iptables
        if iptables:
            rules = [self.driver.firewall_rules(self._net(d["id"]))
                     for d in self.store.list("network")]
            self.host.call(lambda _l, nft: nft.run(
                plan.table_rebuild(self.names.table, rules, [])))

    def close(self) -> None:
        self.host.close()
        self.store.close()

    def methods(self) -> dict[str, Callable[[Doc], Doc]]:
        p = "NetworkDriver."
        return {p + "GetCapabilities": lambda _: {"Scope": "local",
                                                  "ConnectivityScope": "local"},
                p + "CreateNetwork": self.create_network,
                p + "DeleteNetwork": self.delete_network,
                p + "CreateEndpoint": self.create_endpoint,
                p + "DeleteEndpoint": self.delete_endpoint,
                p + "EndpointOperInfo": self.oper_info,
                p + "Join": self.join, p + "Leave": self.leave,
                p + "ProgramExternalConnectivity": lambda _: {},
                p + "RevokeExternalConnectivity": lambda _: {},
                p + "DiscoverNew": lambda _: {}, p + "DiscoverDelete": lambda _: {}}

    # -- records ---------------------------------------------------------------
    def _net(self, net_id: str) -> NetworkInfo:
        doc = self.store.get("network", str(net_id))
        if doc is None:
            raise NotFound(f"network {net_id} not found")
        return NetworkInfo(doc["id"], doc["id"][:12], doc["options"], doc["internal"],
                           doc["enable_ipv6"], tuple(doc["subnets"]), tuple(doc["gateways"]),
                           doc["driver_state"])

    def _ep(self, ep_id: str) -> tuple[Doc, EndpointInfo]:
        doc = self.store.get("endpoint", str(ep_id))
        if doc is None:
            raise NotFound(f"endpoint {ep_id} not found")
        return doc, EndpointInfo(doc["id"], doc["id"][:12], doc["network_id"], doc["mac"],
                                 doc["ipv4"], doc["ipv6"], doc.get("driver_state", {}))

    # -- networks ----------------------------------------------------------------
    def create_network(self, req: Doc) -> Doc:
        net_id = str(req.get("NetworkID") or "")
        if not net_id:
            raise InvalidParameter("NetworkID is required")
        opts = req.get("Options") or {}
        generic = opts.get(GENERIC) or {}
        pools = _ipam(req, "IPv4Data") + _ipam(req, "IPv6Data")
        options = self.driver.validate_options({str(k): str(v) for k, v in generic.items()},
                                               internal=bool(opts.get(
                                                   "com.docker.network.internal")))
        doc: Doc = {"id": net_id, "options": options,
                    "internal": bool(opts.get("com.docker.network.internal")),
                    "enable_ipv6": bool(opts.get("com.docker.network.enable_ipv6")),
                    "subnets": [str(p["Pool"]) for p in pools],
                    "gateways": [str(p.get("Gateway") or "") for p in pools
                                 if p.get("Gateway")],
                    "driver_state": {}}
        info = NetworkInfo(net_id, net_id[:12], options, doc["internal"], doc["enable_ipv6"],
                           tuple(doc["subnets"]), tuple(doc["gateways"]))
        doc["driver_state"] = self.driver.create_network(info)
        try:
            self.store.put("network", net_id, doc)
            if self.iptables:
                rules = self.driver.firewall_rules(self._net(net_id))
                self.host.call(lambda _l, nft: nft.run(
                    firewall.network_add(self.names.table, rules)))
        except BaseException:
            self.driver.delete_network(info)
            self.store.delete("network", net_id)
            raise
        return {}

    def delete_network(self, req: Doc) -> Doc:
        info = self._net(str(req.get("NetworkID")))
        if self.iptables:
            rules = self.driver.firewall_rules(info)

            def remove(_l: Links, nft: Nft) -> None:
                listing = nft.list_table("inet", self.names.table)
                if listing is not None and f"{rules.tag}-from" in \
                        plan.observed_shape(listing).chains:
                    nft.run(firewall.network_remove(self.names.table, rules))

            self.host.call(remove)
        self.driver.delete_network(info)
        self.store.delete("network", info.id)
        return {}

    # -- endpoints -----------------------------------------------------------------
    def create_endpoint(self, req: Doc) -> Doc:
        self._net(str(req.get("NetworkID")))
        iface = req.get("Interface") or {}
        mac = str(iface.get("MacAddress") or "") or random_mac()
        self.store.put("endpoint", str(req["EndpointID"]), {
            "id": str(req["EndpointID"]), "network_id": str(req["NetworkID"]), "mac": mac,
            "ipv4": iface.get("Address") or None, "ipv6": iface.get("AddressIPv6") or None})
        return {} if iface.get("MacAddress") else {"Interface": {"MacAddress": mac}}

    def delete_endpoint(self, req: Doc) -> Doc:
        doc, ep = self._ep(str(req.get("EndpointID")))
        if doc.get("driver_state"):
            self.driver.leave(self._net(ep.network_id), ep)
        self.store.delete("endpoint", ep.id)
        return {}

    def oper_info(self, req: Doc) -> Doc:
        doc, _ = self._ep(str(req.get("EndpointID")))
        return {"Value": {"veth": (doc.get("driver_state") or {}).get("veth", "")}}

    def join(self, req: Doc) -> Doc:
        doc, ep = self._ep(str(req.get("EndpointID")))
        net = self._net(ep.network_id)
        src = "mc" + ep.id[:12]  # the container side, until the engine moves and renames it
        join, state = self.driver.join(net, ep, "/proc/thread-self/ns/net", src)
        doc["driver_state"] = {**state, "src": src}
        self.store.put("endpoint", ep.id, doc)
        out: Doc = {"InterfaceName": {"SrcName": src, "DstPrefix": "eth"}}
        if join.gateway4:
            out["Gateway"] = join.gateway4
        if join.gateway6:
            out["GatewayIPv6"] = join.gateway6
        return out

    def leave(self, req: Doc) -> Doc:
        doc, ep = self._ep(str(req.get("EndpointID")))
        self.driver.leave(self._net(ep.network_id), ep)
        doc["driver_state"] = {}
        self.store.put("endpoint", ep.id, doc)
        return {}


def _json(value: Doc, status: int = 200) -> Response:
    return Response(status, json.dumps(value).encode(), [("Content-Type", CONTENT_TYPE)])


async def serve(socket_path: str, service: DriverService) -> None:
    """Answers the engine on socket_path until SIGTERM or SIGINT."""
    loop = asyncio.get_running_loop()
    methods = service.methods()

    async def handle(req: Request) -> Response:
        name = req.path.lstrip("/")
        if req.method != "POST":
            return _json({"Err": f"{req.method} is not allowed"}, 405)
        if name == "Plugin.Activate":
            return _json({"Implements": ["NetworkDriver"]})
        method = methods.get(name)
        if method is None:
            return _json({"Err": f"{name} is not supported"}, 404)
        try:
            args = json.loads(req.body) if req.body.strip() else {}
            if not isinstance(args, dict):
                raise InvalidParameter("expected a JSON object")
            result = await loop.run_in_executor(None, method, args)
        except ValueError as e:
            return _json({"Err": f"invalid JSON: {e}"}, 400)
        except MuslinError as e:
            log.warning("%s: %s", name, e)
            return _json({"Err": str(e)}, 500)
        return _json(result)

    server = HttpServer(handle, server_header="muslin-plugin")
    os.makedirs(os.path.dirname(socket_path) or ".", exist_ok=True)
    if os.path.exists(socket_path):
        os.unlink(socket_path)
    await server.start_unix(socket_path)
    os.chmod(socket_path, 0o660)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    log.info("serving the bridge driver as a Docker network plugin on %s", socket_path)
    try:
        await stop.wait()
    finally:
        await server.close()
        if os.path.exists(socket_path):
            os.unlink(socket_path)
