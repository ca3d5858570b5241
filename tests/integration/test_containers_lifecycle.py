"""The container verbs of the real docker CLI against muslind beyond the seed's: restart
policies (the daemon starts an exited container again), pause/unpause, rename (the new
name answers in the embedded DNS), wait, ps filters, the management forms, images (tag,
ls, inspect, rm, `load` of a `docker save` tarball, the pull error), and the create
options that shape a container's network view (--sysctl, --add-host with host-gateway,
--link, --ip6, --mac-address), each checked from inside the container; exec -it with a
terminal resize through docker-py."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import socket
import subprocess
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from muslin.containers.images import busybox_tar

from daemon import Muslind
from lab import Lab

pytestmark = pytest.mark.kernel


@pytest.fixture(autouse=True)
def _docker_cli() -> None:
    if shutil.which("docker") is None:
        from lab import unavailable

        unavailable("the docker CLI is not installed")


def _in_a_terminal(d: Muslind, command: str, rows: int, cols: int, out: Path) -> str:
    """Runs a docker CLI command line under a pseudo-terminal of rows x cols (`script`),
    as a user at a terminal; its output. The terminal's input stays open (at its end
    script would type the EOF character, a NUL in the CLI's raw mode)."""
    with open(out, "w") as f:
        proc = subprocess.Popen(["script", "-qec", f"stty rows {rows} cols {cols}; {command}",
                                 "/dev/null"], env=d.env, stdin=subprocess.PIPE, stdout=f,
                                stderr=subprocess.STDOUT)
        try:
            assert proc.wait(timeout=60) == 0, out.read_text()
        finally:
            assert proc.stdin is not None
            proc.stdin.close()
    return out.read_text()


def _inspect(d: Muslind, name: str) -> dict[str, Any]:
    [doc] = json.loads(d.docker("inspect", name).stdout)
    return dict(doc)


def test_restart_policies(lab: Lab, muslind: Muslind, stub_dns: Any) -> None:
    d = muslind.docker
    dns = ["--dns", stub_dns.address]
    # on-failure:2: two restarts, then it stays exited with its code
    d("run", "-d", "--name", "flaky", "--restart", "on-failure:2", *dns, "busybox", "sh",
      "-c", "exit 5")

    def settled(name: str, count: int) -> bool:
        doc = _inspect(muslind, name)
        return bool(doc["RestartCount"] == count and doc["State"]["Status"] == "exited")

    lab.wait_until(lambda: settled("flaky", 2), timeout=30, what="flaky's two restarts")
    doc = _inspect(muslind, "flaky")
    assert doc["State"]["ExitCode"] == 5 and doc["HostConfig"]["RestartPolicy"] == {
        "Name": "on-failure", "MaximumRetryCount": 2}
    # unless-stopped: the process exits by itself (7), the daemon starts it again
    d("run", "-d", "--name", "phoenix", "--restart", "unless-stopped", *dns, "busybox",
      "sh", "-c", "while [ ! -f /tmp/stop ]; do sleep 0.1; done; rm /tmp/stop; exit 7")
    first_pid = _inspect(muslind, "phoenix")["State"]["Pid"]
    d("exec", "phoenix", "touch", "/tmp/stop")

    def restarted() -> bool:
        doc = _inspect(muslind, "phoenix")
        return bool(doc["RestartCount"] == 1 and doc["State"]["Running"]
                    and doc["State"]["Pid"] != first_pid)

    lab.wait_until(restarted, timeout=30, what="phoenix to be started again")
    assert "Up " in d("ps", "--filter", "name=phoenix", "--format", "{{.Status}}").stdout
    # a user's stop ends the policy
    d("stop", "-t", "1", "phoenix")
    doc = _inspect(muslind, "phoenix")
    assert doc["State"]["Status"] == "exited" and doc["RestartCount"] == 1
    # always, exiting at once: between two starts it shows as restarting, with its code
    d("run", "-d", "--name", "loop", "--restart", "always", "busybox", "sh", "-c", "exit 1")

    def restarting() -> bool:
        status = d("ps", "--filter", "name=loop", "--format", "{{.Status}}").stdout
        return status.startswith("Restarting (1)")

    lab.wait_until(restarting, timeout=30, what="loop to show as restarting")
    # the count goes up when the back-off ends and the container starts again (dockerd's order)
    lab.wait_until(lambda: _inspect(muslind, "loop")["RestartCount"] >= 1, timeout=30,
                   what="loop to be restarted at least once")
    d("rm", "-f", "loop")
    # dockerd's refusals, through the API
    for policy, extra, text in [
        ({"Name": "sometimes"}, {}, "invalid restart policy: unknown policy 'sometimes'"),
        ({"Name": "always", "MaximumRetryCount": 2}, {},
         "maximum retry count can only be used with 'on-failure'"),
        ({"Name": "always"}, {"AutoRemove": True},
         "can't create 'AutoRemove' container with restart policy"),
    ]:
        status, body = muslind.request("POST", "/v1.47/containers/create", {
            "Image": "busybox", "HostConfig": {"RestartPolicy": policy, **extra}})
        assert status == 400 and text in body["message"], body
    r = d("run", "--rm", "--restart", "always", "busybox", "true", check=False)
    assert r.returncode != 0 and "conflicting options" in r.stderr
    d("rm", "-f", "flaky", "phoenix")


