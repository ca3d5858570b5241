"""Start-up reconcile and the leak check of one controller.

`reconcile` makes the kernel match the store: it finishes or rolls back every
operation a killed process left half done (its intent is in the store), rebuilds
missing kernel objects of committed state, removes marked kernel objects the state
does not know, frees IPAM allocations without an owner and rebuilds the firewall
table in one batch. `leaks` reports every difference, both ways, without changing
anything. Both run with no other operation in flight (start-up) or read only.
"""

from __future__ import annotations

import contextlib
import logging
import os
from typing import TYPE_CHECKING, Any

from muslin import firewall, portmap
from muslin.errors import MuslinError
from muslin.firewall import plan
from muslin.kernel import Links, Nft, in_netns, netns, sysctl
from muslin.portspec import PortBinding

if TYPE_CHECKING:
    from muslin.cnm.controller import Controller

log = logging.getLogger("muslin.reconcile")

Doc = dict[str, Any]
READY = "ready"


def _firewall_rules(ctl: Controller, nets: list[Doc]) -> list[firewall.BridgeRules]:
    out = []
    for doc in nets:
        driver = ctl._driver_or_none(doc["driver"])
        if driver is not None:
            rules = driver.firewall_rules(ctl.network_info(doc))
            if rules is not None:
                out.append(rules)
    return out


def _published(ctl: Controller) -> list[firewall.Published]:
    out = []
    for ep in ctl.store.list("endpoint"):
        if ep["status"] == "joined" and ep.get("ports") and ep.get("ipv4"):
            out += portmap.published([PortBinding.from_dict(d) for d in ep["ports"]],
                                     *(ep[f].split("/")[0] if ep.get(f) else None
                                       for f in ("ipv4", "ipv6")))
    return out


def firewall_plan(ctl: Controller) -> list[dict[str, Any]]:
    """The batch that rebuilds the instance's table from the state."""
    nets = [d for d in ctl.store.list("network") if d["status"] == READY]
    return plan.table_rebuild(ctl.names.table, _firewall_rules(ctl, nets), _published(ctl))


def _hold_published_ports(ctl: Controller) -> None:
    """After a restart the sockets that held published ports are gone: bind them again."""
    for ep in ctl.store.list("endpoint"):
        bindings = [PortBinding.from_dict(d) for d in ep.get("ports", [])]
        if ep["status"] != "joined" or not bindings:
            continue
        kept = []
        for b in bindings:
            if (b.proto, b.host_ip or "0.0.0.0", b.host_port) in ctl.ports.held():
                kept.append(b)
                continue
            try:
                kept += ctl.ports.hold([b], ep["id"])
            except MuslinError as e:
                log.error("reconcile: endpoint %s loses published port %s: %s", ep["name"],
                          b.host_port, e)
        if kept != bindings:
            ep["ports"] = [b.to_dict() for b in kept]
            ctl.store.put("endpoint", ep["id"], ep)


def _sandbox_side_differences(ctl: Controller, ep: Doc, sb: Doc) -> list[str]:
    want = [ep[f] for f in ("ipv4", "ipv6") if ep.get(f)] + list(ep.get("link_local") or [])

    def check(links: Links) -> list[str]:
        link = links.get(ep["ifname"])
        if link is None:
            return [f"endpoint {ep['name']}: {ep['ifname']} is missing in sandbox {sb['key']}"]
        out = []
        have = {a.interface for a in links.addresses(link.index)}
        for cidr in want:
            if cidr not in have:
                out.append(f"endpoint {ep['name']}: {ep['ifname']} lacks address {cidr}")
        if not link.up:
            out.append(f"endpoint {ep['name']}: {ep['ifname']} is down")
        return out

    return in_netns(sb["netns_path"], check)


