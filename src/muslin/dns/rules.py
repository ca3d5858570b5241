"""The nftables table inside a sandbox that sends 127.0.0.11:53 to the resolver's ports.

As Docker's DOCKER_OUTPUT / DOCKER_POSTROUTING chains do with iptables, in a table of
the sandbox's own namespace (`ip muslin_dns`):

    table ip muslin_dns {
      chain output {       # type nat hook output priority -100 (dstnat)
        ip daddr 127.0.0.11 udp dport 53 dnat to 127.0.0.11:UDP_PORT
        ip daddr 127.0.0.11 tcp dport 53 dnat to 127.0.0.11:TCP_PORT
      }
      chain postrouting {  # type nat hook postrouting priority 100 (srcnat)
        ip saddr 127.0.0.11 udp sport UDP_PORT snat to 127.0.0.11:53
        ip saddr 127.0.0.11 tcp sport TCP_PORT snat to 127.0.0.11:53
      }
    }

Replies to redirected queries are un-NATed by conntrack; the postrouting rules cover
what the resolver's ports would send first. A process in the sandbox can still listen
on port 53 itself: only 127.0.0.11:53 is redirected. Pure: returns libnftables JSON.
"""

from __future__ import annotations

from typing import Any

Cmd = dict[str, Any]

FAMILY = "ip"
TABLE = "muslin_dns"
RESOLVER_IP = "127.0.0.11"
DNS_PORT = 53


def _tbl() -> Cmd:
    return {"family": FAMILY, "name": TABLE}


def _match(proto: str, field: str, right: Any) -> Cmd:
    return {"match": {"op": "==", "left": {"payload": {"protocol": proto, "field": field}},
                      "right": right}}


def _rule(chain: str, expr: list[Cmd]) -> Cmd:
    return {"add": {"rule": {"family": FAMILY, "table": TABLE, "chain": chain,
                             "expr": expr}}}


def table(udp_port: int, tcp_port: int) -> list[Cmd]:
    """One batch that (re)writes the table: it replaces any earlier version at once."""
    out: list[Cmd] = [
        {"add": {"table": _tbl()}},
        {"delete": {"table": _tbl()}},
        {"add": {"table": _tbl()}},
        {"add": {"chain": {"family": FAMILY, "table": TABLE, "name": "output",
                           "type": "nat", "hook": "output", "prio": -100,
                           "policy": "accept"}}},
        {"add": {"chain": {"family": FAMILY, "table": TABLE, "name": "postrouting",
                           "type": "nat", "hook": "postrouting", "prio": 100,
                           "policy": "accept"}}},
    ]
    for proto, port in (("udp", udp_port), ("tcp", tcp_port)):
        out.append(_rule("output", [
            _match("ip", "daddr", RESOLVER_IP), _match(proto, "dport", DNS_PORT),
            {"dnat": {"addr": RESOLVER_IP, "port": port}}]))
    for proto, port in (("udp", udp_port), ("tcp", tcp_port)):
        out.append(_rule("postrouting", [
            _match("ip", "saddr", RESOLVER_IP), _match(proto, "sport", port),
            {"snat": {"addr": RESOLVER_IP, "port": DNS_PORT}}]))
    return out


def remove() -> list[Cmd]:
    """One batch that removes the table (quiet when it is not there)."""
    return [{"add": {"table": _tbl()}}, {"delete": {"table": _tbl()}}]


def ports(listing: list[dict[str, Any]] | None) -> tuple[int | None, int | None]:
    """The (udp, tcp) ports the table's output chain redirects to, read back from
    libnftables' JSON listing of the table (None when absent)."""
    found: dict[str, int] = {}
    for item in listing or []:
        rule = item.get("rule")
        if not rule or rule.get("chain") != "output":
            continue
        proto = port = None
        for e in rule.get("expr", []):
            m = e.get("match")
            if m and isinstance(m.get("left"), dict) and "payload" in m["left"]:
                p = m["left"]["payload"]
                if p.get("field") == "dport" and p.get("protocol") in ("udp", "tcp"):
                    proto = p["protocol"]
            if "dnat" in e and isinstance(e["dnat"].get("port"), int):
                port = e["dnat"]["port"]
        if proto and port:
            found[proto] = port
    return found.get("udp"), found.get("tcp")


def intact(listing: list[dict[str, Any]] | None, udp_port: int, tcp_port: int) -> bool:
    """True when a listing of the table (libnftables JSON) holds what `table(udp_port,
    tcp_port)` writes: both chains with their two rules each, redirecting to these
    ports. False after a flush, a deleted table or chain, or a rule someone changed."""
    if listing is None:
        return False
    chains = {c["chain"]["name"]: c["chain"] for c in listing if "chain" in c}
    counts: dict[str, int] = {}
    for item in listing:
        rule = item.get("rule")
        if rule:
            counts[rule.get("chain", "")] = counts.get(rule.get("chain", ""), 0) + 1
    hooks_ok = (chains.get("output", {}).get("hook") == "output"
                and chains.get("postrouting", {}).get("hook") == "postrouting")
    return (hooks_ok and counts == {"output": 2, "postrouting": 2}
            and ports(listing) == (udp_port, tcp_port))
