"""The log drivers' pure parts: option validation with Docker's texts, defaults
merging, sizes, the json-file and local formats and their rotation/reading, the
spool parser, and the syslog, GELF, Splunk and journald wire formats."""

from __future__ import annotations

import gzip
import json
import struct
import zlib
from pathlib import Path

import pytest

from muslin.containers.logs import LogEntry, parse_time
from muslin.errors import InvalidParameter
from muslin.logdrivers import files, options, wire
from muslin.logdrivers.options import Rotation
from muslin.logdrivers.shipper import MAX_LINE, parse_spool

T0 = parse_time("2026-11-28T06:37:03.392850791Z")
META = wire.ContainerMeta(id="ab" * 32, name="web", image_id="sha256:" + "cd" * 32,
                          image_name="busybox", labels={"team": "net", "x": "1"},
                          env=["A=1", "B=2"])


# -- options -------------------------------------------------------------------------

@pytest.mark.parametrize(("driver", "opts", "text"), [
    ("nosuch", {}, "logger: no log driver named 'nosuch' is registered"),
    ("json-file", {"bogus": "1"}, "unknown log opt 'bogus' for json-file log driver"),
    ("local", {"tag": "x"}, "unknown log opt 'tag' for local log driver"),
    ("json-file", {"max-file": "0"}, "max-file cannot be less than 1"),
    ("json-file", {"max-size": "0"}, "max-size must be a positive number"),
    ("json-file", {"max-size": "ten"}, "invalid size: 'ten'"),
    ("json-file", {"compress": "true"}, "compress cannot be true when max-file is less "
                                        "than 2 or max-size is not set"),
    ("local", {"max-file": "1", "compress": "true"},
     "compression cannot be enabled when max file count is 1"),
    ("json-file", {"mode": "fast"}, "logger: unknown log mode: fast"),
    ("json-file", {"max-buffer-size": "1m"},
     "logger: max-buffer-size option is only supported with 'mode=non-blocking'"),
    ("syslog", {"syslog-address": "ftp://h"}, "unsupported scheme: 'ftp'"),
    ("syslog", {"syslog-address": "h:514"},
     "syslog-address should be in form proto://address, got h:514"),
    ("syslog", {"syslog-facility": "nope"}, "invalid syslog facility"),
    ("syslog", {"syslog-format": "rfc9999"}, "Invalid syslog format: rfc9999"),
    ("gelf", {}, "gelf-address is a required parameter"),
    ("gelf", {"gelf-address": "http://h:1"}, "gelf: endpoint needs to be TCP or UDP"),
    ("gelf", {"gelf-address": "udp://h"}, "gelf: please provide gelf-address as udp://host:port"),
    ("splunk", {"splunk-url": "http://h:8088"}, "splunk: splunk-token is expected"),
    ("syslog", {"cache-disabled": "maybe"}, "invalid value for option cache-disabled: maybe"),
    ("none", {"max-size": "1m"}, "invalid logging opts for driver none"),
])
def test_bad_options_have_dockers_texts(driver: str, opts: dict[str, str], text: str) -> None:
    with pytest.raises(InvalidParameter) as e:
        options.parse(driver, opts)
    assert text in str(e.value)


def test_parsed_configs() -> None:
    c = options.parse("json-file", {"max-size": "10k", "max-file": "3", "compress": "true"})
    assert c.rotation == Rotation(10_000, 3, True) and c.cache is None and c.readable
    c = options.parse("syslog", {"mode": "non-blocking", "max-buffer-size": "4m"})
    assert c.mode == "non-blocking" and c.max_buffer_size == 4 * 1024 * 1024
    assert c.cache == Rotation(20_000_000, 5, True) and c.readable
    c = options.parse("gelf", {"gelf-address": "udp://h:12201", "cache-disabled": "true"})
    assert c.cache is None and not c.readable
    c = options.parse("splunk", {"splunk-url": "https://h:8088", "splunk-token": "t",
                                 "cache-max-size": "1m", "cache-max-file": "2"})
    assert c.cache == Rotation(1_000_000, 2, True)
    assert options.parse("local", {}).rotation == Rotation(20_000_000, 5, True)
    assert options.parse("json-file", {}).rotation == Rotation(0, 1, False)
    assert options.from_human_size("1.5kb") == 1500 and options.ram_in_bytes("1m") == 1 << 20
    assert options.facility("local3") == 19 and options.facility("") == 3
    assert options.facility("23") == 23


