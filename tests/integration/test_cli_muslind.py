"""The muslin CLI against a real muslind: the seed's network commands, Docker's output
shapes, errors, and the message when no daemon runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from daemon import Muslind

pytestmark = pytest.mark.kernel

MUSLIN = os.path.join(os.path.dirname(sys.executable), "muslin")


def cli(d: Muslind, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([MUSLIN, "-H", f"unix://{d.socket}", *args], capture_output=True,
                          text=True, timeout=60, check=check)


def test_seed_network_commands(muslind: Muslind) -> None:
    net_id = cli(muslind, "network", "create", "-d", "bridge", "localnet").stdout.strip()
    assert len(net_id) == 64
    lines = cli(muslind, "network", "ls").stdout.splitlines()
    assert lines[0].split() == ["NETWORK", "ID", "NAME", "DRIVER", "SCOPE"]
    rows = {line.split()[1]: line.split() for line in lines[1:]}
    assert rows["localnet"] == [net_id[:12], "localnet", "bridge", "local"]
    assert set(rows) == {"bridge", "host", "none", "localnet"}
    # the same listing as the real docker CLI prints
    assert cli(muslind, "network", "ls").stdout == muslind.docker("network", "ls").stdout
    [doc] = json.loads(cli(muslind, "network", "inspect", "localnet").stdout)
    assert doc["Id"] == net_id and doc["IPAM"]["Config"][0]["Subnet"] == "172.18.0.0/16"
    assert cli(muslind, "network", "inspect", "-f", "{{.Driver}}", "localnet").stdout == \
        "bridge\n"
    cli(muslind, "network", "create", "--subnet=10.0.0.0/24", "--ip-range=10.0.0.0/25",
        "--gateway=10.0.0.1", "--aux-address", "a=10.0.0.2", "seednet")
    [seed] = json.loads(cli(muslind, "network", "inspect", "seednet").stdout)
    assert seed["IPAM"]["Config"] == [{"Subnet": "10.0.0.0/24", "IPRange": "10.0.0.0/25",
                                       "Gateway": "10.0.0.1",
                                       "AuxiliaryAddresses": {"a": "10.0.0.2"}}]
    assert cli(muslind, "network", "ls", "-q", "-f", "name=seed").stdout.strip() == \
        seed["Id"][:12]
    r = cli(muslind, "network", "create", "localnet", check=False)
    assert r.returncode == 1
    assert r.stderr.strip() == ("Error response from daemon: network with name localnet "
                                "already exists")
    assert cli(muslind, "network", "rm", "localnet", "seednet").stdout.split() == [
        "localnet", "seednet"]
    assert "localnet" not in cli(muslind, "network", "ls").stdout


def test_no_daemon_message(tmp_path: object) -> None:
    r = subprocess.run([MUSLIN, "-H", "unix:///nonexistent/muslin.sock", "network", "ls"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert r.stderr.strip() == ("Cannot connect to the muslin daemon at "
                                "unix:///nonexistent/muslin.sock. Is muslind running?")
