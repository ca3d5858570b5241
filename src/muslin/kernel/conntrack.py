"""Conntrack entries: flushing those of a removed UDP port mapping, so the next
packets of a still-running "connection" meet the new mapping instead of the old one.
Call on a thread inside the namespace (the host's worker). Must not decide which.
"""

from __future__ import annotations

import socket

from pyroute2 import Conntrack
from pyroute2.netlink.nfnetlink.nfctsocket import NFCTAttrTuple


def flush_udp_dport(port: int, *, v6: bool = False) -> int:
    """Deletes every UDP entry (IPv4, or IPv6 with v6) whose original destination port
    is `port`; returns how many."""
    n = 0
    family = socket.AF_INET6 if v6 else socket.AF_INET
    with Conntrack() as ct:
        for entry in list(ct.dump_entries(tuple_orig=NFCTAttrTuple(
                family=family, proto=socket.IPPROTO_UDP, dport=port))):
            try:
                ct.delete(entry)
                n += 1
            except Exception:  # gone meanwhile
                continue
    return n
