"""The lab proves itself: a run killed with SIGKILL is swept without a trace, lab
namespaces are islands, and the fixtures (stub DNS, LAN, client host) work."""

from __future__ import annotations

import ctypes
import errno
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import dns.flags
import dns.message
import dns.query
import dns.rcode
import pytest

from muslin.kernel import Host, in_netns, netns

import lab as lablib
from lab import Lab, LabHost

pytestmark = pytest.mark.kernel

REPO = Path(__file__).resolve().parents[2]
CHILD_ENV = "MUSLIN_LAB_CHILD"
READY_ENV = "MUSLIN_LAB_CHILD_READY"
PR_SET_CHILD_SUBREAPER = 36


# -- a run killed with SIGKILL leaves nothing behind ----------------------------------

@pytest.mark.skipif(os.environ.get(CHILD_ENV) != "1",
                    reason="runs only as the child of test_sweep_after_kill_9")
def test_child_makes_things_and_hangs(lab: Lab) -> None:
    """The child run: makes namespaces, a veth, a bridge, a process and an nftables
    table, says so in the ready file, then waits to be killed."""
    a = lab.netns("a")
    b = lab.netns("b")
    lab.veth(a, "va", b, "vb")
    lab.bridge(a, "br-child")
    lab.enslave(a, "va", "br-child")
    sleeper = lab.spawn(b, ["sleep", "1000"])
    table = "labchild"
    lab.kernel(a).call(lambda links, nft: nft.run([
        {"add": {"table": {"family": "inet", "name": table}}},
        {"add": {"chain": {"family": "inet", "table": table, "name": "c"}}},
    ]))
    ready = Path(os.environ[READY_ENV])
    info = {
        "run": str(lab.run_.dir), "namespaces": [a, b],
        "inodes": [netns.inode(a), netns.inode(b)],
        "veth": ["va", "vb"], "bridge": "br-child", "table": table,
        "sleep": [sleeper.pid, lablib.start_time(sleeper.pid)],
    }
    tmp = ready.with_name(ready.name + ".tmp")
    tmp.write_text(json.dumps(info))
    tmp.rename(ready)
    never = ready.with_name("never")
    # Polls for a file nobody writes: the parent kills this process meanwhile.
    lablib.wait_until(never.exists, timeout=600, what="the parent to kill this child")
    pytest.fail("the parent did not kill the child run")


def _set_subreaper(on: bool) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def _tasks_in(inodes: set[int]) -> list[int]:
    return lablib.processes_in(inodes)


