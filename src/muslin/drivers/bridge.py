"""The bridge driver: one Linux bridge per network, one veth pair per endpoint.

Builds the bridge (fixed MAC, gateway addresses, MTU) and each endpoint's veth pair
with its container side created directly inside the sandbox namespace. Firewall
rules are described (muslin.firewall.BridgeRules), not applied here. Every link it
makes carries the instance's mark. Must not touch IPAM or the store.
"""

from __future__ import annotations

import os
import re
import secrets
from typing import Any

from muslin import faults
from muslin.drivers.api import Capability, EndpointInfo, JoinInfo, NetworkInfo
from muslin.errors import Conflict, InvalidParameter, KernelError
from muslin.firewall import BridgeRules
from muslin.kernel import Host, Link, Links, Nft, sysctl

OPT_NAME = "com.docker.network.bridge.name"
OPT_ICC = "com.docker.network.bridge.enable_icc"
OPT_MASQ = "com.docker.network.bridge.enable_ip_masquerade"
OPT_MTU = "com.docker.network.driver.mtu"
OPT_DEFAULT = "com.docker.network.bridge.default_bridge"
OPT_HOST_IP = "com.docker.network.bridge.host_binding_ipv4"
OPT_IFACE_PREFIX = "com.docker.network.container_iface_prefix"

_BOOL_OPTS = (OPT_ICC, OPT_MASQ, OPT_DEFAULT)
_IFNAME = re.compile(r"[^\s/:]{1,15}")


def random_mac() -> str:
    """A locally administered unicast MAC in Docker's 02:42 range."""
    return "02:42:" + ":".join(f"{b:02x}" for b in secrets.token_bytes(4))


def _flag(options: dict[str, str], key: str, default: bool = True) -> bool:
    v = options.get(key)
    return default if v is None else v == "true"


def _prefix(cidr: str) -> tuple[str, int]:
    ip, _, plen = cidr.partition("/")
    return ip, int(plen)


