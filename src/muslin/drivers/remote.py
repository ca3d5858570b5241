"""Remote network drivers: Docker's NetworkDriver plugin protocol, as a client.

A RemoteDriver turns muslin's driver calls into plugin calls (GetCapabilities,
CreateNetwork, DeleteNetwork, CreateEndpoint, DeleteEndpoint, Join, Leave,
ProgramExternalConnectivity, RevokeExternalConnectivity, EndpointOperInfo,
DiscoverNew, DiscoverDelete, AllocateNetwork, FreeNetwork) with Docker's request
and response fields. The kernel side it owns is the one libnetwork does for a
remote driver: the interface the plugin names in Join (SrcName) is moved from the
host namespace into the sandbox, renamed from DstPrefix and given the endpoint's
MAC; on leave it goes back under its old name. Deletes and leaves that the plugin
fails are logged and carried on, as Docker does. Must not touch IPAM or the store.
"""

from __future__ import annotations

import ipaddress
import logging
import os
from typing import Any

from muslin.drivers.api import (
    Capability,
    EndpointInfo,
    JoinInfo,
    NetworkInfo,
    Scope,
    StaticRoute,
)
from muslin.errors import MuslinError
from muslin.firewall import BridgeRules
from muslin.kernel import Host, Links, Nft, in_netns, netns
from muslin.plugins.registry import NETWORK_DRIVER, Plugin, PluginError

log = logging.getLogger("muslin.drivers.remote")

GENERIC = "com.docker.network.generic"
ENABLE_IPV6 = "com.docker.network.enable_ipv6"
INTERNAL = "com.docker.network.internal"
NODE_DISCOVERY = 1
_SCOPES: tuple[Scope, ...] = ("local", "global")


def _split(cidr: str) -> tuple[str, int]:
    ip, _, plen = cidr.partition("/")
    return ip, int(plen)


def ipam_data(net: NetworkInfo, v6: bool, address_space: str = "LocalDefault"
              ) -> list[dict[str, Any]]:
    """libnetwork's IPAMData list of one family: pool, gateway, aux addresses."""
    out: list[dict[str, Any]] = []
    for subnet, gw in zip(net.subnets, net.gateways, strict=False):
        if (":" in subnet) != v6:
            continue
        out.append({"AddressSpace": address_space, "Pool": subnet, "Gateway": gw,
                    "AuxAddresses": {}})
    return out