def test_sweep_after_kill_9(tmp_path: Path) -> None:
    lablib.require_root()
    lablib.require_tools("nsenter", "ip")
    # Other test runs may be live meanwhile: their things are left out, and so are
    # mounts outside the lab root (a benchmark's, say); the session check sees those.
    # Runs that died since this session's start-up sweep (another pytest killed on this
    # machine meanwhile) would be swept by the sweep under test and show as a difference.
    lablib.sweep()
    before = lablib.snapshot(ignore_other_live_runs=True).lab_mounts_only()
    ready = tmp_path / "ready"
    out = open(tmp_path / "child.log", "wb")  # noqa: SIM115 - closed in finally
    env = dict(os.environ, **{CHILD_ENV: "1", READY_ENV: str(ready)})
    # The child's orphans (its spawned sleep) are reparented to this process, which
    # can then reap them: this machine's pid 1 does not reap orphans.
    _set_subreaper(True)
    child = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x",
         f"{__file__}::test_child_makes_things_and_hangs"],
        cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        def child_ready() -> bool:
            if child.poll() is not None:
                raise AssertionError(
                    f"child exited early ({child.returncode}):\n"
                    + (tmp_path / "child.log").read_text())
            return ready.exists()

        lablib.wait_until(child_ready, timeout=120, what="the child run to be ready")
        info = json.loads(ready.read_text())
        a, b = info["namespaces"]
        sleep_pid, sleep_start = info["sleep"]

        # While the child runs, its things exist.
        during = lablib.snapshot(ignore_other_live_runs=True,
                                 keep_runs={Path(info["run"]).name}).lab_mounts_only()
        diff = before.diff(during)
        assert any(d.startswith("mounts: + " + info["run"]) for d in diff), diff
        assert any(d.startswith("processes: +") and "sleep" in d for d in diff), diff
        assert any(d == "runs: + " + Path(info["run"]).name for d in diff), diff
        assert during.links == before.links, "the child touched the root namespace's links"
        assert during.nft_tables == before.nft_tables
        assert lablib.alive(sleep_pid, sleep_start)
        assert in_netns(a, lambda links: links.get("va")) is not None
        assert in_netns(a, lambda links: links.get("br-child")) is not None
        assert in_netns(b, lambda links: links.get("vb")) is not None
        host = Host(a)
        try:
            assert host.call(lambda links, nft: nft.list_table("inet", info["table"]))
        finally:
            host.close()
        # The sleep, and the child itself (its kernel Host thread lives in namespace a).
        assert set(lablib.processes_in(set(info["inodes"]))) == {sleep_pid, child.pid}

        t0 = time.monotonic()
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        assert lablib.alive(sleep_pid, sleep_start), "the sleep must outlive its run"

        report = lablib.sweep()
        swept_in = time.monotonic() - t0
        # Any other pytest starting now sweeps dead runs too and may beat this sweep to
        # the child's run: what matters is the end state, checked below.
        assert Path(info["run"]).name in report.runs or not Path(info["run"]).exists()
        assert not report.errors, report.errors
        after = lablib.snapshot(ignore_other_live_runs=True).lab_mounts_only()
        assert before.diff(after) == [], before.diff(after)
        assert after == before
        assert not lablib.alive(sleep_pid, sleep_start)
        # Reaped, not just dead: this process is its parent now (the subreaper).
        lablib.wait_until(lambda: lablib._reap(sleep_pid) or
                          lablib.start_time(sleep_pid) != sleep_start,
                          what="the sleep to be reaped")
        assert not _tasks_in(set(info["inodes"]))
        assert not os.path.exists(info["run"])
        print(f"killed child swept in {swept_in:.2f}s: {report}")
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        out.close()
        _set_subreaper(False)
        if ready.exists():
            run_dir = Path(json.loads(ready.read_text())["run"])
            if run_dir.exists():
                lablib.sweep_run(run_dir)


def test_sweep_leaves_live_runs_alone(lab: Lab) -> None:
    ns = lab.netns("keep")
    proc = lab.spawn(ns, ["sleep", "1000"])
    report = lablib.sweep()
    assert lab.run_.dir.name not in report.runs
    assert netns.is_netns(ns)
    assert proc.poll() is None


# -- lab namespaces are islands --------------------------------------------------------

def _links_in(ns: str) -> list[str]:
    return sorted(link.name for link in in_netns(ns, lambda links: links.marked("")))


def test_namespace_has_no_way_off_the_machine(lab: Lab) -> None:
    lablib.require_tools("ip")
    ns = lab.netns("island")
    assert _links_in(ns) == ["lo"]
    assert in_netns(ns, lambda links: links.default_routes(4)) == []
    assert in_netns(ns, lambda links: links.default_routes(6)) == []
    assert in_netns(ns, lambda links: links.route_destinations(4)) == []

    def connect_out() -> int:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.connect(("198.51.100.1", 9))
        except OSError as e:
            return e.errno or 0
        finally:
            s.close()
        return 0

    assert netns.run_in(ns, connect_out) == errno.ENETUNREACH
    r = lab.run(ns, ["ip", "-o", "route", "show", "table", "all"], check=False)
    assert "default" not in r.stdout
    assert netns.inode(ns) != netns.inode(None)


