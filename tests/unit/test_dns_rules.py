"""muslin.dns.rules: the sandbox's redirect table as libnftables JSON (no root)."""

from __future__ import annotations

from typing import Any

from muslin.dns import rules


def test_table_redirects_port_53_both_ways() -> None:
    cmds = rules.table(40001, 40002)
    # replaces any earlier table in the same batch: add, delete, add
    assert [next(iter(c)) for c in cmds[:3]] == ["add", "delete", "add"]
    chains = {c["add"]["chain"]["name"]: c["add"]["chain"] for c in cmds
              if "chain" in c.get("add", {})}
    assert chains["output"]["hook"] == "output" and chains["output"]["type"] == "nat"
    assert chains["output"]["prio"] == -100
    assert chains["postrouting"]["hook"] == "postrouting"
    assert all(c["policy"] == "accept" for c in chains.values())
    rule_list = [c["add"]["rule"] for c in cmds if "rule" in c.get("add", {})]
    dnat = [r for r in rule_list if r["chain"] == "output"]
    snat = [r for r in rule_list if r["chain"] == "postrouting"]
    assert [r["expr"][-1] for r in dnat] == [
        {"dnat": {"addr": "127.0.0.11", "port": 40001}},
        {"dnat": {"addr": "127.0.0.11", "port": 40002}}]
    assert [r["expr"][1]["match"]["left"]["payload"]["protocol"] for r in dnat] == [
        "udp", "tcp"]
    assert all(r["expr"][1]["match"]["right"] == 53 for r in dnat)
    assert [r["expr"][1]["match"]["right"] for r in snat] == [40001, 40002]
    assert all(r["expr"][-1] == {"snat": {"addr": "127.0.0.11", "port": 53}} for r in snat)
    assert rules.remove() == [{"add": {"table": {"family": "ip", "name": "muslin_dns"}}},
                              {"delete": {"table": {"family": "ip", "name": "muslin_dns"}}}]


def test_ports_read_back_from_a_listing() -> None:
    listing: list[dict[str, Any]] = [
        {"table": {"family": "ip", "name": "muslin_dns", "handle": 1}}]
    for c in rules.table(41000, 42000):
        if "rule" in c.get("add", {}):
            listing.append({"rule": {**c["add"]["rule"], "handle": 3}})
    assert rules.ports(listing) == (41000, 42000)
    assert rules.ports(None) == (None, None)
    assert rules.ports([{"rule": {"chain": "output", "expr": []}}]) == (None, None)


def _listing(udp: int, tcp: int) -> list[dict[str, Any]]:
    """What libnftables lists for the table rules.table(udp, tcp) writes."""
    out: list[dict[str, Any]] = []
    for c in rules.table(udp, tcp)[2:]:
        kind, body = next(iter(c["add"].items()))
        out.append({kind: dict(body)})
    return out


def test_intact_notices_a_flushed_or_changed_table() -> None:
    good = _listing(41000, 42000)
    assert rules.intact(good, 41000, 42000)
    assert not rules.intact(good, 41000, 42001)            # other ports
    assert not rules.intact(None, 41000, 42000)            # table deleted
    flushed = [i for i in good if "rule" not in i]          # nft flush table
    assert not rules.intact(flushed, 41000, 42000)
    no_snat = [i for i in good if i.get("rule", {}).get("chain") != "postrouting"]
    assert not rules.intact(no_snat, 41000, 42000)
    extra = [*good, {"rule": {"chain": "output", "expr": []}}]
    assert not rules.intact(extra, 41000, 42000)
