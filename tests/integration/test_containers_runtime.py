"""Containers under runc and conmon, in the lab: real namespaces, real packets.

Each test's Runtime keeps its state under the lab host's state dir, runc's under its
run dir (where the lab's sweeper finds it), and starts conmon inside the lab host's
namespace, so a test killed midway leaves nothing the sweeper cannot find: runc
state under the run dir, conmon and containers in lab namespaces, cgroups recorded
in the run's `cgroups` file.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import muslin
from muslin.containers import (
    ContainerSpec,
    ImageStore,
    Runtime,
    build_busybox,
    etcfiles,
    new_id,
)
from muslin.containers.monitor import rss_kib
from muslin.errors import Conflict

import lab as lablib
from lab import Lab, LabHost, mount_points, wait_until

pytestmark = pytest.mark.kernel

CGROUP_ROOT = "/sys/fs/cgroup"
DNS = ["192.0.2.53"]  # explicit servers: nothing of the machine's resolv.conf leaks in


def _hierarchies() -> list[str]:
    return sorted(p for p in glob.glob(f"{CGROUP_ROOT}/*") if os.path.isdir(p)
                  and not os.path.islink(p))


@pytest.fixture
def images(lab_host: LabHost) -> ImageStore:
    store = ImageStore(os.path.join(lab_host.state_dir, "images"))
    build_busybox(store)
    return store


@pytest.fixture
def runtime(lab: Lab, lab_host: LabHost, images: ImageStore) -> Iterator[Runtime]:
    parent = f"/muslin-lab-{lab_host.prefix}"
    # the sweeper removes these (deepest first) should this run be killed
    for h in _hierarchies():
        lab.run_.record_cgroup(h + parent)
    rt = Runtime(os.path.join(lab_host.state_dir, "containers"), lab_host.run_dir,
                 images=images, host_netns=lab_host.netns, cgroup_parent=parent)
    made: list[Runtime] = [rt]
    rt.made = made  # type: ignore[attr-defined]  # more Runtimes a test opens on the root
    yield rt
    live = next((r for r in reversed(made) if r._lockfd >= 0), None)
    if live is None:
        live = Runtime(rt.root, rt.run_dir, images=images, host_netns=lab_host.netns,
                       cgroup_parent=parent)
        made.append(live)
    problems = []
    try:
        for c in live.list():
            live.delete(c.id, force=True)
        problems = leftovers(live)
    finally:
        for r in made:
            r.close()
        for h in _hierarchies():
            with contextlib.suppress(FileNotFoundError):
                os.rmdir(h + parent)
    assert problems == []


def leftovers(rt: Runtime, ids: list[str] | None = None) -> list[str]:
    """What deleted containers (ids; all without) could have left: mounts under the
    runtime's dirs, runc state, a live conmon, cgroup dirs, files."""
    def mine(path: str) -> bool:
        return ids is None or any(c in path for c in ids)

    out = []
    for m in mount_points():
        if (m.startswith(rt.root + "/") or m.startswith(rt.run_dir + "/runc")) and mine(m):
            out.append(f"mount {m}")
    out += [f"runc state {p}" for p in glob.glob(f"{rt.run_dir}/runc/*/state.json") if mine(p)]
    for cid in ids or []:
        out += [f"cgroup {p}" for p in glob.glob(f"{CGROUP_ROOT}/*/**/{cid}", recursive=True)]
        if os.path.exists(os.path.join(rt.root, cid)):
            out.append(f"dir {cid}")
    for pid in _conmons(rt):
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            if mine(f.read().decode(errors="replace")):
                out.append(f"conmon {pid}")
    return out


