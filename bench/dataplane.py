"""The data-path figures: embedded DNS under load (issue 7), published ports' throughput
and container start with many published ports (issue 8), measured like the others:
interleaved across the peers, repeated.

The load tools (dnsperf, iperf3) are Debian's binaries run from the bench's own mount
namespace inside the namespace under test (`nsenter --net=/proc/<container pid>/ns/net`):
the container's network path, without needing them in the image. A "client host" for the
published ports is a namespace of the bench's (under the run directory) joined to the
peer's namespace by a veth pair (203.0.113.0/24). Must not touch the machine's namespaces.
"""

from __future__ import annotations

import contextlib
import functools
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from bench import loadtools, stats
from bench.figures import Figure, Interleaver, Plan, _eligible, _setup_networks, _teardown
from bench.peers import PYTHON, Peer, PeerError, run_cmd

DNS = "DNS"
PORTS = "Published ports"
FORWARDED_NAME = "ext.bench.test"
IN_FLIGHT = 20          # dnsperf -q: queries outstanding (the Docker figure: 20)
IPERF_PORT = 5201
CLIENT_NET = ("203.0.113.1", "203.0.113.2")  # the peer's side, the client's side


def _nsenter(pid_or_path: int | str, *argv: str) -> list[str]:
    ns = f"/proc/{pid_or_path}/ns/net" if isinstance(pid_or_path, int) else pid_or_path
    return ["nsenter", f"--net={ns}", *argv]


def _container_ip(p: Peer, name: str) -> str:
    r = p.cli("inspect", "--format",
              "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", name,
              timeout=60).check()
    ips = r.out.split()
    if not ips:
        raise PeerError(f"`inspect {name}`: no address")
    return ips[0]


# -- DNS ----------------------------------------------------------------------------

_PROBE = """
import sys, dns.message, dns.query, dns.rdatatype
q = dns.message.make_query(sys.argv[2], "A")
r = dns.query.udp(q, sys.argv[1], timeout=3)
print(" ".join(rr.address for a in r.answer for rr in a if rr.rdtype == dns.rdatatype.A))
"""


def _probe(pid: int, server: str, name: str) -> str:
    """The A records `name` gets from `server`, asked from the container's namespace."""
    r = run_cmd(_nsenter(pid, PYTHON, "-c", _PROBE, server, name), timeout=30)
    return r.out.strip() if r.rc == 0 else ""


