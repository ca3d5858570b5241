#!/usr/bin/env python3
"""An example third-party IPAM driver speaking Docker's IPAM plugin protocol.

Hands out addresses from its own pool (default 10.77.0.0/24: gateway .1, endpoints
from .200 upward, so they are easy to tell from any engine's own choice), or from
a subnet the user names. Its own process, knowing nothing of muslin; stdlib only.

    ipam_plugin.py --socket /run/docker/plugins/exipam.sock [--pool CIDR] [--first N]
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
import threading
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from plugin_server import PluginFailure, State, serve

GATEWAY = "com.docker.network.gateway"


class Ipam:
    def __init__(self, state: State, pool: str, first: int) -> None:
        self.state = state
        self.pool = pool
        self.first = first
        self.lock = threading.Lock()

    @property
    def pools(self) -> dict[str, Any]:
        return self.state.data.setdefault("pools", {})

    def capabilities(self, _: dict[str, Any]) -> dict[str, Any]:
        return {"RequiresMACAddress": False}

    def spaces(self, _: dict[str, Any]) -> dict[str, Any]:
        return {"LocalDefaultAddressSpace": "example-local",
                "GlobalDefaultAddressSpace": "example-global"}

    def request_pool(self, req: dict[str, Any]) -> dict[str, Any]:
        if req.get("V6"):
            raise PluginFailure("this example hands out IPv4 only")
        subnet = str(ipaddress.ip_network(req.get("Pool") or self.pool))
        pool_id = f"{req.get('AddressSpace') or 'example-local'}/{subnet}"
        with self.lock:
            if pool_id in self.pools:
                raise PluginFailure(f"pool {subnet} is in use")
            self.pools[pool_id] = {"subnet": subnet, "used": []}
            self.state.save()
        return {"PoolID": pool_id, "Pool": subnet, "Data": {}}

    def release_pool(self, req: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self.pools.pop(req["PoolID"], None)
            self.state.save()
        return {}

    def request_address(self, req: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            pool = self.pools.get(req["PoolID"])
            if pool is None:
                raise PluginFailure(f"pool {req['PoolID']} not found")
            net = ipaddress.ip_network(pool["subnet"])
            gateway = (req.get("Options") or {}).get("RequestAddressType") == GATEWAY
            if req.get("Address"):
                ip = ipaddress.ip_address(req["Address"])
                if ip not in net or str(ip) in pool["used"]:
                    raise PluginFailure(f"address {ip} is not available")
            elif gateway:
                ip = net.network_address + 1
            else:
                ip = next((a for a in net.hosts() if int(a) - int(net.network_address)
                           >= self.first and str(a) not in pool["used"]), None)
                if ip is None:
                    raise PluginFailure(f"no free address in {net}")
            pool["used"].append(str(ip))
            self.state.save()
        return {"Address": f"{ip}/{net.prefixlen}", "Data": {}}

    def release_address(self, req: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            pool = self.pools.get(req["PoolID"]) or {"used": []}
            if req["Address"] in pool["used"]:
                pool["used"].remove(req["Address"])
            self.state.save()
        return {}

    def methods(self) -> dict[str, Any]:
        p = "IpamDriver."
        return {p + "GetCapabilities": self.capabilities,
                p + "GetDefaultAddressSpaces": self.spaces,
                p + "RequestPool": self.request_pool, p + "ReleasePool": self.release_pool,
                p + "RequestAddress": self.request_address,
                p + "ReleaseAddress": self.release_address}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--socket", required=True)
    ap.add_argument("--state", default="")
    ap.add_argument("--pool", default="10.77.0.0/24")
    ap.add_argument("--first", type=int, default=200)
    args = ap.parse_args()
    ipam = Ipam(State(args.state, {}), args.pool, args.first)
    serve(args.socket, ["IpamDriver"], ipam.methods())


if __name__ == "__main__":
    main()
