"""The real docker CLI (v28) against muslind: networks created, listed, inspected,
removed and pruned, and Docker's errors, all through `DOCKER_HOST`."""

from __future__ import annotations

import json
import shutil

import pytest

from daemon import Muslind

pytestmark = pytest.mark.kernel


@pytest.fixture(autouse=True)
def _docker_cli() -> None:
    if shutil.which("docker") is None:
        from lab import unavailable

        unavailable("the docker CLI is not installed")


def ls(d: Muslind) -> list[dict[str, str]]:
    out = d.docker("network", "ls", "--no-trunc").stdout.splitlines()
    header = out[0].split()
    assert header == ["NETWORK", "ID", "NAME", "DRIVER", "SCOPE"]
    return [dict(zip(("ID", "Name", "Driver", "Scope"), line.split(), strict=True))
            for line in out[1:]]


def test_create_ls_inspect_rm_prune(muslind: Muslind) -> None:
    assert {n["Name"]: n["Driver"] for n in ls(muslind)} == {
        "bridge": "bridge", "host": "host", "none": "null"}
    net_id = muslind.docker("network", "create", "localnet").stdout.strip()
    assert len(net_id) == 64
    rows = {n["Name"]: n for n in ls(muslind)}
    assert rows["localnet"] == {"ID": net_id, "Name": "localnet", "Driver": "bridge",
                                "Scope": "local"}
    [doc] = json.loads(muslind.docker("network", "inspect", "localnet").stdout)
    assert doc["Id"] == net_id and doc["Driver"] == "bridge" and doc["Scope"] == "local"
    assert doc["IPAM"]["Config"] == [{"Subnet": "172.18.0.0/16", "Gateway": "172.18.0.1"}]
    fmt = muslind.docker("network", "inspect", "-f", "{{.Name}} {{.Internal}}",
                         "localnet").stdout
    assert fmt.strip() == "localnet false"
    q = muslind.docker("network", "ls", "-q", "--filter", "name=local").stdout.split()
    assert q == [net_id[:12]]
    muslind.docker("network", "create", "--subnet", "10.30.0.0/24", "--ip-range",
                   "10.30.0.128/25", "--gateway", "10.30.0.1", "--aux-address", "r=10.30.0.2",
                   "--label", "team=net", "--internal", "second")
    [doc2] = json.loads(muslind.docker("network", "inspect", "second").stdout)
    assert doc2["IPAM"]["Config"] == [{"Subnet": "10.30.0.0/24", "IPRange": "10.30.0.128/25",
                                       "Gateway": "10.30.0.1",
                                       "AuxiliaryAddresses": {"r": "10.30.0.2"}}]
    assert doc2["Internal"] is True and doc2["Labels"] == {"team": "net"}
    assert muslind.docker("network", "rm", "localnet").stdout.strip() == "localnet"
    pruned = muslind.docker("network", "prune", "-f").stdout
    assert "Deleted Networks:" in pruned and "second" in pruned
    assert sorted(n["Name"] for n in ls(muslind)) == ["bridge", "host", "none"]


def test_errors_through_the_cli(muslind: Muslind) -> None:
    muslind.docker("network", "create", "dup")
    cases = [
        (("network", "create", "dup"), "network with name dup already exists"),
        (("network", "rm", "bridge"), "bridge is a pre-defined network and cannot be removed"),
        (("network", "create", "-d", "host", "host2"),
         'only one instance of "host" network is allowed'),
        (("network", "create", "--subnet", "300.1.1.0/24", "bad"),
         "invalid subnet 300.1.1.0/24"),
        (("network", "create", "-d", "nosuch", "bad"), 'plugin "nosuch" not found'),
        (("network", "inspect", "nosuch"), "network nosuch not found"),
        (("network", "rm", "nosuch"), "network nosuch not found"),
    ]
    for argv, text in cases:
        r = muslind.docker(*argv, check=False)
        assert r.returncode != 0, argv
        assert text in r.stderr, (argv, r.stderr)
    assert sorted(n["Name"] for n in ls(muslind)) == ["bridge", "dup", "host", "none"]


def test_version_and_info(muslind: Muslind) -> None:
    v = json.loads(muslind.docker("version", "--format", "{{json .Server}}").stdout)
    assert v["ApiVersion"] == "1.47" and v["Os"] == "linux"
    info = json.loads(muslind.docker("info", "--format", "{{json .}}").stdout)
    assert info["OSType"] == "linux" and "bridge" in info["Plugins"]["Network"]
