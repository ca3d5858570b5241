"""Container logging through muslind with the real docker CLI: json-file lines and
rotation, `logs` options and --follow, the network drivers against real receivers on
127.0.0.1 of the daemon's namespace (syslog UDP/TCP, GELF chunked, Splunk HEC), the
dual-logging cache, non-blocking mode with a dead receiver, and a daemon killed with
live-restore losing no line."""

from __future__ import annotations

import glob
import gzip
import json
import os
import shutil
import signal
import ssl
import subprocess
from typing import Any

import pytest

from logreceivers import HecServer, TcpReceiver, UdpReceiver
from muslin.logdrivers.wire import gelf_reassemble

from daemon import Muslind
from lab import Lab, LabHost, wait_until

pytestmark = pytest.mark.kernel


@pytest.fixture(autouse=True)
def _docker_cli() -> None:
    if shutil.which("docker") is None:
        from lab import unavailable

        unavailable("the docker CLI is not installed")


def _seq(n: int, stream: str = "out") -> str:
    """A busybox shell loop writing n numbered lines (to stderr for stream "err")."""
    redirect = " >&2" if stream == "err" else ""
    return f"i=0; while [ $i -lt {n} ]; do echo {stream}$i{redirect}; i=$((i+1)); done"


def _run(d: Muslind, dns: str, name: str, script: str, *opts: str) -> str:
    r = d.docker("run", "-d", "--name", name, "--dns", dns, *opts, "busybox", "sh", "-c",
                 script, check=False)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def _wait_exit(d: Muslind, name: str) -> None:
    d.docker("wait", name)


def _numbers(text: str, prefix: str) -> list[int]:
    return [int(line[len(prefix):]) for line in text.splitlines() if line.startswith(prefix)]


def test_json_file_lines_streams_and_logs_options(muslind: Muslind, stub_dns: Any) -> None:
    d = muslind
    script = _seq(50) + "; " + _seq(50, "err")
    cid = _run(d, stub_dns.address, "jf", script)
    _wait_exit(d, "jf")
    [doc] = json.loads(d.docker("inspect", "jf").stdout)
    assert doc["HostConfig"]["LogConfig"] == {"Type": "json-file", "Config": {}}
    path = doc["LogPath"]
    assert path.endswith(f"{cid}-json.log") and os.path.exists(path)
    with open(path) as f:
        records = [json.loads(line) for line in f]
    assert [r["log"] for r in records if r["stream"] == "stdout"] == \
        [f"out{i}\n" for i in range(50)]
    assert [r["log"] for r in records if r["stream"] == "stderr"] == \
        [f"err{i}\n" for i in range(50)]
    assert all(set(r) == {"log", "stream", "time"} and r["time"].endswith("Z")
               for r in records)
    # `logs`: both streams, in order, demultiplexed by the CLI
    r = d.docker("logs", "jf")
    assert _numbers(r.stdout, "out") == list(range(50))
    assert _numbers(r.stderr, "err") == list(range(50))
    r = d.docker("logs", "--tail", "5", "jf")
    assert _numbers(r.stderr, "err") == list(range(45, 50)) and r.stdout == ""
    stamped = d.docker("logs", "-t", "--tail", "1", "jf").stderr
    assert stamped.split(" ", 1)[1] == "err49\n" and stamped[:4].isdigit()
    with open(path) as f:
        t_mid = json.loads(f.readlines()[50])["time"]
    since = d.docker("logs", "--since", t_mid, "jf")
    assert _numbers(since.stderr, "err")[-1] == 49
    until = d.docker("logs", "--until", t_mid, "jf")
    assert _numbers(until.stdout, "out") == list(range(50)) or until.stdout
    # stream selection through the API
    status, _ = d.request("GET", "/containers/jf/logs")
    assert status == 400


