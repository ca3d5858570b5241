"""The one kernel door: the only code of muslin that changes the kernel.

`Host` is one instance's host network namespace (the process's own, or a lab
namespace): a worker thread living there, with its netlink (`Links`) and nftables
(`Nft`) handles. `in_netns` runs a function inside another namespace (a sandbox) on
a short-lived thread with a `Links` of its own. Namespaces are made and removed by
`muslin.kernel.netns`; sysctls by `muslin.kernel.sysctl` (on such a thread).
Callers never change namespace themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from muslin.kernel import netns
from muslin.kernel.features import Features, features
from muslin.kernel.links import Address, Link, Links
from muslin.kernel.nft import Nft

T = TypeVar("T")

__all__ = ["Address", "Features", "Host", "Link", "Links", "Nft", "features", "in_netns",
           "netns"]


class Host:
    """One instance's host namespace: calls run there, one at a time, on one thread."""

    def __init__(self, netns_path: str | None = None, *, name: str = "muslin-host") -> None:
        self.netns_path = netns_path
        self._thread = netns.NetnsThread(netns_path, name)

    def call(self, fn: Callable[[Links, Nft], T]) -> T:
        """Runs fn(links, nft) inside the host namespace and returns its result."""

        def run() -> T:
            links = self._thread.resource("links", Links, Links.close)
            nft = self._thread.resource("nft", Nft, Nft.close)
            return fn(links, nft)

        return self._thread.call(run)

    def close(self) -> None:
        self._thread.close()


def in_netns(path: str, fn: Callable[[Links], T]) -> T:
    """Runs fn(links) inside the namespace pinned at path."""

    def run() -> T:
        links = Links()
        try:
            return fn(links)
        finally:
            links.close()

    return netns.run_in(path, run)