def _conmons(rt: Runtime) -> list[int]:
    """Live conmon processes working for this runtime (by their command line)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
            with open(f"/proc/{entry}/stat") as f:
                st = f.read()
        except OSError:
            continue
        if argv and argv[0].endswith(b"conmon") and rt.root.encode() in b" ".join(argv) \
                and st[st.rindex(")") + 2] not in "ZX":
            out.append(int(entry))
    return out


def spec(image: str = "busybox", cmd: list[str] | None = None, **kw: object) -> ContainerSpec:
    kw.setdefault("resolv_conf", etcfiles.resolv_conf_legacy("", dns=DNS))
    return ContainerSpec(id=new_id(), image=image, cmd=cmd, **kw)  # type: ignore[arg-type]


def run(rt: Runtime, lab: Lab, s: ContainerSpec, *, attach: bool = False) -> str:
    """Creates and starts s; records its monitor with the lab (for the sweeper)."""
    rt.create(s)
    rt.start(s.id, attach=attach)
    info = rt.get(s.id)
    if info.monitor_pid:
        lab.run_.record_process(info.monitor_pid, ["conmon", s.id])
    return s.id


def sh(rt: Runtime, cid: str, script: str, timeout: float = 30) -> tuple[str, str, int]:
    p = rt.exec(cid, ["sh", "-c", script], stdin=False)
    out, err, code = p.communicate(timeout=timeout)
    return out.decode(), err.decode(), code


def member(ctl: muslin.Controller, net: muslin.Network, name: str
           ) -> tuple[muslin.Sandbox, muslin.Endpoint]:
    sb = ctl.create_sandbox(name)
    ep = net.create_endpoint(name)
    ep.join(sb)
    return sb, ep


# -- networks --------------------------------------------------------------------------

def test_two_containers_on_a_network_ping(lab: Lab, ctl: muslin.Controller,
                                         runtime: Runtime) -> None:
    net = ctl.create_network("localnet")
    (sb1, ep1), (sb2, ep2) = member(ctl, net, "c1"), member(ctl, net, "c2")
    assert ep1.ipv4_address and ep2.ipv4_address
    c1 = run(runtime, lab, spec(cmd=["sleep", "1d"], netns=sb1.netns_path, hostname="c1"))
    c2 = run(runtime, lab, spec(cmd=["sleep", "1d"], netns=sb2.netns_path, hostname="c2"))
    assert runtime.state(c1)["Status"] == "running"
    out, err, code = sh(runtime, c2, f"ping -c1 -W5 {ep1.ipv4_address}")
    assert code == 0, (out, err)
    assert "1 packets received" in out
    out, _, code = sh(runtime, c1, "ip -o -4 addr show eth0; hostname")
    assert code == 0 and f"inet {ep1.ipv4_cidr}" in out and out.split()[-1] == "c1"
    # the container's own sysctls and Docker's capabilities
    out, _, _ = sh(runtime, c1, "cat /proc/sys/net/ipv4/ping_group_range "
                                "/proc/sys/net/ipv4/ip_unprivileged_port_start")
    assert out.split() == ["0", "2147483647", "0"]
    out, _, _ = sh(runtime, c1, "grep CapBnd /proc/self/status; ulimit -n")
    assert out.split()[1] == "00000000a80425fb"  # Docker's default set
    assert int(out.split()[2]) <= 20000
    runtime.delete(c1, force=True)
    runtime.delete(c2, force=True)
    assert leftovers(runtime, [c1, c2]) == []
    assert ctl.leaks() == []


def test_network_none_has_only_lo(lab: Lab, ctl: muslin.Controller, runtime: Runtime) -> None:
    sb = ctl.create_sandbox("lonely")
    c = run(runtime, lab, spec(cmd=["sleep", "1d"], netns=sb.netns_path, network_mode="none"))
    out, _, code = sh(runtime, c, "ip -o link | cut -d: -f2")
    assert code == 0 and out.split() == ["lo"]
    runtime.delete(c, force=True)


def _link_names(lab: Lab, ns: str) -> list[str]:
    out = lab.run(ns, ["ip", "-o", "link"]).stdout
    return sorted(line.split(":")[1].strip().split("@")[0] for line in out.splitlines())


def test_host_network_sees_the_hosts_interfaces(lab: Lab, lab_host: LabHost,
                                                 ctl: muslin.Controller,
                                                 runtime: Runtime) -> None:
    ctl.create_network("localnet")  # a bridge in the lab host: something to see
    expected = _link_names(lab, lab_host.netns)
    assert len(expected) > 1
    # the lab host's namespace by path, and the runtime's host namespace (no path)
    by_path = run(runtime, lab, spec(cmd=["sleep", "1d"], netns=lab_host.netns,
                                     network_mode="host"))
    implicit = run(runtime, lab, spec(cmd=["sleep", "1d"], network_mode="host"))
    for c in (by_path, implicit):
        out, _, code = sh(runtime, c, "ip -o link | cut -d: -f2 | cut -d@ -f1")
        assert code == 0 and sorted(out.split()) == expected
        # no default network sysctls in the host's namespace
        with open(os.path.join(runtime.get(c).bundle, "config.json")) as f:
            assert json.load(f)["linux"]["sysctl"] == {}


def test_logs_exit_codes_and_restart(lab: Lab, runtime: Runtime) -> None:
    c = run(runtime, lab, spec(cmd=["sh", "-c", "echo out; echo err >&2; printf tail; exit 3"]))
    assert runtime.wait(c, timeout=30) == 3
    st = runtime.state(c)
    assert (st["Status"], st["ExitCode"], st["Running"]) == ("exited", 3, False)
    assert st["FinishedAt"] >= st["StartedAt"] > "2000"
    entries = list(runtime.logs(c))
    assert [(e.stream, e.data) for e in entries if e.stream == "stdout"] == [
        ("stdout", b"out\n"), ("stdout", b"tail")]
    assert [(e.stream, e.data) for e in entries if e.stream == "stderr"] == [
        ("stderr", b"err\n")]
    assert all(e.time > 0 for e in entries)
    # tail counts records of both streams, before the stream filter (Docker's order)
    assert list(runtime.logs(c, tail=1)) == entries[-1:]
    assert list(runtime.logs(c, tail=2)) == entries[-2:]
    assert list(runtime.logs(c, tail=0)) == []
    assert list(runtime.logs(c, follow=True)) == entries  # ends: the container is gone
    stamped = next(iter(runtime.logs(c, timestamps=True)))
    assert stamped.data.endswith(b"Z out\n")
    # started again: same log, appended; the exit code is the new run's
    runtime.start(c)
    assert runtime.wait(c, timeout=30) == 3
    assert [e.data for e in runtime.logs(c, stdout=True, stderr=False)].count(b"out\n") == 2
    # a command that does not exist: no run, Docker's 127
    bad = spec(cmd=["/no/such/thing"])
    runtime.create(bad)
    with pytest.raises(muslin.InvalidParameter, match="no such file"):
        runtime.start(bad.id)
    st = runtime.state(bad.id)
    assert (st["Status"], st["ExitCode"]) == ("created", 127) and st["Error"]
    # the failed start's conmon exits on its own, a moment later on a loaded machine
    wait_until(lambda: _conmons(runtime) == [], 10, "no conmon left after the failed start")


def test_stop_kill_pause_wait_delete(lab: Lab, runtime: Runtime) -> None:
    trap = run(runtime, lab, spec(cmd=["sh", "-c", "trap 'exit 7' TERM; trap 'echo usr1' USR1; "
                                                   "echo ready; while :; do sleep 0.05; done"]))
    wait_until(lambda: any(e.data == b"ready\n" for e in runtime.logs(trap)), 10,
               "the traps to be set")
    runtime.kill(trap, "USR1")
    wait_until(lambda: any(e.data == b"usr1\n" for e in runtime.logs(trap)), 10,
               "the USR1 trap to run")
    t0 = time.monotonic()
    assert runtime.stop(trap, timeout=20) is True
    assert time.monotonic() - t0 < 10
    assert runtime.state(trap)["ExitCode"] == 7
    assert runtime.stop(trap) is False  # not running: nothing to do
    with pytest.raises(Conflict, match="is not running"):
        runtime.kill(trap)

    c = run(runtime, lab, spec(cmd=["sleep", "1d"], stop_timeout=1))
    runtime.pause(c)
    assert runtime.state(c)["Status"] == "paused"
    with pytest.raises(Conflict, match="paused"):
        runtime.exec(c, ["true"])
    with pytest.raises(Conflict, match="already paused"):
        runtime.pause(c)
    runtime.unpause(c)
    assert runtime.state(c)["Status"] == "running"
    # sleep as pid 1 ignores SIGTERM: stop ends with SIGKILL after the timeout
    assert runtime.stop(c) is True
    st = runtime.state(c)
    assert (st["Status"], st["ExitCode"]) == ("exited", 137)
    assert runtime.wait(c, "not-running") == 137
    # next-exit waits for the next run's end
    got: list[int] = []
    waiter = threading.Thread(target=lambda: got.append(runtime.wait(c, "next-exit",
                                                                      timeout=60)))
    waiter.start()
    runtime.start(c)
    runtime.kill(c)  # SIGKILL: pid 1 ignores signals it has no handler for, but not this
    waiter.join(60)
    assert got == [137]
    # a paused container is stopped too
    runtime.start(c)
    runtime.pause(c)
    assert runtime.stop(c, timeout=1) is True and runtime.state(c)["ExitCode"] == 137
    # delete: a running container needs force
    runtime.start(c)
    with pytest.raises(Conflict, match="container is running"):
        runtime.delete(c)
    removed: list[int] = []
    waiter = threading.Thread(target=lambda: removed.append(runtime.wait(c, "removed",
                                                                          timeout=60)))
    waiter.start()
    runtime.delete(c, force=True)
    waiter.join(60)
    assert removed == [137]
    assert leftovers(runtime, [c]) == []
    with pytest.raises(muslin.NotFound, match="No such container"):
        runtime.state(c)


def test_exec_env_user_workdir_and_tty(lab: Lab, runtime: Runtime) -> None:
    c = run(runtime, lab, spec(cmd=["sleep", "1d"], env=["FOO=image", "KEEP=1"]))
    out, _, code = sh(runtime, c, "echo $FOO $KEEP $HOSTNAME; id -u; pwd")
    assert code == 0 and out.split() == ["image", "1", c[:12], "0", "/"]
    p = runtime.exec(c, ["sh", "-c", "echo $FOO; id -u; id -g; pwd; exit 5"],
                     env=["FOO=exec"], user="nobody", workdir="/tmp", stdin=False)
    out_b, _, code = p.communicate(timeout=30)
    assert code == 5 and out_b.decode().split() == ["exec", "65534", "65534", "/tmp"]
    # stdin
    p = runtime.exec(c, ["cat"])
    out_b, _, code = p.communicate(b"through stdin\n", timeout=30)
    assert (out_b, code) == (b"through stdin\n", 0)
    # a terminal, resized
    p = runtime.exec(c, ["sh", "-c", "read x; stty size; tty; echo $TERM"], tty=True)
    assert p.pty is not None and p.stdin is not None
    p.resize(33, 101)
    p.stdin.write(b"go\n")
    out_b, _, code = p.communicate(timeout=30)
    text = out_b.decode()
    assert code == 0 and "33 101" in text and "/dev/pts/" in text and "xterm" in text
    # killed by a signal: 128 + N
    p = runtime.exec(c, ["sleep", "100"], stdin=False)
    time.sleep(0)  # let it start: the kill below goes through runc to the process
    wait_until(lambda: "sleep 100" in sh(runtime, c, "ps -o args")[0], 10, "sleep to run")
    p.kill("SIGKILL")
    assert p.wait(30) == 137
    assert not glob.glob(os.path.join(runtime.root, c, "exec-*.json"))


def test_attach_stdin_and_tty_container(lab: Lab, runtime: Runtime) -> None:
    s = spec(cmd=["cat"], open_stdin=True, stdin_once=True)
    runtime.create(s)
    att = runtime.start(s.id, attach=True)
    assert att is not None
    att.send(b"hello over attach\n")
    assert att.recv(timeout=20) == ("stdout", b"hello over attach\n")
    att.close_stdin()  # cat sees the end of its input and exits
    assert att.recv(timeout=20) is None
    att.close()
    assert runtime.wait(s.id, timeout=30) == 0
    assert [e.data for e in runtime.logs(s.id)] == [b"hello over attach\n"]
    # a container with a terminal: its output, resized through conmon
    t = spec(cmd=["sh", "-c", "read x; stty size; tty"], tty=True, open_stdin=True)
    runtime.create(t)
    att = runtime.start(t.id, attach=True)
    assert att is not None
    runtime.resize(t.id, 25, 77)
    wait_until(lambda: sh(runtime, t.id, "stty size < /dev/pts/0")[0].split() == ["25", "77"],
               10, "the resize to reach the terminal")
    att.send(b"go\n")
    out, _ = att.read_all(timeout=20)
    assert b"25 77" in out and b"/dev/pts/0" in out
    assert runtime.wait(t.id, timeout=30) == 0
    assert any(b"25 77" in e.data for e in runtime.logs(t.id))


def test_etc_files_written_and_rewritten_in_place(lab: Lab, ctl: muslin.Controller,
                                                  runtime: Runtime) -> None:
    net = ctl.create_network("localnet")
    sb, ep = member(ctl, net, "web")
    assert ep.ipv4_address
    hosts = etcfiles.hosts_for_container(hostname="web", domainname="example.test",
                                         addresses=[ep.ipv4_address],
                                         extra_hosts=[("192.0.2.7", "db")])
    resolv, ext = etcfiles.resolv_conf_internal("nameserver 127.0.0.53\nsearch lab.test\n",
                                                dns_search=["example.test"])
    assert [str(e) for e in ext] == ["host(127.0.0.53)"]
    c = run(runtime, lab, spec(cmd=["sleep", "1d"], netns=sb.netns_path, hostname="web",
                               domainname="example.test", etc_hosts=hosts, resolv_conf=resolv))
    assert sh(runtime, c, "cat /etc/hosts")[0] == hosts
    assert sh(runtime, c, "cat /etc/resolv.conf")[0] == resolv
    names = sh(runtime, c, "cat /etc/hostname; hostname; cat /proc/sys/kernel/domainname")[0]
    assert names.split() == ["web", "web", "example.test"]
    assert "nameserver 127.0.0.11" in resolv
    # network connect: another address, seen inside at once (same inode)
    more = etcfiles.add_records(hosts, etcfiles.own_records(["10.9.0.2"], "web",
                                                            "example.test"))
    assert runtime.update_etc(c, hosts=more)
    assert sh(runtime, c, "cat /etc/hosts")[0] == more
    # a resolv.conf the user edited is left alone
    sh(runtime, c, "echo '# mine' >> /etc/resolv.conf")
    assert runtime.update_etc(c, resolv_conf="nameserver 192.0.2.1\n") is False
    assert sh(runtime, c, "tail -n1 /etc/resolv.conf")[0] == "# mine\n"


SURVIVOR = r"""
import os, sys, time
from muslin.containers import ContainerSpec, ImageStore, Runtime
root, run_dir, images, netns, parent, cid = sys.argv[1:7]
rt = Runtime(root, run_dir, images=ImageStore(images), host_netns=netns, cgroup_parent=parent)
rt.create(ContainerSpec(id=cid, image="busybox", resolv_conf="",
                        cmd=["sh", "-c", "echo before; sleep 1000"]))
