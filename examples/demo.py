"""The seed's single-host walkthrough, as far as muslin has come, end to end.

It plays a fresh host: a network namespace of its own (nothing else on this machine
changes) with muslind inside, driven by the `muslin` CLI (and the real `docker` CLI
when one is installed): a user bridge, two busybox containers that find each other by
name, a published port, and the seed's macvlan network on a "LAN" (another namespace
behind the host's eth0, a veth) whose host sees the containers as its neighbours.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

BIN = os.path.dirname(sys.executable)


def step(title: str) -> None:
    print(f"\n== {title}")


def run(argv: list[str], env: dict[str, str] | None = None) -> str:
    print("$ " + " ".join(a if " " not in a else repr(a) for a in argv))
    out = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)
    text = (out.stdout + out.stderr).rstrip()
    if text:
        print(text)
    if out.returncode != 0:
        raise SystemExit(f"demo: {argv[0]} exited with {out.returncode}")
    return out.stdout


def wait_for_socket(path: str, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"demo: muslind exited with {proc.returncode}")
        s = socket.socket(socket.AF_UNIX)
        try:
            s.connect(path)
            return
        except OSError:
            time.sleep(0.05)
        finally:
            s.close()
    raise SystemExit("demo: muslind did not start")


def make_lan(top: str, host: str) -> str:
    """A "LAN": a namespace with a host at 10.0.0.200/24, joined by a veth to the demo
    host's eth0 (up, no address: the macvlan parent)."""
    from muslin.kernel import Links, in_netns, netns

    lan = os.path.join(top, "lan")
    netns.create(lan)

    def plug(links: Links) -> None:
        fd = os.open(lan, os.O_RDONLY | os.O_CLOEXEC)
        try:
            links.add_veth("eth0", "eth0", alias="muslin demo lan", peer_netns_fd=fd, up=True)
        finally:
            os.close(fd)

    def lan_host(links: Links) -> None:
        links.set(links.require("lo").index, state="up")
        eth0 = links.require("eth0").index
        links.add_address(eth0, "10.0.0.200", 24)
        links.set(eth0, state="up")

    in_netns(host, plug)
    in_netns(lan, lan_host)
    return lan


def macvlan_steps(muslin: list[str], top: str, host: str, dns: list[str]) -> None:
    step("a LAN behind the host's eth0: a namespace with a host at 10.0.0.200")
    lan = make_lan(top, host)
    step("the seed's macvlan network on eth0.100 (a VLAN sub-interface of eth0)")
    argv = [*muslin, "network", "create", "-d", "macvlan", "--subnet=10.0.0.0/24",
            "--ip-range=10.0.0.0/25", "--gateway=10.0.0.1"]
    print("$ " + " ".join([*argv, "-o", "parent=eth0.100", "macvlan100"]))
    out = subprocess.run([*argv, "-o", "parent=eth0.100", "macvlan100"], capture_output=True,
                         text=True, timeout=60)
    print((out.stdout + out.stderr).strip())
    if out.returncode == 0 or "CONFIG_VLAN_8021Q" not in out.stderr:
        raise SystemExit("demo: expected the 802.1Q error (this kernel has no VLANs)")
    step("... this kernel has no 802.1Q VLANs, so the same network on the LAN's own eth0")
    run([*argv, "-o", "parent=eth0", "macvlan100"])
    run([*muslin, "network", "inspect", "-f",
         "{{.Driver}} {{json .Options}} {{json .IPAM.Config}}", "macvlan100"])
    for name in ("m1", "m2"):
        run([*muslin, "run", "-d", "--name", name, "--network", "macvlan100", *dns,
             "busybox", "sleep", "1d"])
    run([*muslin, "network", "inspect", "-f",
         "{{range .Containers}}{{.Name}} {{.IPv4Address}} {{.MacAddress}}  {{end}}",
         "macvlan100"])
    [net] = json.loads(subprocess.run([*muslin, "network", "inspect", "macvlan100"],
                                      capture_output=True, text=True, check=True).stdout)
    m1 = next(c for c in net["Containers"].values() if c["Name"] == "m1")
    ip = m1["IPv4Address"].split("/")[0]
    step("m1 pings the LAN's host; the LAN's host pings m1 and knows m1's own MAC")
    run([*muslin, "exec", "m1", "ping", "-c1", "10.0.0.200"])
    run(["nsenter", f"--net={lan}", "ping", "-c1", "-W2", ip])
    run(["nsenter", f"--net={lan}", "ip", "neigh", "show", ip])
    step("m2 pings m1 by name (embedded DNS on a macvlan network)")
    run([*muslin, "exec", "m2", "ping", "-c1", "m1"])