def test_merge_with_daemon_defaults() -> None:
    d_opts = {"max-size": "1m", "cache-max-file": "2"}
    assert options.merge(None, "json-file", d_opts) == {
        "Type": "json-file", "Config": {"max-size": "1m", "cache-max-file": "2"}}
    assert options.merge({"Type": "syslog", "Config": {"tag": "t"}}, "json-file", d_opts) == {
        "Type": "syslog", "Config": {"tag": "t", "cache-max-file": "2"}}
    assert options.merge({"Type": "none", "Config": {}}, "json-file", d_opts) == {
        "Type": "none", "Config": {}}
    assert options.merge({"Type": "json-file", "Config": {"max-file": "2"}}, "json-file",
                         d_opts)["Config"] == {"max-file": "2", "cache-max-file": "2"}


# -- file formats -----------------------------------------------------------------------

def test_json_file_line_is_dockers() -> None:
    e = LogEntry("stdout", T0, b"hi \"there\" <b>\n")
    line = files.JsonFileFormat().encode(e)
    assert line == (b'{"log":"hi \\"there\\" <b>\\n","stream":"stdout",'
                    b'"time":"2026-11-28T06:37:03.392850791Z"}\n')
    assert files.rfc3339nano(T0 - 791) == "2026-11-28T06:37:03.39285Z"
    assert files.rfc3339nano(T0 - 392850791) == "2026-11-28T06:37:03Z"
    with_attrs = json.loads(files.JsonFileFormat().encode(e, {"tag": "t"}))
    assert with_attrs["attrs"] == {"tag": "t"}
    entries, used = files.JsonFileFormat().decode(line + line[:10])
    assert entries == [e] and used == len(line)


def test_local_records_round_trip_and_tail(tmp_path: Path) -> None:
    fmt = files.LocalFormat()
    entries = [LogEntry("stdout" if i % 3 else "stderr", T0 + i, f"line {i}\n".encode())
               for i in range(10)] + [LogEntry("stdout", T0 + 10, b"partial")]
    blob = b"".join(fmt.encode(e) for e in entries)
    assert fmt.decode(blob) == (entries, len(blob))
    assert fmt.decode(blob[:-3]) == (entries[:-1], len(blob) - len(fmt.encode(entries[-1])))
    p = tmp_path / "c.log"
    p.write_bytes(blob)
    with open(p, "rb") as fh:
        off, n = fmt.tail_start(fh, 3)
    assert n == 3 and fmt.decode(blob[off:])[0] == entries[-3:]
    # a writer halfway through a record: the tail is of the whole records before it
    for cut in (1, 5, 13, len(fmt.encode(entries[-1])) - 1):
        p.write_bytes(blob + fmt.encode(entries[0])[:cut])
        with open(p, "rb") as fh:
            off, n = fmt.tail_start(fh, 3)
        assert n == 3 and fmt.decode(p.read_bytes()[off:])[0] == entries[-3:], cut
    p.write_bytes(b"\1\2")  # no whole record at all
    with open(p, "rb") as fh:
        assert fmt.tail_start(fh, 3) == (0, 0)


def test_rotation_keeps_max_file_and_reads_in_order(tmp_path: Path) -> None:
    path = str(tmp_path / "x-json.log")
    f = files.RotatingFile(path, Rotation(300, 3, True))
    fmt = files.JsonFileFormat()
    for i in range(40):
        f.write([fmt.encode(LogEntry("stdout", T0 + i, f"l{i}\n".encode()))])
    f.close()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["x-json.log", "x-json.log.1.gz", "x-json.log.2.gz"]
    assert all((tmp_path / n).stat().st_size <= 300 for n in names if not n.endswith("gz"))
    got = [int(e.data[1:-1]) for e in files.read(path, fmt)]
    assert got == list(range(got[0], 40)) and got[0] > 0
    assert [int(e.data[1:-1]) for e in files.read(path, fmt, tail=5)] == list(range(35, 40))
    assert [int(e.data[1:-1]) for e in files.read(path, fmt, tail=len(got) + 5)] == got
    since = [int(e.data[1:-1]) for e in files.read(path, fmt, since=T0 + 30, until=T0 + 33)]
    assert since == [30, 31, 32]
    with gzip.open(str(tmp_path / "x-json.log.1.gz")) as g:
        assert json.loads(g.readline())["stream"] == "stdout"


