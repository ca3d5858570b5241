"""nftables change notifications of one namespace: a netlink socket subscribed to
NFNLGRP_NFTABLES, the group `nft monitor` listens to. Every change of any table in
the namespace (ours, a user's `nft flush ruleset`) sends messages there. Make it on a
thread inside the namespace (a socket stays in the namespace it was made in). It only
says that something changed; it must not decide what to do about it.
"""

from __future__ import annotations

import errno
import socket

from muslin.fdwait import readable

NETLINK_NETFILTER = 12
NFNLGRP_NFTABLES = 7


class NftEvents:
    """Wakes when the namespace's nftables ruleset changes."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        try:
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            self._sock.bind((0, 1 << (NFNLGRP_NFTABLES - 1)))
            self._sock.setblocking(False)
        except BaseException:
            self._sock.close()
            raise

    def wait(self, timeout: float) -> bool:
        """True when changes came within timeout (their messages are consumed)."""
        if not readable(self._sock, timeout):
            return False
        while True:
            try:
                if not self._sock.recv(1 << 16):
                    return True
            except BlockingIOError:
                return True
            except OSError as e:  # ENOBUFS: so many changes that some were lost
                if e.errno != errno.ENOBUFS:
                    raise

    def close(self) -> None:
        self._sock.close()
