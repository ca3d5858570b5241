"""Remote IPAM drivers: Docker's IpamDriver plugin protocol, as a client.

RemoteIpam implements muslin's IpamDriver over a plugin: GetCapabilities (a 404
means Docker's defaults), GetDefaultAddressSpaces, RequestPool, ReleasePool,
RequestAddress, ReleaseAddress, with Docker's fields. A pool's gateway comes from
the pool's `com.docker.network.gateway` data or, when the user named one or the
plugin gave none, from RequestAddress with RequestAddressType
`com.docker.network.gateway`, as libnetwork does; aux addresses are requested one
by one. Releases the plugin fails are logged, as Docker does. Must not touch the
kernel or the store.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from muslin import ipam
from muslin.ipam.core import parse_cidr
from muslin.plugins.registry import IPAM_DRIVER, Plugin, PluginError

log = logging.getLogger("muslin.ipam.remote")

GATEWAY = "com.docker.network.gateway"
REQUEST_ADDRESS_TYPE = "RequestAddressType"
MAC_OPTION = "com.docker.network.endpoint.macaddress"


class RemoteIpam:
    """An IPAM driver served by a plugin."""

    def __init__(self, plugin: Plugin) -> None:
        self.name = plugin.name
        self.plugin = plugin
        self.requires_mac = False
        self._spaces: tuple[str, str] | None = None
        plugin.on_activate(self._read_capabilities)

    def _read_capabilities(self, plugin: Plugin) -> None:
        if IPAM_DRIVER not in plugin.implements:
            return
        resp = plugin.call(f"{IPAM_DRIVER}.GetCapabilities", None, tolerate_404=True) or {}
        self.requires_mac = bool(resp.get("RequiresMACAddress"))
        self._spaces = None

    def _call(self, method: str, args: dict[str, Any] | None) -> dict[str, Any]:
        self.plugin.activate(IPAM_DRIVER)
        resp = self.plugin.call(f"{IPAM_DRIVER}.{method}", args)
        assert resp is not None
        return resp

    def default_address_spaces(self) -> tuple[str, str]:
        if self._spaces is None:
            resp = self._call("GetDefaultAddressSpaces", None)
            self._spaces = (str(resp.get("LocalDefaultAddressSpace") or ""),
                            str(resp.get("GlobalDefaultAddressSpace") or ""))
        return self._spaces

    @staticmethod
    def _cidr(method: str, field: str, value: Any) -> ipaddress.IPv4Interface | \
            ipaddress.IPv6Interface:
        text = str(value or "")
        cidr = parse_cidr(text)
        if cidr is None:
            raise PluginError(f"{method} answered an invalid {field} {text!r}: expected "
                              "address/prefix-length")
        return cidr

    def request_pool(self, address_space: str, requested: ipam.IPAMPool | None, *,
                     v6: bool, owner: str, avoid: Iterable[ipam.IPNetwork] = (),
                     options: Mapping[str, str] | None = None) -> tuple[str, ipam.Pool]:
        resp = self._call("RequestPool", {
            "AddressSpace": address_space,
            "Pool": requested.subnet if requested else "",
            "SubPool": (requested.ip_range or "") if requested else "",
            "Options": dict(options or {}), "V6": v6})
        pool_id = str(resp.get("PoolID") or "")
        if not pool_id:
            raise PluginError("RequestPool answered no PoolID")
        taken: list[str] = []
        try:
            subnet = self._cidr("RequestPool", "Pool", resp.get("Pool")).network
            data = resp.get("Data") or {}
            gateway = None
            if data.get(GATEWAY):
                gateway = self._cidr("RequestPool", GATEWAY, data[GATEWAY]).ip
            want_gw = requested.gateway if requested else None
            if want_gw or gateway is None:
                gateway = self._address(pool_id, want_gw, {REQUEST_ADDRESS_TYPE: GATEWAY})
                taken.append(str(gateway))
            aux: dict[str, ipam.IPAddress] = {}
            for name, ip in (requested.aux_addresses if requested else {}).items():
                aux[name] = self._address(pool_id, ip, {})
                taken.append(str(aux[name]))
            ip_range = (ipaddress.ip_network(requested.ip_range, strict=False)
                        if requested and requested.ip_range else None)
            return pool_id, ipam.Pool(subnet=subnet, ip_range=ip_range, gateway=gateway,
                                      aux_addresses=aux)
        except BaseException:
            self.release_pool(pool_id, addresses=taken)
            raise

    def _address(self, pool_id: str, want: str | None, options: dict[str, str]
                 ) -> ipam.IPAddress:
        resp = self._call("RequestAddress", {"PoolID": pool_id, "Address": want or "",
                                             "Options": options})
        return self._cidr("RequestAddress", "Address", resp.get("Address")).ip

    def release_pool(self, pool_id: str, *, addresses: Sequence[str] = ()) -> None:
        for address in addresses:
            self.release_address(pool_id, address)
        try:
            self._call("ReleasePool", {"PoolID": pool_id})
        except PluginError as e:
            log.warning("failed to release address pool %s: %s", pool_id, e)

    def request_address(self, pool_id: str, requested: str | None, *, owner: str,
                        mac: str | None = None) -> str:
        opts = {MAC_OPTION: mac} if mac and self.requires_mac else {}
        return str(self._address(pool_id, requested, opts))

    def release_address(self, pool_id: str, address: str) -> None:
        try:
            self._call("ReleaseAddress", {"PoolID": pool_id, "Address": address})
        except PluginError as e:
            log.warning("failed to release IP address %s of pool %s: %s", address, pool_id, e)