rt.start(cid)
print(rt.get(cid).monitor_pid, flush=True)
time.sleep(1000)
"""


def test_container_survives_its_starter_and_is_adopted(lab: Lab, lab_host: LabHost,
                                                       runtime: Runtime) -> None:
    root, run_dir, parent = runtime.root, runtime.run_dir, runtime.cgroup_parent
    runtime.close()  # one Runtime per root: the child takes it
    cid = new_id()
    out = lab.dir / "survivor.out"
    with open(out, "wb") as f:
        child = lab.spawn(lab_host.netns, [sys.executable, "-c", SURVIVOR, root, run_dir,
                                           runtime.images.root, lab_host.netns, parent, cid],
                          stdout=f, stderr=subprocess.STDOUT)
    line = wait_until(lambda: Path(out).read_text().strip(), 60, "the child to start it")
    assert child.poll() is None, line
    monitor_pid = int(line.split()[0])
    lab.run_.record_process(monitor_pid, ["conmon", cid])
    child.kill()  # kill -9 of the Python process that started it
    child.wait(10)
    rt = Runtime(root, run_dir, images=runtime.images, host_netns=lab_host.netns,
                 cgroup_parent=parent)
    runtime.made.append(rt)  # type: ignore[attr-defined]
    adopted = rt.adopt()
    assert [c.id for c in adopted] == [cid]
    assert adopted[0].monitor_pid == monitor_pid and adopted[0].status == "running"
    assert sh(rt, cid, "echo alive")[0] == "alive\n"
    assert [e.data for e in rt.logs(cid)] == [b"before\n"]
    assert rt.stop(cid, timeout=0) and rt.state(cid)["ExitCode"] == 137
    rt.delete(cid)
    assert leftovers(rt, [cid]) == []


def test_start_latency_and_monitor_memory(lab: Lab, runtime: Runtime,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    times, ids = [], []
    for _ in range(10):
        s = spec(cmd=["sleep", "1d"], network_mode="host")
        t0 = time.perf_counter()
        runtime.create(s)
        runtime.start(s.id)
        times.append(time.perf_counter() - t0)
        ids.append(s.id)
        lab.run_.record_process(runtime.get(s.id).monitor_pid or 0, ["conmon", s.id])
    rss = [rss_kib(runtime.get(c).monitor_pid or 0) for c in ids]
    times.sort()
    median = (times[4] + times[5]) / 2
    with capsys.disabled():
        print(f"\ncreate+start of busybox sleep: median {median * 1000:.0f} ms "
              f"(min {times[0] * 1000:.0f}, max {times[-1] * 1000:.0f}); conmon RSS "
              f"{min(rss)}-{max(rss)} KiB")
    assert all(0 < r < 10 * 1024 for r in rss)  # far below a Python shim's ~10 MB
    for c in ids:
        runtime.delete(c, force=True)
    assert leftovers(runtime, ids) == []


# -- a test run killed with SIGKILL: the lab's sweep removes its containers -----------

CHILD_ENV = "MUSLIN_CONTAINERS_CHILD"
READY_ENV = "MUSLIN_CONTAINERS_CHILD_READY"
REPO = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(os.environ.get(CHILD_ENV) != "1",
                    reason="runs only as the child of test_sweep_after_kill_9_removes_containers")
def test_child_runs_containers_and_hangs(lab: Lab, ctl: muslin.Controller,
                                         runtime: Runtime) -> None:
    net = ctl.create_network("localnet")
    sb, _ = member(ctl, net, "c1")
    ids = [run(runtime, lab, spec(cmd=["sleep", "1000"], netns=sb.netns_path)),
           run(runtime, lab, spec(cmd=["sleep", "1000"], network_mode="host"))]
    infos = [runtime.get(c) for c in ids]
    ready = Path(os.environ[READY_ENV])
    tmp = ready.with_name(ready.name + ".tmp")
    tmp.write_text(json.dumps({
        "run": str(lab.run_.dir), "ids": ids, "root": runtime.root,
        "monitors": [i.monitor_pid for i in infos], "inits": [i.state["Pid"] for i in infos],
        "cgroups": [p for c in ids for p in glob.glob(f"{CGROUP_ROOT}/*/**/{c}",
                                                      recursive=True)],
        "parent": runtime.cgroup_parent}))
    tmp.rename(ready)
    wait_until(ready.with_name("never").exists, timeout=600, what="the parent to kill this")
    pytest.fail("the parent did not kill the child run")


def test_sweep_after_kill_9_removes_containers(tmp_path: Path) -> None:
    lablib.require_root()
    ready = tmp_path / "ready"
    env = dict(os.environ, **{CHILD_ENV: "1", READY_ENV: str(ready)})
    with open(tmp_path / "child.log", "wb") as out:
        child = subprocess.Popen(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x",
             f"{__file__}::test_child_runs_containers_and_hangs"],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        def child_ready() -> bool:
            if child.poll() is not None:
                raise AssertionError(f"child exited early ({child.returncode}):\n"
                                     + (tmp_path / "child.log").read_text())
            return ready.exists()

        wait_until(child_ready, timeout=180, what="the child run to start its containers")
        info = json.loads(ready.read_text())
        procs = [(p, lablib.start_time(p)) for p in info["monitors"] + info["inits"]]
        assert all(lablib.alive(p, s) for p, s in procs) and info["cgroups"]
        child.kill()
        child.wait(30)
        assert all(lablib.alive(p, s) for p, s in procs), "containers outlive their starter"
        report = lablib.sweep()
        assert not report.errors, report.errors
        assert not any(lablib.alive(p, s) for p, s in procs)
        assert not [c for c in info["cgroups"] if os.path.exists(c)]
        assert not glob.glob(f"{CGROUP_ROOT}/*{info['parent']}")
        assert not [m for m in mount_points() if m.startswith(info["run"])]
        assert not os.path.exists(info["run"])
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        if ready.exists():
            run_dir = Path(json.loads(ready.read_text())["run"])
            if run_dir.exists():
                lablib.sweep_run(run_dir)
