"""Test session glue: the kernel lab's fixtures, its sweeps and the machine check.

- `pytest_sessionstart` sweeps what dead runs left (a run killed with kill -9) and
  snapshots the machine; `pytest_sessionfinish` sweeps this run and fails the session
  if the machine changed (`ip netns list`, root-namespace links, the mount table,
  root-namespace nftables tables). Mounts of other work running beside the suite can
  be left out with MUSLIN_LAB_IGNORE_MOUNTS (colon-separated globs).
- Tests marked `kernel` skip without root, except under CI=true, where they fail.
- Fixtures: `lab`, `lab_host`, `stub_dns`, `stub_dns_for`, `lan`, `client_host`.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

import lab as lablib  # noqa: E402
from lab import Lab, LabHost, Namespace, Underlay  # noqa: E402

_SESSION_KEY = pytest.StashKey[lablib.Snapshot]()
_SESSION_FIELDS = ("netns", "links", "mounts", "nft_tables")


def _can_use_lab() -> bool:
    return os.geteuid() == 0


def _checked(snap: lablib.Snapshot) -> lablib.Snapshot:
    """The snapshot less the mounts MUSLIN_LAB_IGNORE_MOUNTS names (colon-separated
    globs, each also matching what lies below it): for running the suite beside other
    work that mounts things, e.g. a benchmark (`/run/muslin-bench-*`). Unset in CI."""
    globs = [g for g in os.environ.get("MUSLIN_LAB_IGNORE_MOUNTS", "").split(":") if g]
    if not globs:
        return snap
    return dataclasses.replace(snap, mounts=tuple(
        m for m in snap.mounts
        if not any(fnmatch.fnmatch(m, g) or fnmatch.fnmatch(m, g.rstrip("/") + "/*")
                   for g in globs)))


# -- session: sweep, snapshot, compare ---------------------------------------------

def pytest_sessionstart(session: pytest.Session) -> None:
    if not _can_use_lab():
        return
    report = lablib.sweep()
    if report.runs or report.unmounted or report.killed:
        print(f"\nlab: sweeping what earlier runs left: {report}", file=sys.stderr)
    session.stash[_SESSION_KEY] = _checked(lablib.snapshot(ignore_other_live_runs=True))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    before = session.stash.get(_SESSION_KEY, None)
    if before is None:
        return
    report = lablib.finish_run()
    after = _checked(lablib.snapshot(ignore_other_live_runs=True))
    problems = before.diff(after, _SESSION_FIELDS) + [f"sweep: {e}" for e in report.errors]
    if not problems:
        return
    tr = session.config.pluginmanager.get_plugin("terminalreporter")
    lines = ["the test session changed the machine (the lab must leave it as it was):",
             *problems]
    if tr is not None:
        tr.ensure_newline()
        tr.write_sep("=", "lab: machine changed", red=True)
        for line in lines:
            tr.write_line(line)
    else:
        print("\n".join(lines), file=sys.stderr)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


# -- kernel marker -------------------------------------------------------------------

def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("kernel") is not None:
        lablib.require_root()


# -- fixtures ------------------------------------------------------------------------

@pytest.fixture
def lab(request: pytest.FixtureRequest) -> Iterator[Lab]:
    """A Lab for one test; everything it made is removed afterwards."""
    lablib.require_root()
    lablib.require_tools("nsenter")
    with Lab(request.node.nodeid) as the_lab:
        yield the_lab


@pytest.fixture
def lab_host(lab: Lab) -> LabHost:
    """A host namespace with the directories, socket and prefix of one muslin instance."""
    return lab.host("host")


@dataclass
class StubDNS:
    """A stub upstream DNS server running in its own lab namespace."""

    netns: str
    address: str
    port: int
    records: dict[str, list[str]]
    tc: bool
    log: str
    proc: object = field(repr=False)

    def queries(self) -> list[tuple[str, str, str]]:
        """(proto, qname, qtype) of every query the stub has seen so far."""
        try:
            with open(self.log) as f:
                return [tuple(line.split()) for line in f if line.strip()]  # type: ignore[misc]
        except FileNotFoundError:
            return []


DEFAULT_RECORDS = {
    "example.com": ["192.0.2.10"],
    "upstream.test": ["192.0.2.11", "192.0.2.12"],
    "v6.upstream.test": ["2001:db8::11"],
}


@pytest.fixture
def stub_dns_for(lab: Lab) -> Callable[..., StubDNS]:
    """Factory: stub_dns_for(target=None, records=None, *, tc=False, port=53, rcode=None).

    Starts a stub DNS server in a namespace of its own. With a target (a LabHost or a
    lab namespace) the stub is wired to it by a veth from 203.0.113.0/24 (a /30 per
    stub: target .201, stub .202, then .205/.206, ...) and has a default route back
    through it; its `address` is then reachable from the target. Without one, its
    address is 127.0.0.1 inside its own namespace. With rcode (e.g. "SERVFAIL") it
    answers every query with that rcode.
    """
    count = iter(range(14))

    def make(target: Namespace | None = None, records: dict[str, list[str] | str] | None = None,
             *, tc: bool = False, port: int = 53, rcode: str | None = None) -> StubDNS:
        recs = {k: [v] if isinstance(v, str) else list(v)
                for k, v in (records if records is not None else DEFAULT_RECORDS).items()}
        ns = lab.netns("dns")
        address = "127.0.0.1"
        if target is not None:
            n = next(count)
            base = 200 + 4 * n
            pair = lab.link(target, ns, f"203.0.113.{base + 1}/30", f"203.0.113.{base + 2}/30",
                            name_a=f"dns{n}", name_b="eth0")
            lab.route(ns, "default", via=pair.ip_a, dev="eth0")
            address = pair.ip_b
        tag = os.path.basename(ns)
        ready = lab.dir / f"{tag}.ready"
        log = lab.dir / f"{tag}.queries"
        argv = [sys.executable, str(TESTS / "stubdns.py"), "--listen", "0.0.0.0",
                "--port", str(port), "--ready", str(ready), "--log", str(log)]
        for name, addrs in recs.items():
            argv += ["--record", f"{name}={','.join(addrs)}"]
        if tc:
            argv.append("--tc")
        if rcode:
            argv += ["--rcode", rcode]
        proc = lab.spawn(ns, argv)

        def up() -> bool:
            if proc.poll() is not None:
                raise lablib.LabError(f"stub DNS exited: {Path(proc.lab_log).read_text()}")  # type: ignore[attr-defined]
            return ready.exists()

        try:
            lablib.wait_until(up, timeout=30, what="the stub DNS server to listen")
        except TimeoutError as e:
            if proc.poll() is not None:
                raise lablib.LabError(
                    f"stub DNS exited: {Path(proc.lab_log).read_text()}") from e  # type: ignore[attr-defined]
            raise
        return StubDNS(netns=ns, address=address, port=port, records=recs, tc=tc,
                       log=str(log), proc=proc)

    return make


@pytest.fixture
def stub_dns(request: pytest.FixtureRequest,
             stub_dns_for: Callable[..., StubDNS]) -> StubDNS:
    """A stub DNS server with DEFAULT_RECORDS; wired to `lab_host` when the test uses it."""
    if "lab_host" in request.fixturenames:
        return stub_dns_for(request.getfixturevalue("lab_host"))
    return stub_dns_for()


@dataclass(frozen=True)
class Lan:
    """A "LAN" namespace whose veth end carries `address`; the other end, `parent`, lies
    in the host namespace (up, no address), ready to be a macvlan parent."""

    netns: str
    address: str
    cidr: str
    ifname: str
    host: str
    parent: str


@pytest.fixture
def lan(lab: Lab) -> Callable[..., Lan]:
    """Factory: lan(host, parent="eth1", cidr="10.0.0.200/24", name="lan") -> Lan."""

    def make(host: Namespace, parent: str = "eth1", cidr: str = "10.0.0.200/24",
             name: str = "lan") -> Lan:
        host_ns = lab.path_of(host)
        ns = lab.netns(name)
        lab.veth(ns, "eth0", host_ns, parent)
        lab.addr(ns, "eth0", cidr)
        return Lan(netns=ns, address=cidr.split("/")[0], cidr=cidr, ifname="eth0",
                   host=host_ns, parent=parent)

    return make


@dataclass(frozen=True)
class ClientHost:
    """An underlay bridge (own namespace) joining a LabHost and a client namespace."""

    underlay: Underlay
    host: LabHost
    host_ifname: str
    host_address: str
    client: str
    client_address: str


@pytest.fixture
def client_host(lab: Lab) -> Callable[..., ClientHost]:
    """Factory: client_host(host=None, *, underlay=None, cidr="198.51.100.0/24").

    Makes (or reuses) an underlay bridge, attaches the host (a new LabHost unless one
    is given) as `eth0` and a new client namespace as `eth0`, with addresses from the
    underlay network (host first, then client)."""

    def make(host: LabHost | None = None, *, underlay: Underlay | None = None,
             cidr: str = "198.51.100.0/24") -> ClientHost:
        ul = underlay or lab.underlay(cidr=cidr)
        h = host or lab.host("host")
        host_cidr = ul.attach(h, "eth0")
        client = lab.netns("client")
        client_cidr = ul.attach(client, "eth0")
        return ClientHost(underlay=ul, host=h, host_ifname="eth0",
                          host_address=host_cidr.split("/")[0], client=client,
                          client_address=client_cidr.split("/")[0])

    return make
