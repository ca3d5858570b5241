"""The macvlan driver: containers as hosts of an existing LAN, each with its own MAC.

A network is a parent interface of the instance's host namespace (`-o parent=IF`)
and a macvlan mode (`-o macvlan_mode=bridge|private|vepa|passthru`, bridge by
default). Each endpoint is a macvlan link made on the parent, marked, and moved into
the sandbox under its interface name (eth0, eth1, ...). The gateway is the LAN's
router: nothing of it lives on the host; no NAT, no firewall rules (macvlan frames
never cross the host's forward path).

Parents muslin makes itself carry the instance's mark (`net:<network id>`) and are
removed with the last network using them; the user's own parents are never changed:
- `IF.VID` that does not exist yet: an 802.1Q sub-interface of IF (kernels without
  802.1Q: MissingKernelFeature naming CONFIG_VLAN_8021Q, checked before anything is
  made);
- no parent: an internal-only network on a private stub, a veth pair whose both ends
  stay up and address-less in the host namespace. Docker uses a dummy link, which
  this kernel lacks; a bridge without ports has no carrier (so macvlans on it could
  not send), while a veth pair has carrier as soon as both ends are up, needs only
  the veth support muslin already requires, and leads nowhere.

The pure checks (option values, parent names, passthru exclusivity) are module
functions. Must not touch IPAM or the store; other macvlan networks are known only
through the `peers` callback.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from typing import Any

from muslin.drivers.api import Capability, EndpointInfo, JoinInfo, NetworkInfo
from muslin.errors import (
    Conflict,
    InvalidParameter,
    KernelError,
    MissingKernelFeature,
    Unavailable,
)
from muslin.firewall import BridgeRules
from muslin.kernel import Host, Link, Links, Nft, features, in_netns, netns, sysctl

OPT_PARENT = "parent"
OPT_MODE = "macvlan_mode"
MODES = ("bridge", "private", "vepa", "passthru")
DEFAULT_MODE = "bridge"

_IFNAME = re.compile(r"[^\s/:]{1,15}")
_VLAN = re.compile(r"(?P<base>[^\s/:.]{1,15})\.(?P<vid>[0-9]+)")


# -- pure checks -------------------------------------------------------------------

def mode_of(options: dict[str, str]) -> str:
    return options.get(OPT_MODE) or DEFAULT_MODE


def check_mode(value: str) -> None:
    if value and value not in MODES:
        raise InvalidParameter(
            f"invalid value {value!r} for option {OPT_MODE}: requested macvlan mode "
            f"'{value}' is not valid; accepted are {', '.join(MODES)} "
            f"('{DEFAULT_MODE}' is the macvlan driver default)")


def parse_vlan(parent: str) -> tuple[str, int] | None:
    """(IF, VID) of a parent written IF.VID (e.g. eth0.100), else None. Raises
    InvalidParameter for a VLAN id outside 1-4094."""
    m = _VLAN.fullmatch(parent)
    if m is None:
        return None
    vid = int(m["vid"])
    if not 1 <= vid <= 4094:
        raise InvalidParameter(
            f"invalid value {parent!r} for option {OPT_PARENT}: the VLAN id must be between "
            f"1 and 4094, received {vid}")
    return m["base"], vid


def check_parent_name(parent: str) -> None:
    if parent == "lo":
        raise InvalidParameter("invalid value 'lo' for option parent: the loopback interface "
                               "is not a valid macvlan parent link")
    if not _IFNAME.fullmatch(parent):
        raise InvalidParameter(
            f"invalid value {parent!r} for option {OPT_PARENT}: an interface name of 1 to 15 "
            "characters without spaces, '/' or ':' (IF.VID, e.g. eth0.10, for a VLAN)")
    parse_vlan(parent)


def parent_of(net: NetworkInfo) -> str:
    """The network's parent interface ("" for an internal stub network not built yet)."""
    return str(net.driver_state.get("parent") or net.options.get(OPT_PARENT) or "")


def check_passthru(parent: str, mode: str, others: Sequence[NetworkInfo]) -> None:
    """Passthru takes its parent alone (Docker's rule and texts)."""
    for other in others:
        if parent_of(other) != parent:
            continue
        if mode == "passthru":
            raise Conflict(f"cannot use mode passthru, macvlan network {other.name} is "
                           f"already using parent interface {parent}")
        if mode_of(other.options) == "passthru":
            raise Conflict(f"macvlan network {other.name} is already using parent interface "
                           f"{parent} in mode passthru")


def stub_names(net_id: str) -> tuple[str, str]:
    """The two ends of a parentless network's veth stub: (parent end, far end)."""
    return "mvs-" + net_id[:11], "mvp-" + net_id[:11]


def missing_parent(parent: str) -> InvalidParameter:
    return InvalidParameter(
        f"invalid value {parent!r} for option {OPT_PARENT}: the requested parent interface "
        f"{parent} was not found on the host")


# -- the driver --------------------------------------------------------------------