def test_json_file_rotation_keeps_max_file(muslind: Muslind, stub_dns: Any) -> None:
    d = muslind
    _run(d, stub_dns.address, "rot", _seq(2000), "--log-opt", "max-size=10k",
         "--log-opt", "max-file=3")
    _wait_exit(d, "rot")
    d.docker("logs", "rot")  # waits for the shipper to catch up
    path = json.loads(d.docker("inspect", "rot").stdout)[0]["LogPath"]
    files = sorted(glob.glob(path + "*"))
    assert files == [path, path + ".1", path + ".2"]
    assert all(os.path.getsize(f) <= 10_000 for f in files)
    numbers = _numbers(d.docker("logs", "rot").stdout, "out")
    assert numbers[-1] == 1999
    assert numbers == list(range(numbers[0], 2000)) and numbers[0] > 0
    # compressed rotation
    _run(d, stub_dns.address, "gz", _seq(2000), "--log-opt", "max-size=10k",
         "--log-opt", "max-file=3", "--log-opt", "compress=true")
    _wait_exit(d, "gz")
    numbers = _numbers(d.docker("logs", "gz").stdout, "out")
    path = json.loads(d.docker("inspect", "gz").stdout)[0]["LogPath"]
    assert os.path.exists(path + ".1.gz") and os.path.exists(path + ".2.gz")
    with gzip.open(path + ".1.gz") as f:
        assert json.loads(f.readline())["stream"] == "stdout"
    assert numbers == list(range(numbers[0], 2000))