def reconcile(ctl: Controller) -> None:
    store = ctl.store
    # 1. Operations a killed process left half done.
    for doc in store.list("network"):
        if doc["status"] != READY:
            log.info("reconcile: removing network %s left %s", doc["name"], doc["status"])
            _drop_network_endpoints(ctl, doc)
            ctl._undo_network(doc)
    for doc in store.list("sandbox"):
        if doc["status"] != READY:
            log.info("reconcile: removing sandbox %s left %s", doc["key"], doc["status"])
            netns.delete(doc["netns_path"])
            store.delete("sandbox", doc["id"])
        elif not netns.is_netns(doc["netns_path"]):
            log.info("reconcile: recreating the namespace of sandbox %s", doc["key"])
            ctl._make_netns(doc["netns_path"])
    for ep in store.list("endpoint"):
        if ep["status"] in ("creating", "deleting"):
            log.info("reconcile: removing endpoint %s left %s", ep["name"], ep["status"])
            try:
                ctl._release_endpoint(ep)
            except MuslinError as e:
                log.warning("reconcile: could not remove endpoint %s: %s", ep["name"], e)
    sandboxes = {d["id"]: d for d in store.list("sandbox")}
    for ep in store.list("endpoint"):
        if ep["status"] in ("joining", "leaving") or (
                ep["sandbox_id"] and ep["sandbox_id"] not in sandboxes):
            log.info("reconcile: undoing the %s of endpoint %s", ep["status"], ep["name"])
            _undo_join(ctl, ep)
    nets = [d for d in store.list("network") if d["status"] == READY]
    # 2. Kernel objects of committed state: rebuild what is missing or wrong.
    if ctl._settings.ip_forward:
        ctl.host.call(lambda _l, _n: sysctl.set("net.ipv4.ip_forward", "1"))
        if any(d["enable_ipv6"] for d in nets):
            ctl.host.call(lambda _l, _n: sysctl.set("net.ipv6.conf.all.forwarding", "1"))
    rebuilt_nets = set()
    for doc in nets:
        driver = ctl._driver_or_none(doc["driver"])
        if driver is None:
            log.warning("reconcile: network %s: driver %s is not available", doc["name"],
                        doc["driver"])
            continue
        info = ctl.network_info(doc)
        if driver.check_network(info):
            log.info("reconcile: rebuilding network %s", doc["name"])
            try:
                doc["driver_state"] = driver.create_network(info)
            except MuslinError as e:  # e.g. a macvlan parent gone: the rest still starts
                log.error("reconcile: could not rebuild network %s: %s", doc["name"], e)
                continue
            store.put("network", doc["id"], doc)
            rebuilt_nets.add(doc["id"])
    for ep in store.list("endpoint"):
        if ep["status"] != "joined":
            continue
        sb = sandboxes[ep["sandbox_id"]]
        net = store.get("network", ep["network_id"])
        assert net is not None
        driver = ctl._driver_or_none(net["driver"])
        if driver is None:
            continue
        diffs = driver.check_endpoint(ctl.network_info(net), ctl.endpoint_info(ep))
        if not diffs and ep["ifname"]:
            diffs = _sandbox_side_differences(ctl, ep, sb)
        if diffs:
            log.info("reconcile: rebuilding endpoint %s: %s", ep["name"], "; ".join(diffs))
            try:
                driver.leave(ctl.network_info(net), ctl.endpoint_info(ep))
                ctl._plug(net, ep, sb)
            except MuslinError as e:  # a macvlan parent or a remote plugin gone: the rest
                log.error("reconcile: could not rebuild endpoint %s: %s", ep["name"], e)
    # 3. Marked kernel objects the state does not know.
    known_nets = {d["id"] for d in nets}
    known_eps = {d["id"] for d in store.list("endpoint") if d["status"] == "joined"}

    def sweep(links: Links, _nft: Nft) -> None:
        for link in links.marked(ctl.names.mark):
            kind, _, oid = link.alias[len(ctl.names.mark):].partition(":")
            if (kind == "net" and oid not in known_nets) or (
                    kind == "ep" and oid not in known_eps) or kind not in ("net", "ep"):
                log.info("reconcile: deleting unknown link %s (%s)", link.name, link.alias)
                links.delete(link.index)

    ctl.host.call(sweep)
    known_paths = {os.path.basename(d["netns_path"]) for d in store.list("sandbox")}
    for name in os.listdir(ctl.netns_dir):
        if name not in known_paths:
            log.info("reconcile: deleting unknown sandbox namespace %s", name)
            netns.delete(os.path.join(ctl.netns_dir, name))
    # 4. IPAM allocations without an owner.
    _release_orphans(ctl)
    # 5. Published ports and the firewall, in one batch.
    _hold_published_ports(ctl)
    ctl.rebuild_firewall()
    # 6. Default routes of every sandbox (a rebuilt endpoint may have moved them).
    for sb in store.list("sandbox"):
        if sb["endpoints"]:
            ctl._configure_sandbox(sb["id"], force=True)
    _warn_br_netfilter(ctl, nets)


def _drop_network_endpoints(ctl: Controller, net: Doc) -> None:
    """Endpoints of a network being rolled back (none in practice): unplug, release."""
    for ep in ctl._endpoint_docs(net["id"]):
        if ep.get("sandbox_id"):
            _undo_join(ctl, ep)
        ctl._release_endpoint(ep)


def _undo_join(ctl: Controller, ep: Doc) -> None:
    sb_id = ep["sandbox_id"]
    if sb_id is None:
        return
    try:
        ctl._unplug(ep["id"], sb_id)
    except MuslinError as e:
        log.warning("reconcile: could not undo endpoint %s: %s", ep["name"], e)