def test_truncate_to_recorded_size(tmp_path: Path) -> None:
    f = files.RotatingFile(str(tmp_path / "a"), Rotation())
    f.write([b"one\n"])
    size = f.size
    f.write([b"two\n"])
    f.close()
    f = files.RotatingFile(str(tmp_path / "a"), Rotation())
    f.truncate_to(size)
    f.write([b"three\n"])
    f.close()
    assert (tmp_path / "a").read_bytes() == b"one\nthree\n"


# -- the spool ----------------------------------------------------------------------------

def _k8s(stream: str, tag: str, content: bytes) -> bytes:
    return f"2026-11-28T07:37:03.392850791+01:00 {stream} {tag} ".encode() + content + b"\n"


def test_spool_records_join_partials_and_keep_unfinished() -> None:
    times: dict[bytes, int] = {}
    buf = _k8s("stdout", "F", b"a") + _k8s("stderr", "P", b"x" * 8192) + \
        _k8s("stderr", "F", b"yz") + _k8s("stdout", "P", b"unfinished")
    entries, used = parse_spool(buf, times)
    assert entries == [LogEntry("stdout", T0, b"a\n"),
                       LogEntry("stderr", T0, b"x" * 8192 + b"yz\n")]
    assert buf[used:] == _k8s("stdout", "P", b"unfinished")
    assert parse_spool(buf[used:], times, final=True)[0] == [
        LogEntry("stdout", T0, b"unfinished")]
    big = b"".join(_k8s("stdout", "P", b"q" * 8192) for _ in range(3))
    entries, used = parse_spool(big, times)
    assert [len(e.data) for e in entries] == [MAX_LINE]
    assert parse_spool(b"no newline yet", times) == ([], 0)


# -- wire formats -------------------------------------------------------------------------

def test_tag_template_and_attrs() -> None:
    assert wire.tag("", META) == "ab" * 6
    assert wire.tag("{{.Name}}/{{.ImageName}}/{{.ImageID}}", META) == "web/busybox/" + "cd" * 6
    assert wire.extra_attrs({"labels": "team", "env": "B"}, META) == {"team": "net", "B": "2"}
    assert wire.extra_attrs({"labels-regex": "^x", "env-regex": "A"}, META) == {"x": "1",
                                                                                "A": "1"}


def test_syslog_formats() -> None:
    out = LogEntry("stdout", T0, b"hello\n")
    err = LogEntry("stderr", T0, b"oops\n")
    m = wire.syslog_message(out, facility=19, tag_="t", fmt="rfc5424", hostname="h", pid=7)
    assert m.startswith(b"<158>1 2026-11-28T") and m.endswith(b" h t 7 t - hello\n")
    m = wire.syslog_message(err, facility=1, tag_="t", fmt="rfc3164", hostname="h", pid=7)
    assert m.startswith(b"<11>Nov 28 ") and m.endswith(b" h t[7]: oops\n")
    m = wire.syslog_message(out, facility=3, tag_="t", fmt="rfc5424micro", hostname="h",
                            pid=7)
    stamp = m.split(b" ")[1]
    assert len(stamp.split(b".")[1]) in (7, 12)  # 6 digits + Z or an offset
    m = wire.syslog_message(out, facility=3, tag_="t", fmt="", hostname="h", pid=7)
    assert m.startswith(b"<30>2026-") and m.endswith(b" t[7]: hello\n")
    assert wire.octet_frame(b"abc") == b"3 abc"


