"""Links, addresses, routes, neighbours and FDB entries through netlink (pyroute2).

One `Links` object wraps one netlink socket bound to one namespace; use it only on
the thread that made it (pyroute2 sockets are per thread). Lookups go by name or
index with a direct GET, never by dumping every link, so their cost does not grow
with the host's interface count; only `marked()` dumps, and only reconcile and
leak checks call it. Every link muslin makes carries an ownership mark in its
interface alias. Must not decide names, addresses or policy.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from muslin.errors import KernelError, MissingKernelFeature

NUD_PERMANENT = 0x80
NTF_SELF = 0x02

_KIND_OPTION = {
    "bridge": "CONFIG_BRIDGE",
    "veth": "CONFIG_VETH",
    "vxlan": "CONFIG_VXLAN",
    "macvlan": "CONFIG_MACVLAN",
    "vlan": "CONFIG_VLAN_8021Q",
    "ipvlan": "CONFIG_IPVLAN",
    "dummy": "CONFIG_DUMMY",
    "wireguard": "CONFIG_WIREGUARD",
}


@dataclass(frozen=True)
class Link:
    index: int
    name: str
    kind: str
    alias: str
    mac: str
    mtu: int
    up: bool
    master: int


@dataclass(frozen=True)
class Address:
    ip: str
    prefixlen: int

    @property
    def interface(self) -> str:
        return f"{self.ip}/{self.prefixlen}"


@contextmanager
def _kernel(what: str, kind: str | None = None) -> Iterator[None]:
    try:
        yield
    except NetlinkError as e:
        if kind and e.code == errno.EOPNOTSUPP:
            raise MissingKernelFeature(f"link type {kind}", _KIND_OPTION.get(kind, kind)) from e
        raise KernelError(f"{what}: {e.args[1] if len(e.args) > 1 else e}") from e


def _link(msg: Any) -> Link:
    info = msg.get("IFLA_LINKINFO")
    kind = (info.get("IFLA_INFO_KIND") if info else None) or ""
    return Link(
        index=msg["index"],
        name=msg.get("IFLA_IFNAME") or "",
        kind=kind,
        alias=msg.get("IFLA_IFALIAS") or "",
        mac=msg.get("IFLA_ADDRESS") or "",
        mtu=msg.get("IFLA_MTU") or 0,
        up=bool(msg["flags"] & 1),
        master=msg.get("IFLA_MASTER") or 0,
    )


def _family(ip: str) -> int:
    return 4 if ipaddress.ip_address(ip).version == 4 else 6


class Links:
    """Netlink operations in the namespace of the thread that made this object."""

    def __init__(self) -> None:
        # groups=0: no multicast subscriptions, so no event backlog to parse on each call
        self._ipr = IPRoute(groups=0)

    def close(self) -> None:
        self._ipr.close()

    # -- links -----------------------------------------------------------
    def get(self, name: str) -> Link | None:
        try:
            msgs = self._ipr.link("get", ifname=name)
        except NetlinkError as e:
            if e.code == errno.ENODEV:
                return None
            raise KernelError(f"get link {name}: {e}") from e
        return _link(msgs[0])

    def get_index(self, index: int) -> Link | None:
        try:
            msgs = self._ipr.link("get", index=index)
        except NetlinkError as e:
            if e.code == errno.ENODEV:
                return None
            raise KernelError(f"get link #{index}: {e}") from e
        return _link(msgs[0])

    def require(self, name: str) -> Link:
        link = self.get(name)
        if link is None:
            raise KernelError(f"link {name} does not exist")
        return link

    def index(self, name: str) -> int:
        """The index of a link of this namespace (an ioctl: far cheaper than get)."""
        try:
            return socket.if_nametoindex(name)
        except OSError:
            raise KernelError(f"link {name} does not exist") from None

    def marked(self, mark_prefix: str) -> list[Link]:
        """Every link whose alias starts with mark_prefix (dumps all links)."""
        with _kernel("list links"):
            out = [_link(m) for m in self._ipr.get_links()]
        return [link for link in out if link.alias.startswith(mark_prefix)]

    def add_bridge(self, name: str, *, alias: str, mac: str | None = None,
                   mtu: int | None = None) -> Link:
        kw: dict[str, Any] = {"ifname": name, "kind": "bridge"}
        if mac:
            kw["address"] = mac
        if mtu:
            kw["mtu"] = mtu
        with _kernel(f"create bridge {name}", "bridge"):
            self._ipr.link("add", **kw)
        return self._marked(name, alias)

    def add_veth(self, name: str, peer: str, *, alias: str, peer_netns_fd: int | None = None,
                 peer_mac: str | None = None, mtu: int | None = None,
                 master: int | None = None, up: bool = False) -> int:
        """A veth pair: `name` here, `peer` in the namespace behind peer_netns_fd; the
        mark, the master and the up state are set in one more call. The index of
        `name`."""
        peer_kw: dict[str, Any] = {"ifname": peer}
        if peer_netns_fd is not None:
            peer_kw["net_ns_fd"] = peer_netns_fd
        if peer_mac:
            peer_kw["address"] = peer_mac
        if mtu:
            peer_kw["mtu"] = mtu
        kw: dict[str, Any] = {"ifname": name, "kind": "veth", "peer": peer_kw}
        if mtu:
            kw["mtu"] = mtu
        with _kernel(f"create veth {name}", "veth"):
            self._ipr.link("add", **kw)
        extra: dict[str, Any] = {}
        if master is not None:
            extra["master"] = master
        if up:
            extra["state"] = "up"
        index = self.index(name)
        self._mark(index, name, alias, **extra)
        return index

    def add_macvlan(self, name: str, *, parent: int, mode: str, alias: str,
                    mac: str | None = None, mtu: int | None = None) -> Link:
        kw: dict[str, Any] = {"ifname": name, "kind": "macvlan", "link": parent,
                              "macvlan_mode": mode}
        if mac:
            kw["address"] = mac
        if mtu:
            kw["mtu"] = mtu
        with _kernel(f"create macvlan {name}", "macvlan"):
            self._ipr.link("add", **kw)
        return self._marked(name, alias)

    def add_vlan(self, name: str, *, parent: int, vid: int, alias: str) -> Link:
        """An 802.1Q sub-interface of `parent` tagging VLAN `vid`, marked and up."""
        with _kernel(f"create vlan {name}", "vlan"):
            self._ipr.link("add", ifname=name, kind="vlan", link=parent, vlan_id=vid)
        return self._marked(name, alias, state="up")

    def add_vxlan(self, name: str, *, vni: int, alias: str, local: str | None = None,
                  port: int = 4789, underlay: int | None = None,
                  mtu: int | None = None) -> Link:
        kw: dict[str, Any] = {"ifname": name, "kind": "vxlan", "vxlan_id": vni,
                              "vxlan_port": port, "vxlan_learning": 0}
        if local:
            kw["vxlan_local"] = local
        if underlay:
            kw["vxlan_link"] = underlay
        if mtu:
            kw["mtu"] = mtu
        with _kernel(f"create vxlan {name}", "vxlan"):
            self._ipr.link("add", **kw)
        return self._marked(name, alias)

    def _marked(self, name: str, alias: str, **extra: Any) -> Link:
        """Sets the ownership mark (the kernel ignores an alias given at creation) and
        any other attributes (master, state) in the same request."""
        link = self.require(name)
        self._mark(link.index, name, alias, **extra)
        return replace(link, alias=alias, master=extra.get("master", link.master),
                       up=link.up or extra.get("state") == "up")

    def _mark(self, index: int, name: str, alias: str, **extra: Any) -> None:
        with _kernel(f"mark link {name}"):
            self._ipr.link("set", index=index, ifalias=alias, **extra)

    def add_kind(self, name: str, kind: str, **kw: Any) -> None:
        """Creates a link of any kind (used by the feature probe)."""
        with _kernel(f"create {kind} {name}", kind):
            self._ipr.link("add", ifname=name, kind=kind, **kw)

    def set(self, index: int, **kw: Any) -> None:
        """Changes link attributes: state="up", master=index, mtu, ifname, ifalias, ..."""
        with _kernel(f"set link #{index} {sorted(kw)}"):
            self._ipr.link("set", index=index, **kw)

    def set_hairpin(self, index: int, on: bool = True) -> None:
        """A bridge port's hairpin mode: frames may leave by the port they came in on
        (needed when a container reaches its own published port through the host)."""
        with _kernel(f"set hairpin mode of #{index}"):
            self._ipr.brport("set", index=index, mode=1 if on else 0)

    def move_to_netns(self, index: int, netns_fd: int, new_name: str | None = None) -> None:
        kw: dict[str, Any] = {"net_ns_fd": netns_fd}
        if new_name:
            kw["ifname"] = new_name
        with _kernel(f"move link #{index} to namespace"):
            self._ipr.link("set", index=index, **kw)

    def delete(self, index: int) -> None:
        try:
            self._ipr.link("del", index=index)
        except NetlinkError as e:
            if e.code != errno.ENODEV:
                raise KernelError(f"delete link #{index}: {e}") from e

    def ports(self, bridge: int) -> list[Link]:
        """The links enslaved to a bridge (a filtered dump on the master)."""
        with _kernel(f"list ports of #{bridge}"):
            return [_link(m) for m in self._ipr.get_links(master=bridge)]

    # -- addresses -------------------------------------------------------
    def addresses(self, index: int) -> list[Address]:
        with _kernel(f"list addresses of #{index}"):
            msgs = self._ipr.get_addr(index=index)
        return [Address(m.get("IFA_ADDRESS"), m["prefixlen"]) for m in msgs
                if m.get("IFA_ADDRESS") and not str(m.get("IFA_ADDRESS")).startswith("fe80")]

    def add_address(self, index: int, ip: str, prefixlen: int) -> None:
        kw: dict[str, Any] = {"index": index, "address": ip, "prefixlen": prefixlen}
        if _family(ip) == 6:
            kw["flags"] = 0x02  # IFA_F_NODAD: usable at once, as Docker does
        try:
            self._ipr.addr("add", **kw)
        except NetlinkError as e:
            if e.code != errno.EEXIST:
                raise KernelError(f"add address {ip}/{prefixlen} to #{index}: {e}") from e

    def del_address(self, index: int, ip: str, prefixlen: int) -> None:
        try:
            self._ipr.addr("del", index=index, address=ip, prefixlen=prefixlen)
        except NetlinkError as e:
            if e.code not in (errno.EADDRNOTAVAIL, errno.ENODEV):
                raise KernelError(f"delete address {ip}/{prefixlen}: {e}") from e

    # -- routes ----------------------------------------------------------
    def default_routes(self, version: int) -> list[tuple[str, int]]:
        """(gateway, oif) of the main table's default routes of one IP version."""
        family = 2 if version == 4 else 10
        with _kernel("list routes"):
            msgs = self._ipr.get_routes(family=family, table=254)
        return [(m.get("RTA_GATEWAY") or "", m.get("RTA_OIF") or 0) for m in msgs
                if m["dst_len"] == 0]

    def route_destinations(self, version: int) -> list[str]:
        """Every destination prefix in the main table (for IPAM's host-route check)."""
        family = 2 if version == 4 else 10
        with _kernel("list routes"):
            msgs = self._ipr.get_routes(family=family, table=254)
        return [f"{m.get('RTA_DST') or ('0.0.0.0' if version == 4 else '::')}/{m['dst_len']}"
                for m in msgs]

    def replace_default_route(self, gateway: str, oif: int) -> None:
        dst = "0.0.0.0/0" if _family(gateway) == 4 else "::/0"
        with _kernel(f"set default route via {gateway}"):
            self._ipr.route("replace", dst=dst, gateway=gateway, oif=oif)

    def del_default_route(self, version: int) -> None:
        dst = "0.0.0.0/0" if version == 4 else "::/0"
        try:
            self._ipr.route("del", dst=dst)
        except NetlinkError as e:
            if e.code not in (errno.ESRCH, errno.ENOENT):
                raise KernelError(f"delete default route: {e}") from e

    def add_route(self, dst: str, *, oif: int, gateway: str | None = None) -> None:
        kw: dict[str, Any] = {"dst": dst, "oif": oif}
        if gateway:
            kw["gateway"] = gateway
        with _kernel(f"add route {dst}"):
            self._ipr.route("replace", **kw)

    # -- neighbours and FDB ----------------------------------------------
    def add_neighbour(self, index: int, ip: str, mac: str) -> None:
        with _kernel(f"add neighbour {ip}"):
            self._ipr.neigh("replace", ifindex=index, dst=ip, lladdr=mac, state=NUD_PERMANENT)

    def del_neighbour(self, index: int, ip: str) -> None:
        try:
            self._ipr.neigh("del", ifindex=index, dst=ip)
        except NetlinkError as e:
            if e.code not in (errno.ENOENT, errno.ENODEV):
                raise KernelError(f"delete neighbour {ip}: {e}") from e

    def neighbours(self, index: int) -> list[tuple[str, str]]:
        with _kernel(f"list neighbours of #{index}"):
            msgs = self._ipr.get_neighbours(ifindex=index)
        return [(m.get("NDA_DST") or "", m.get("NDA_LLADDR") or "") for m in msgs]

    def add_fdb(self, index: int, mac: str, dst: str) -> None:
        with _kernel(f"add fdb {mac} -> {dst}"):
            self._ipr.fdb("append", ifindex=index, lladdr=mac, dst=dst, state=NUD_PERMANENT)

    def del_fdb(self, index: int, mac: str, dst: str) -> None:
        try:
            self._ipr.fdb("del", ifindex=index, lladdr=mac, dst=dst)
        except NetlinkError as e:
            if e.code not in (errno.ENOENT, errno.ENODEV):
                raise KernelError(f"delete fdb {mac}: {e}") from e

    def fdb(self, index: int) -> list[tuple[str, str]]:
        with _kernel(f"list fdb of #{index}"):
            msgs = self._ipr.fdb("dump", ifindex=index)
        return [(m.get("NDA_LLADDR") or "", m.get("NDA_DST") or "") for m in msgs
                if m.get("ifindex") == index]