def dns(peers: Sequence[Peer], plan: Plan, log: Callable[[str], None],
        run_dir: Path) -> list[Figure]:
    """dnsperf from inside a container's namespace against the resolver its system gives
    it: a container name (answered by the resolver) and a forwarded name (the resolver
    asks the stub upstream)."""
    kinds = (("name", "a container name"), ("fwd", f"a forwarded name ({FORWARDED_NAME}, "
                                                   "answered by the stub upstream)"))
    figs: dict[tuple[str, str], Figure] = {}
    for kind, what in kinds:
        label = "DNS container name" if kind == "name" else "DNS forwarded name"
        figs[kind, "qps"] = Figure(
            f"dns_{kind}_qps", f"{label}, queries/s", "qps", DNS,
            f"dnsperf (Debian's) run inside a container's network namespace for "
            f"{plan.dns_seconds} s with {IN_FLIGHT} queries in flight (`-q {IN_FLIGHT}`), "
            f"asking {what} of the resolver the container's system gives it: muslin's and "
            "Docker's embedded DNS at 127.0.0.11, Podman's aardvark-dns on the network's "
            "gateway (as `<name>.dns.podman`, the name Podman's search domain makes "
            "clients send). Higher is better.")
        for pct in ("p50", "p99"):
            figs[kind, pct] = Figure(
                f"dns_{kind}_{pct}", f"{label}, {pct} latency", "ms", DNS,
                f"the {pct} of every answer's latency in the same dnsperf run (`-v`).")
    all_figs = list(figs.values())
    eligible = _eligible(peers, all_figs, "containers")
    run = Interleaver(eligible, all_figs, log)
    qfiles = {"name": run_dir / "dns-queries-name", "fwd": run_dir / "dns-queries-fwd"}
    targets: dict[str, tuple[int, str, dict[str, str]]] = {}
    _setup_networks(run, [("dnsnet", "10.93.0.0/16")])
    try:
        run.step(lambda p: p.run_container("dns-target", "dnsnet").check())
        run.step(lambda p: p.run_container("dns-client", "dnsnet").check())

        def prepare(p: Peer) -> None:
            pid = p.container_pid("dns-client")
            server, qname = p.dns_target("dnsnet", "dns-target")
            names = {"name": qname, "fwd": FORWARDED_NAME}
            deadline = time.monotonic() + 30
            while True:  # records may take a moment to appear (Podman's aardvark-dns)
                answers = {k: _probe(pid, server, n) for k, n in names.items()}
                if all(answers.values()):
                    break
                if time.monotonic() > deadline:
                    missing = ", ".join(n for k, n in names.items() if not answers[k])
                    raise PeerError(f"no A record for {missing} from {server}")
                time.sleep(0.5)
            targets[p.id] = (pid, server, names)

        run.step(prepare)

        def load(p: Peer, kind: str) -> None:
            pid, server, names = targets[p.id]
            qfile = Path(f"{qfiles[kind]}-{p.id}")
            qfile.write_text(f"{names[kind]} A\n")
            r = run_cmd(_nsenter(pid, "dnsperf", "-s", server, "-d", str(qfile), "-l",
                                 str(plan.dns_seconds), "-q", str(IN_FLIGHT), "-t", "2", "-v"),
                        timeout=plan.dns_seconds + 60)
            res = loadtools.parse_dnsperf(r.out + r.err)
            if res.noerror_share() < 0.99 or not res.latencies_ms:
                raise PeerError(f"dnsperf against {server}: answers {res.rcodes}, lost "
                                f"{res.lost} of {res.sent}")
            figs[kind, "qps"].record(p.id, res.qps)
            figs[kind, "p50"].record(p.id, stats.percentile(res.latencies_ms, 50))
            figs[kind, "p99"].record(p.id, stats.percentile(res.latencies_ms, 99))

        for _ in range(plan.dns_rounds):
            for kind, _what in kinds:
                run.step(functools.partial(lambda k, p: load(p, k), kind))
    finally:
        _teardown(eligible, ["dns-client", "dns-target"], ["dnsnet"], log)
    return all_figs


# -- published ports: throughput -------------------------------------------------------

class ClientHost:
    """A namespace of the bench's joined to a peer's namespace by a veth pair: a "client
    host" that reaches the peer's published ports through the peer's address."""

    def __init__(self, peer: Peer, run_dir: Path) -> None:
        self.peer = peer
        self.path = str(run_dir / "ns" / f"{peer.id}-client")

    def make(self, routes: Sequence[str]) -> None:
        from muslin.kernel import netns

        netns.create(self.path)
        mine, theirs = CLIENT_NET
        peer_ns = self.peer.netns_path()
        for argv in (
            ["ip", "link", "add", "bclient0", "type", "veth", "peer", "name", "bclient1",
             "netns", self.path],
            ["ip", "addr", "add", f"{mine}/24", "dev", "bclient0"],
            ["ip", "link", "set", "bclient0", "up"],
        ):
            run_cmd(_nsenter(peer_ns, *argv), timeout=30).check()
        for argv in (
            ["ip", "link", "set", "lo", "up"],
            ["ip", "addr", "add", f"{theirs}/24", "dev", "bclient1"],
            ["ip", "link", "set", "bclient1", "up"],
            *[["ip", "route", "add", r, "via", mine] for r in routes],
        ):
            run_cmd(_nsenter(self.path, *argv), timeout=30).check()

    def remove(self) -> None:
        from muslin.kernel import netns

        with contextlib.suppress(OSError):
            netns.delete(self.path)  # takes the veth pair with it


