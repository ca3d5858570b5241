"""The CNM controller: networks, endpoints and sandboxes of one muslin instance.

Every operation validates all input first, records its intent in the store, applies
the kernel steps through the drivers and the kernel door, then commits; a failure
undoes what was done. A process killed mid-way leaves an intent (status
"creating", "joining", ...) that the next start-up's reconcile rolls back or
finishes. The store is the only authority: handles re-read it.

Concurrency: the core is synchronous and thread-safe. One lock per sandbox and one
per network, never a global lock across kernel calls; store transactions are short
and never span a kernel call; IPAM allocation is one transaction.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from muslin import faults, firewall, ipam, lockfile, portmap
from muslin.cnm import gateway, gwbridge
from muslin.cnm.ipam_driver import DefaultIpam, IpamDriver
from muslin.cnm.names import InstanceNames
from muslin.cnm.remote_ipam import RemoteIpam
from muslin.drivers.api import EndpointInfo, EndpointLifecycle, NetworkDriver, NetworkInfo
from muslin.drivers.bridge import (
    OPT_DEFAULT,
    OPT_HOST_IP,
    OPT_ICC,
    OPT_MASQ,
    OPT_MTU,
    OPT_NAME,
    BridgeDriver,
    random_mac,
)
from muslin.drivers.macvlan import IpvlanDriver, MacvlanDriver
from muslin.drivers.remote import RemoteDriver
from muslin.drivers.simple import HostDriver, NullDriver
from muslin.errors import Conflict, Forbidden, InvalidParameter, MuslinError, NotFound
from muslin.kernel import Host, Links, Nft, conntrack, in_netns, netns, sysctl
from muslin.kernel.nftwatch import NftEvents
from muslin.plugins import Plugins
from muslin.plugins.registry import IPAM_DRIVER, NETWORK_DRIVER
from muslin.portmap import PortHolder
from muslin.portspec import PortBinding
from muslin.store import LocalStore

Doc = dict[str, Any]
Listener = Callable[[str, "Doc | None", Doc], None]
log = logging.getLogger("muslin.cnm")

_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*")
_MAC = re.compile(r"([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}")

READY = "ready"


def _new_id() -> str:
    return secrets.token_hex(32)


def _mac_of(ipv4_cidr: str) -> str:
    """Docker's classic MAC of an IPv4 endpoint, 02:42 then the address's bytes: an
    address always comes with the same MAC, so the neighbours' ARP caches stay right
    when a container restarts (or another takes its address) on a new veth."""
    ip = ipaddress.IPv4Address(ipv4_cidr.split("/")[0])
    return "02:42:" + ":".join(f"{b:02x}" for b in ip.packed)


def _link_local_cidr(value: object) -> str:
    """A link-local IP as Docker puts it on the interface: /16 for IPv4, /64 for IPv6."""
    try:
        ip = ipaddress.ip_address(str(value))
    except ValueError:
        raise InvalidParameter(f"invalid link-local IP address: {value}") from None
    return f"{ip}/{16 if ip.version == 4 else 64}"


def _now() -> str:
    """RFC 3339 with nanoseconds, as Docker writes `Created`."""
    ns = time.time_ns()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 10**9)) + f".{ns % 10**9:09d}Z"


class Network:
    """A network (a handle: its data is read from the store)."""

    def __init__(self, ctl: Controller, net_id: str) -> None:
        self._ctl = ctl
        self.id = net_id

    def _doc(self) -> Doc:
        return self._ctl._doc("network", self.id, "network")

    @property
    def name(self) -> str:
        return str(self._doc()["name"])

    @property
    def driver(self) -> str:
        return str(self._doc()["driver"])

    @property
    def internal(self) -> bool:
        return bool(self._doc()["internal"])

    @property
    def options(self) -> dict[str, str]:
        return dict(self._doc()["options"])

    @property
    def labels(self) -> dict[str, str]:
        return dict(self._doc()["labels"])

    @property
    def subnets(self) -> list[str]:
        return [p["pool"]["subnet"] for p in self._doc()["ipam"]]

    @property
    def gateways(self) -> list[str]:
        return [p["pool"]["gateway"] for p in self._doc()["ipam"]]

    @property
    def bridge_name(self) -> str:
        return str(self._doc()["driver_state"].get("bridge", ""))

    def info(self) -> Doc:
        """The network's record (Docker's inspect shape is built on it by the API)."""
        return self._doc()

    def create_endpoint(self, name: str, ipv4_address: str | None = None,
                        aliases: Sequence[str] = (), *, ipv6_address: str | None = None,
                        mac_address: str | None = None,
                        link_local_ips: Sequence[str] = ()) -> Endpoint:
        """link_local_ips: extra addresses on the interface (Docker's LinkLocalIPs: a
        /16 for IPv4, a /64 for IPv6), outside IPAM."""
        return self._ctl._create_endpoint(self.id, name, ipv4_address, list(aliases),
                                          ipv6_address, mac_address, list(link_local_ips))

    def endpoints(self) -> list[Endpoint]:
        return [Endpoint(self._ctl, d["id"]) for d in self._ctl._endpoint_docs(self.id)]

    def endpoint(self, name_or_id: str) -> Endpoint:
        for d in self._ctl._endpoint_docs(self.id):
            if name_or_id in (d["name"], d["id"]):
                return Endpoint(self._ctl, d["id"])
        raise NotFound(f"endpoint {name_or_id} not found in network {self.name}")

    def delete(self) -> None:
        self._ctl._delete_network(self.id)

    def __repr__(self) -> str:
        return f"<Network {self.id[:12]}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Network) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)


class Endpoint:
    """An endpoint: one network attachment, joined to at most one sandbox."""

    def __init__(self, ctl: Controller, ep_id: str) -> None:
        self._ctl = ctl
        self.id = ep_id

    def _doc(self) -> Doc:
        return self._ctl._doc("endpoint", self.id, "endpoint")

    @property
    def name(self) -> str:
        return str(self._doc()["name"])

    @property
    def network(self) -> Network:
        return Network(self._ctl, self._doc()["network_id"])

    @property
    def ipv4_address(self) -> str | None:
        """The IPv4 address (without prefix length), or None."""
        v = self._doc().get("ipv4")
        return v.split("/")[0] if v else None

    @property
    def ipv6_address(self) -> str | None:
        v = self._doc().get("ipv6")
        return v.split("/")[0] if v else None

    @property
    def ipv4_cidr(self) -> str | None:
        """The IPv4 address with the network's prefix length (e.g. 172.18.0.2/16)."""
        v = self._doc().get("ipv4")
        return str(v) if v else None

    @property
    def mac_address(self) -> str:
        return str(self._doc()["mac"])

    @property
    def interface_name(self) -> str | None:
        """The interface's name inside the sandbox (eth0, eth1, ...) while joined."""
        v = self._doc().get("ifname")
        return str(v) if v else None

    @property
    def aliases(self) -> list[str]:
        return list(self._doc().get("aliases", []))

    @property
    def sandbox(self) -> Sandbox | None:
        sid = self._doc().get("sandbox_id")
        return Sandbox(self._ctl, sid) if sid else None

    def join(self, sb: Sandbox, *, gw_priority: int = 0) -> None:
        self._ctl._join(self.id, sb.id, gw_priority)
        self._trace("joined", sb)

    def publish(self, bindings: Sequence[PortBinding]) -> list[PortBinding]:
        """Publishes ports of this joined endpoint on the host (kernel DNAT); returns the
        bindings with the host ports the kernel picked for those given as 0."""
        return self._ctl._publish(self.id, list(bindings))

    @property
    def ports(self) -> list[PortBinding]:
        return [PortBinding.from_dict(d) for d in self._doc().get("ports", [])]

    def leave(self, sb: Sandbox) -> None:
        self._ctl._leave(self.id, sb.id)
        self._trace("left", sb)

    def _trace(self, what: str, sb: Sandbox) -> None:
        """A debug line naming the network, endpoint and container (the sandbox's key)."""
        if log.isEnabledFor(logging.DEBUG):
            doc = self._doc()
            log.debug("endpoint %s %s sandbox %s (%s)", doc["name"], what, sb.id[:12],
                      doc.get("ipv4") or doc.get("ipv6") or "no address",
                      extra={"network": doc["network_id"], "endpoint": self.id,
                             "container": sb.key, "sandbox": sb.id})

    def delete(self) -> None:
        self._ctl._delete_endpoint(self.id)

    def info(self) -> Doc:
        return self._doc()

    def __repr__(self) -> str:
        return f"<Endpoint {self.id[:12]}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Endpoint) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)