def test_pause_rename_wait_ps_filters_and_management_forms(lab: Lab, muslind: Muslind,
                                                           stub_dns: Any) -> None:
    d = muslind.docker
    dns = ["--dns", stub_dns.address]
    d("network", "create", "localnet")
    for name in ("p1", "probe"):
        d("run", "-d", "--name", name, "--network", "localnet", *dns, "busybox", "sleep", "1d")
    # pause / unpause
    d("pause", "p1")
    assert _inspect(muslind, "p1")["State"]["Status"] == "paused"
    assert "(Paused)" in d("ps", "--filter", "name=p1", "--format", "{{.Status}}").stdout
    assert d("ps", "-q", "--filter", "status=paused").stdout.split() == [
        _inspect(muslind, "p1")["Id"][:12]]
    r = d("exec", "p1", "true", check=False)
    assert r.returncode != 0 and "is paused" in r.stderr
    r = d("pause", "p1", check=False)
    assert r.returncode != 0 and "already paused" in r.stderr
    d("unpause", "p1")
    assert d("exec", "p1", "echo", "thawed").stdout == "thawed\n"
    # rename: the new name is the container's everywhere, DNS included
    d("rename", "p1", "renamed")
    assert _inspect(muslind, "renamed")["Name"] == "/renamed"
    r = d("inspect", "p1", check=False)
    assert r.returncode != 0 and "No such object: p1" in r.stderr
    out = d("exec", "probe", "ping", "-c1", "-W2", "renamed").stdout
    ip = _inspect(muslind, "renamed")["NetworkSettings"]["Networks"]["localnet"]["IPAddress"]
    assert f"({ip})" in out
    assert d("exec", "probe", "ping", "-c1", "-W2", "p1", check=False).returncode != 0
    [net] = json.loads(d("network", "inspect", "localnet").stdout)
    assert sorted(c["Name"] for c in net["Containers"].values()) == ["probe", "renamed"]
    r = d("rename", "renamed", "probe", check=False)
    assert r.returncode != 0 and 'The container name "/probe" is already in use' in r.stderr
    # restart: a new process, the same networks
    pid = _inspect(muslind, "renamed")["State"]["Pid"]
    d("restart", "-t", "1", "renamed")
    doc = _inspect(muslind, "renamed")
    assert doc["State"]["Running"] and doc["State"]["Pid"] != pid
    assert doc["RestartCount"] == 0 and list(doc["NetworkSettings"]["Networks"]) == [
        "localnet"]
    # the same address comes back with the same MAC: the peers' ARP caches stay right
    assert "1 packets received" in d("exec", "probe", "ping", "-c1", "-W2", "renamed").stdout
    # create, then start attached
    d("create", "--name", "later", "busybox", "echo", "created")
    assert _inspect(muslind, "later")["State"]["Status"] == "created"
    assert d("start", "-a", "later").stdout == "created\n"
    d("rm", "later")
    # wait prints the exit code
    d("run", "-d", "--name", "four", "busybox", "sh", "-c", "sleep 0.3; exit 4")
    assert d("wait", "four").stdout.strip() == "4"
    # ps filters
    ids = {n: _inspect(muslind, n)["Id"][:12] for n in ("renamed", "probe", "four")}

    def ps(*filters: str) -> set[str]:
        args = [a for f in filters for a in ("--filter", f)]
        return set(d("ps", "-aq", *args).stdout.split())

    assert ps("exited=4") == {ids["four"]}
    assert ps("status=exited") == {ids["four"]}
    assert ps("ancestor=busybox") == set(ids.values())
    assert ps("ancestor=busybox:latest", "status=running") == {ids["renamed"], ids["probe"]}
    assert ps("network=localnet") == {ids["renamed"], ids["probe"]}
    assert ps("name=renam") == {ids["renamed"]}
    assert ps(f"before={ids['four']}") == {ids["renamed"], ids["probe"]}
    assert ps(f"since={ids['probe']}") == {ids["four"]}
    r = d("ps", "--filter", "colour=red", check=False)
    assert r.returncode != 0 and "invalid filter 'colour'" in r.stderr
    # the management forms
    assert d("container", "run", "--rm", "busybox", "echo", "managed").stdout == "managed\n"
    names = d("container", "ls", "-a", "--format", "{{.Names}}").stdout.split()
    assert sorted(names) == ["four", "probe", "renamed"]
    assert d("container", "inspect", "-f", "{{.State.ExitCode}}", "four").stdout == "4\n"
    d("container", "rm", "-f", "renamed", "probe", "four")
    assert d("container", "ls", "-aq").stdout == ""


