"""Plans the instance's nftables table (family inet) for bridge networks.

The table holds two base chains with policy accept (muslin never drops what is not
its own) and dispatches through verdict maps keyed by interface name or source
prefix, so a packet's cost does not grow with the number of networks:

    forward:     iifname vmap @from_net ; oifname vmap @to_net
    postrouting: ip saddr vmap @masq4 ; ip6 saddr vmap @masq6
    prerouting, output (published ports, per family v4/v6):
                 ip daddr . l4proto . th dport vmap @pub4ip
                 fib daddr type local l4proto . th dport vmap @pub4   (an element jumps
                 to the port's chain `p4-<addr|any>-<proto>-<port>`: one DNAT rule)

Per network three regular chains: `<id>-from` (ICC, isolation from other muslin
bridges, internal), `<id>-to` (only replies and published ports come in), and
`<id>-masq` (masquerade when leaving through another interface). Must not perform
I/O; only returns lists of libnftables JSON commands.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

Cmd = dict[str, Any]

FAMILY = "inet"


@dataclass(frozen=True)
class BridgeRules:
    """What the firewall needs to know of one bridge network."""

    net_id: str
    bridge: str
    subnets: tuple[str, ...] = ()
    icc: bool = True
    masquerade: bool = True
    internal: bool = False

    @property
    def tag(self) -> str:
        return "n" + self.net_id[:12]


@dataclass(frozen=True)
class TablePlan:
    """The shape of a table: chains with their rule counts, and map/set elements."""

    chains: dict[str, int] = field(default_factory=dict)
    elements: dict[str, frozenset[str]] = field(default_factory=dict)


def _table(t: str) -> Cmd:
    return {"family": FAMILY, "name": t}


def _meta(key: str) -> Cmd:
    return {"meta": {"key": key}}


def _match(left: Cmd, right: Any, op: str = "==") -> Cmd:
    return {"match": {"op": op, "left": left, "right": right}}


def _rule(t: str, chain: str, *expr: Cmd) -> Cmd:
    return {"rule": {"family": FAMILY, "table": t, "chain": chain, "expr": list(expr)}}


def _chain(t: str, name: str, **base: Any) -> Cmd:
    return {"chain": {"family": FAMILY, "table": t, "name": name, **base}}


def _elements(t: str, name: str, elem: list[Any]) -> Cmd:
    return {"element": {"family": FAMILY, "table": t, "name": name, "elem": elem}}


def _prefix(cidr: str) -> Cmd:
    n = ipaddress.ip_network(cidr, strict=False)
    return {"prefix": {"addr": str(n.network_address), "len": n.prefixlen}}


def _skeleton(t: str, initial: dict[str, list[Any]] | None = None) -> list[Cmd]:
    """Table, base chains, dispatch maps and rules. `initial` elements of the
    interval maps go into their declaration: libnftables 1.0.6 refuses interval
    elements added to a map declared earlier in the same JSON batch."""
    cmds: list[Cmd] = [
        {"add": {"table": _table(t)}},
        {"add": _chain(t, "forward", type="filter", hook="forward", prio=0, policy="accept")},
        {"add": _chain(t, "postrouting", type="nat", hook="postrouting", prio=100,
                       policy="accept")},
        {"add": _chain(t, "prerouting", type="nat", hook="prerouting", prio=-100,
                       policy="accept")},
        {"add": _chain(t, "output", type="nat", hook="output", prio=-100, policy="accept")},
        {"add": {"set": {"family": FAMILY, "table": t, "name": "bridges", "type": "ifname"}}},
    ]
    for name, key in (("from_net", "ifname"), ("to_net", "ifname"),
                      ("masq4", "ipv4_addr"), ("masq6", "ipv6_addr")):
        m: Cmd = {"family": FAMILY, "table": t, "name": name, "type": key, "map": "verdict"}
        if key != "ifname":
            m["flags"] = ["interval"]
            if initial and initial.get(name):
                m["elem"] = initial[name]
        cmds.append({"add": {"map": m}})
    for name, keys in (("pub4", ["inet_proto", "inet_service"]),
                       ("pub4ip", ["ipv4_addr", "inet_proto", "inet_service"]),
                       ("pub6", ["inet_proto", "inet_service"]),
                       ("pub6ip", ["ipv6_addr", "inet_proto", "inet_service"])):
        # verdict maps (libnftables 1.0.6's JSON cannot declare concatenated data maps)
        m = {"family": FAMILY, "table": t, "name": name, "type": keys, "map": "verdict"}
        if initial and initial.get(name):
            m["elem"] = initial[name]
        cmds.append({"add": {"map": m}})
    cmds += [
        {"add": _rule(t, "forward", {"vmap": {"key": _meta("iifname"), "data": "@from_net"}})},
        {"add": _rule(t, "forward", {"vmap": {"key": _meta("oifname"), "data": "@to_net"}})},
        {"add": _rule(t, "postrouting", {"vmap": {
            "key": {"payload": {"protocol": "ip", "field": "saddr"}}, "data": "@masq4"}})},
        {"add": _rule(t, "postrouting", {"vmap": {
            "key": {"payload": {"protocol": "ip6", "field": "saddr"}}, "data": "@masq6"}})},
        # published ports reached from the host itself via 127.0.0.1 (route_localnet)
        {"add": _rule(t, "postrouting",
                      _match({"payload": {"protocol": "ip", "field": "saddr"}},
                             {"prefix": {"addr": "127.0.0.0", "len": 8}}),
                      _match({"ct": {"key": "status"}}, "dnat", "in"), {"masquerade": None})},
    ]
    for chain in ("prerouting", "output"):
        cmds += [{"add": rule} for rule in _publish_rules(t, chain)]
    return cmds


def _publish_rules(t: str, chain: str) -> list[Cmd]:
    """DNAT of published ports: one map lookup per packet and family whatever their
    number (a bound host address first, then "any local address"); the map jumps to the
    port's own chain, which holds its one DNAT rule."""
    proto_port = [{"meta": {"key": "l4proto"}},
                  {"payload": {"protocol": "th", "field": "dport"}}]
    local = _match({"fib": {"result": "type", "flags": ["daddr"]}}, "local")
    out = []
    for v, ip in ((4, "ip"), (6, "ip6")):
        family = _match({"meta": {"key": "nfproto"}}, f"ipv{v}")
        daddr = {"payload": {"protocol": ip, "field": "daddr"}}
        # IPv6 has no route_localnet: a packet from ::1 cannot leave the loopback, so
        # [::1] is left alone (the held, non-listening socket refuses it at once)
        not_lo = [_match(daddr, "::1", "!=")] if v == 6 else []
        out += [
            _rule(t, chain, family, {"vmap": {"key": {"concat": [daddr, *proto_port]},
                                              "data": f"@pub{v}ip"}}),
            _rule(t, chain, family, *not_lo, local, {"vmap": {
                "key": {"concat": proto_port}, "data": f"@pub{v}"}}),
        ]
    return out