def _release_orphans(ctl: Controller) -> None:
    with ctl.store.transaction() as t:
        nets = {d["id"] for d in t.list("network")}
        eps = {d["id"] for d in t.list("endpoint")}
        for key in t.keys("pool"):
            doc = t.get("pool", key) or {}
            if doc.get("owner") not in nets:
                log.info("reconcile: releasing pool %s without owner", key)
                for akey in t.keys("address", key + "|"):
                    t.delete("address", akey)
                t.delete("pool", key)
        for key in t.keys("address"):
            doc = t.get("address", key) or {}
            if doc.get("owner") not in eps:
                log.info("reconcile: releasing address %s without owner", key)
                t.delete("address", key)


def _warn_br_netfilter(ctl: Controller, nets: list[Doc]) -> None:
    """ICC=false and isolation of bridged traffic need bridge-nf-call-iptables=1."""
    value = ctl.host.call(lambda _l, _n: sysctl.get("net.bridge.bridge-nf-call-iptables"))
    if value != "1" and any(d["options"].get(
            "com.docker.network.bridge.enable_icc") == "false" for d in nets):
        log.warning(
            "net.bridge.bridge-nf-call-iptables is %s: bridged traffic skips nftables, so "
            "networks with enable_icc=false cannot stop their members talking to each other",
            value or "unavailable (br_netfilter not loaded)")


def leaks(ctl: Controller) -> list[str]:
    out: list[str] = []
    store = ctl.store
    nets = store.list("network")
    eps = store.list("endpoint")
    sbs = store.list("sandbox")
    for d in nets:
        if d["status"] != READY:
            out.append(f"network {d['name']} is left {d['status']}")
    for d in sbs:
        if d["status"] != READY:
            out.append(f"sandbox {d['key']} is left {d['status']}")
    for d in eps:
        if d["status"] not in ("created", "joined"):
            out.append(f"endpoint {d['name']} is left {d['status']}")
    ready = [d for d in nets if d["status"] == READY]
    by_id = {d["id"]: d for d in nets}
    sb_by_id = {d["id"]: d for d in sbs}
    # state -> kernel
    for d in ready:
        driver = ctl._driver_or_none(d["driver"])
        if driver is None:
            out.append(f"network {d['name']}: driver {d['driver']} is not available")
            continue
        out += driver.check_network(ctl.network_info(d))
    for ep in eps:
        if ep["status"] != "joined":
            continue
        net = by_id.get(ep["network_id"])
        sb = sb_by_id.get(ep["sandbox_id"])
        if net is None or sb is None:
            out.append(f"endpoint {ep['name']} refers to a missing network or sandbox")
            continue
        driver = ctl._driver_or_none(net["driver"])
        if driver is not None:
            out += driver.check_endpoint(ctl.network_info(net), ctl.endpoint_info(ep))
        if netns.is_netns(sb["netns_path"]) and ep["ifname"]:
            out += _sandbox_side_differences(ctl, ep, sb)
    for sb in sbs:
        if not netns.is_netns(sb["netns_path"]):
            out.append(f"sandbox {sb['key']}: namespace {sb['netns_path']} is missing")
    # kernel -> state
    known_nets = {d["id"] for d in ready}
    known_eps = {d["id"] for d in eps if d["status"] == "joined"}

    def marked(links: Links, _nft: Nft) -> list[str]:
        found = []
        for link in links.marked(ctl.names.mark):
            kind, _, oid = link.alias[len(ctl.names.mark):].partition(":")
            if not ((kind == "net" and oid in known_nets) or (kind == "ep" and oid in known_eps)):
                found.append(f"link {link.name} ({link.alias}) is unknown to the state")
        return found

    out += ctl.host.call(marked)
    known_paths = {os.path.basename(d["netns_path"]) for d in sbs}
    with contextlib.suppress(FileNotFoundError):
        for name in sorted(os.listdir(ctl.netns_dir)):
            if name not in known_paths:
                out.append(f"namespace {name} under {ctl.netns_dir} is unknown to the state")
    # firewall
    if ctl._settings.iptables:
        listing = ctl.host.call(lambda _l, nft: nft.list_table("inet", ctl.names.table))
        observed = plan.observed_shape(listing) if listing is not None else None
        out += plan.shape_differences(
            plan.expected_shape(_firewall_rules(ctl, ready), _published(ctl)), observed,
            ctl.names.table)
    for ep in eps:
        for d in ep.get("ports", []):
            b = PortBinding.from_dict(d)
            if (b.proto, b.host_ip or "0.0.0.0", b.host_port) not in ctl.ports.held():
                out.append(f"endpoint {ep['name']}: host port {b.host_port}/{b.proto} is "
                           "not held")
    # IPAM
    net_ids = {d["id"] for d in nets}
    ep_ids = {d["id"] for d in eps}
    with store.transaction() as t:
        for key in t.keys("pool"):
            if (t.get("pool", key) or {}).get("owner") not in net_ids:
                out.append(f"IPAM pool {key} has no owner")
        for key in t.keys("address"):
            if (t.get("address", key) or {}).get("owner") not in ep_ids:
                out.append(f"IPAM address {key} has no owner")
    return out