class Sandbox:
    """A sandbox: a network namespace pinned under the instance's run dir."""

    def __init__(self, ctl: Controller, sb_id: str) -> None:
        self._ctl = ctl
        self.id = sb_id

    def _doc(self) -> Doc:
        return self._ctl._doc("sandbox", self.id, "sandbox")

    @property
    def key(self) -> str:
        return str(self._doc()["key"])

    @property
    def netns_path(self) -> str:
        return str(self._doc()["netns_path"])

    def endpoints(self) -> list[Endpoint]:
        return [Endpoint(self._ctl, e) for e in self._doc()["endpoints"]]

    def delete(self) -> None:
        self._ctl._delete_sandbox(self.id)

    def rename(self, name: str) -> None:
        """Renames the sandbox (a container rename): its endpoints named after it
        take the new name on every network."""
        self._ctl._rename_sandbox(self.id, name)

    def info(self) -> Doc:
        return self._doc()

    def __repr__(self) -> str:
        return f"<Sandbox {self.id[:12]}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sandbox) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)


@dataclass(frozen=True)
class _Settings:
    bip: str | None
    ip_forward: bool
    iptables: bool
    default_bridge: bool
    mtu: int
    icc: bool
    ip_masq: bool


class Controller:
    """One muslin instance: its state dir, run dir, host namespace and kernel objects."""

    def __init__(self, state_dir: str = "/var/lib/muslin", run_dir: str = "/run/muslin",
                 prefix: str | None = None, *, host_netns: str | None = None,
                 bip: str | None = None,
                 default_address_pools: Sequence[Mapping[str, Any]] | None = None,
                 ip_forward: bool = True, iptables: bool = True,
                 default_bridge: bool = True, mtu: int = 0, icc: bool = True,
                 ip_masq: bool = True, plugins: Plugins | None = None,
                 reconcile: bool = True) -> None:
        """reconcile=False opens the state and the kernel as another process left them,
        changing nothing, so that leaks() reports what it left (a test's check)."""
        self.names = InstanceNames(prefix)
        # remote drivers: Docker's plugin directories unless the instance names its own
        self.plugins = plugins or Plugins()
        self._remote: dict[str, Any] = {}
        pools = (ipam.pool_candidates(ipam.parse_address_pools(default_address_pools))
                 if default_address_pools else None)
        if bip is not None:
            try:
                iface = ipaddress.ip_interface(bip)
            except ValueError:
                raise InvalidParameter(f"invalid bip {bip!r}: an address in CIDR notation, "
                                       "such as 172.17.0.1/16") from None
            ipam.validate_pool(ipam.IPAMPool(subnet=str(iface.network), gateway=str(iface.ip)))
        self.state_dir = os.path.abspath(state_dir)
        self.run_dir = os.path.abspath(run_dir)
        self.netns_dir = os.path.join(self.run_dir, "netns")
        self._settings = _Settings(bip, ip_forward, iptables, default_bridge, mtu, icc,
                                   ip_masq)
        os.makedirs(self.state_dir, mode=0o700, exist_ok=True)
        os.makedirs(self.netns_dir, mode=0o755, exist_ok=True)
        self._lockfile = lockfile.take(os.path.join(self.state_dir, "muslin.lock"),
                                       f"state dir {self.state_dir}")
        self._locks: dict[str, threading.RLock] = {}
        self._listeners: list[Listener] = []
        self._locks_mutex = threading.Lock()
        self._closed = False
        self._fw_lock = threading.RLock()
        self._fw_watch: NftEvents | None = None
        try:
            self.store = LocalStore(os.path.join(self.state_dir, "state.db"))
            self.host = Host(host_netns, name=f"muslin-{self.names.instance}-host")
            self.ports = PortHolder(self.host)
            self._drivers: dict[str, NetworkDriver] = {
                "bridge": BridgeDriver(self.host, self.names.mark),
                "host": HostDriver(), "null": NullDriver(),
                "macvlan": MacvlanDriver(self.host, self.names.mark,
                                         lambda: self._driver_networks("macvlan")),
                "ipvlan": IpvlanDriver(self.host, self.names.mark)}
            self._ipam: dict[str, IpamDriver] = {
                "default": DefaultIpam(self.store, local_pools=pools, ula_seed=self.state_dir)}
            if reconcile:
                from muslin.cnm.reconcile import reconcile as reconcile_kernel

                reconcile_kernel(self)
                self._ensure_predefined()
        except BaseException:
            self.close()
            raise

    # -- life ------------------------------------------------------------
    def close(self) -> None:
        """Releases the state dir; kernel objects stay (they are the instance's state)."""
        if self._closed:
            return
        self._closed = True
        if hasattr(self, "ports"):
            self.ports.close()
        if hasattr(self, "host"):
            self.host.close()
        if hasattr(self, "store"):
            self.store.close()
        os.close(self._lockfile)

    def __enter__(self) -> Controller:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _locked(self, *keys: str) -> Iterator[None]:
        with self._locks_mutex:
            locks = [self._locks.setdefault(k, threading.RLock()) for k in sorted(keys)]
        for lock in locks:
            lock.acquire()
        try:
            yield
        finally:
            for lock in reversed(locks):
                lock.release()

    # -- listeners ---------------------------------------------------------
    def add_listener(self, fn: Listener) -> None:
        """fn(event, endpoint_doc, sandbox_doc) after a join ("join"), before a leave
        ("leave"), before a sandbox is deleted ("sandbox-delete", endpoint None) and
        after it was renamed ("rename", endpoint None).
        Called on the operation's thread with the sandbox locked; a listener must be
        quick and must not call back into the controller's mutating methods; its
        errors are logged, never raised."""
        self._listeners.append(fn)

    def remove_listener(self, fn: Listener) -> None:
        """Stops calling fn (quiet when it is not a listener)."""
        with contextlib.suppress(ValueError):
            self._listeners.remove(fn)

    def _notify(self, event: str, ep: Doc | None, sb: Doc) -> None:
        for fn in self._listeners:
            try:
                fn(event, ep, sb)
            except Exception:
                log.exception("listener failed on %s", event)

    # -- store helpers -----------------------------------------------------
    def _doc(self, kind: str, key: str, what: str) -> Doc:
        doc = self.store.get(kind, key)
        if doc is None:
            raise NotFound(f"{what} {key} not found")
        return doc

    def _endpoint_docs(self, net_id: str) -> list[Doc]:
        with self.store.transaction() as t:
            ids = [t.get("epname", k) for k in t.keys("epname", net_id + "/")]
            docs = [t.get("endpoint", i["id"]) for i in ids if i]
        return [d for d in docs if d]

    def network_info(self, doc: Doc) -> NetworkInfo:
        pools = doc["ipam"]
        v4 = [p for p in pools if ":" not in p["pool"]["subnet"]]
        v6 = [p for p in pools if ":" in p["pool"]["subnet"]]
        ordered = v4 + v6
        gws = []
        for p in ordered:
            plen = p["pool"]["subnet"].split("/")[1]
            gws.append(f"{p['pool']['gateway']}/{plen}")
        return NetworkInfo(
            id=doc["id"], name=doc["name"], options=dict(doc["options"]),
            internal=bool(doc["internal"]), enable_ipv6=bool(doc["enable_ipv6"]),
            subnets=tuple(p["pool"]["subnet"] for p in ordered), gateways=tuple(gws),
            driver_state=dict(doc.get("driver_state", {})))

    @staticmethod
    def endpoint_info(doc: Doc) -> EndpointInfo:
        return EndpointInfo(id=doc["id"], name=doc["name"], network_id=doc["network_id"],
                            mac=doc["mac"], ipv4=doc.get("ipv4"), ipv6=doc.get("ipv6"),
                            driver_state=dict(doc.get("driver_state", {})))

    def _driver_networks(self, driver: str) -> list[NetworkInfo]:
        """The networks of one driver that exist or are being made (for drivers whose
        networks share kernel objects, such as macvlan parents)."""
        return [self.network_info(d) for d in self.store.list("network")
                if d["driver"] == driver and d["status"] in ("creating", READY)]

    def driver(self, name: str) -> NetworkDriver:
        """A built-in driver, else a remote one (NotFound when no plugin has the name;
        the plugin is activated at its first call)."""
        found = self._drivers.get(name)
        if found is None:
            found = self._remote_driver(name, NETWORK_DRIVER)
        return found

    def ipam_driver(self, name: str) -> IpamDriver:
        found = self._ipam.get(name)
        if found is None:
            found = self._remote_driver(name, IPAM_DRIVER)
        return found

    def _remote_driver(self, name: str, kind: str) -> Any:
        with self._locks_mutex:
            found = self._remote.get(f"{kind}:{name}")
        if found is None:
            plugin = self.plugins.get(name, kind, activate=False)
            made = (RemoteDriver(plugin, self.host) if kind == NETWORK_DRIVER
                    else RemoteIpam(plugin))
            with self._locks_mutex:
                found = self._remote.setdefault(f"{kind}:{name}", made)
        return found

    def _driver_or_none(self, name: str) -> NetworkDriver | None:
        try:
            return self.driver(name)
        except MuslinError:
            return None

    # -- queries -----------------------------------------------------------
    def networks(self) -> list[Network]:
        return [Network(self, d["id"]) for d in self.store.list("network")
                if d["status"] == READY]

    def network(self, name_or_id: str) -> Network:
        """By full id, then name, then unique id prefix, as Docker resolves them."""
        docs = [d for d in self.store.list("network") if d["status"] == READY]
        for field in ("id", "name"):
            found = [d for d in docs if d[field] == name_or_id]
            if found:
                return Network(self, found[0]["id"])
        found = [d for d in docs if name_or_id and d["id"].startswith(name_or_id)]
        if len(found) == 1:
            return Network(self, found[0]["id"])
        if len(found) > 1:
            raise InvalidParameter(f"network {name_or_id} is ambiguous ({len(found)} matches "
                                   "found on name)")
        raise NotFound(f"network {name_or_id} not found")

    def sandboxes(self) -> list[Sandbox]:
        return [Sandbox(self, d["id"]) for d in self.store.list("sandbox")
                if d["status"] == READY]

    def sandbox(self, key_or_id: str) -> Sandbox:
        for d in self.store.list("sandbox"):
            if d["status"] == READY and key_or_id in (d["id"], d["key"]):
                return Sandbox(self, d["id"])
        raise NotFound(f"sandbox {key_or_id} not found")

    def endpoint(self, ep_id: str) -> Endpoint:
        self._doc("endpoint", ep_id, "endpoint")
        return Endpoint(self, ep_id)

    def leaks(self) -> list[str]:
        """Every difference between the state and the kernel, both ways."""
        from muslin.cnm.reconcile import leaks

        return leaks(self)

    # -- networks --------------------------------------------------------
    def create_network(self, name: str, driver: str = "bridge",
                       ipam: Sequence[ipam.IPAMPool | Mapping[str, Any]] | None = None,
                       options: Mapping[str, str] | None = None, internal: bool = False,
                       labels: Mapping[str, str] | None = None, *,
                       ipam_driver: str = "default", enable_ipv6: bool = False,
                       attachable: bool = False,
                       ipam_options: Mapping[str, str] | None = None) -> Network:
        return self._create_network(name, driver, ipam, options, internal, labels,
                                    ipam_driver=ipam_driver, enable_ipv6=enable_ipv6,
                                    attachable=attachable,
                                    ipam_options=dict(ipam_options or {}))

    def _validate_pools(self, pools: Sequence[ipam.IPAMPool | Mapping[str, Any]] | None,
                        enable_ipv6: bool) -> list[ipam.IPAMPool]:
        out: list[ipam.IPAMPool] = []
        for i, p in enumerate(pools or []):
            if isinstance(p, Mapping):
                unknown = set(p) - {"subnet", "ip_range", "gateway", "aux_addresses"}
                if unknown:
                    raise InvalidParameter(
                        f"ipam[{i}]: unknown field(s) {sorted(unknown)}: accepted are subnet, "
                        "ip_range, gateway, aux_addresses")
                p = ipam.IPAMPool(subnet=p.get("subnet") or "", ip_range=p.get("ip_range"),
                                  gateway=p.get("gateway"),
                                  aux_addresses=dict(p.get("aux_addresses") or {}))
            if not isinstance(p, ipam.IPAMPool):
                raise InvalidParameter(f"ipam[{i}]: expected muslin.IPAMPool or a mapping")
            pool = ipam.validate_pool(p)
            if pool.version == 6 and not enable_ipv6:
                raise InvalidParameter(
                    f"ipam[{i}]: IPv6 subnet {pool.subnet} needs enable_ipv6=True")
            out.append(p)
        return out

    def _host_routes(self) -> list[ipam.IPNetwork]:
        def read(links: Links, _nft: Nft) -> list[str]:
            return links.route_destinations(4) + links.route_destinations(6)

        return [ipaddress.ip_network(r, strict=False) for r in self.host.call(read)]

    def _create_network(self, name: str, driver_name: str,
                        pools: Sequence[ipam.IPAMPool | Mapping[str, Any]] | None,
                        options: Mapping[str, str] | None, internal: bool,
                        labels: Mapping[str, str] | None, *, ipam_driver: str,
                        enable_ipv6: bool, attachable: bool, predefined: bool = False,
                        ipam_options: dict[str, str] | None = None) -> Network:
        # 1. validate everything
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise InvalidParameter(
                f"invalid network name {name!r}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
        if name in ("bridge", "host", "none") and not predefined:
            raise Forbidden(f"{name} is a pre-defined network and cannot be created")
        driver = self.driver(driver_name)
        idrv = self.ipam_driver(ipam_driver)
        opts = driver.validate_options({str(k): str(v) for k, v in (options or {}).items()},
                                       internal=internal)
        requested = self._validate_pools(pools, enable_ipv6)
        if not driver.uses_ipam and requested:
            raise InvalidParameter(f"the {driver_name} driver takes no IPAM configuration")
        avoid = self._host_routes()
        net_id = _new_id()
        # 2. intent, one transaction; then IPAM (a remote IPAM is never called inside a
        # transaction), each pool recorded as it comes so an undo frees it
        with self._locked("netname:" + name), self.store.transaction() as t:
            if any(d["name"] == name for d in t.list("network")):
                raise Conflict(f"network with name {name} already exists")
            doc: Doc = {
                "id": net_id, "name": name, "driver": driver_name, "scope": "local",
                "ipam_driver": ipam_driver, "ipam": [], "options": opts,
                "ipam_options": ipam_options,
                "labels": dict(labels or {}), "internal": bool(internal),
                "attachable": bool(attachable), "enable_ipv6": bool(enable_ipv6),
                "created": _now(), "status": "creating", "predefined": predefined,
                "driver_state": {"bridge": driver.bridge_name(self.network_info(
                    {**{"options": opts, "internal": internal, "enable_ipv6": enable_ipv6,
                        "ipam": [], "id": net_id, "name": name}}))},
            }
            t.put("network", net_id, doc)
        # 3. apply, undo on failure
        try:
            if driver.uses_ipam:
                driver.capabilities()  # a remote driver is activated before any IPAM call
                self._request_pools(doc, idrv, requested, enable_ipv6, avoid)
            faults.point("network.create.pool")
            with self._locked("net:" + net_id):
                info = self.network_info(doc)
                if driver.uses_ipam or not predefined:
                    doc["driver_state"] = driver.create_network(info)
                if enable_ipv6 and self._settings.ip_forward:  # as reconcile does
                    self.host.call(lambda _l, _n: sysctl.set(
                        "net.ipv6.conf.all.forwarding", "1"))
                self.store.put("network", net_id, doc)
                faults.point("network.create.driver")
                info = self.network_info(doc)
                rules = driver.firewall_rules(info)
                with self._fw_lock:  # table and state change together
                    if self._settings.iptables and rules is not None:
                        self.host.call(lambda _l, nft: nft.run(
                            firewall.network_add(self.names.table, rules)))
                    faults.point("network.create.firewall")
                    faults.point("network.create.commit")
                    doc["status"] = READY
                    self.store.put("network", net_id, doc)
        except BaseException as e:
            try:
                self._undo_network(doc)
            except Exception as undo:  # the first error is the one to report
                e.add_note(f"undoing the network failed too: {undo}")
            raise
        return Network(self, net_id)

    def _request_pools(self, doc: Doc, idrv: IpamDriver, requested: list[ipam.IPAMPool],
                       enable_ipv6: bool, avoid: list[ipam.IPNetwork]) -> None:
        space = idrv.default_address_spaces()[0]
        v4: list[ipam.IPAMPool | None] = [p for p in requested if ":" not in p.subnet]
        v6: list[ipam.IPAMPool | None] = [p for p in requested if ":" in p.subnet]
        wanted = [(p, False) for p in v4 or [None]]
        if enable_ipv6:
            wanted += [(p, True) for p in v6 or [None]]
        for p, is_v6 in wanted:
            pid, pool = idrv.request_pool(space, p, v6=is_v6, owner=doc["id"], avoid=avoid,
                                          options=doc.get("ipam_options") or {})
            doc["ipam"].append({"id": pid, "pool": pool.to_dict()})
            self.store.put("network", doc["id"], doc)

    @staticmethod
    def _pool_addresses(p: Doc) -> list[str]:
        """A pool's gateway and aux addresses (released before the pool, as Docker)."""
        pool = p["pool"]
        out = [pool["gateway"]] if pool.get("gateway") else []
        return out + list((pool.get("aux_addresses") or {}).values())

    def _undo_network(self, doc: Doc) -> None:
        """Removes whatever of a network exists (kernel, IPAM, record); never raises."""
        info = self.network_info(doc)
        driver = self._driver_or_none(doc["driver"])
        if driver is not None:
            rules = driver.firewall_rules(info)
            if self._settings.iptables and rules is not None:
                try:
                    self._remove_network_rules(rules)
                except MuslinError as e:
                    log.warning("removing the rules of network %s: %s", doc["name"], e)
            # a plugin is told of a delete only once its CreateNetwork succeeded
            if not isinstance(driver, RemoteDriver) or doc["driver_state"].get("remote"):
                try:
                    driver.delete_network(info)
                except MuslinError as e:
                    log.warning("deleting network %s: %s", doc["name"], e)
        idrv = None
        try:
            idrv = self.ipam_driver(doc.get("ipam_driver", "default"))
        except MuslinError as e:
            log.warning("network %s: its IPAM driver is gone: %s", doc["name"], e)
        for p in doc["ipam"]:
            if idrv is not None:
                try:
                    idrv.release_pool(p["id"], addresses=self._pool_addresses(p))
                except MuslinError as e:
                    log.warning("network %s: releasing pool %s: %s", doc["name"], p["id"], e)
        self.store.delete("network", doc["id"])

    def _remove_network_rules(self, rules: firewall.BridgeRules) -> None:
        table = self.names.table

        def remove(_l: Links, nft: Nft) -> None:
            listing = nft.list_table("inet", table)
            if listing is None:
                return
            shape = firewall.plan.observed_shape(listing)
            if f"{rules.tag}-from" in shape.chains:
                nft.run(firewall.network_remove(table, rules))

        self.host.call(remove)

    def _delete_network(self, net_id: str) -> None:
        with self._locked("net:" + net_id):
            doc = self._doc("network", net_id, "network")
            if doc["status"] != READY:
                raise NotFound(f"network {net_id} not found")
            if doc.get("predefined"):
                raise Forbidden(f"{doc['name']} is a pre-defined network and cannot be removed")
            eps = self._endpoint_docs(net_id)
            if eps:
                names = ", ".join(e["name"] for e in eps[:5])
                raise Forbidden(f"error while removing network: network {doc['name']} id "
                                f"{net_id} has active endpoints ({names})")
            doc["status"] = "deleting"
            self.store.put("network", net_id, doc)
            self._undo_network(doc)

    def _ensure_predefined(self) -> None:
        """Docker's predefined networks: bridge (unless disabled), host and none."""
        names = {d["name"] for d in self.store.list("network")}
        if self._settings.default_bridge and "bridge" not in names:
            pools = None
            if self._settings.bip:
                iface = ipaddress.ip_interface(self._settings.bip)
                pools = [ipam.IPAMPool(subnet=str(iface.network), gateway=str(iface.ip))]
            opts = {OPT_NAME: self.names.default_bridge, OPT_DEFAULT: "true",
                    OPT_ICC: str(self._settings.icc).lower(),
                    OPT_MASQ: str(self._settings.ip_masq).lower(),
                    OPT_HOST_IP: "0.0.0.0"}
            if self._settings.mtu:
                opts[OPT_MTU] = str(self._settings.mtu)
            self._create_network("bridge", "bridge", pools, opts, False, {},
                                 ipam_driver="default", enable_ipv6=False, attachable=False,
                                 predefined=True)
        for name, driver in (("host", "host"), ("none", "null")):
            if name not in names:
                self._create_network(name, driver, None, {}, False, {}, ipam_driver="default",
                                     enable_ipv6=False, attachable=False, predefined=True)

    # -- endpoints -------------------------------------------------------
    def _create_endpoint(self, net_id: str, name: str, ipv4: str | None, aliases: list[str],
                         ipv6: str | None, mac: str | None,
                         link_local: Sequence[str] = ()) -> Endpoint:
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise InvalidParameter(
                f"invalid endpoint name {name!r}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
        for field, value in (("ipv4_address", ipv4), ("ipv6_address", ipv6)):
            if value is not None:
                try:
                    ip = ipaddress.ip_address(value)
                except ValueError:
                    raise InvalidParameter(f"invalid {field} {value!r}: expected an IP "
                                           "address") from None
                if (ip.version == 6) != (field == "ipv6_address"):
                    raise InvalidParameter(f"invalid {field} {value!r}: wrong address family")
        if mac is not None and not _MAC.fullmatch(mac):
            raise InvalidParameter(f"invalid mac_address {mac!r}: expected xx:xx:xx:xx:xx:xx")
        link_local_cidrs = [_link_local_cidr(ip) for ip in link_local]
        ep_id = _new_id()
        with self._locked("net:" + net_id):
            # intent first (one transaction), then IPAM and the driver outside it
            with self.store.transaction() as t:
                net = t.get("network", net_id)
                if net is None or net["status"] != READY:
                    raise NotFound(f"network {net_id} not found")
                if t.get("epname", f"{net_id}/{name}") is not None:
                    raise Conflict(f"endpoint with name {name} already exists in network "
                                   f"{net['name']}")
                subnets = [ipaddress.ip_network(p["pool"]["subnet"]) for p in net["ipam"]]
                for fam, want in (("ipv4", ipv4), ("ipv6", ipv6)):
                    if want is not None and not any(ipaddress.ip_address(want) in n
                                                    for n in subnets):
                        raise InvalidParameter(
                            f"invalid {fam}_address {want}: no subnet of network "
                            f"{net['name']} contains it")
                doc: Doc = {"id": ep_id, "name": name, "network_id": net_id,
                            "mac": (mac or random_mac()).lower(), "aliases": aliases,
                            "ipv4": None, "ipv6": None, "pools": {}, "sandbox_id": None,
                            "ifname": None, "status": "creating", "created": _now(),
                            "gw_priority": 0, "join": None, "driver_state": {},
                            "mac_requested": mac is not None,
                            "link_local": link_local_cidrs}
                t.put("endpoint", ep_id, doc)
                t.put("epname", f"{net_id}/{name}", {"id": ep_id})
            try:
                self._endpoint_addresses(net, doc, ipv4, ipv6)
                if mac is None and doc["ipv4"]:
                    doc["mac"] = _mac_of(doc["ipv4"])
                driver = self.driver(net["driver"])
                if isinstance(driver, EndpointLifecycle):
                    chosen = driver.create_endpoint(self.network_info(net),
                                                    self.endpoint_info(doc),
                                                    mac_requested=mac is not None)
                    doc["driver_created"] = True
                    for field in ("mac", "ipv4", "ipv6"):
                        if chosen.get(field) and (field == "mac" or not doc[field]):
                            doc[field] = chosen[field]
                doc["status"] = "created"
                self.store.put("endpoint", ep_id, doc)
            except BaseException:
                self._release_endpoint(doc)
                raise
        return Endpoint(self, ep_id)

    def _endpoint_addresses(self, net: Doc, doc: Doc, ipv4: str | None,
                            ipv6: str | None) -> None:
        """An address of each pool family from the network's IPAM driver, each recorded
        as it comes so that an undo frees it."""
        idrv = self.ipam_driver(net.get("ipam_driver", "default"))
        for p in net["ipam"]:
            v6 = ":" in p["pool"]["subnet"]
            fam, want = ("ipv6", ipv6) if v6 else ("ipv4", ipv4)
            if doc[fam] is not None:
                continue
            if want is not None and ipaddress.ip_address(want) not in \
                    ipaddress.ip_network(p["pool"]["subnet"]):
                continue
            addr = idrv.request_address(p["id"], want, owner=doc["id"], mac=doc["mac"])
            doc[fam] = f"{addr}/{p['pool']['subnet'].split('/')[1]}"
            doc["pools"][fam] = p["id"]
            self.store.put("endpoint", doc["id"], doc)

    def _delete_endpoint(self, ep_id: str) -> None:
        doc = self._doc("endpoint", ep_id, "endpoint")
        net_id = doc["network_id"]
        with self._locked("net:" + net_id):
            with self.store.transaction() as t:
                current = t.get("endpoint", ep_id)
                if current is None or current["status"] == "deleting":
                    raise NotFound(f"endpoint {ep_id} not found")
                doc = current
                if doc["sandbox_id"]:
                    raise Forbidden(f"endpoint {doc['name']} is joined to a sandbox: leave it "
                                    "first")
                doc["status"] = "deleting"
                t.put("endpoint", ep_id, doc)
            self._release_endpoint(doc)

    def _release_endpoint(self, doc: Doc) -> None:
        """The driver's endpoint, the addresses, then the records (Docker's order); only
        plugin errors of the driver are logged, as Docker does."""
        net = self.store.get("network", doc["network_id"])
        if net is not None and doc.get("driver_created"):
            driver = self._driver_or_none(net["driver"])
            if isinstance(driver, EndpointLifecycle):
                driver.delete_endpoint(self.network_info(net), self.endpoint_info(doc))
        if net is not None and doc.get("pools"):
            idrv = self.ipam_driver(net.get("ipam_driver", "default"))
            for fam, pool_id in doc["pools"].items():
                if doc.get(fam):
                    idrv.release_address(pool_id, doc[fam].split("/")[0])
        with self.store.transaction() as t:
            t.delete("epname", f"{doc['network_id']}/{doc['name']}")
            t.delete("endpoint", doc["id"])

    # -- sandboxes -------------------------------------------------------
    def create_sandbox(self, key: str, *, name: str | None = None) -> Sandbox:
        """A sandbox keyed by key (e.g. a container id); name is the container's name."""
        if not isinstance(key, str) or not key:
            raise InvalidParameter("invalid sandbox key: a non-empty string is required")
        sb_id = _new_id()
        path = os.path.join(self.netns_dir, sb_id[:12])
        with self._locked("sbkey:" + key), self.store.transaction() as t:
            if any(d["key"] == key for d in t.list("sandbox")):
                raise Conflict(f"sandbox with key {key} already exists")
            doc: Doc = {"id": sb_id, "key": key, "name": name, "netns_path": path,
                        "endpoints": [],
                        "status": "creating", "created": _now()}
            t.put("sandbox", sb_id, doc)
        try:
            self._make_netns(path)
            doc["status"] = READY
            self.store.put("sandbox", sb_id, doc)
        except BaseException:
            netns.delete(path)
            self.store.delete("sandbox", sb_id)
            raise
        return Sandbox(self, sb_id)

    def _rename_sandbox(self, sb_id: str, name: str) -> None:
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise InvalidParameter(
                f"invalid sandbox name {name!r}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
        with self._locked("sb:" + sb_id):
            with self.store.transaction() as t:
                sb = t.get("sandbox", sb_id)
                if sb is None:
                    raise NotFound(f"sandbox {sb_id} not found")
                old = sb.get("name")
                renamed = []
                for ep_id in sb["endpoints"]:
                    ep = t.get("endpoint", ep_id)
                    if ep is None or ep["name"] != old or old == name:
                        continue
                    if t.get("epname", f"{ep['network_id']}/{name}") is not None:
                        net = t.get("network", ep["network_id"]) or {}
                        raise Conflict(f"endpoint with name {name} already exists in "
                                       f"network {net.get('name', ep['network_id'])}")
                    renamed.append(ep)
                for ep in renamed:
                    t.delete("epname", f"{ep['network_id']}/{ep['name']}")
                    ep["name"] = name
                    t.put("endpoint", ep["id"], ep)
                    t.put("epname", f"{ep['network_id']}/{name}", {"id": ep["id"]})
                sb["name"] = name
                t.put("sandbox", sb_id, sb)
            self._notify("rename", None, sb)

    def _make_netns(self, path: str) -> None:
        netns.create(path)

        def lo_up(links: Links) -> None:
            links.set(links.index("lo"), state="up")

        in_netns(path, lo_up)

    def _delete_sandbox(self, sb_id: str) -> None:
        with self._locked("sb:" + sb_id):
            doc = self._doc("sandbox", sb_id, "sandbox")
            for ep_id in list(doc["endpoints"]):
                self._leave(ep_id, sb_id, default_gw=False)
                self._delete_endpoint(ep_id)
            doc = self._doc("sandbox", sb_id, "sandbox")
            self._notify("sandbox-delete", None, doc)
            doc["status"] = "deleting"
            self.store.put("sandbox", sb_id, doc)
            netns.delete(doc["netns_path"])
            self.store.delete("sandbox", sb_id)

    # -- join / leave ------------------------------------------------------
    def _join(self, ep_id: str, sb_id: str, gw_priority: int) -> None:
        with self._locked("sb:" + sb_id):
            with self.store.transaction() as t:
                ep = t.get("endpoint", ep_id)
                sb = t.get("sandbox", sb_id)
                if ep is None or ep["status"] in ("creating", "deleting"):
                    raise NotFound(f"endpoint {ep_id} not found")
                if sb is None or sb["status"] != READY:
                    raise NotFound(f"sandbox {sb_id} not found")
                if ep["sandbox_id"]:
                    raise Forbidden(f"endpoint {ep['name']} is already joined to a sandbox")
                net = t.get("network", ep["network_id"])
                assert net is not None
                used = set()
                for other in sb["endpoints"]:
                    o = t.get("endpoint", other)
                    if o and o.get("ifname"):
                        used.add(o["ifname"])
                        if o["network_id"] == ep["network_id"]:
                            raise Forbidden(f"sandbox {sb['key']} is already attached to "
                                            f"network {net['name']}")
                n = 0
                while f"eth{n}" in used:
                    n += 1
                has_link = self.driver(net["driver"]).uses_ipam
                ep.update(status="joining", sandbox_id=sb_id,
                          ifname=f"eth{n}" if has_link else None,
                          gw_priority=int(gw_priority))
                sb["endpoints"].append(ep_id)
                t.put("endpoint", ep_id, ep)
                t.put("sandbox", sb_id, sb)
            try:
                self._plug(net, ep, sb)
                faults.point("endpoint.join.commit")
                ep["status"] = "joined"
                self.store.put("endpoint", ep_id, ep)
                if net["name"] != gwbridge.NETWORK:
                    self._default_gw(sb_id)
            except BaseException as e:
                try:
                    self._unplug(ep_id, sb_id)
                except Exception as undo:  # the first error is the one to report
                    e.add_note(f"undoing the join failed too: {undo}")
                raise
            self._notify("join", ep, self._doc("sandbox", sb_id, "sandbox"))

    def _plug(self, net: Doc, ep: Doc, sb: Doc) -> None:
        """Kernel steps of a join: the driver's link, then addresses and routes."""
        driver = self.driver(net["driver"])
        join, state = driver.join(self.network_info(net), self.endpoint_info(ep),
                                  sb["netns_path"], ep["ifname"])
        ep["join"] = {"gateway4": join.gateway4, "gateway6": join.gateway6,
                      "routes": [[r.destination, r.route_type, r.next_hop]
                                 for r in join.routes],
                      "disable_gateway_service": join.disable_gateway_service}
        if join.ifname:
            ep["ifname"] = join.ifname
        ep["driver_state"] = state
        self.store.put("endpoint", ep["id"], ep)
        if ep["ifname"]:
            self._configure_sandbox(sb["id"], configure=ep)
        driver.program_external_connectivity(self.network_info(net), self.endpoint_info(ep))

    def _gateway_candidates(self, sb_id: str, without: str | None = None
                            ) -> list[gateway.Candidate]:
        out = []
        with self.store.transaction() as t:
            sb = t.get("sandbox", sb_id)
            for ep_id in (sb or {}).get("endpoints", []):
                ep = t.get("endpoint", ep_id)
                if not ep or ep_id == without or not ep.get("join"):
                    continue
                net = t.get("network", ep["network_id"]) or {}
                out.append(gateway.Candidate(
                    endpoint_id=ep_id, network_name=net.get("name", ""),
                    internal=bool(net.get("internal")), priority=int(ep.get("gw_priority", 0)),
                    gateway4=ep["join"]["gateway4"], gateway6=ep["join"]["gateway6"]))
        return out

    def _configure_sandbox(self, sb_id: str, *, configure: Doc | None = None,
                           without: str | None = None, force: bool = False) -> None:
        """Addresses of one endpoint (configure) and the sandbox's default routes.

        The routes last applied are kept in the sandbox's record; only changes go to
        the kernel (force=True applies all, as reconcile does)."""
        sb = self._doc("sandbox", sb_id, "sandbox")
        cands = self._gateway_candidates(sb_id, without)
        ep4, ep6 = gateway.choose(cands)
        want: dict[str, list[str] | None] = {}
        for version, chosen in (("4", ep4), ("6", ep6)):
            gw = None if chosen is None else (chosen.gateway4 if version == "4"
                                              else chosen.gateway6)
            want[version] = None if chosen is None or gw is None else [
                gw, self._doc("endpoint", chosen.endpoint_id, "endpoint")["ifname"]]
        have = None if force else sb.get("routes")
        changes = {v: w for v, w in want.items() if have is None or have.get(v) != w}
        if configure is None and not changes:
            return

        def apply(links: Links) -> None:
            if configure is not None:
                index = links.index(configure["ifname"])
                cidrs = [configure[f] for f in ("ipv4", "ipv6") if configure.get(f)] + \
                    list(configure.get("link_local") or [])
                if any(":" in c for c in cidrs):
                    sysctl.set(f"net/ipv6/conf/{configure['ifname']}/disable_ipv6", "0")
                for cidr in cidrs:
                    ip, plen = cidr.split("/")
                    links.add_address(index, ip, int(plen))
                links.set(index, state="up")
                for dst, kind, hop in (configure.get("join") or {}).get("routes", []):
                    links.add_route(dst, oif=index, gateway=hop if kind == 0 else None)
                faults.point("endpoint.join.configure")
            for version, route in changes.items():
                if route is None:
                    links.del_default_route(int(version))
                else:
                    links.replace_default_route(route[0], links.index(route[1]))
            if configure is not None:
                faults.point("endpoint.join.gateway")

        in_netns(sb["netns_path"], apply)
        if changes:
            with self.store.transaction() as t:
                current = t.get("sandbox", sb_id)
                if current is not None:
                    current["routes"] = want
                    t.put("sandbox", sb_id, current)

    def _publish(self, ep_id: str, bindings: list[PortBinding]) -> list[PortBinding]:
        ep = self._doc("endpoint", ep_id, "endpoint")
        sb_id = ep.get("sandbox_id")
        if not sb_id:
            raise Forbidden(f"endpoint {ep['name']} is not joined: ports are published for "
                            "a running container")
        with self._locked("sb:" + sb_id):
            ep = self._doc("endpoint", ep_id, "endpoint")
            net = self._doc("network", ep["network_id"], "network")
            rules = self.driver(net["driver"]).firewall_rules(self.network_info(net))
            if rules is None or net["internal"] or not ep.get("ipv4"):
                return []  # as Docker: nothing to publish on such networks
            ipv4, ipv6 = _addresses(ep)
            held = self.ports.hold(portmap.expand(bindings, ipv6=bool(ipv6)), ep_id)
            with self._fw_lock:  # store and table change together (see rebuild_firewall)
                try:
                    ep["ports"] = ep.get("ports", []) + [b.to_dict() for b in held]
                    self.store.put("endpoint", ep_id, ep)
                    pubs = portmap.published(held, ipv4, ipv6)
                    if self._settings.iptables and pubs:
                        self.host.call(lambda _l, nft: nft.run(
                            firewall.publish_add(self.names.table, pubs)))
                except BaseException:
                    self.ports.release(held)
                    ep["ports"] = [d for d in ep["ports"]
                                   if PortBinding.from_dict(d) not in held]
                    self.store.put("endpoint", ep_id, ep)
                    raise
            return held

    def _unpublish(self, ep: Doc) -> None:
        bindings = [PortBinding.from_dict(d) for d in ep.get("ports", [])]
        if not bindings:
            return
        pubs = portmap.published(bindings, *_addresses(ep))
        table = self.names.table

        def remove(_l: Links, nft: Nft) -> None:
            listing = nft.list_table("inet", table)
            if listing is not None and pubs:
                shape = firewall.plan.observed_shape(listing)
                present = [p for p in pubs if p.chain in shape.chains]
                nft.run(firewall.publish_remove(table, present))
            for b in bindings:
                if b.proto == "udp":  # the next datagrams meet the next mapping
                    conntrack.flush_udp_dport(b.host_port, v6=":" in b.host_ip)

        with self._fw_lock:
            if self._settings.iptables:
                self.host.call(remove)
            ep["ports"] = []
            self.store.put("endpoint", ep["id"], ep)
        self.ports.release(bindings)

    # -- the firewall table, kept whole ---------------------------------------------
    def rebuild_firewall(self) -> None:
        """Replaces the instance's table with what the state needs, in one batch."""
        if not self._settings.iptables:
            return
        from muslin.cnm.reconcile import firewall_plan

        with self._fw_lock:
            cmds = firewall_plan(self)
            self.host.call(lambda _l, nft: nft.run(cmds))

    def check_firewall(self) -> bool:
        """Rebuilds the table when its skeleton was damaged from outside (`nft flush
        ruleset`, a deleted table or base chain); True when it did. Cheap: lists only
        the base chains."""
        if not self._settings.iptables:
            return False
        table = self.names.table
        with self._fw_lock:
            damage = self.host.call(lambda _l, nft: firewall.plan.skeleton_damage(
                {c: nft.chain_rules("inet", table, c) for c in firewall.plan.SKELETON_CHAINS}))
        if not damage:
            return False
        log.warning("nftables table inet %s was changed outside muslin (%s): rebuilding it",
                    table, damage)
        self.rebuild_firewall()
        return True

    def watch_firewall(self) -> None:
        """Keeps the table whole while the controller lives: nftables' change
        notifications of the host namespace wake a check (see `check_firewall`)."""
        if not self._settings.iptables or self._fw_watch is not None:
            return
        events = self.host.call(lambda _l, _n: NftEvents())
        self._fw_watch = events
        threading.Thread(target=self._watch_loop, args=(events,), daemon=True,
                         name=f"muslin-{self.names.instance}-nftwatch").start()

    def _watch_loop(self, events: NftEvents) -> None:
        while not self._closed:
            if not events.wait(1.0):
                continue
            while events.wait(0.2):  # a batch or a burst: check once it is over
                pass
            if self._closed:
                break
            try:
                self.check_firewall()
            except Exception:
                if not self._closed:
                    log.exception("checking the nftables table failed")
        events.close()

    def _unplug(self, ep_id: str, sb_id: str) -> None:
        """Undoes a join (or finishes a leave): link, routes, state. Idempotent."""
        ep = self._doc("endpoint", ep_id, "endpoint")
        self._unpublish(ep)
        net = self._doc("network", ep["network_id"], "network")
        driver = self.driver(net["driver"])
        if ep.get("join") is not None:
            driver.revoke_external_connectivity(self.network_info(net), self.endpoint_info(ep))
        driver.leave(self.network_info(net), self.endpoint_info(ep))
        sb = self.store.get("sandbox", sb_id)
        if sb is not None and netns.is_netns(sb["netns_path"]):
            self._configure_sandbox(sb_id, without=ep_id)
        with self.store.transaction() as t:
            ep = t.get("endpoint", ep_id) or ep
            ep.update(status="created", sandbox_id=None, ifname=None, join=None,
                      driver_state={})
            t.put("endpoint", ep_id, ep)
            sb = t.get("sandbox", sb_id)
            if sb is not None and ep_id in sb["endpoints"]:
                sb["endpoints"].remove(ep_id)
                t.put("sandbox", sb_id, sb)

    def _leave(self, ep_id: str, sb_id: str, *, default_gw: bool = True) -> None:
        with self._locked("sb:" + sb_id):
            ep = self._doc("endpoint", ep_id, "endpoint")
            if ep["sandbox_id"] != sb_id:
                raise Forbidden(f"endpoint {ep['name']} is not joined to sandbox {sb_id[:12]}")
            self._notify("leave", ep, self._doc("sandbox", sb_id, "sandbox"))
            ep["status"] = "leaving"
            self.store.put("endpoint", ep_id, ep)
            self._unplug(ep_id, sb_id)
            net = self.store.get("network", ep["network_id"]) or {}
            if default_gw and net.get("name") != gwbridge.NETWORK:
                try:
                    self._default_gw(sb_id)
                except MuslinError as e:
                    log.warning("sandbox %s: default gateway endpoint: %s", sb_id[:12], e)

    # -- the default gateway service (docker_gwbridge) ----------------------
    def _default_gw(self, sb_id: str) -> None:
        """As libnetwork: a sandbox whose endpoints give no gateway (a remote driver that
        names none) is joined to docker_gwbridge too, for the outside; that endpoint
        goes once another gives a gateway."""
        with self.store.transaction() as t:
            sb = t.get("sandbox", sb_id) or {"endpoints": []}
            members = []
            for ep_id in sb["endpoints"]:
                doc = t.get("endpoint", ep_id)
                if doc is not None:
                    members.append((doc, t.get("network", doc["network_id"]) or {}))
        need, gw_ep = gwbridge.needs_default_gw(members)
        if need and gw_ep is None:
            key = str(sb.get("key") or "")
            suffix = key[:12] if _NAME.fullmatch(key[:12] or "-") else sb_id[:12]
            endpoint = self._gw_network().create_endpoint("gateway_" + suffix)
            try:
                self._join(endpoint.id, sb_id, 0)
            except BaseException:
                endpoint.delete()
                raise
        elif not need and gw_ep is not None:
            self._leave(gw_ep, sb_id, default_gw=False)
            self._delete_endpoint(gw_ep)

    def _gw_network(self) -> Network:
        try:
            return self.network(gwbridge.NETWORK)
        except NotFound:
            pass
        device = f"{self.names.prefix}gw" if self.names.prefix else gwbridge.NETWORK
        try:
            return self.create_network(gwbridge.NETWORK, "bridge", options={
                OPT_NAME: device, OPT_ICC: "false", OPT_MASQ: "true"})
        except Conflict:
            return self.network(gwbridge.NETWORK)


def _addresses(ep: Doc) -> tuple[str | None, str | None]:
    """An endpoint's IPv4 and IPv6 addresses without their prefix lengths."""
    v4, v6 = ep.get("ipv4"), ep.get("ipv6")
    return (v4.split("/")[0] if v4 else None, v6.split("/")[0] if v6 else None)