SKELETON_CHAINS = {"forward": 2, "postrouting": 3, "prerouting": 4, "output": 4}


def _network_chains(t: str, r: BridgeRules) -> list[tuple[str, list[Cmd]]]:
    """The network's chains and their rules (each rule a list of expressions)."""
    oif = _meta("oifname")
    frm: list[Cmd] = [
        _rule(t, f"{r.tag}-from", _match(oif, r.bridge), {"accept" if r.icc else "drop": None}),
        _rule(t, f"{r.tag}-from", _match(oif, "@bridges"), {"drop": None}),
        _rule(t, f"{r.tag}-from", {"drop" if r.internal else "accept": None}),
    ]
    to: list[Cmd] = []
    if not r.internal:
        to += [
            _rule(t, f"{r.tag}-to", _match({"ct": {"key": "state"}}, ["established", "related"],
                                           "in"), {"accept": None}),
            _rule(t, f"{r.tag}-to", _match({"ct": {"key": "status"}}, "dnat", "in"),
                  {"accept": None}),
        ]
    to.append(_rule(t, f"{r.tag}-to", {"drop": None}))
    chains = [(f"{r.tag}-from", frm), (f"{r.tag}-to", to)]
    if r.masquerade and not r.internal and r.subnets:
        chains.append((f"{r.tag}-masq", [
            # hairpin: a member reaching a published port of its own network
            _rule(t, f"{r.tag}-masq", _match(oif, r.bridge),
                  _match({"ct": {"key": "status"}}, "dnat", "in"), {"masquerade": None}),
            _rule(t, f"{r.tag}-masq", _match(oif, r.bridge, "!="), {"masquerade": None})]))
    return chains