def test_network_view_options(lab: Lab, muslind: Muslind, stub_dns: Any) -> None:
    d = muslind.docker
    dns = ["--dns", stub_dns.address]
    # sysctls: the given one and Docker's defaults, in the container's namespace
    out = d("run", "--rm", "--sysctl", "net.ipv4.tcp_syncookies=0", "busybox", "cat",
            "/proc/sys/net/ipv4/tcp_syncookies", "/proc/sys/net/ipv4/ping_group_range",
            "/proc/sys/net/ipv4/ip_unprivileged_port_start").stdout.split()
    assert out == ["0", "0", "2147483647", "0"]
    # --add-host, host-gateway as the default bridge's gateway
    [bridge] = json.loads(d("network", "inspect", "bridge").stdout)
    gw = bridge["IPAM"]["Config"][0]["Gateway"]
    hosts = d("run", "--rm", "--add-host", "db:10.1.2.3", "--add-host",
              "host.docker.internal:host-gateway", "busybox", "cat", "/etc/hosts").stdout
    assert "10.1.2.3\tdb\n" in hosts and f"{gw}\thost.docker.internal\n" in hosts
    # --link on the default bridge: the alias resolves to the target
    d("run", "-d", "--name", "target", *dns, "busybox", "sleep", "1d")
    target_ip = _inspect(muslind, "target")["NetworkSettings"]["IPAddress"]
    out = d("run", "--rm", "--link", "target:tgt", *dns, "busybox", "ping", "-c1", "-W2",
            "tgt").stdout
    assert f"({target_ip})" in out
    r = d("run", "--rm", "--link", "nosuch:x", "busybox", "true", check=False)
    assert r.returncode != 0 and "could not get container for nosuch" in r.stderr
    # --ip6 and --mac-address on a user network with IPv6
    d("network", "create", "--ipv6", "--subnet", "fd00:db8:1::/64", "v6net")
    out = d("run", "--rm", "--network", "v6net", "--ip6", "fd00:db8:1::10", "--mac-address",
            "02:42:ac:11:00:99", *dns, "busybox", "sh", "-c",
            "ip -6 -o addr show dev eth0; cat /sys/class/net/eth0/address").stdout
    assert "fd00:db8:1::10/64" in out and "02:42:ac:11:00:99" in out
    d("rm", "-f", "target")


def test_failed_starts_leave_no_network_behind(lab: Lab, muslind: Muslind,
                                               stub_dns: Any) -> None:
    """The network is plumbed while runc creates the container: when either fails, the
    other is undone. An address taken by a running container fails the plumbing after
    runc made the container; a missing command fails runc while the plumbing runs."""
    d = muslind.docker
    dns = ["--dns", stub_dns.address]
    d("network", "create", "--subnet", "10.77.0.0/24", "failnet")
    d("run", "-d", "--name", "holder", "--network", "failnet", "--ip", "10.77.0.9", *dns,
      "busybox", "sleep", "1d")
    d("create", "--name", "late", "--network", "failnet", "--ip", "10.77.0.9", *dns,
      "busybox", "sleep", "1d")
    r = d("start", "late", check=False)
    assert r.returncode != 0 and "Address already in use" in r.stderr, r.stderr
    r = d("run", "--name", "nocmd", "--network", "failnet", *dns, "busybox", "nosuchcmd",
          check=False)
    assert r.returncode == 127 and "executable file not found" in r.stderr, r.stderr
    for name in ("late", "nocmd"):
        doc = _inspect(muslind, name)
        assert doc["State"]["Status"] == "created" and doc["State"]["Pid"] == 0
        assert doc["NetworkSettings"]["Networks"]["failnet"]["IPAddress"] == ""
    [net] = json.loads(d("network", "inspect", "failnet").stdout)
    assert [c["Name"] for c in net["Containers"].values()] == ["holder"]
    # nothing half-made: with the address free, the same container starts and is reached
    d("rm", "-f", "holder", "nocmd")
    d("start", "late")
    d("run", "--rm", "--network", "failnet", *dns, "busybox", "ping", "-c1", "-W2",
      "10.77.0.9")
    d("rm", "-f", "late")
    d("network", "rm", "failnet")