class BridgeDriver:
    """Driver "bridge" of one muslin instance."""

    name = "bridge"
    uses_ipam = True

    def __init__(self, host: Host, mark: str) -> None:
        self._host = host
        self._mark = mark  # e.g. "muslin:t1:"

    def capabilities(self) -> Capability:
        return Capability("local", "local")

    # -- validation ------------------------------------------------------
    def validate_options(self, options: dict[str, str], *, internal: bool) -> dict[str, str]:
        out = dict(options)
        for key in _BOOL_OPTS:
            if key in out:
                v = str(out[key]).lower()
                if v not in ("true", "false", "1", "0"):
                    raise InvalidParameter(
                        f"invalid value {out[key]!r} for option {key}: expected true or false")
                out[key] = "true" if v in ("true", "1") else "false"
        if OPT_NAME in out and not _IFNAME.fullmatch(out[OPT_NAME]):
            raise InvalidParameter(
                f"invalid value {out[OPT_NAME]!r} for option {OPT_NAME}: an interface name of "
                "1 to 15 characters without spaces, '/' or ':'")
        if OPT_MTU in out:
            try:
                mtu = int(out[OPT_MTU])
            except ValueError:
                mtu = -1
            if not 68 <= mtu <= 65535:
                raise InvalidParameter(
                    f"invalid value {out[OPT_MTU]!r} for option {OPT_MTU}: an integer from "
                    "68 to 65535")
        return out

    def bridge_name(self, net: NetworkInfo) -> str:
        return str(net.driver_state.get("bridge") or net.options.get(OPT_NAME)
                   or "br-" + net.id[:12])

    def _mtu(self, net: NetworkInfo) -> int:
        return int(net.options.get(OPT_MTU, "0") or 0)

    # -- networks --------------------------------------------------------
    def create_network(self, net: NetworkInfo) -> dict[str, Any]:
        name = self.bridge_name(net)
        mac = str(net.driver_state.get("mac") or random_mac())
        mtu = self._mtu(net)
        alias = f"{self._mark}net:{net.id}"

        def build(links: Links, _nft: Nft) -> None:
            existing = links.get(name)
            if existing is not None:
                if not self._ours(existing, alias, net):
                    raise Conflict(f"bridge name {name} is already in use by another interface")
                links.delete(existing.index)  # a half-built bridge of ours: start over
            br = links.add_bridge(name, alias=alias, mac=mac, mtu=mtu or None)
            for gw in net.gateways:
                ip, plen = _prefix(gw)
                links.add_address(br.index, ip, plen)
            # published ports answer on 127.0.0.1 too (Docker with userland-proxy false)
            sysctl.set(f"net/ipv4/conf/{name}/route_localnet", "1")
            links.set(br.index, state="up")

        self._host.call(build)
        return {"bridge": name, "mac": mac}

    def delete_network(self, net: NetworkInfo) -> None:
        name = self.bridge_name(net)
        alias = f"{self._mark}net:{net.id}"

        def remove(links: Links, _nft: Nft) -> None:
            link = links.get(name)
            if link is not None and self._ours(link, alias, net):
                links.delete(link.index)

        self._host.call(remove)

    def _ours(self, link: Link, alias: str, net: NetworkInfo | None = None) -> bool:
        """Marked as ours, or unmarked with a name only muslin gives: a process killed
        between creating a link and marking it leaves such a link."""
        if link.alias == alias:
            return True
        derived = net is None or OPT_NAME not in net.options or \
            net.options.get(OPT_DEFAULT) == "true"
        return link.alias == "" and derived

    def firewall_rules(self, net: NetworkInfo) -> BridgeRules:
        return BridgeRules(
            net_id=net.id,
            bridge=self.bridge_name(net),
            subnets=net.subnets,
            icc=_flag(net.options, OPT_ICC),
            masquerade=_flag(net.options, OPT_MASQ),
            internal=net.internal,
        )

    def check_network(self, net: NetworkInfo) -> list[str]:
        name = self.bridge_name(net)

        def check(links: Links, _nft: Nft) -> list[str]:
            link = links.get(name)
            if link is None:
                return [f"network {net.name}: bridge {name} is missing"]
            out = []
            if link.alias != f"{self._mark}net:{net.id}":
                out.append(f"network {net.name}: bridge {name} lacks muslin's mark")
            if not link.up:
                out.append(f"network {net.name}: bridge {name} is down")
            want_mac = net.driver_state.get("mac")
            if want_mac and link.mac != want_mac:
                out.append(f"network {net.name}: bridge {name} has MAC {link.mac}, "
                           f"expected {want_mac}")
            have = {a.interface for a in links.addresses(link.index)}
            for gw in net.gateways:
                if gw not in have:
                    out.append(f"network {net.name}: bridge {name} lacks address {gw}")
            return out

        return self._host.call(check)

    # -- endpoints -------------------------------------------------------
    def host_ifname(self, ep: EndpointInfo) -> str:
        return "veth" + ep.id[:11]

    def join(self, net: NetworkInfo, ep: EndpointInfo, netns_path: str,
             ifname: str) -> tuple[JoinInfo, dict[str, Any]]:
        veth = self.host_ifname(ep)
        bridge = self.bridge_name(net)
        mtu = self._mtu(net)
        alias = f"{self._mark}ep:{ep.id}"

        def plug(links: Links, _nft: Nft) -> None:
            br_index = links.index(bridge)
            fd = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                try:
                    index = links.add_veth(veth, ifname, alias=alias, peer_netns_fd=fd,
                                           peer_mac=ep.mac, mtu=mtu or None, master=br_index,
                                           up=True)
                except KernelError:
                    old = links.get(veth)  # left by a killed process: ours, start over
                    if old is None or not self._ours(old, alias):
                        raise
                    links.delete(old.index)
                    index = links.add_veth(veth, ifname, alias=alias, peer_netns_fd=fd,
                                           peer_mac=ep.mac, mtu=mtu or None, master=br_index,
                                           up=True)
            finally:
                os.close(fd)
            faults.point("endpoint.join.link")
            # as Docker without userland proxy: a container reaching its own published
            # port is DNATed back (bridged by br_netfilter) out of the port it came from
            links.set_hairpin(index)
            # a replaced container often gets the same address with a new MAC: forget
            # the host's old neighbour entry, or the host (and the DNAT of published
            # ports) keeps sending to the old MAC until the entry goes stale
            for cidr in (ep.ipv4, ep.ipv6):
                if cidr:
                    links.del_neighbour(br_index, cidr.split("/")[0])
            faults.point("endpoint.join.attach")

        self._host.call(plug)
        gw4 = gw6 = None
        if not net.internal:
            for gw in net.gateways:
                ip, _ = _prefix(gw)
                if ":" in ip:
                    gw6 = gw6 or ip
                else:
                    gw4 = gw4 or ip
        return JoinInfo(gw4, gw6, mtu), {"veth": veth}

    def leave(self, net: NetworkInfo, ep: EndpointInfo) -> None:
        veth = self.host_ifname(ep)
        alias = f"{self._mark}ep:{ep.id}"

        def unplug(links: Links, _nft: Nft) -> None:
            link = links.get(veth)
            if link is not None and self._ours(link, alias):
                links.delete(link.index)

        self._host.call(unplug)

    def check_endpoint(self, net: NetworkInfo, ep: EndpointInfo) -> list[str]:
        veth = self.host_ifname(ep)
        bridge = self.bridge_name(net)

        def check(links: Links, _nft: Nft) -> list[str]:
            link = links.get(veth)
            if link is None:
                return [f"endpoint {ep.name}: veth {veth} is missing"]
            out = []
            br = links.get(bridge)
            if br is None or link.master != br.index:
                out.append(f"endpoint {ep.name}: veth {veth} is not a port of {bridge}")
            if not link.up:
                out.append(f"endpoint {ep.name}: veth {veth} is down")
            return out

        return self._host.call(check)

    def program_external_connectivity(self, net: NetworkInfo, ep: EndpointInfo) -> None:
        """Port publishing comes with the port-mapping feature; nothing to do yet."""

    def revoke_external_connectivity(self, net: NetworkInfo, ep: EndpointInfo) -> None:
        """Port publishing comes with the port-mapping feature; nothing to do yet."""
