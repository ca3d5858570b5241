"""Concurrency and endurance: 100 parallel joins, and 1,000 create/delete cycles that
leave nothing behind (no leak, no namespace, no marked link, no rule, no open file,
no thread)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

import muslin
from muslin.firewall import plan
from muslin.kernel import Links, Nft

from lab import Lab
from netcheck import pings

pytestmark = pytest.mark.kernel


def test_100_joins_from_10_threads(lab: Lab, ctl: muslin.Controller) -> None:
    net = ctl.create_network("busy")
    pairs = [(ctl.create_sandbox(f"c{i}"), net.create_endpoint(f"c{i}")) for i in range(100)]

    def join_all(chunk: list[tuple[muslin.Sandbox, muslin.Endpoint]]) -> None:
        for sb, ep in chunk:
            ep.join(sb)

    with ThreadPoolExecutor(10) as pool:
        futures = [pool.submit(join_all, pairs[i::10]) for i in range(10)]
        for f in futures:
            f.result(timeout=300)  # a deadlock fails here instead of hanging
    addresses = [ep.ipv4_address for _, ep in pairs]
    assert len(set(addresses)) == 100
    assert all(ep.interface_name == "eth0" for _, ep in pairs)
    assert ctl.leaks() == []
    assert pings(lab, pairs[0][0].netns_path, str(pairs[99][1].ipv4_address))
    assert pings(lab, pairs[57][0].netns_path, str(pairs[3][1].ipv4_address))


def _open_files() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.slow
def test_1000_create_delete_cycles_leave_nothing(
        lab: Lab, controller: Callable[..., muslin.Controller]) -> None:
    ctl = controller(default_bridge=False)
    keep = ctl.create_network("keep")  # a network that lives through all cycles
    keep_sb = ctl.create_sandbox("keeper")
    keep.create_endpoint("keeper").join(keep_sb)
    files, threads = _open_files(), set(threading.enumerate())
    for i in range(1000):
        net = ctl.create_network(f"cycle{i % 7}")
        sb = ctl.create_sandbox(f"c{i}")
        ep = net.create_endpoint(f"c{i}")
        ep.join(sb)
        if i % 10 == 0:  # a second network in the sandbox now and then
            keep.create_endpoint(f"k{i}").join(sb)
        ep.leave(sb)
        ep.delete()
        sb.delete()  # leaves and deletes the keep endpoint too
        net.delete()
    assert _open_files() == files
    # none of ours left (threads of earlier tests may end meanwhile: not counted)
    assert [t.name for t in set(threading.enumerate()) - threads] == []
    assert ctl.leaks() == []
    keep_sb.delete()
    keep.delete()
    assert ctl.leaks() == []
    assert os.listdir(ctl.netns_dir) == []

    def kernel(links: Links, nft: Nft) -> tuple[list[str], plan.TablePlan | None]:
        listing = nft.list_table("inet", ctl.names.table)
        return ([link.name for link in links.marked(ctl.names.mark)],
                plan.observed_shape(listing) if listing is not None else None)

    marked, shape = ctl.host.call(kernel)
    assert marked == []
    assert shape == plan.expected_shape([])  # only the skeleton: no network chains
    assert not ctl.store.keys("pool") and not ctl.store.keys("address")
