"""In-process benchmarks of the CNM core (issue 3): medians of repeated operations.

Runs a muslin instance inside a network namespace of its own (nothing else on the
machine changes) and prints JSON figures:
- network_create_delete_ms: create + delete of a bridge network (median of N)
- endpoint_cycle_ms: create + join + leave + delete of an endpoint (median of N)
- join_ms_first10 / join_ms_last10: median join time of the first and last 10 of
  `--endpoints` endpoints on one bridge, and their ratio (goal: at most 1.2);
  join_ms_10th / join_ms_last and their ratio, the single-sample version.
- kernel_join_ms_first10 / kernel_join_ms_last10 and their ratio: the same growth
  measured for the bare kernel work of a join (veth pair into a namespace, attach to
  the bridge, address and default route inside), through the kernel door with no
  muslin logic, in a second namespace of the same size: how much of the growth is
  the kernel's own.

Usage: sudo .venv/bin/python bench/cnm_inprocess.py [--repeat 50] [--endpoints 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable

import muslin
from muslin.kernel import netns


def timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1000


def _kernel_baseline(top: str, endpoints: int) -> dict[str, float]:
    """The kernel's own share: bare joins through the kernel door, no muslin logic."""
    from muslin.kernel import Host, Links, Nft, in_netns

    host_path = os.path.join(top, "kernel-host")
    netns.create(host_path)
    host = Host(host_path)
    paths = []
    try:
        host.call(lambda links, _n: links.set(
            links.add_bridge("kbr0", alias="bench").index, state="up"))
        times = []
        for i in range(endpoints):
            path = os.path.join(top, f"k{i}")
            netns.create(path)
            paths.append(path)

            def join(i: int = i, path: str = path) -> None:
                def host_side(links: Links, _nft: Nft) -> None:
                    br = links.require("kbr0")
                    fd = os.open(path, os.O_RDONLY)
                    try:
                        links.add_veth(f"kv{i}", "eth0", alias="bench", peer_netns_fd=fd,
                                       master=br.index, up=True)
                    finally:
                        os.close(fd)

                host.call(host_side)

                def inside(links: Links) -> None:
                    eth = links.require("eth0")
                    links.add_address(eth.index, f"10.{i // 250}.{i % 250}.2", 8)
                    links.set(eth.index, state="up")
                    links.replace_default_route("10.255.255.1", eth.index)

                in_netns(path, inside)

            times.append(timed(join))
        first, last = statistics.median(times[:10]), statistics.median(times[-10:])
        return {"kernel_join_ms_first10": first, "kernel_join_ms_last10": last,
                "kernel_join_ratio_last10_first10": last / first}
    finally:
        host.close()
        for path in paths:
            netns.delete(path)
        netns.delete(host_path)


def run(repeat: int = 50, endpoints: int = 1000) -> dict[str, float]:
    top = tempfile.mkdtemp(prefix="muslin-bench-", dir="/run")
    host = os.path.join(top, "host")
    netns.create(host)
    ctl = muslin.Controller(state_dir=f"{top}/state", run_dir=f"{top}/run", prefix="bn",
                            host_netns=host, default_bridge=False)
    out: dict[str, float] = {}
    try:
        samples = [timed(lambda: ctl.create_network("n").delete()) for _ in range(repeat)]
        out["network_create_delete_ms"] = statistics.median(samples)
        net = ctl.create_network("cycle")
        sb = ctl.create_sandbox("s")

        def cycle() -> None:
            ep = net.create_endpoint("e")
            ep.join(sb)
            ep.leave(sb)
            ep.delete()

        out["endpoint_cycle_ms"] = statistics.median(timed(cycle) for _ in range(repeat))
        big = ctl.create_network("big")
        pairs = [(ctl.create_sandbox(f"c{i}"), big.create_endpoint(f"c{i}"))
                 for i in range(endpoints)]
        joins = []
        for i, (s, ep) in enumerate(pairs):
            joins.append(timed(lambda s=s, ep=ep: ep.join(s)))  # type: ignore[misc]
            if i % 100 == 99:
                print(f"  joined {i + 1}/{endpoints}", file=sys.stderr)
        out["join_ms_first10"] = statistics.median(joins[:10])
        out["join_ms_last10"] = statistics.median(joins[-10:])
        out["join_ratio_last10_first10"] = out["join_ms_last10"] / out["join_ms_first10"]
        out["join_ms_10th"] = joins[9]
        out["join_ms_last"] = joins[-1]
        out["join_ratio_last_10th"] = joins[-1] / joins[9]
        out["endpoints"] = endpoints
        out["leaks"] = len(ctl.leaks())
        out.update(_kernel_baseline(top, endpoints))
    finally:
        ctl.close()
        for name in os.listdir(f"{top}/run/netns"):
            netns.delete(f"{top}/run/netns/{name}")
        netns.delete(host)
        shutil.rmtree(top, ignore_errors=True)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=50)
    p.add_argument("--endpoints", type=int, default=1000)
    args = p.parse_args()
    print(json.dumps(run(args.repeat, args.endpoints), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