def test_gelf_message_chunks_and_reassembly() -> None:
    e = LogEntry("stderr", T0, b"  " + b"z" * 5000 + b"\n")
    raw = wire.gelf_message(e, META, hostname="h", tag_="t", extra={"team": "net"})
    assert raw is not None
    doc = json.loads(raw)
    assert doc["short_message"] == "z" * 5000 and doc["level"] == 3
    assert doc["_container_name"] == "web" and doc["_team"] == "net"
    assert doc["timestamp"] == pytest.approx(T0 / 1e9, abs=0.001)
    assert wire.gelf_message(LogEntry("stdout", T0, b" \n"), META, hostname="h", tag_="",
                             extra={}) is None
    big = bytes(range(256)) * 40  # 10 KiB that do not compress
    chunks = wire.gelf_chunks(big, b"12345678")
    assert len(chunks) == 8 and all(len(c) <= wire.GELF_CHUNK_SIZE for c in chunks)
    assert chunks[3][:12] == b"\x1e\x0f12345678" + struct.pack("BB", 3, 8)
    assert wire.gelf_reassemble(list(reversed(chunks))) == big
    assert wire.gelf_reassemble([wire.gelf_compress(raw, "gzip")]) == raw
    assert zlib.decompress(wire.gelf_compress(raw, "zlib")) == raw
    assert wire.gelf_chunks(b"small") == [b"small"]


def test_splunk_events() -> None:
    e = LogEntry("stdout", T0, b'{"k": 1}\n')
    ev = wire.splunk_event(e, fmt="inline", tag_="t", attrs={}, hostname="h", source="s",
                           index="i")
    assert ev == {"event": {"line": '{"k": 1}', "source": "stdout", "tag": "t"},
                  "time": f"{T0 / 1e9:.6f}", "host": "h", "source": "s", "index": "i"}
    assert wire.splunk_event(e, fmt="json", tag_="t", attrs={}, hostname="h")["event"][
        "line"] == {"k": 1}
    assert wire.splunk_event(e, fmt="raw", tag_="t", attrs={"a": "b"}, hostname="h")[
        "event"] == 't a=b {"k": 1}'
    body = wire.splunk_body([ev, ev])
    assert body.count(b'{"event"') == 2


def test_journal_datagram() -> None:
    fields = wire.journal_fields(LogEntry("stderr", T0, b"two\nlines"), META, "t", {})
    assert fields["PRIORITY"] == "3" and fields["CONTAINER_PARTIAL_MESSAGE"] == "true"
    d = wire.journal_datagram({"A": "1", "MESSAGE": b"x\ny"})
    assert d == b"A=1\nMESSAGE\n" + struct.pack("<Q", 3) + b"x\ny\n"




# -- senders over real unix sockets ---------------------------------------------------------

def test_journald_and_syslog_unix_sinks(tmp_path: Path) -> None:
    import socket

    from muslin.logdrivers import senders

    journal = str(tmp_path / "journal.sock")
    rx = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    rx.bind(journal)
    rx.settimeout(5)
    sink = senders.JournaldSink(options.parse("journald", {"tag": "{{.Name}}"}), META,
                                path=journal)
    sink.send([LogEntry("stdout", T0, b"to the journal\n")])
    d = rx.recv(65536)
    assert b"MESSAGE=to the journal\n" in d and b"CONTAINER_NAME=web\n" in d
    assert b"SYSLOG_IDENTIFIER=web\n" in d and b"PRIORITY=6\n" in d
    sink.close()
    with pytest.raises(InvalidParameter, match="journald is not enabled on this host"):
        senders.check_journald(str(tmp_path / "none"))
    log_sock = str(tmp_path / "log.sock")
    rx2 = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    rx2.bind(log_sock)
    rx2.settimeout(5)
    sink2 = senders.SyslogSink(options.parse("syslog", {
        "syslog-address": f"unixgram://{log_sock}", "syslog-facility": "local0"}), META, "h")
    sink2.send([LogEntry("stderr", T0, b"bad\n")])
    assert rx2.recv(65536).startswith(b"<131>Nov 28 ")
    sink2.close()
    rx.close()
    rx2.close()


def test_logs_query_times_are_exact() -> None:
    from muslin.logdrivers.service import unix_ns

    assert unix_ns("since", "1764311823.392850791") == 1764311823392850791
    assert unix_ns("since", "1764311823.5") == 1764311823500000000
    assert unix_ns("since", "1764311823") == 1764311823000000000
    assert unix_ns("since", "") is None and unix_ns("until", "0") is None
    with pytest.raises(InvalidParameter, match="invalid value for until"):
        unix_ns("until", "yesterday")