def _save_tarball(tag: str) -> bytes:
    """A `docker save` tarball (manifest.json, config, one layer) of busybox."""
    layer = busybox_tar()
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "created": "2024-01-01T00:00:00Z",
                         "config": {"Cmd": ["sh"], "Env": ["PATH=/bin"]},
                         "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
    image_id = hashlib.sha256(config).hexdigest()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in ((f"{image_id}.json", config), ("layer0/layer.tar", layer),
                           ("manifest.json", json.dumps([{
                               "Config": f"{image_id}.json", "RepoTags": [tag],
                               "Layers": ["layer0/layer.tar"]}]).encode())):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tar.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def test_images_through_the_cli(lab: Lab, muslind: Muslind) -> None:
    d = muslind.docker
    busybox_id = _inspect(muslind, "busybox")["Id"]
    d("tag", "busybox", "mybox:1.0")
    listed = d("images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}").stdout.splitlines()
    assert f"mybox:1.0 {busybox_id.split(':')[1][:12]}" in listed
    assert json.loads(d("image", "inspect", "mybox:1.0").stdout)[0]["Id"] == busybox_id
    assert d("rmi", "mybox:1.0").stdout.strip() == "Untagged: mybox:1.0"
    r = d("image", "inspect", "mybox:1.0", check=False)
    assert r.returncode != 0 and "No such image: mybox:1.0" in r.stderr
    # load of a `docker save` tarball, then a container of it
    path = Path(lab.dir) / "saved.tar"
    path.write_bytes(_save_tarball("saved:1"))
    assert d("load", "-i", str(path)).stdout.strip() == "Loaded image: saved:1"
    assert d("run", "--rm", "saved:1", "echo", "from a saved image").stdout == \
        "from a saved image\n"
    d("image", "rm", "saved:1")
    # no registry: a pull and a run of a missing image say so
    r = d("pull", "alpine", check=False)
    assert r.returncode != 0 and "no registry is reachable" in r.stderr
    r = d("run", "--rm", "alpine", "true", check=False)
    assert r.returncode == 125 and "Unable to find image 'alpine:latest' locally" in r.stderr
    assert "no registry is reachable" in r.stderr


def test_docker_exec_it_in_a_terminal(lab: Lab, muslind: Muslind) -> None:
    """`docker exec -it` from a terminal: the process gets a terminal of the user's size
    (the CLI's ConsoleSize, then its resize)."""
    if shutil.which("script") is None:
        from lab import unavailable

        unavailable("script (util-linux) is not installed")
    muslind.docker("run", "-d", "--name", "term", "--network", "none", "busybox", "sleep",
                   "1d")
    log = Path(lab.dir) / "terminal.out"
    out = _in_a_terminal(muslind, "docker exec -it term stty size", 33, 101, log)
    assert out.split() == ["33", "101"]
    out = _in_a_terminal(muslind, "docker exec -it term sh -c 'tty; exit 5' || echo rc=$?",
                         24, 80, log)
    assert "/dev/pts/" in out and "rc=5" in out
    muslind.docker("rm", "-f", "term")


@pytest.fixture
def api(muslind: Muslind) -> Iterator[docker.APIClient]:
    c = docker.APIClient(base_url=f"unix://{muslind.socket}", version="1.47")
    yield c
    c.close()


def test_exec_tty_resize(lab: Lab, api: docker.APIClient) -> None:
    cid = api.create_container("busybox", ["sleep", "1d"], name="tty",
                               host_config=api.create_host_config(network_mode="none"))["Id"]
    api.start(cid)
    ex = api.exec_create(cid, ["sh", "-c", "stty size; read line; stty size"], stdin=True,
                         tty=True)["Id"]
    sock = api.exec_start(ex, tty=True, socket=True)
    raw: socket.socket = getattr(sock, "_sock", sock)
    raw.settimeout(10)
    got = b""
    while b"\n" not in got:
        got += raw.recv(1024)
    assert got.split()[:2] == [b"24", b"80"]  # the default size
    api.exec_resize(ex, height=40, width=132)
    raw.sendall(b"go\n")
    deadline = time.monotonic() + 10
    while b"40 132" not in got and time.monotonic() < deadline:
        chunk = raw.recv(1024)
        if not chunk:
            break
        got += chunk
    assert b"40 132" in got, got
    raw.close()
    lab.wait_until(lambda: api.exec_inspect(ex)["ExitCode"] == 0, what="the exec's end")
    api.remove_container(cid, force=True)