def _iperf_server(pid: int, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        srv = subprocess.Popen(_nsenter(pid, "iperf3", "-s", "-p", str(IPERF_PORT)),
                               stdout=out, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        r = run_cmd(_nsenter(pid, "ss", "-ltnH", f"sport = :{IPERF_PORT}"), timeout=10)
        if r.out.strip():
            return srv
        if srv.poll() is not None:
            break
        time.sleep(0.1)
    srv.kill()
    raise PeerError(f"iperf3 -s did not listen in the container: {log.read_text()[-200:]}")


def _iperf(ns: str, target: str, seconds: int) -> float:
    r = run_cmd(_nsenter(ns, "iperf3", "-c", target, "-p", str(IPERF_PORT), "-t",
                         str(seconds), "-J", "--connect-timeout", "5000"),
                timeout=seconds + 30)
    try:
        return loadtools.parse_iperf3(r.out)
    except ValueError as e:
        raise PeerError(f"iperf3 -c {target}: {e} {r.err.strip()[-100:]}".strip()) from None


def throughput(peers: Sequence[Peer], plan: Plan, log: Callable[[str], None],
               run_dir: Path, notes: list[str]) -> list[Figure]:
    """iperf3 TCP into a container behind `-p 5201:5201`: from a client namespace to the
    published port and to the container's address, and from the peer's own localhost."""
    pub = Figure("tcp_published", "TCP client ns → published port", "Gbit/s", PORTS,
                 f"iperf3 (one TCP stream, {plan.iperf_seconds} s) from a client namespace "
                 "(a veth into the daemon's namespace) to the daemon's address, port 5201 "
                 "published with `-p 5201:5201`; the server runs in the container's network "
                 "namespace. The kernel's DNAT for all three (no userland proxy for traffic "
                 "from outside). Higher is better.")
    direct = Figure("tcp_direct", "TCP client ns → container address", "Gbit/s", PORTS,
                    "the same iperf3 from the client namespace straight to the container's "
                    "address (routed through the daemon's namespace, no DNAT): the path "
                    "published traffic is compared with.")
    local = Figure("tcp_localhost", "TCP localhost → published port", "Gbit/s", PORTS,
                   "the same iperf3 from the daemon's own namespace to 127.0.0.1:5201: "
                   "Docker's userland proxy (docker-proxy), muslin's and Podman's DNAT with "
                   "route_localnet.")
    share = Figure("tcp_published_share", "published / direct throughput", "%", PORTS,
                   "client ns → published port over client ns → container address, per "
                   "round (paired), in percent (the issue's goal for muslin: at least 95).")
    figs = [pub, direct, local, share]
    eligible = _eligible(peers, figs, "containers")
    run = Interleaver(eligible, figs, log)
    clients: dict[str, ClientHost] = {}
    servers: list[subprocess.Popen[bytes]] = []
    addrs: dict[str, str] = {}
    _setup_networks(run, [("perfnet", "10.94.0.0/16")])
    try:
        run.step(lambda p: p.run_container("perf", "perfnet", "-p",
                                           f"{IPERF_PORT}:{IPERF_PORT}").check())

        def prepare(p: Peer) -> None:
            pid = p.container_pid("perf")
            addrs[p.id] = _container_ip(p, "perf")
            servers.append(_iperf_server(pid, run_dir / f"iperf3-{p.id}.log"))
            clients[p.id] = ClientHost(p, run_dir)
            clients[p.id].make(["10.94.0.0/16"])
            note = p.open_direct_path("bclient0")
            if note:
                notes.append(note)

        run.step(prepare)
        secs = plan.iperf_seconds
        paths: list[tuple[Figure, Callable[[Peer], tuple[str, str]]]] = [
            (pub, lambda p: (clients[p.id].path, CLIENT_NET[0])),
            (direct, lambda p: (clients[p.id].path, addrs[p.id])),
            (local, lambda p: (p.netns_path(), "127.0.0.1")),
        ]
        for _ in range(plan.iperf_rounds):
            for fig, where in paths:
                def one(p: Peer, fig: Figure = fig,
                        where: Callable[[Peer], tuple[str, str]] = where) -> None:
                    if p.id in fig.status:  # this path failed before: the others go on
                        return
                    ns, target = where(p)
                    try:
                        fig.record(p.id, _iperf(ns, target, secs))
                    except PeerError as e:
                        fig.status[p.id] = f"failed: {e}"
                        log(f"bench:   {p.label}: {fig.title}: {e}")

                run.step(one)
        for p in eligible:
            if p.id in pub.status or p.id in direct.status:
                share.status[p.id] = pub.status.get(p.id) or direct.status[p.id]
            else:
                for a, b in zip(pub.samples.get(p.id, []), direct.samples.get(p.id, []),
                                strict=False):
                    if b > 0:
                        share.record(p.id, 100 * a / b)
    finally:
        for s in servers:
            s.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                s.wait(timeout=10)
        for c in clients.values():
            c.remove()
        _teardown(eligible, ["perf"], ["perfnet"], log)
    return figs


# -- published ports: container start -------------------------------------------------

def ports_start(peers: Sequence[Peer], plan: Plan, log: Callable[[str], None]
                ) -> list[Figure]:
    """`run -d` with one published port and with 500 (`-p 20000-20499:20000-20499`)."""
    n = plan.many_ports
    one = Figure("run_1port", "run -d, 1 published port", "ms", PORTS,
                 "`run -d -p 20000:20000 --network portnet busybox sleep`, timed until the "
                 "CLI returns; removed untimed.")
    many = Figure("run_manyports", f"run -d, {n} published ports", "ms", PORTS,
                  f"the same with `-p 20000-{20000 + n - 1}:20000-{20000 + n - 1}` (Docker "
                  "20.10: one docker-proxy process and iptables rules per port; muslin: "
                  "elements of one nftables map).")
    growth = Figure("run_ports_growth", f"run -d, {n} ports / 1 port", "×", PORTS,
                    "per round (paired), the start with many ports over the start with one "
                    "(the issue's goal for muslin: at most 1.2).")
    figs = [one, many, growth]
    eligible = _eligible(peers, figs, "containers")
    run = Interleaver(eligible, figs, log)
    _setup_networks(run, [("portnet", "10.95.0.0/16")])
    made: list[str] = []
    last = 20000 + n - 1
    try:
        run.step(lambda p: p.run_container("pw", "portnet", "-p", "20000:20000").check())
        run.step(lambda p: p.remove_containers(["pw"], timeout=120))
        for i in range(plan.port_rounds):
            made += [f"p1-{i}", f"pn-{i}"]

            def do_one(p: Peer, i: int = i) -> None:
                r = p.run_container(f"p1-{i}", "portnet", "-p", "20000:20000").check()
                one.record(p.id, r.ms)
                p.remove_containers([f"p1-{i}"], timeout=120)

            def do_many(p: Peer, i: int = i) -> None:
                r = p.run_container(f"pn-{i}", "portnet", "-p", f"20000-{last}:20000-{last}",
                                    timeout=300).check()
                many.record(p.id, r.ms)
                # dockerd 20.10 stops one docker-proxy per port: a minute and more
                p.remove_containers([f"pn-{i}"], timeout=600)

            run.step(do_one)
            run.step(do_many)
        for p in eligible:
            for a, b in zip(one.samples.get(p.id, []), many.samples.get(p.id, []),
                            strict=False):
                growth.record(p.id, b / a)
    finally:
        _teardown(eligible, made, ["portnet"], log, rm_timeout=600)
    return figs