def test_logs_follow_shows_lines_as_written(muslind: Muslind, stub_dns: Any) -> None:
    d = muslind
    _run(d, stub_dns.address, "fol", "echo first; while [ ! -f /go ]; do sleep 0.05; done; "
         "echo second; sleep 1000")
    follower = subprocess.Popen(["docker", "logs", "-f", "fol"], env=d.env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert follower.stdout is not None
        assert follower.stdout.readline() == "first\n"
        d.docker("exec", "fol", "touch", "/go")
        assert follower.stdout.readline() == "second\n"
        assert follower.poll() is None
        d.docker("kill", "fol")
        follower.wait(timeout=30)  # the stream ends when the container has gone
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()


def test_bad_log_options_are_refused_like_docker(muslind: Muslind) -> None:
    d = muslind
    for args, text in [
            (["--log-opt", "bogus=1"], "unknown log opt 'bogus' for json-file log driver"),
            (["--log-driver", "nosuch"], "logger: no log driver named 'nosuch' is registered"),
            (["--log-opt", "max-file=0"], "max-file cannot be less than 1"),
            (["--log-opt", "mode=fast"], "logger: unknown log mode: fast"),
            (["--log-driver", "syslog", "--log-opt", "syslog-address=ftp://x"],
             "unsupported scheme: 'ftp'"),
            (["--log-driver", "journald"], "journald is not enabled on this host")]:
        r = d.docker("create", *args, "busybox", check=False)
        assert r.returncode != 0 and text in r.stderr, (args, r.stderr)
    status, body = d.request("POST", "/containers/create", {
        "Image": "busybox", "HostConfig": {"LogConfig": {"Type": "local",
                                                         "Config": {"x": "1"}}}})
    assert status == 400 and body["message"] == "unknown log opt 'x' for local log driver"
    assert d.docker("ps", "-aq").stdout == ""


def test_local_driver_reads_back(muslind: Muslind, stub_dns: Any) -> None:
    d = muslind
    _run(d, stub_dns.address, "loc", _seq(100) + "; " + _seq(10, "err"),
         "--log-driver", "local", "--log-opt", "max-size=1k", "--log-opt", "max-file=2")
    _wait_exit(d, "loc")
    r = d.docker("logs", "loc")
    numbers = _numbers(r.stdout, "out")
    assert _numbers(r.stderr, "err") == list(range(10))
    assert numbers == list(range(numbers[0], 100))
    assert d.docker("logs", "--tail", "3", "loc").stderr == "err7\nerr8\nerr9\n"


def test_syslog_udp_and_tcp(muslind: Muslind, lab_host: LabHost, stub_dns: Any) -> None:
    d = muslind
    udp, tcp = UdpReceiver(lab_host.netns), TcpReceiver(lab_host.netns)
    try:
        cid = _run(d, stub_dns.address, "su", "echo hello-udp; echo oops >&2",
                   "--log-driver", "syslog", "--log-opt", f"syslog-address=udp://127.0.0.1:"
                   f"{udp.port}", "--log-opt", "syslog-facility=local3",
                   "--log-opt", "tag=web-{{.Name}}", "--log-opt", "syslog-format=rfc5424")
        msgs = wait_until(lambda: len(udp.received()) >= 2 and udp.received(), 30,
                          what="two syslog datagrams")
        text = sorted(m.decode() for m in msgs)
        # local3 = 19: info 19*8+6 = 158, err 19*8+3 = 155
        out = next(m for m in text if "hello-udp" in m)
        err = next(m for m in text if "oops" in m)
        assert out.startswith("<158>1 ") and err.startswith("<155>1 ")
        fields = out.split(" ")
        assert fields[3] == "web-su" and fields[5] == "web-su" and fields[6] == "-"
        assert out.endswith(" - hello-udp\n")
        _run(d, stub_dns.address, "st", "echo hello-tcp", "--log-driver", "syslog",
             "--log-opt", f"syslog-address=tcp://127.0.0.1:{tcp.port}",
             "--log-opt", "syslog-facility=user", "--log-opt", "syslog-format=rfc3164")
        line = wait_until(lambda: b"hello-tcp" in tcp.received() and tcp.received(), 30,
                          what="the syslog message over TCP").decode()
        assert line.startswith("<14>") and line.endswith("]: hello-tcp\n")
        st_id = json.loads(d.docker("inspect", "st").stdout)[0]["Id"]
        assert f" {st_id[:12]}[" in line  # the default tag: the short id
        # `logs` of a syslog container: from the cache
        _wait_exit(d, "su")
        assert d.docker("logs", "su").stdout == "hello-udp\n"
        assert json.loads(d.docker("inspect", "su").stdout)[0]["LogPath"] == ""
        assert cid
    finally:
        udp.close()
        tcp.close()


def test_cache_disabled_gives_dockers_error(muslind: Muslind, lab_host: LabHost,
                                            stub_dns: Any) -> None:
    d = muslind
    udp = UdpReceiver(lab_host.netns)
    try:
        _run(d, stub_dns.address, "nc", "echo x", "--log-driver", "syslog", "--log-opt",
             f"syslog-address=udp://127.0.0.1:{udp.port}", "--log-opt", "cache-disabled=true")
        _wait_exit(d, "nc")
        r = d.docker("logs", "nc", check=False)
        assert r.returncode != 0
        assert "configured logging driver does not support reading" in r.stderr
        status, _ = d.request("GET", "/containers/nc/logs?stdout=1")
        assert status == 501
        _run(d, stub_dns.address, "none", "echo x", "--log-driver", "none")
        r = d.docker("logs", "none", check=False)
        assert "configured logging driver does not support reading" in r.stderr
    finally:
        udp.close()


def test_gelf_udp_chunks_and_tcp(muslind: Muslind, lab_host: LabHost, stub_dns: Any) -> None:
    d = muslind
    udp, tcp = UdpReceiver(lab_host.netns), TcpReceiver(lab_host.netns)
    try:
        # 12,000 random-ish characters: gzip cannot squeeze them under one datagram
        script = "head -c 9000 /dev/urandom | base64 -w 0; echo"
        _run(d, stub_dns.address, "gelf1", script, "--log-driver", "gelf", "--log-opt",
             f"gelf-address=udp://127.0.0.1:{udp.port}", "--log-opt", "tag=gelftest")
        [doc] = wait_until(lambda: _gelf_messages(udp.received()), 30,
                           what="a GELF message from all its chunks")
        assert udp.received()[0][:2] == b"\x1e\x0f" and len(udp.received()) > 1
        assert len(doc["short_message"]) == 12000
        assert doc["_tag"] == "gelftest" and doc["_container_name"] == "gelf1"
        assert doc["level"] == 6 and doc["version"] == "1.1"
        _run(d, stub_dns.address, "gt", "echo over-tcp", "--log-driver", "gelf", "--log-opt",
             f"gelf-address=tcp://127.0.0.1:{tcp.port}")
        raw = wait_until(lambda: tcp.received().endswith(b"\0") and tcp.received(), 30,
                         what="a GELF message over TCP")
        assert json.loads(raw[:-1])["short_message"] == "over-tcp"
    finally:
        udp.close()
        tcp.close()


def _gelf_messages(grams: list[bytes]) -> list[dict[str, Any]]:
    """The complete messages among datagrams (chunks grouped by message id)."""
    out, groups = [], {}
    for g in grams:
        if g[:2] == b"\x1e\x0f":
            groups.setdefault(g[2:10], []).append(g)
        else:
            out.append(json.loads(gelf_reassemble([g])))
    for parts in groups.values():
        if len(parts) == parts[0][11]:
            out.append(json.loads(gelf_reassemble(parts)))
    return out


def test_splunk_hec_gets_events_with_the_token(muslind: Muslind, lab_host: LabHost,
                                               stub_dns: Any) -> None:
    d = muslind
    hec = HecServer(lab_host.netns)
    try:
        _run(d, stub_dns.address, "sp", _seq(20), "--log-driver", "splunk", "--log-opt",
             f"splunk-url=http://127.0.0.1:{hec.port}", "--log-opt", "splunk-token=s3cret",
             "--log-opt", "splunk-source=muslin-test")
        events = wait_until(lambda: len(hec.events()) >= 20 and hec.events(), 30,
                            what="20 events at the HEC server")
        assert {auth for _, auth, _ in hec.posts} == {"Splunk s3cret"}
        assert {path for path, _, _ in hec.posts} == {"/services/collector/event/1.0"}
        assert [e["event"]["line"] for e in events] == [f"out{i}" for i in range(20)]
        assert events[0]["source"] == "muslin-test" and events[0]["event"]["source"] == "stdout"
        assert float(events[0]["time"]) > 0
        _wait_exit(d, "sp")
        assert _numbers(d.docker("logs", "sp").stdout, "out") == list(range(20))
    finally:
        hec.close()


def test_splunk_over_https_checks_the_certificate(muslind: Muslind, lab: Lab,
                                                   lab_host: LabHost, stub_dns: Any) -> None:
    d = muslind
    key, cert = os.path.join(lab_host.dir, "hec.key"), os.path.join(lab_host.dir, "hec.crt")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=splunk.test", "-addext", "subjectAltName=DNS:splunk.test",
                    "-keyout", key, "-out", cert], check=True, capture_output=True, timeout=60)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    hec = HecServer(lab_host.netns, tls)
    try:
        url = f"splunk-url=https://127.0.0.1:{hec.port}"
        _run(d, stub_dns.address, "sps", "echo secure", "--log-driver", "splunk", "--log-opt",
             url, "--log-opt", "splunk-token=tok", "--log-opt", f"splunk-capath={cert}",
             "--log-opt", "splunk-caname=splunk.test", "--log-opt", "splunk-format=raw")
        events = wait_until(hec.events, 30, what="the event over HTTPS")
        assert events[0]["event"].endswith(" secure") and hec.posts[0][1] == "Splunk tok"
        # without the CA the certificate is refused: nothing arrives, the cache has it
        _run(d, stub_dns.address, "spx", "echo refused", "--log-driver", "splunk", "--log-opt",
             url, "--log-opt", "splunk-token=tok", "--log-opt", "mode=non-blocking")
        _wait_exit(d, "spx")
        assert d.docker("logs", "spx").stdout == "refused\n"
        assert len(hec.events()) == 1
    finally:
        hec.close()