def main() -> int:
    from muslin.kernel import netns

    top = tempfile.mkdtemp(prefix="muslin-demo-", dir="/run")
    host = os.path.join(top, "host")
    state, run_dir, sock = f"{top}/state", f"{top}/run", f"{top}/muslin.sock"
    netns.create(host)
    from muslin.kernel import in_netns

    in_netns(host, lambda links: links.set(links.require("lo").index, state="up"))
    daemon: subprocess.Popen[bytes] | None = None
    try:
        step("muslind, in a namespace of its own (a fresh host)")
        with open(f"{top}/daemon.json", "w") as f:
            f.write("{}\n")
        daemon = subprocess.Popen(
            ["nsenter", f"--net={host}", f"{BIN}/muslind", "--config-file",
             f"{top}/daemon.json", "--data-root", state, "--exec-root", run_dir, "--host",
             f"unix://{sock}", "--prefix", "demo"],
            stdout=open(f"{top}/muslind.log", "wb"), stderr=subprocess.STDOUT)  # noqa: SIM115
        wait_for_socket(sock, daemon)
        muslin = [f"{BIN}/muslin", "-H", f"unix://{sock}"]

        step("the predefined networks (bridge, host, none)")
        run([*muslin, "network", "ls"])
        step("single-host bridge network: docker network create -d bridge localnet")
        run([*muslin, "network", "create", "-d", "bridge", "localnet"])
        run([*muslin, "network", "ls"])
        # --dns: the demo host has no resolver of its own; container names are answered
        # by the embedded DNS at 127.0.0.11 all the same
        dns = ["--dns", "127.0.0.1"]
        for name in ("c1", "c2"):
            step(f"docker run -d --name {name} --network localnet busybox sleep 1d")
            run([*muslin, "run", "-d", "--name", name, "--network", "localnet", *dns,
                 "busybox", "sleep", "1d"])
        run([*muslin, "network", "inspect", "-f",
             "{{range .Containers}}{{.Name}} {{.IPv4Address}}  {{end}}", "localnet"])
        step("service discovery: c2 pings c1 by name (embedded DNS)")
        run([*muslin, "exec", "c2", "ping", "-c1", "c1"])
        step("port publishing: docker run -d -p 8080:80 --name web busybox httpd -f -p 80")
        run([*muslin, "run", "-d", "-p", "8080:80", "--name", "web", *dns, "busybox",
             "sh", "-c", "echo hello from web > /tmp/index.html; httpd -f -p 80 -h /tmp"])
        run([*muslin, "port", "web"])
        run(["nsenter", f"--net={host}", sys.executable, "-c",
             "import time, urllib.request\n"
             "for _ in range(50):\n"
             "    try:\n"
             "        print(urllib.request.urlopen('http://127.0.0.1:8080/index.html',"
             " timeout=2).read().decode().strip()); break\n"
             "    except OSError: time.sleep(0.1)\n"])
        run([*muslin, "ps"])
        if shutil.which("docker"):
            step("the same daemon through the real docker CLI")
            run(["docker", "ps", "--format", "{{.Names}}: {{.Status}} {{.Ports}}"],
                env={**os.environ, "DOCKER_HOST": f"unix://{sock}",
                     "DOCKER_CONFIG": f"{top}/docker"})
        macvlan_steps(muslin, top, host, dns)
        step("clean up")
        run([*muslin, "rm", "-f", "c1", "c2", "web"])
        run([*muslin, "rm", "-f", "m1", "m2"])
        run([*muslin, "network", "rm", "localnet", "macvlan100"])
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=60)
        daemon = None
    finally:
        if daemon is not None:
            daemon.kill()
            daemon.wait()
        netns_dir = os.path.join(run_dir, "netns")
        for name in os.listdir(netns_dir) if os.path.isdir(netns_dir) else []:
            netns.delete(os.path.join(netns_dir, name))
        netns.delete(host)
        netns.delete(os.path.join(top, "lan"))
        shutil.rmtree(top, ignore_errors=True)
        for controller in os.listdir("/sys/fs/cgroup"):  # the instance's (empty) cgroup
            with contextlib.suppress(OSError):
                os.rmdir(f"/sys/fs/cgroup/{controller}/demo")
    print("\ndemo: done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
