"""Finds what outside muslin would drop muslin's bridged traffic: a FORWARD chain with
policy drop in another nftables table (dockerd leaves iptables' FORWARD at DROP, and
with br_netfilter that drops traffic of every bridge). Read only. Runs on the host
namespace's worker thread.
"""

from __future__ import annotations

from muslin.kernel import Nft


def forward_drop_policies(nft: Nft, own_table: str) -> list[str]:
    found = []
    for family, table in nft.table_names():
        if family not in ("ip", "ip6", "inet", "bridge") or table == own_table:
            continue
        for item in nft.list_table(family, table) or []:
            chain = item.get("chain")
            if chain and chain.get("hook") == "forward" and chain.get("policy") == "drop":
                found.append(f"{family} {table} {chain['name']}")
    return found


def warning(chains: list[str]) -> str:
    return ("the firewall drops forwarded traffic of muslin networks: chain(s) "
            + ", ".join(chains) + " have policy drop (dockerd sets iptables' FORWARD "
            "policy to DROP and leaves it so). Containers on muslin bridges cannot reach "
            "each other or the outside until it is accepted, e.g. `iptables -P FORWARD "
            "ACCEPT` (or `iptables -I FORWARD -i br-+ -j ACCEPT; iptables -I FORWARD -o "
            "br-+ -j ACCEPT` to keep the policy)")