def _masq_elements(r: BridgeRules) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {"masq4": [], "masq6": []}
    if r.masquerade and not r.internal:
        for cidr in r.subnets:
            v = ipaddress.ip_network(cidr, strict=False).version
            out["masq4" if v == 4 else "masq6"].append(
                [_prefix(cidr), {"jump": {"target": f"{r.tag}-masq"}}])
    return out


def skeleton_damage(rule_counts: dict[str, int | None]) -> str:
    """What is missing from the base chains (name -> rule count, None when missing), or
    "" when nothing: the cheap sign of a flushed ruleset or a deleted table. Only
    missing rules count: a rule someone added never makes a rebuild loop."""
    out = []
    for name, want in SKELETON_CHAINS.items():
        got = rule_counts.get(name)
        if got is None:
            out.append(f"chain {name} is missing")
        elif got < want:
            out.append(f"chain {name} has {got} rules, expected {want}")
    return "; ".join(out)


def network_add(t: str, r: BridgeRules, *, with_masq: bool = True) -> list[Cmd]:
    """Commands that add one network's chains and dispatch entries."""
    cmds: list[Cmd] = []
    for name, rules in _network_chains(t, r):
        cmds.append({"add": _chain(t, name)})
        cmds += [{"add": rule} for rule in rules]
    cmds.append({"add": _elements(t, "bridges", [r.bridge])})
    cmds.append({"add": _elements(t, "from_net", [[r.bridge, {"jump": {"target":
                                                                      f"{r.tag}-from"}}]])})
    cmds.append({"add": _elements(t, "to_net", [[r.bridge, {"jump": {"target": f"{r.tag}-to"}}]])})
    for m, elems in _masq_elements(r).items():
        if elems and with_masq:
            cmds.append({"add": _elements(t, m, elems)})
    return cmds


def network_remove(t: str, r: BridgeRules) -> list[Cmd]:
    """Commands that remove what network_add added (dispatch first, then chains)."""
    cmds: list[Cmd] = [
        {"delete": _elements(t, "from_net", [r.bridge])},
        {"delete": _elements(t, "to_net", [r.bridge])},
        {"delete": _elements(t, "bridges", [r.bridge])},
    ]
    for m, elems in _masq_elements(r).items():
        if elems:
            cmds.append({"delete": _elements(t, m, [e[0] for e in elems])})
    for name, _ in _network_chains(t, r):
        cmds.append({"flush": _chain(t, name)})
        cmds.append({"delete": _chain(t, name)})
    return cmds


def table_rebuild(t: str, networks: list[BridgeRules],
                  published: list[Published] | None = None) -> list[Cmd]:
    """One batch that replaces the whole table with what the networks need."""
    cmds: list[Cmd] = [{"add": {"table": _table(t)}}, {"delete": {"table": _table(t)}}]
    masq: dict[str, list[Any]] = {"masq4": [], "masq6": []}
    for r in networks:
        for m, elems in _masq_elements(r).items():
            masq[m] += elems
    cmds.append({"add": {"table": _table(t)}})
    for r in networks:  # jump targets exist before the maps that name them
        cmds += [{"add": _chain(t, name)} for name, _ in _network_chains(t, r)]
    cmds += _publish_chains(t, published or [])
    cmds += _skeleton(t, {**masq, **_published_by_map(published or [])})
    for r in networks:
        cmds += network_add(t, r, with_masq=False)
    return cmds


def table_delete(t: str) -> list[Cmd]:
    return [{"add": {"table": _table(t)}}, {"delete": {"table": _table(t)}}]


def _elem_key(e: Any) -> str:
    if isinstance(e, dict) and "prefix" in e:
        return f"{e['prefix']['addr']}/{e['prefix']['len']}"
    if isinstance(e, dict) and "concat" in e:
        return " . ".join(str(x) for x in e["concat"])
    return str(e)


@dataclass(frozen=True)
class Published:
    """One published port: (host address or "" for any, proto, host port) -> target.
    The family is the target's (IPv4 or IPv6; nftables cannot translate between them)."""

    proto: str
    host_port: int
    target_ip: str
    target_port: int
    host_ip: str = ""

    @property
    def version(self) -> int:
        return 6 if ":" in self.target_ip else 4

    def map_name(self) -> str:
        return f"pub{self.version}ip" if self.host_ip else f"pub{self.version}"

    def key(self) -> Cmd:
        parts: list[Any] = [self.proto, self.host_port]
        return {"concat": [self.host_ip, *parts] if self.host_ip else parts}

    @property
    def chain(self) -> str:
        where = self.host_ip.replace(".", "_").replace(":", "_") or "any"
        return f"p{self.version}-{where}-{self.proto}-{self.host_port}"

    def element(self) -> list[Any]:
        return [self.key(), {"jump": {"target": self.chain}}]

    def rule(self, t: str) -> Cmd:
        return _rule(t, self.chain, _match(_meta("l4proto"), self.proto),
                     {"dnat": {"family": f"ip{'6' if self.version == 6 else ''}",
                               "addr": self.target_ip, "port": self.target_port}})


