"""The seed's single-host walkthrough, as far as muslin has come, end to end.

It plays a fresh host: a network namespace of its own (nothing else on this machine
changes) with muslind inside, driven by the `muslin` CLI and by the real `docker` CLI
when one is installed. Containers are not there yet (a later issue), so the part of
the walkthrough that needs them runs on two sandboxes made with the library after the
daemon has stopped: they join `localnet` and ping each other.
"""

from __future__ import annotations

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


def main() -> int:
    from muslin.kernel import netns

    top = tempfile.mkdtemp(prefix="muslin-demo-", dir="/run")
    host = os.path.join(top, "host")
    state, run_dir, sock = f"{top}/state", f"{top}/run", f"{top}/muslin.sock"
    netns.create(host)
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
        run([*muslin, "network", "inspect", "-f",
             "{{.Name}}: {{.Driver}} {{range .IPAM.Config}}{{.Subnet}} via {{.Gateway}}"
             "{{end}}", "localnet"])
        step("the seed's addressing flags (--subnet, --ip-range, --gateway)")
        run([*muslin, "network", "create", "--subnet=10.0.0.0/24", "--ip-range=10.0.0.0/25",
             "--gateway=10.0.0.1", "seednet"])
        run([*muslin, "network", "inspect", "-f", "{{json .IPAM.Config}}", "seednet"])
        if shutil.which("docker"):
            step("the same daemon through the real docker CLI")
            run(["docker", "network", "ls"], env={**os.environ, "DOCKER_HOST": f"unix://{sock}",
                                                  "DOCKER_CONFIG": f"{top}/docker"})
        run([*muslin, "network", "rm", "seednet"])
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=30)
        daemon = None

        step("two sandboxes on localnet (containers arrive in a later issue)")
        import muslin as lib

        ctl = lib.Controller(state_dir=state, run_dir=run_dir, prefix="demo", host_netns=host)
        try:
            net = ctl.network("localnet")
            members = []
            for name in ("c1", "c2"):
                sb = ctl.create_sandbox(name)
                ep = net.create_endpoint(name)
                ep.join(sb)
                members.append((sb, ep))
                print(f"{name}: {ep.interface_name} {ep.ipv4_cidr} {ep.mac_address}")
            (_, ep1), (sb2, _) = members
            run(["nsenter", f"--net={sb2.netns_path}", "ping", "-c1", "-W2",
                 str(ep1.ipv4_address)])
            print("leaks:", ctl.leaks() or "none")
            for sb, _ in members:
                sb.delete()
            net.delete()
            print("removed; leaks:", ctl.leaks() or "none")
        finally:
            ctl.close()
    finally:
        if daemon is not None:
            daemon.kill()
            daemon.wait()
        netns_dir = os.path.join(run_dir, "netns")
        for name in os.listdir(netns_dir) if os.path.isdir(netns_dir) else []:
            netns.delete(os.path.join(netns_dir, name))
        netns.delete(host)
        shutil.rmtree(top, ignore_errors=True)
    print("\ndemo: done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
