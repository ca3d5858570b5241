"""The other direction: Debian's dockerd uses `muslin plugin serve` (muslin's bridge
driver as a Docker network plugin) to create a network and run two busybox
containers on it that ping each other.

dockerd and the plugin share one lab namespace (dockerd moves the interface the
plugin names). dockerd runs with --iptables=false and --bridge=none, in a private
mount namespace where its fixed paths (/etc/docker for its key, /run/docker/plugins
for plugin discovery, /run/containerd hidden so it starts its own containerd) are
the lab's directories: it never meets the machine's firewall or a running Docker."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from daemon import socket_answers
from lab import Lab, LabHost, unavailable, wait_until

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from bench import image  # the repository root holds bench/

pytestmark = pytest.mark.kernel

MUSLIN = os.path.join(os.path.dirname(sys.executable), "muslin")
MOUNTS = r"""
set -e
mount --make-rprivate /
mount --bind "$1" /etc/docker
mount --bind "$2" /run/docker/plugins
if [ -d /run/containerd ]; then mount -t tmpfs tmpfs /run/containerd; fi
shift 2
exec "$@"
"""


def _mount_point(lab: Lab, path: str) -> None:
    """path must exist to be mounted over in dockerd's mount namespace; one this test
    makes (empty) is removed afterwards."""
    missing = []
    p = path
    while not os.path.exists(p):
        missing.append(p)
        p = os.path.dirname(p)
    os.makedirs(path, exist_ok=True)

    def remove() -> None:
        for m in missing:
            with contextlib.suppress(OSError):
                os.rmdir(m)

    lab.defer(f"remove {path}", remove)


def test_dockerd_runs_containers_on_plugin_serve(lab: Lab, lab_host: LabHost,
                                                 stub_dns: Any) -> None:
    docker = shutil.which("docker")
    if shutil.which("dockerd") is None or docker is None or shutil.which("unshare") is None:
        unavailable("dockerd and the docker CLI (Debian's docker.io) are not installed")
        return
    top = Path(lab_host.dir)
    plugins, etc = top / "plugins", top / "etc-docker"
    for d in (plugins, etc):
        d.mkdir()
    # muslin's bridge driver as the plugin "muslin", in the lab host
    lab.spawn(lab_host, [MUSLIN, "plugin", "serve", "--name", "muslin", "--plugin-dir",
                         str(plugins), "--data-root", str(top / "plugin-state"), "--prefix",
                         lab_host.prefix])
    wait_until(lambda: socket_answers(str(plugins / "muslin.sock")), timeout=30,
               what="muslin plugin serve to listen")
    # dockerd in the same namespace
    _mount_point(lab, "/etc/docker")
    _mount_point(lab, "/run/docker/plugins")
    cgroup_parent = f"/muslin-lab-{lab_host.prefix}-dockerd"
    for h in glob.glob("/sys/fs/cgroup/*"):
        if os.path.isdir(h) and not os.path.islink(h):
            lab.run_.record_cgroup(h + cgroup_parent)
    sock = str(top / "docker.sock")
    (top / "daemon.json").write_text("{}\n")
    dockerd = lab.spawn(lab_host, [
        "unshare", "--mount", "--", "sh", "-c", MOUNTS, "sh", str(etc), str(plugins),
        "dockerd", "--config-file", str(top / "daemon.json"), "--data-root",
        str(top / "docker-data"), "--exec-root", str(top / "docker-exec"), "--pidfile",
        str(top / "docker.pid"), "-H", f"unix://{sock}", "--iptables=false",
        "--bridge=none", "--cgroup-parent", cgroup_parent])
    env = {**os.environ, "DOCKER_HOST": f"unix://{sock}",
           "DOCKER_CONFIG": str(top / "docker-cli")}

    def d(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run([docker, *args], env=env, capture_output=True, text=True,
                              timeout=120, check=check)

    def up() -> bool:
        if dockerd.poll() is not None:
            with open(dockerd.lab_log) as f:  # type: ignore[attr-defined]
                raise RuntimeError(f"dockerd exited: {f.read()[-3000:]}")
        return d("version", check=False).returncode == 0

    wait_until(up, timeout=90, what="dockerd to answer")
    try:
        d("import", str(image.build(top / "busybox.tar")), "busybox:latest")
        net_id = d("network", "create", "-d", "muslin", "--subnet", "10.99.0.0/24",
                   "mnet").stdout.strip()
        dns = ["--dns", stub_dns.address]
        for name in ("c1", "c2"):
            d("run", "-d", "--name", name, "--network", "mnet", *dns, "busybox", "sleep",
              "1d")
        [net] = json.loads(d("network", "inspect", "mnet").stdout)
        assert net["Driver"] == "muslin"
        ips = {c["Name"]: c["IPv4Address"].split("/")[0] for c in net["Containers"].values()}
        assert sorted(ips.values()) == ["10.99.0.2", "10.99.0.3"]
        r = d("exec", "c2", "ping", "-c1", "-W2", ips["c1"], check=False)
        assert r.returncode == 0, r.stdout + r.stderr
        # the bridge is muslin's (its mark, the gateway), made by the plugin
        bridge = "br-" + net_id[:12]
        link = lab.run(lab_host, ["ip", "-d", "addr", "show", bridge]).stdout
        assert "10.99.0.1/24" in link and f"muslin:{lab_host.prefix}:net:" in link
        d("rm", "-f", "c1", "c2")
        d("network", "rm", "mnet")
        assert lab.run(lab_host, ["ip", "link", "show", bridge], check=False).returncode != 0
    finally:
        d("rm", "-f", "c1", "c2", check=False)
        dockerd.terminate()
        dockerd.wait(timeout=60)