def test_dead_receiver_non_blocking_does_not_stop_the_container(
        muslind: Muslind, lab_host: LabHost, stub_dns: Any) -> None:
    d = muslind
    tcp = TcpReceiver(lab_host.netns)
    port = tcp.port
    tcp.close()  # nothing listens there any more: every connect is refused
    _run(d, stub_dns.address, "flood", _seq(100_000), "--log-driver", "syslog",
         "--log-opt", f"syslog-address=tcp://127.0.0.1:{port}", "--log-opt",
         "mode=non-blocking", "--log-opt", "max-buffer-size=64k",
         "--log-opt", "cache-max-size=100m")
    r = d.docker("wait", "flood")
    assert r.stdout.strip() == "0"
    numbers = _numbers(d.docker("logs", "--tail", "3", "flood").stdout, "out")
    assert numbers == [99_997, 99_998, 99_999]  # the cache has them all


def test_live_restore_kill_9_loses_no_line(lab: Lab, lab_host: LabHost, stub_dns: Any) -> None:
    d = Muslind(lab, lab_host, {"live-restore": True}).start()
    try:
        # 20,000 numbered lines over ten seconds or so
        _run(d, stub_dns.address, "writer", "i=0; while [ $i -lt 20000 ]; do echo out$i; "
             "i=$((i+1)); [ $((i % 100)) = 0 ] && sleep 0.05; done; true")

        def written() -> int:
            tail = _numbers(d.docker("logs", "--tail", "1", "writer").stdout, "out")
            return tail[-1] if tail else 0

        wait_until(lambda: written() > 100, 30, what="the writer to get going")
        assert d.proc is not None
        d.proc.send_signal(signal.SIGKILL)
        d.proc.wait()
        d.proc = None
        d.start()
        before = written()
        assert json.loads(d.docker("inspect", "writer").stdout)[0]["State"]["Running"]
        d.docker("wait", "writer")
        assert written() > before  # it kept writing through the restart
        numbers = _numbers(d.docker("logs", "writer").stdout, "out")
        assert numbers == list(range(20_000))
    finally:
        d.stop()