def test_hosts_do_not_see_each_others_links(lab: Lab) -> None:
    h1, h2 = lab.host("h1"), lab.host("h2")
    assert h1.prefix != h2.prefix and h1.netns != h2.netns
    lab.bridge(h1, "only-h1")
    lab.veth(h1, "v-h1", h1, "v-h1-peer")
    assert _links_in(h1.netns) == ["lo", "only-h1", "v-h1", "v-h1-peer"]
    assert _links_in(h2.netns) == ["lo"]
    assert in_netns(h2.netns, lambda links: links.get("only-h1")) is None
    assert "only-h1" not in lablib.root_link_names()
    assert "v-h1" not in lablib.root_link_names()


def test_lab_refuses_the_root_namespace(lab: Lab) -> None:
    with pytest.raises(lablib.LabError):
        lab.bridge("/proc/self/ns/net", "nope0")
    with pytest.raises(lablib.LabError):
        lab.run("/proc/1/ns/net", ["true"])
    assert "nope0" not in lablib.root_link_names()


def test_lab_host_layout(lab: Lab, lab_host: LabHost) -> None:
    for d in (lab_host.state_dir, lab_host.run_dir, lab_host.exec_dir):
        assert os.path.isdir(d) and d.startswith(str(lab.dir))
    assert lab_host.socket.startswith(lab_host.run_dir)
    assert len(lab_host.socket) < 108
    assert len(lab_host.prefix) == 6 and lab_host.prefix[0] == "t"
    assert netns.is_netns(lab_host.netns)
    # The lab leaves the host's sysctls at the kernel's defaults: muslin sets them.
    from muslin.kernel import sysctl
    assert netns.run_in(lab_host.netns, lambda: sysctl.get("net.ipv4.ip_forward")) == "0"


def test_lab_cleans_up_after_a_failing_test() -> None:
    ns = ""
    run_dir = None
    with pytest.raises(RuntimeError), Lab("failing") as lab:
        ns = lab.netns("doomed")
        lab.spawn(ns, ["sleep", "1000"])
        run_dir = lab.dir
        raise RuntimeError("the test failed")
    assert not os.path.exists(ns)
    assert run_dir is not None and not run_dir.exists()
    assert not [m for m in lablib.mount_points() if m.startswith(str(run_dir))]
    assert not [p for p in lablib.recorded_processes(lablib.current_run().dir)
                if lablib.alive(p[0], p[1])]


def test_run_and_spawn(lab: Lab) -> None:
    ns = lab.netns("cmd")
    r = lab.run(ns, ["readlink", "/proc/self/ns/net"])
    assert r.stdout.strip() == f"net:[{netns.inode(ns)}]"
    with pytest.raises(lablib.LabCommandError) as e:
        lab.run(ns, ["sh", "-c", "echo oops >&2; exit 3"])
    assert e.value.returncode == 3 and "oops" in str(e.value)
    assert lab.run(ns, ["false"], check=False).returncode == 1
    with pytest.raises(lablib.LabCommandError, match="timed out"):
        lab.run(ns, ["sleep", "30"], timeout=0.5)
    # A spawned process and its children (one process group) die with the lab.
    p = lab.spawn(ns, ["sh", "-c", "sleep 1000 & echo $! ; wait"])
    child_pid = int(lablib.wait_until(lambda: Path(p.lab_log).read_text().strip(),
                                      what="the spawned shell to report its child"))
    child_start = lablib.start_time(child_pid)
    assert child_start is not None
    lab.close()
    assert p.returncode is not None
    assert not lablib.alive(child_pid, child_start)


# -- fixtures ------------------------------------------------------------------------

def _query(ns: str, server: str, name: str, *, tcp: bool = False,
           rdtype: str = "A") -> dns.message.Message:
    q = dns.message.make_query(name, rdtype)

    def ask() -> dns.message.Message:
        if tcp:
            return dns.query.tcp(q, server, timeout=2)
        return dns.query.udp(q, server, timeout=2, ignore_trailing=True)

    return netns.run_in(ns, ask)


def _addresses(msg: dns.message.Message) -> list[str]:
    return sorted(r.address for rrset in msg.answer for r in rrset)


