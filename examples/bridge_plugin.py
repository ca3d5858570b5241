#!/usr/bin/env python3
"""An example third-party network driver speaking Docker's remote driver protocol.

Its own process, knowing nothing of muslin: it makes its own Linux bridge per
network (with the network's gateway address) and a veth pair per joined endpoint,
and adds no firewall rules. Join names the container side (SrcName) and the prefix
"eth"; the engine (muslin or dockerd) moves it into the container.

    bridge_plugin.py --socket /run/docker/plugins/exbridge.sock [--state FILE]

Option `example.bridge.name` names the bridge (default "exbr" + 8 id characters);
`example.gateway=false` makes Join name no gateway.
Needs root and pyroute2.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import threading
from typing import Any

from pyroute2 import IPRoute

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from plugin_server import PluginFailure, State, serve

BRIDGE_OPTION = "example.bridge.name"
GATEWAY_OPTION = "example.gateway"


class BridgeDriver:
    def __init__(self, state: State) -> None:
        self.state = state
        self.lock = threading.Lock()

    @property
    def nets(self) -> dict[str, Any]:
        return self.state.data.setdefault("networks", {})

    @property
    def eps(self) -> dict[str, Any]:
        return self.state.data.setdefault("endpoints", {})

    def capabilities(self, _: dict[str, Any]) -> dict[str, Any]:
        return {"Scope": "local", "ConnectivityScope": "local"}

    def create_network(self, req: dict[str, Any]) -> dict[str, Any]:
        nid = req["NetworkID"]
        generic = (req.get("Options") or {}).get("com.docker.network.generic") or {}
        bridge = generic.get(BRIDGE_OPTION) or "exbr" + nid[:8]
        gateways = [d["Gateway"] for d in (req.get("IPv4Data") or []) + (req.get("IPv6Data")
                                                                       or []) if d.get("Gateway")]
        with self.lock, IPRoute() as ipr:
            if ipr.link_lookup(ifname=bridge):
                raise PluginFailure(f"bridge {bridge} exists already")
            ipr.link("add", ifname=bridge, kind="bridge")
            idx = ipr.link_lookup(ifname=bridge)[0]
            for gw in gateways:
                ip, plen = gw.split("/")
                ipr.addr("add", index=idx, address=ip, prefixlen=int(plen))
            ipr.link("set", index=idx, state="up")
            # example.gateway=false: Join names no gateway (the engine then provides
            # outside connectivity itself, as Docker does with docker_gwbridge)
            self.nets[nid] = {"bridge": bridge, "gateways": gateways,
                              "announce_gateway": generic.get(GATEWAY_OPTION) != "false"}
            self.state.save()
        return {}

    def delete_network(self, req: dict[str, Any]) -> dict[str, Any]:
        with self.lock, IPRoute() as ipr:
            net = self.nets.pop(req["NetworkID"], None)
            if net is None:
                raise PluginFailure(f"network {req['NetworkID']} not found")
            for idx in ipr.link_lookup(ifname=net["bridge"]):
                ipr.link("del", index=idx)
            self.state.save()
        return {}

    def create_endpoint(self, req: dict[str, Any]) -> dict[str, Any]:
        if req["NetworkID"] not in self.nets:
            raise PluginFailure(f"network {req['NetworkID']} not found")
        iface = req.get("Interface") or {}
        answer: dict[str, Any] = {}
        if not iface.get("MacAddress"):  # the driver picks the MAC when none was asked for
            mac = "02:" + ":".join(f"{b:02x}" for b in secrets.token_bytes(5))
            answer = {"Interface": {"MacAddress": mac}}
        with self.lock:
            self.eps[req["EndpointID"]] = {"network": req["NetworkID"],
                                           "address": iface.get("Address", "")}
            self.state.save()
        return answer

    def delete_endpoint(self, req: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self.eps.pop(req["EndpointID"], None)
            self.state.save()
        self._delete_veth(req["EndpointID"])
        return {}

    def oper_info(self, req: dict[str, Any]) -> dict[str, Any]:
        ep = self.eps.get(req["EndpointID"]) or {}
        net = self.nets.get(ep.get("network", "")) or {}
        return {"Value": {"bridge": net.get("bridge", ""), "host_veth": "exh" +
                          req["EndpointID"][:8]}}

    def join(self, req: dict[str, Any]) -> dict[str, Any]:
        eid = req["EndpointID"]
        net = self.nets.get(req["NetworkID"])
        if net is None:
            raise PluginFailure(f"network {req['NetworkID']} not found")
        host, peer = "exh" + eid[:8], "exc" + eid[:8]
        with self.lock, IPRoute() as ipr:
            for name in (host, peer):
                for idx in ipr.link_lookup(ifname=name):
                    ipr.link("del", index=idx)
            ipr.link("add", ifname=host, kind="veth", peer=peer)
            br = ipr.link_lookup(ifname=net["bridge"])[0]
            idx = ipr.link_lookup(ifname=host)[0]
            ipr.link("set", index=idx, master=br, state="up")
        answer: dict[str, Any] = {"InterfaceName": {"SrcName": peer, "DstPrefix": "eth"}}
        for gw in net["gateways"] if net.get("announce_gateway", True) else []:
            key = "GatewayIPv6" if ":" in gw else "Gateway"
            answer.setdefault(key, gw.split("/")[0])
        return answer

    def leave(self, req: dict[str, Any]) -> dict[str, Any]:
        self._delete_veth(req["EndpointID"])
        return {}

    def _delete_veth(self, eid: str) -> None:
        with self.lock, IPRoute() as ipr:
            for name in ("exh" + eid[:8], "exc" + eid[:8]):
                for idx in ipr.link_lookup(ifname=name):
                    ipr.link("del", index=idx)

    def discover(self, _: dict[str, Any]) -> dict[str, Any]:
        return {}

    def methods(self) -> dict[str, Any]:
        p = "NetworkDriver."
        return {p + "GetCapabilities": self.capabilities,
                p + "CreateNetwork": self.create_network,
                p + "DeleteNetwork": self.delete_network,
                p + "CreateEndpoint": self.create_endpoint,
                p + "DeleteEndpoint": self.delete_endpoint,
                p + "EndpointOperInfo": self.oper_info,
                p + "Join": self.join, p + "Leave": self.leave,
                p + "DiscoverNew": self.discover, p + "DiscoverDelete": self.discover}
        # ProgramExternalConnectivity and RevokeExternalConnectivity are left out on
        # purpose: engines must tolerate their 404.


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--socket", required=True)
    ap.add_argument("--state", default="")
    args = ap.parse_args()
    driver = BridgeDriver(State(args.state, {}))
    serve(args.socket, ["NetworkDriver"], driver.methods())


if __name__ == "__main__":
    main()