def test_log_level_sighup_switches_debug_lines(lab: Lab, lab_host: LabHost,
                                               stub_dns: Any) -> None:
    d = Muslind(lab, lab_host, {"log-level": "info"}).start()
    try:
        cid = _run(d, stub_dns.address, "dbg1", "true")
        _wait_exit(d, "dbg1")
        assert "level=debug" not in d.log()
        with open(d.config_file, "w") as f:
            json.dump({"log-level": "debug"}, f)
        assert d.proc is not None
        d.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: "configuration reloaded" in d.log(), what="the reload")
        cid = _run(d, stub_dns.address, "dbg2", "true")
        _wait_exit(d, "dbg2")
        lines = [line for line in d.log().splitlines() if f"container={cid}" in line]
        assert any("level=debug" in line for line in lines), d.log()[-3000:]
        with open(d.config_file, "w") as f:
            json.dump({"log-level": "info"}, f)
        d.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: d.log().count("configuration reloaded") >= 2, what="the reload")
        mark = len(d.log())
        _run(d, stub_dns.address, "dbg3", "true")
        _wait_exit(d, "dbg3")
        assert "level=debug" not in d.log()[mark:]
    finally:
        d.stop()


def test_daemon_log_driver_defaults(lab: Lab, lab_host: LabHost, stub_dns: Any) -> None:
    bad = Muslind(lab, lab_host, {"log-opts": {"bogus": "1"}})
    r = lab.run(lab_host, bad.argv, check=False, timeout=30)
    assert r.returncode == 1
    assert "unknown log opt 'bogus' for json-file log driver" in r.stderr
    d = Muslind(lab, lab_host, {"log-driver": "local",
                                "log-opts": {"max-size": "1k", "max-file": "2"}}).start()
    try:
        assert d.docker("info", "--format", "{{.LoggingDriver}}").stdout.strip() == "local"
        _run(d, stub_dns.address, "dflt", _seq(10))
        _run(d, stub_dns.address, "own", "echo mine", "--log-driver", "json-file")
        _wait_exit(d, "dflt")
        _wait_exit(d, "own")
        [doc] = json.loads(d.docker("inspect", "dflt").stdout)
        assert doc["HostConfig"]["LogConfig"] == {
            "Type": "local", "Config": {"max-size": "1k", "max-file": "2"}}
        assert doc["LogPath"] == ""
        assert _numbers(d.docker("logs", "dflt").stdout, "out") == list(range(10))
        [own] = json.loads(d.docker("inspect", "own").stdout)
        assert own["HostConfig"]["LogConfig"] == {"Type": "json-file", "Config": {}}
        assert d.docker("logs", "own").stdout == "mine\n"
    finally:
        d.stop()