def test_stub_dns_alone(stub_dns) -> None:  # type: ignore[no-untyped-def]
    assert stub_dns.address == "127.0.0.1"
    r = _query(stub_dns.netns, stub_dns.address, "example.com")
    assert _addresses(r) == ["192.0.2.10"]
    r = _query(stub_dns.netns, stub_dns.address, "nope.example.com")
    assert r.rcode() == dns.rcode.NXDOMAIN
    assert ("udp", "nope.example.com.", "A") in stub_dns.queries()


def test_stub_dns_wired_to_lab_host(lab_host: LabHost, stub_dns) -> None:  # type: ignore[no-untyped-def]
    assert stub_dns.address.startswith("203.0.113.")
    r = _query(lab_host.netns, stub_dns.address, "upstream.test")
    assert _addresses(r) == ["192.0.2.11", "192.0.2.12"]
    r = _query(lab_host.netns, stub_dns.address, "upstream.test", tcp=True)
    assert _addresses(r) == ["192.0.2.11", "192.0.2.12"]
    r = _query(lab_host.netns, stub_dns.address, "v6.upstream.test", rdtype="AAAA")
    assert _addresses(r) == ["2001:db8::11"]
    r = _query(lab_host.netns, stub_dns.address, "example.com", rdtype="AAAA")
    assert r.rcode() == dns.rcode.NOERROR and not r.answer
    assert in_netns(stub_dns.netns, lambda links: links.default_routes(4))


def test_stub_dns_truncation(lab: Lab, lab_host: LabHost, stub_dns_for) -> None:  # type: ignore[no-untyped-def]
    plain = stub_dns_for(lab_host, {"big.test": ["192.0.2.1", "192.0.2.2"]})
    tc = stub_dns_for(lab_host, {"big.test": "192.0.2.3"}, tc=True)
    assert plain.address != tc.address
    r = _query(lab_host.netns, tc.address, "big.test")
    assert r.flags & dns.flags.TC and not r.answer
    r = _query(lab_host.netns, tc.address, "big.test", tcp=True)
    assert not r.flags & dns.flags.TC and _addresses(r) == ["192.0.2.3"]
    assert _addresses(_query(lab_host.netns, plain.address, "big.test")) == [
        "192.0.2.1", "192.0.2.2"]
    assert [q[0] for q in tc.queries()] == ["udp", "tcp"]


def test_lan_is_a_macvlan_parent(lab: Lab, lab_host: LabHost, lan) -> None:  # type: ignore[no-untyped-def]
    lablib.require_tools("ping")
    segment = lan(lab_host)
    assert segment.address == "10.0.0.200"

    def macvlan(links):  # type: ignore[no-untyped-def]
        parent = links.require(segment.parent)
        assert parent.up and not links.addresses(parent.index)
        mv = links.add_macvlan("mv0", parent=parent.index, mode="bridge", alias=lab.alias)
        links.add_address(mv.index, "10.0.0.2", 24)
        links.set(mv.index, state="up")

    lab.call(lab_host, macvlan)
    lab.wait_until(lambda: lab.run(lab_host.netns, ["ping", "-c1", "-W1", "10.0.0.200"],
                                   check=False).returncode == 0,
                   what="the LAN to answer a ping through the macvlan")


def test_client_host(lab: Lab, client_host) -> None:  # type: ignore[no-untyped-def]
    lablib.require_tools("ping")
    ch = client_host()
    assert ch.host_address == "198.51.100.1" and ch.client_address == "198.51.100.2"
    lab.wait_until(lambda: lab.run(ch.client, ["ping", "-c1", "-W1", ch.host_address],
                                   check=False).returncode == 0,
                   what="the client to reach the host over the underlay")
    second = client_host(underlay=ch.underlay)
    assert second.host_address == "198.51.100.3" and second.host != ch.host
    assert in_netns(ch.host.netns, lambda links: links.default_routes(4)) == []
