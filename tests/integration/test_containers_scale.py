"""100 containers on one network from 10 parallel Engine API clients (docker-py): run,
connect to a second network while running, remove, all at once. No deadlock (every
client finishes within its deadline), no address given twice, pings between a sample,
and the controller's leaks() empty on the state muslind leaves (read after kill -9,
so nothing tidies up first)."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import docker
import pytest

import muslin

from daemon import Muslind
from lab import Lab

pytestmark = pytest.mark.kernel

CLIENTS, PER_CLIENT = 10, 10


def _in_parallel(fn: Callable[[docker.APIClient, int], Any], socket: str) -> list[Any]:
    def work(i: int) -> Any:
        client = docker.APIClient(base_url=f"unix://{socket}", version="1.47", timeout=300)
        try:
            return fn(client, i)
        finally:
            client.close()

    with ThreadPoolExecutor(CLIENTS) as pool:
        futures = [pool.submit(work, i) for i in range(CLIENTS)]
        return [f.result(timeout=600) for f in futures]  # a deadlock fails here


def _addresses(api: docker.APIClient, net: str) -> list[str]:
    return [c["IPv4Address"] for c in api.inspect_network(net)["Containers"].values()]


def test_100_containers_from_10_clients(lab: Lab, muslind: Muslind, stub_dns: Any,
                                        controller: Callable[..., muslin.Controller]) -> None:
    api = docker.APIClient(base_url=f"unix://{muslind.socket}", version="1.47")
    api.create_network("busy")
    api.create_network("second")

    def run(client: docker.APIClient, i: int) -> list[str]:
        ids = []
        for j in range(PER_CLIENT):
            cid = client.create_container(
                "busybox", ["sleep", "1d"], name=f"s{i}-{j}", stop_signal="SIGKILL",
                host_config=client.create_host_config(network_mode="busy",
                                                      dns=[stub_dns.address]))["Id"]
            client.start(cid)
            ids.append(cid)
        return ids

    ids = [cid for chunk in _in_parallel(run, muslind.socket) for cid in chunk]
    assert len(ids) == 100

    def connect(client: docker.APIClient, i: int) -> None:
        for cid in ids[i::CLIENTS]:
            client.connect_container_to_network(cid, "second")

    _in_parallel(connect, muslind.socket)
    for net in ("busy", "second"):
        addrs = _addresses(api, net)
        assert len(addrs) == 100 and len(set(addrs)) == 100, net
    assert len(api.containers(filters={"network": "busy"})) == 100

    def ip(cid: str, net: str) -> str:
        return str(api.inspect_container(cid)["NetworkSettings"]["Networks"][net]["IPAddress"])

    for a, b in ((0, 99), (57, 3), (42, 43)):
        for net in ("busy", "second"):
            ex = api.exec_create(ids[a], ["ping", "-c1", "-W2", ip(ids[b], net)])
            out = api.exec_start(ex["Id"]).decode()
            assert api.exec_inspect(ex["Id"])["ExitCode"] == 0, out
    ex = api.exec_create(ids[5], ["ping", "-c1", "-W2", "s9-9"])  # by name, on both nets
    assert b"1 packets received" in api.exec_start(ex["Id"])

    def remove(client: docker.APIClient, i: int) -> None:
        for cid in ids[i::CLIENTS]:
            client.remove_container(cid, force=True)

    _in_parallel(remove, muslind.socket)
    assert api.containers(all=True) == []
    assert _addresses(api, "busy") == [] and _addresses(api, "second") == []
    api.close()

    assert muslind.proc is not None
    muslind.proc.kill()  # what the running daemon left, untouched by a clean stop
    muslind.proc.wait(10)
    muslind.proc = None
    ctl = controller(reconcile=False)
    assert ctl.leaks() == []
    assert ctl.sandboxes() == [] and sorted(n.name for n in ctl.networks()) == [
        "bridge", "busy", "host", "none", "second"]
    assert all(n.endpoints() == [] for n in ctl.networks())