class MacvlanDriver:
    """Driver "macvlan" of one muslin instance."""

    name = "macvlan"
    uses_ipam = True
    kind = "macvlan"

    def __init__(self, host: Host, mark: str,
                 peers: Callable[[], list[NetworkInfo]] = list) -> None:
        self._host = host
        self._mark = mark
        self._netmark = f"{mark}net:"
        self._peers = peers  # the instance's other networks of this driver

    def capabilities(self) -> Capability:
        return Capability("local", "global")

    def bridge_name(self, net: NetworkInfo) -> str:
        return ""

    def firewall_rules(self, net: NetworkInfo) -> BridgeRules | None:
        return None

    # -- validation ------------------------------------------------------
    def validate_options(self, options: dict[str, str], *, internal: bool) -> dict[str, str]:
        out = dict(options)
        check_mode(out.get(OPT_MODE, ""))
        parent = out.get(OPT_PARENT, "")
        if not parent:
            return out
        check_parent_name(parent)
        vlan = parse_vlan(parent)

        def look(links: Links, _nft: Nft) -> tuple[bool, bool]:
            return (links.get(parent) is not None,
                    vlan is not None and links.get(vlan[0]) is not None)

        exists, base_exists = self._host.call(look)
        if not exists:
            if vlan is None:
                raise missing_parent(parent)
            self._require_vlan(parent, vlan)
            if not base_exists:
                raise InvalidParameter(
                    f"invalid value {parent!r} for option {OPT_PARENT}: the parent interface "
                    f"{vlan[0]} of VLAN sub-interface {parent} was not found on the host")
        check_passthru(parent, mode_of(out), self._peers())
        return out

    @staticmethod
    def _require_vlan(parent: str, vlan: tuple[str, int]) -> None:
        if not features().vlan_8021q:
            raise MissingKernelFeature(
                f"macvlan parent {parent} (an 802.1Q VLAN sub-interface of {vlan[0]}, VLAN "
                f"{vlan[1]})", "CONFIG_VLAN_8021Q")

    # -- networks --------------------------------------------------------
    def _ours(self, link: Link, net_id: str) -> bool:
        return link.alias in (f"{self._netmark}{net_id}", "")

    def create_network(self, net: NetworkInfo) -> dict[str, Any]:
        parent = net.options.get(OPT_PARENT, "")
        if not parent:
            return self._create_stub(net)
        vlan = parse_vlan(parent)
        exists = self._host.call(lambda links, _n: links.get(parent) is not None)
        if not exists and vlan is not None:
            self._require_vlan(parent, vlan)

        def build(links: Links, _nft: Nft) -> dict[str, Any]:
            link = links.get(parent)
            if link is not None:  # muslin's only if it is a VLAN link muslin made
                return {"parent": parent, "made": link.kind == "vlan"
                        and link.alias.startswith(self._netmark)}
            if vlan is None:
                raise missing_parent(parent)
            base = links.get(vlan[0])
            if base is None:
                raise missing_parent(vlan[0])
            links.add_vlan(parent, parent=base.index, vid=vlan[1],
                           alias=f"{self._netmark}{net.id}")
            return {"parent": parent, "made": True}

        return self._host.call(build)

    def _create_stub(self, net: NetworkInfo) -> dict[str, Any]:
        near, far = stub_names(net.id)
        alias = f"{self._netmark}{net.id}"

        def build(links: Links, _nft: Nft) -> None:
            for name in (near, far):
                old = links.get(name)
                if old is not None:
                    if not self._ours(old, net.id):
                        raise Conflict(f"interface name {name} is already in use by another "
                                       "interface")
                    links.delete(old.index)  # a half-built stub of ours: start over
            links.add_veth(near, far, alias=alias)
            try:
                for name in (near, far):
                    links.set(links.require(name).index, ifalias=alias, state="up")
                    # nothing of the host may speak on the stub (no IPv6 link-local)
                    sysctl.set(f"net/ipv6/conf/{name}/disable_ipv6", "1")
            except BaseException:
                links.delete(links.require(near).index)
                raise

        self._host.call(build)
        return {"parent": near, "made": True, "stub": far}

    def delete_network(self, net: NetworkInfo) -> None:
        if not net.driver_state.get("made"):
            return  # the user's parent (or nothing built): left as it is
        parent = parent_of(net)
        users = [p for p in self._peers() if p.id != net.id and parent_of(p) == parent]
        own = f"{self._netmark}{net.id}"

        stub = bool(net.driver_state.get("stub"))

        def remove(links: Links, _nft: Nft) -> None:
            link = links.get(parent)
            if link is None or not link.alias.startswith(self._netmark) or \
                    link.kind != ("veth" if stub else "vlan"):
                return  # never another network's bridge or a link muslin did not make
            if not users:
                links.delete(link.index)
            elif link.alias == own:  # another network still uses it: it owns it now
                links.set(link.index, ifalias=f"{self._netmark}{users[0].id}")

        self._host.call(remove)

    def check_network(self, net: NetworkInfo) -> list[str]:
        if not net.driver_state.get("made"):
            return []  # the user's parent: not muslin's to check or rebuild
        names = [parent_of(net)] + ([str(net.driver_state["stub"])]
                                    if net.driver_state.get("stub") else [])

        def check(links: Links, _nft: Nft) -> list[str]:
            out = []
            for name in names:
                link = links.get(name)
                if link is None:
                    out.append(f"network {net.name}: macvlan parent {name} is missing")
                    continue
                if not link.alias.startswith(self._netmark):
                    out.append(f"network {net.name}: macvlan parent {name} lacks muslin's "
                               "mark")
                if not link.up:
                    out.append(f"network {net.name}: macvlan parent {name} is down")
            return out

        return self._host.call(check)

    # -- endpoints -------------------------------------------------------
    @staticmethod
    def host_ifname(ep: EndpointInfo) -> str:
        """The link's name on the host, before it moves into the sandbox."""
        return "mv" + ep.id[:13]

    def _make_link(self, links: Links, name: str, parent: int, net: NetworkInfo,
                   ep: EndpointInfo, alias: str) -> Link:
        return links.add_macvlan(name, parent=parent, mode=mode_of(net.options), alias=alias,
                                 mac=ep.mac)

    def join(self, net: NetworkInfo, ep: EndpointInfo, netns_path: str,
             ifname: str) -> tuple[JoinInfo, dict[str, Any]]:
        parent = parent_of(net)
        tmp = self.host_ifname(ep)
        alias = f"{self._mark}ep:{ep.id}"

        def plug(links: Links, _nft: Nft) -> None:
            par = links.get(parent)
            if par is None:
                raise KernelError(f"the requested parent interface {parent} was not found on "
                                  "the host")
            old = links.get(tmp)
            if old is not None and old.alias in (alias, ""):
                links.delete(old.index)  # left by a killed process: ours, start over
            try:
                link = self._make_link(links, tmp, par.index, net, ep, alias)
            except KernelError as e:
                if mode_of(net.options) == "passthru":
                    raise Conflict(f"macvlan mode passthru allows one endpoint on parent "
                                   f"interface {parent}, which already has one ({e})") from e
                raise
            fd = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                links.move_to_netns(link.index, fd, ifname)
            except BaseException:
                links.delete(link.index)
                raise
            finally:
                os.close(fd)

        self._host.call(plug)
        gw4 = gw6 = None
        if not net.internal and net.options.get(OPT_PARENT):
            for gw in net.gateways:
                ip = gw.split("/")[0]
                if ":" in ip:
                    gw6 = gw6 or ip
                else:
                    gw4 = gw4 or ip
        return JoinInfo(gw4, gw6), {"netns": netns_path, "ifname": ifname}

    def leave(self, net: NetworkInfo, ep: EndpointInfo) -> None:
        tmp = self.host_ifname(ep)
        alias = f"{self._mark}ep:{ep.id}"

        def unplug(links: Links, _nft: Nft) -> None:
            old = links.get(tmp)  # a join cut short before the move
            if old is not None and old.alias in (alias, ""):
                links.delete(old.index)

        self._host.call(unplug)
        path = str(ep.driver_state.get("netns") or "")
        ifname = str(ep.driver_state.get("ifname") or "")
        if not path or not ifname or not netns.is_netns(path):
            return

        def remove(links: Links) -> None:
            link = links.get(ifname)
            if link is not None and link.alias == alias:
                links.delete(link.index)

        in_netns(path, remove)

    def check_endpoint(self, net: NetworkInfo, ep: EndpointInfo) -> list[str]:
        path = str(ep.driver_state.get("netns") or "")
        ifname = str(ep.driver_state.get("ifname") or "")
        if not path or not ifname:
            return [f"endpoint {ep.name}: its {self.kind} link is not recorded"]
        if not netns.is_netns(path):
            return [f"endpoint {ep.name}: sandbox namespace {path} is missing"]
        alias = f"{self._mark}ep:{ep.id}"

        def check(links: Links) -> list[str]:
            link = links.get(ifname)
            if link is None:
                return [f"endpoint {ep.name}: {self.kind} {ifname} is missing in its sandbox"]
            if link.kind != self.kind or link.alias != alias:
                return [f"endpoint {ep.name}: {ifname} in its sandbox is not muslin's "
                        f"{self.kind} link"]
            return [] if link.up else [f"endpoint {ep.name}: {self.kind} {ifname} is down"]

        return in_netns(path, check)

    def program_external_connectivity(self, net: NetworkInfo, ep: EndpointInfo) -> None:
        """The LAN's router is the way out: nothing to program."""

    def revoke_external_connectivity(self, net: NetworkInfo, ep: EndpointInfo) -> None:
        """The LAN's router is the way out: nothing to revoke."""


class IpvlanDriver(MacvlanDriver):
    """Driver "ipvlan": refused with a clear error (this kernel lacks CONFIG_IPVLAN)."""

    name = "ipvlan"
    kind = "ipvlan"

    def validate_options(self, options: dict[str, str], *, internal: bool) -> dict[str, str]:
        if not features().ipvlan:
            raise MissingKernelFeature("the ipvlan network driver (link type ipvlan)",
                                       "CONFIG_IPVLAN")
        raise Unavailable("the ipvlan network driver is not implemented by muslin yet; "
                          "the macvlan driver takes the same parent and IPAM options")