class RemoteDriver:
    """A network driver served by a plugin."""

    uses_ipam = True

    def __init__(self, plugin: Plugin, host: Host) -> None:
        self.name = plugin.name
        self.plugin = plugin
        self._host = host
        self._cap: Capability | None = None
        plugin.on_activate(self._read_capabilities)

    def _call(self, method: str, args: dict[str, Any] | None, *,
              tolerate_404: bool = False) -> dict[str, Any] | None:
        self.plugin.activate(NETWORK_DRIVER)
        return self.plugin.call(f"{NETWORK_DRIVER}.{method}", args, tolerate_404=tolerate_404)

    def _must(self, method: str, args: dict[str, Any] | None) -> dict[str, Any]:
        resp = self._call(method, args)
        assert resp is not None
        return resp

    def _read_capabilities(self, plugin: Plugin) -> None:
        if NETWORK_DRIVER not in plugin.implements:
            return
        resp = plugin.call(f"{NETWORK_DRIVER}.GetCapabilities", None) or {}
        scope = resp.get("Scope")
        if scope not in _SCOPES:
            raise PluginError(f"invalid capability: expecting 'local' or 'global', got {scope}")
        conn = resp.get("ConnectivityScope") or scope
        if conn not in _SCOPES:
            raise PluginError(f"invalid capability: expecting 'local' or 'global', got {conn}")
        self._cap = Capability(scope, conn)

    def capabilities(self) -> Capability:
        if self._cap is None:
            self.plugin.activate(NETWORK_DRIVER)
        assert self._cap is not None
        return self._cap

    def bridge_name(self, net: NetworkInfo) -> str:
        return ""

    def validate_options(self, options: dict[str, str], *, internal: bool) -> dict[str, str]:
        return dict(options)  # the plugin judges its own options in CreateNetwork

    # -- networks --------------------------------------------------------------
    def _network_options(self, net: NetworkInfo) -> dict[str, Any]:
        opts: dict[str, Any] = {GENERIC: dict(net.options), ENABLE_IPV6: net.enable_ipv6}
        if net.internal:
            opts[INTERNAL] = True
        return opts

    def create_network(self, net: NetworkInfo) -> dict[str, Any]:
        self._must("CreateNetwork", {
            "NetworkID": net.id, "Options": self._network_options(net),
            "IPv4Data": ipam_data(net, False), "IPv6Data": ipam_data(net, True)})
        return {"remote": self.name}

    def delete_network(self, net: NetworkInfo) -> None:
        try:
            self._must("DeleteNetwork", {"NetworkID": net.id})
        except PluginError as e:
            log.warning("driver error deleting network %s: %s", net.name, e)

    def allocate_network(self, net: NetworkInfo) -> dict[str, str]:
        """Swarm-scope allocation (AllocateNetwork); the driver's options back."""
        resp = self._must("AllocateNetwork", {
            "NetworkID": net.id, "Options": dict(net.options),
            "IPv4Data": ipam_data(net, False), "IPv6Data": ipam_data(net, True)})
        return {str(k): str(v) for k, v in (resp.get("Options") or {}).items()}

    def free_network(self, net_id: str) -> None:
        self._must("FreeNetwork", {"NetworkID": net_id})

    def discover_new(self, data: dict[str, Any], kind: int = NODE_DISCOVERY) -> None:
        """A node appeared (DiscoverNew with Docker's NodeDiscovery data)."""
        if kind == NODE_DISCOVERY:
            self._must("DiscoverNew", {"DiscoveryType": kind, "DiscoveryData": data})

    def discover_delete(self, data: dict[str, Any], kind: int = NODE_DISCOVERY) -> None:
        if kind == NODE_DISCOVERY:
            self._must("DiscoverDelete", {"DiscoveryType": kind, "DiscoveryData": data})

    def firewall_rules(self, net: NetworkInfo) -> BridgeRules | None:
        return None  # the plugin owns its own kernel objects and their filtering

    def check_network(self, net: NetworkInfo) -> list[str]:
        return []  # what the plugin built is the plugin's to check

    def check_endpoint(self, net: NetworkInfo, ep: EndpointInfo) -> list[str]:
        return []

    # -- endpoints -----------------------------------------------------------------
    def create_endpoint(self, net: NetworkInfo, ep: EndpointInfo, *,
                        mac_requested: bool) -> dict[str, str]:
        sent = {"Address": ep.ipv4 or "", "AddressIPv6": ep.ipv6 or "",
                "MacAddress": ep.mac if mac_requested else ""}
        resp = self._must("CreateEndpoint", {"NetworkID": ep.network_id, "EndpointID": ep.id,
                                             "Interface": sent, "Options": {}})
        try:
            return self._chosen(resp.get("Interface") or {}, sent)
        except BaseException:
            self.delete_endpoint(net, ep)
            raise

    @staticmethod
    def _chosen(iface: dict[str, Any], sent: dict[str, str]) -> dict[str, str]:
        out: dict[str, str] = {}
        for key, field in (("MacAddress", "mac"), ("Address", "ipv4"),
                           ("AddressIPv6", "ipv6")):
            value = str(iface.get(key) or "")
            if not value:
                continue
            try:
                norm = (value.lower() if key == "MacAddress"
                        else str(ipaddress.ip_interface(value)))
            except ValueError:
                raise PluginError(f"CreateEndpoint answered an invalid {key} {value!r}") \
                    from None
            if key != "MacAddress" and "/" not in value:
                raise PluginError(f"CreateEndpoint answered {key} {value!r} without a prefix "
                                  "length")
            if sent[key] and sent[key].lower() != norm:
                what = "MAC address" if key == "MacAddress" else "address"
                raise PluginError(f"driver modified interface {what}: {sent[key]} -> {value}")
            if not sent[key]:
                out[field] = norm
        return out

    def delete_endpoint(self, net: NetworkInfo, ep: EndpointInfo) -> None:
        try:
            self._must("DeleteEndpoint", {"NetworkID": ep.network_id, "EndpointID": ep.id})
        except PluginError as e:
            log.warning("driver error deleting endpoint %s: %s", ep.name, e)

    def endpoint_oper_info(self, ep: EndpointInfo) -> dict[str, Any]:
        resp = self._must("EndpointOperInfo", {"NetworkID": ep.network_id,
                                               "EndpointID": ep.id})
        value = resp.get("Value")
        return dict(value) if isinstance(value, dict) else {}

    # -- join and leave ---------------------------------------------------------------
    def join(self, net: NetworkInfo, ep: EndpointInfo, netns_path: str,
             ifname: str) -> tuple[JoinInfo, dict[str, Any]]:
        resp = self._must("Join", {"NetworkID": ep.network_id, "EndpointID": ep.id,
                                   "SandboxKey": netns_path, "Options": {}})
        moved: str | None = None
        src = ""
        try:
            info, src, prefix = self._parse_join(resp)
            number = ifname[3:] if ifname.startswith("eth") else "0"
            name = prefix + number
            if len(name) > 15:
                raise PluginError(f"Join answered DstPrefix {prefix!r}: the interface name "
                                  f"{name} is longer than 15 characters")
            self._move_in(src, netns_path, name, ep.mac)
            moved = name
            if net.internal:
                info = JoinInfo(None, None, info.mtu, name, info.routes, True)
            else:
                info = JoinInfo(info.gateway4, info.gateway6, info.mtu, name, info.routes,
                                info.disable_gateway_service)
        except BaseException:
            if moved is not None:
                self._move_out(netns_path, moved, src)
            self._leave(ep)
            raise
        return info, {"src": src, "ifname": name, "netns": netns_path}

    def _parse_join(self, resp: dict[str, Any]) -> tuple[JoinInfo, str, str]:
        names = resp.get("InterfaceName") or {}
        src = str(names.get("SrcName") or "") if isinstance(names, dict) else ""
        prefix = str(names.get("DstPrefix") or "") if isinstance(names, dict) else ""
        if not src or not prefix:
            raise PluginError("Join answered no InterfaceName with SrcName and DstPrefix")
        gws: list[str | None] = []
        for key, version in (("Gateway", 4), ("GatewayIPv6", 6)):
            value = str(resp.get(key) or "")
            if value:
                try:
                    if ipaddress.ip_address(value).version != version:
                        raise ValueError
                except ValueError:
                    raise PluginError(f'unable to parse {key} "{value}"') from None
            gws.append(value or None)
        routes = []
        for r in resp.get("StaticRoutes") or []:
            try:
                dst = str(ipaddress.ip_network(str(r.get("Destination")), strict=False))
                hop = str(r.get("NextHop") or "") or None
                if hop is not None:
                    ipaddress.ip_address(hop)
                kind = int(r.get("RouteType", 0))
            except (ValueError, TypeError, AttributeError):
                raise PluginError(f"Join answered an invalid static route {r!r}") from None
            if kind == 0 and hop is None:
                raise PluginError(f"Join answered a next-hop route without NextHop: {r!r}")
            routes.append(StaticRoute(dst, kind, hop if kind == 0 else None))
        return (JoinInfo(gws[0], gws[1], 0, None, tuple(routes),
                         bool(resp.get("DisableGatewayService"))), src, prefix)

    def _move_in(self, src: str, netns_path: str, name: str, mac: str) -> None:
        def move(links: Links, _nft: Nft) -> None:
            link = links.get(src)
            if link is None:
                raise PluginError(f'plugin "{self.name}": Join named interface {src}, which '
                                  "is not in the host namespace")
            fd = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                links.set(link.index, state="down")
                links.move_to_netns(link.index, fd, name)
            finally:
                os.close(fd)

        self._host.call(move)

        def set_mac(links: Links) -> None:
            links.set(links.require(name).index, address=mac)

        in_netns(netns_path, set_mac)

    def _move_out(self, netns_path: str, name: str, src: str) -> None:
        """The interface back to the host namespace under its old name (never raises)."""
        if not netns.is_netns(netns_path):
            return
        host_fd = self._host.call(lambda _l, _n: os.open("/proc/thread-self/ns/net",
                                                           os.O_RDONLY | os.O_CLOEXEC))
        try:
            def move(links: Links) -> None:
                link = links.get(name)
                if link is not None:
                    links.set(link.index, state="down")
                    links.move_to_netns(link.index, host_fd, src)

            in_netns(netns_path, move)
        except MuslinError as e:
            log.warning("moving %s out of sandbox %s failed: %s", name, netns_path, e)
        finally:
            os.close(host_fd)

    def _leave(self, ep: EndpointInfo) -> None:
        try:
            self._must("Leave", {"NetworkID": ep.network_id, "EndpointID": ep.id})
        except PluginError as e:
            log.warning("driver error disconnecting endpoint %s: %s", ep.name, e)

    def leave(self, net: NetworkInfo, ep: EndpointInfo) -> None:
        state = ep.driver_state
        if not state.get("src"):
            return  # never joined, or the join undid itself
        self._move_out(str(state["netns"]), str(state["ifname"]), str(state["src"]))
        self._leave(ep)

    def program_external_connectivity(self, net: NetworkInfo, ep: EndpointInfo) -> None:
        self._call("ProgramExternalConnectivity", {
            "NetworkID": ep.network_id, "EndpointID": ep.id, "Options": {}},
            tolerate_404=True)

    def revoke_external_connectivity(self, net: NetworkInfo, ep: EndpointInfo) -> None:
        try:
            self._call("RevokeExternalConnectivity", {
                "NetworkID": ep.network_id, "EndpointID": ep.id}, tolerate_404=True)
        except PluginError as e:
            log.warning("driver error revoking external connectivity of %s: %s", ep.name, e)
