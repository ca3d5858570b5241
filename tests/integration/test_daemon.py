"""muslind as a process: socket permissions, one daemon per data root, restarts that
keep every network as inspect showed it, configuration errors naming the key, and
SIGHUP reloading the log level."""

from __future__ import annotations

import json
import os
import signal
import subprocess

import pytest

from daemon import MUSLIND, Muslind
from lab import Lab, LabHost, wait_until

pytestmark = pytest.mark.kernel


def test_non_root_user_cannot_use_the_socket(muslind: Muslind) -> None:
    mode = os.stat(muslind.socket).st_mode & 0o777
    assert mode == 0o660
    r = subprocess.run(["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups",
                        "docker", "-H", f"unix://{muslind.socket}", "network", "ls"],
                       capture_output=True, text=True, timeout=30,
                       env={**muslind.env, "HOME": "/tmp"})
    assert r.returncode != 0
    assert "permission denied" in r.stderr.lower()


def test_second_daemon_on_same_data_root_refuses(lab: Lab, lab_host: LabHost,
                                                 muslind: Muslind) -> None:
    other_socket = os.path.join(lab_host.dir, "other.sock")
    argv = [a if a != f"unix://{muslind.socket}" else f"unix://{other_socket}"
            for a in muslind.argv]
    r = lab.run(lab_host, argv, check=False, timeout=30)
    assert r.returncode == 1
    assert "pid file found, ensure muslind is not running" in r.stderr
    assert muslind.answers()  # the first one is unharmed


def test_restart_keeps_networks_exactly(muslind: Muslind) -> None:
    muslind.docker("network", "create", "--subnet", "10.60.0.0/24", "--label", "k=v",
                   "--internal", "-o", "com.docker.network.bridge.enable_icc=false", "kept")
    muslind.docker("network", "create", "plain")
    before = json.loads(muslind.docker("network", "inspect", "bridge", "host", "none", "kept",
                                       "plain").stdout)
    muslind.stop()
    muslind.start()
    after = json.loads(muslind.docker("network", "inspect", "bridge", "host", "none", "kept",
                                      "plain").stdout)
    assert after == before


def test_config_errors_name_the_key(lab: Lab, lab_host: LabHost) -> None:
    for config, text in [({"bogus-key": 1}, "bogus-key"),
                         ({"mtu": "big"}, "mtu"),
                         ({"log-level": "loud"}, "log-level"),
                         ({"default-address-pools": [{"base": "10.0.0.0/8", "size": 99}]},
                          "default-address-pools[0].size")]:
        d = Muslind(lab, lab_host, config)
        r = lab.run(lab_host, d.argv, check=False, timeout=30)
        assert r.returncode == 1 and text in r.stderr, (config, r.stderr)
    r = lab.run(lab_host, [MUSLIND, "--config-file", "/nonexistent/daemon.json"], check=False)
    assert r.returncode == 1 and "/nonexistent/daemon.json" in r.stderr


def test_sighup_reloads_log_level(lab: Lab, lab_host: LabHost) -> None:
    d = Muslind(lab, lab_host, {"log-level": "info"}).start()
    try:
        assert json.loads(d.docker("info", "--format", "{{json .Debug}}").stdout) is False
        with open(d.config_file, "w") as f:
            json.dump({"log-level": "debug"}, f)
        assert d.proc is not None
        d.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: "configuration reloaded" in d.log(), what="the reload")
        assert json.loads(d.docker("info", "--format", "{{json .Debug}}").stdout) is True
    finally:
        d.stop()


def test_default_address_pools_and_bip_from_config(lab: Lab, lab_host: LabHost) -> None:
    d = Muslind(lab, lab_host, {"bip": "10.99.0.1/24", "default-address-pools": [
        {"base": "10.123.0.0/16", "size": 24}]}).start()
    try:
        [bridge] = json.loads(d.docker("network", "inspect", "bridge").stdout)
        assert bridge["IPAM"]["Config"] == [{"Subnet": "10.99.0.0/24", "Gateway": "10.99.0.1"}]
        d.docker("network", "create", "pooled")
        [net] = json.loads(d.docker("network", "inspect", "pooled").stdout)
        assert net["IPAM"]["Config"][0]["Subnet"] == "10.123.0.0/24"
    finally:
        d.stop()
