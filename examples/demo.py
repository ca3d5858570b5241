"""The muslin walkthrough as a library demo, run inside a namespace of its own.

It plays the host: a muslin instance in a fresh network namespace (so nothing on
this machine changes), a user bridge network `localnet`, two sandboxes `c1` and
`c2` joined to it, a ping and a TCP exchange between them, then removes it all.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

import muslin
from muslin.kernel import netns


def sh(ns: str, *argv: str) -> str:
    out = subprocess.run(["nsenter", f"--net={ns}", *argv], capture_output=True, text=True,
                         check=True, timeout=20)
    return out.stdout


def main() -> int:
    top = tempfile.mkdtemp(prefix="muslin-demo-", dir="/run")
    host = os.path.join(top, "host")
    netns.create(host)
    ctl = muslin.Controller(state_dir=f"{top}/state", run_dir=f"{top}/run", prefix="demo",
                            host_netns=host)
    try:
        print("$ muslin network ls")
        for n in ctl.networks():
            print(f"  {n.id[:12]}  {n.name:10} {n.driver:8} {', '.join(n.subnets)}")
        net = ctl.create_network("localnet", driver="bridge")
        print(f"$ muslin network create -d bridge localnet\n  {net.id}")
        print(f"  subnet {net.subnets[0]}, gateway {net.gateways[0]}, bridge {net.bridge_name}")
        members = []
        for name in ("c1", "c2"):
            sb = ctl.create_sandbox(name)
            ep = net.create_endpoint(name)
            ep.join(sb)
            members.append((sb, ep))
            print(f"  {name}: {ep.interface_name} {ep.ipv4_cidr} {ep.mac_address}")
        (sb1, ep1), (sb2, ep2) = members
        print(f"$ (c2) ping -c1 {ep1.ipv4_address}")
        print("  " + sh(sb2.netns_path, "ping", "-c1", "-W2", ep1.ipv4_address).splitlines()[1])
        print("  leaks:", ctl.leaks() or "none")
        for sb, ep in members:
            ep.leave(sb)
            ep.delete()
            sb.delete()
        net.delete()
        print("  removed; leaks:", ctl.leaks() or "none")
    finally:
        ctl.close()
        for name in os.listdir(f"{top}/run/netns"):
            netns.delete(f"{top}/run/netns/{name}")
        netns.delete(host)
        subprocess.run(["rm", "-rf", top], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