def _published_by_map(pubs: list[Published]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {"pub4": [], "pub4ip": [], "pub6": [], "pub6ip": []}
    for p in pubs:
        out[p.map_name()].append(p.element())
    return out


def _publish_chains(t: str, pubs: list[Published]) -> list[Cmd]:
    cmds: list[Cmd] = []
    for p in pubs:  # flushed first: adding again never doubles the rule
        cmds += [{"add": _chain(t, p.chain)}, {"flush": _chain(t, p.chain)},
                 {"add": p.rule(t)}]
    return cmds


def publish_add(t: str, pubs: list[Published]) -> list[Cmd]:
    return _publish_chains(t, pubs) + [
        {"add": _elements(t, m, elems)} for m, elems in _published_by_map(pubs).items()
        if elems]


def publish_remove(t: str, pubs: list[Published]) -> list[Cmd]:
    cmds = [{"delete": _elements(t, m, [e[0] for e in elems])}
            for m, elems in _published_by_map(pubs).items() if elems]
    for p in pubs:
        cmds += [{"flush": _chain(t, p.chain)}, {"delete": _chain(t, p.chain)}]
    return cmds


def expected_shape(networks: list[BridgeRules],
                   published: list[Published] | None = None) -> TablePlan:
    """The shape the table should have, to compare with `observed_shape`."""
    chains = dict(SKELETON_CHAINS)
    elements: dict[str, set[str]] = {n: set() for n in ("bridges", "from_net", "to_net",
                                                         "masq4", "masq6", "pub4", "pub4ip",
                                                         "pub6", "pub6ip")}
    for m, elems in _published_by_map(published or []).items():
        elements[m].update(_elem_key(e[0]) for e in elems)
    for p in published or []:
        chains[p.chain] = 1
    for r in networks:
        for name, rules in _network_chains("", r):
            chains[name] = len(rules)
        elements["bridges"].add(r.bridge)
        elements["from_net"].add(r.bridge)
        elements["to_net"].add(r.bridge)
        for m, elems in _masq_elements(r).items():
            elements[m].update(_elem_key(e[0]) for e in elems)
    return TablePlan(chains, {k: frozenset(v) for k, v in elements.items()})


def observed_shape(listing: list[dict[str, Any]]) -> TablePlan:
    """The shape of a table as libnftables lists it (JSON)."""
    chains: dict[str, int] = {}
    elements: dict[str, set[str]] = {}
    for item in listing:
        if "chain" in item:
            chains.setdefault(item["chain"]["name"], 0)
        elif "rule" in item:
            name = item["rule"]["chain"]
            chains[name] = chains.get(name, 0) + 1
        elif "set" in item or "map" in item:
            obj = item.get("set") or item["map"]
            keys = set()
            for e in obj.get("elem", []):
                keys.add(_elem_key(e[0] if isinstance(e, list) else e))
            elements[obj["name"]] = keys
    return TablePlan(chains, {k: frozenset(v) for k, v in elements.items()})


def shape_differences(expected: TablePlan, observed: TablePlan | None, table: str) -> list[str]:
    """Human-readable differences between two table shapes."""
    if observed is None:
        return [f"nftables table inet {table} is missing"]
    out = []
    for name, count in sorted(expected.chains.items()):
        got = observed.chains.get(name)
        if got is None:
            out.append(f"nftables chain {name} is missing")
        elif got != count:
            out.append(f"nftables chain {name} has {got} rules, expected {count}")
    for name in sorted(set(observed.chains) - set(expected.chains)):
        out.append(f"nftables chain {name} is unknown to the state")
    for name, elems in sorted(expected.elements.items()):
        got_e = observed.elements.get(name, frozenset())
        for e in sorted(elems - got_e):
            out.append(f"nftables {name} lacks {e}")
        for e in sorted(got_e - elems):
            out.append(f"nftables {name} has unknown {e}")
    return out
