"""docker-py against muslind's container API: endpoint settings given at create time
(aliases, a fixed IPv4 address, link-local IPs, a MAC address) are both shown by
`inspect_container` and real inside the container; `exec_run` returns output and exit
code; bad endpoint settings are refused before anything is made."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import docker
import pytest
from docker.types import IPAMConfig, IPAMPool

from daemon import Muslind

pytestmark = pytest.mark.kernel


@pytest.fixture
def client(muslind: Muslind) -> Iterator[docker.DockerClient]:
    c = docker.DockerClient(base_url=f"unix://{muslind.socket}", version="auto")
    yield c
    c.close()


def test_networking_config_shows_in_inspect_and_exec_run(client: docker.DockerClient,
                                                         stub_dns: Any) -> None:
    api = client.api
    api.create_network("pynet", ipam=IPAMConfig(pool_configs=[IPAMPool(
        subnet="10.40.0.0/24", gateway="10.40.0.1")]))
    endpoint = api.create_endpoint_config(
        aliases=["web", "www"], ipv4_address="10.40.0.40",
        link_local_ips=["169.254.10.10", "fe80::a:10"], mac_address="02:42:0a:28:00:28")
    created = api.create_container(
        "busybox", ["sleep", "1d"], name="pyc",
        host_config=api.create_host_config(network_mode="pynet", dns=[stub_dns.address]),
        networking_config=api.create_networking_config({"pynet": endpoint}))
    api.start(created["Id"])
    doc = api.inspect_container("pyc")
    assert doc["State"]["Running"] is True
    ep = doc["NetworkSettings"]["Networks"]["pynet"]
    assert ep["IPAddress"] == "10.40.0.40" and ep["IPPrefixLen"] == 24
    assert ep["Gateway"] == "10.40.0.1"
    assert ep["MacAddress"] == "02:42:0a:28:00:28"
    assert {"web", "www"} <= set(ep["Aliases"])
    assert ep["IPAMConfig"] == {"IPv4Address": "10.40.0.40",
                                "LinkLocalIPs": ["169.254.10.10", "fe80::a:10"]}
    assert {"pyc", "web", "www"} <= set(ep["DNSNames"])

    # what inspect says is what the kernel has
    pyc = client.containers.get("pyc")
    res = pyc.exec_run(["ip", "-o", "addr", "show", "dev", "eth0"])
    assert res.exit_code == 0
    text = res.output.decode()
    for cidr in ("10.40.0.40/24", "169.254.10.10/16", "fe80::a:10/64"):
        assert f" {cidr} " in text, text
    link = pyc.exec_run(["cat", "/sys/class/net/eth0/address"]).output.decode().strip()
    assert link == "02:42:0a:28:00:28"

    # exec_run: output and exit code, stdout and stderr apart
    res = pyc.exec_run(["sh", "-c", "echo out; echo err >&2; exit 4"], demux=True)
    assert res.exit_code == 4 and res.output == (b"out\n", b"err\n")
    assert pyc.exec_run("hostname").output.decode().strip() == created["Id"][:12]

    # the aliases answer in the embedded DNS: a second container pings "www"
    other = client.containers.run("busybox", ["sleep", "1d"], detach=True, name="pyc2",
                                  network="pynet", dns=[stub_dns.address])
    res = other.exec_run(["ping", "-c1", "-W2", "www"])
    assert res.exit_code == 0 and b"(10.40.0.40)" in res.output, res.output
    other.remove(force=True)
    pyc.remove(force=True)
    assert api.containers(all=True) == []


def test_bad_endpoint_settings_are_refused_at_create(client: docker.DockerClient) -> None:
    api = client.api
    api.create_network("badnet")
    cases = [
        ({"ipv4_address": "10.1.1.300"}, "invalid IPv4 address: 10.1.1.300"),
        ({"ipv6_address": "10.1.1.3"}, "invalid IPv6 address: 10.1.1.3"),
        ({"link_local_ips": ["nope"]}, "invalid link-local IP address: nope"),
        ({"mac_address": "02:42:zz:00:00:01"}, "invalid MAC address: 02:42:zz:00:00:01"),
    ]
    for kwargs, text in cases:
        with pytest.raises(docker.errors.APIError) as e:
            api.create_container("busybox", ["true"], networking_config=api.
                                 create_networking_config({"badnet": api.
                                                           create_endpoint_config(**kwargs)}),
                                 host_config=api.create_host_config(network_mode="badnet"))
        assert e.value.status_code == 400 and text in str(e.value.explanation), kwargs
    assert api.containers(all=True) == []
    assert api.inspect_network("badnet")["Containers"] == {}
