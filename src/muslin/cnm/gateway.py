"""Which of a sandbox's endpoints gives its default gateway: libnetwork's ordering.

Pure. Better candidates first: higher gateway priority; endpoints of non-internal
networks before internal ones; more gateways (v4 and v6) before fewer; then the
network name. The first endpoint (in that order) with an IPv4 gateway gives the
IPv4 default route, likewise for IPv6. Must do no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Candidate:
    endpoint_id: str
    network_name: str
    internal: bool
    priority: int
    gateway4: str | None
    gateway6: str | None


def order(cands: list[Candidate]) -> list[Candidate]:
    def key(c: Candidate) -> tuple[int, bool, int, str]:
        gws = (c.gateway4 is not None) + (c.gateway6 is not None)
        return (-c.priority, c.internal, -gws, c.network_name)

    return sorted(cands, key=key)


def choose(cands: list[Candidate]) -> tuple[Candidate | None, Candidate | None]:
    """(endpoint giving the IPv4 default route, the one giving the IPv6 route)."""
    ep4 = ep6 = None
    for c in order(cands):
        if c.internal:
            continue
        if c.gateway4 and ep4 is None:
            ep4 = c
        if c.gateway6 and ep6 is None:
            ep6 = c
    return ep4, ep6
