"""The log drivers' outputs: a `Sink` per driver that takes a batch of a container's
entries and delivers it (files: json-file, local, the cache; sockets: syslog over
udp/tcp/tls/unix, GELF over udp/tcp, journald's native socket; Splunk's HTTP Event
Collector over HTTP(S)). A failed delivery raises OSError; the shipper decides
whether to retry (blocking mode) or drop (non-blocking). Must not read the spool or
decide about modes: `muslin.logdrivers.shipper` does.
"""

from __future__ import annotations

import contextlib
import gzip
import http.client
import os
import socket
import ssl
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Protocol

from muslin.containers.logs import LogEntry
from muslin.errors import InvalidParameter
from muslin.logdrivers import options, wire
from muslin.logdrivers.files import FORMATS, RotatingFile
from muslin.logdrivers.options import Address, LogConfig, Rotation

JOURNAL_SOCKET = "/run/systemd/journal/socket"
_TIMEOUT = 5.0


class Sink(Protocol):
    def send(self, entries: Sequence[LogEntry]) -> None: ...

    def close(self) -> None: ...


class FileSink:
    """json-file or local records into a rotated file set."""

    def __init__(self, path: str, fmt: str, rotation: Rotation,
                 attrs: Mapping[str, str] | None = None) -> None:
        self.path = path
        self.format = FORMATS[fmt]
        self.file = RotatingFile(path, rotation)
        self.attrs = dict(attrs or {}) or None

    @property
    def size(self) -> int:
        return self.file.size

    def send(self, entries: Sequence[LogEntry]) -> None:
        self.file.write([self.format.encode(e, self.attrs) for e in entries])

    def close(self) -> None:
        self.file.close()


class NoneSink:
    def send(self, entries: Sequence[LogEntry]) -> None:
        pass

    def close(self) -> None:
        pass


class _Conn:
    """A socket to a receiver, (re)connected on demand."""

    def __init__(self, addr: Address, *, tls: ssl.SSLContext | None = None,
                 server_name: str | None = None) -> None:
        self.addr = addr
        self.tls = tls
        self.server_name = server_name
        self.sock: socket.socket | None = None

    @property
    def stream(self) -> bool:
        return self.addr.scheme in ("tcp", "tcp+tls", "unix")

    def _connect(self) -> socket.socket:
        a = self.addr
        if a.scheme in ("unix", "unixgram"):
            kind = socket.SOCK_STREAM if a.scheme == "unix" else socket.SOCK_DGRAM
            s = socket.socket(socket.AF_UNIX, kind | socket.SOCK_CLOEXEC)
            s.settimeout(_TIMEOUT)
            try:
                s.connect(a.path)
            except OSError:
                s.close()
                raise
            return s
        kind = socket.SOCK_DGRAM if a.scheme == "udp" else socket.SOCK_STREAM
        info = socket.getaddrinfo(a.host, a.port, type=kind)[0]
        s = socket.socket(info[0], kind | socket.SOCK_CLOEXEC)
        s.settimeout(_TIMEOUT)
        try:
            s.connect(info[4])
            if self.tls is not None:
                s = self.tls.wrap_socket(s, server_hostname=self.server_name or a.host)
        except OSError:
            s.close()
            raise
        return s

    def send(self, messages: Sequence[bytes]) -> None:
        if self.sock is None:
            self.sock = self._connect()
        try:
            if self.stream:
                self.sock.sendall(b"".join(messages))
            else:
                for m in messages:
                    self.sock.send(m)
        except OSError:
            self.close()
            raise

    def close(self) -> None:
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.close()
            self.sock = None


def _tls_context(ca: str = "", cert: str = "", key: str = "", skip_verify: bool = False
                 ) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=ca or None)
    if cert:
        ctx.load_cert_chain(cert, key or None)
    if skip_verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


class SyslogSink:
    def __init__(self, cfg: LogConfig, meta: wire.ContainerMeta, hostname: str) -> None:
        o = cfg.opts
        self.addr = options.syslog_address(o.get("syslog-address", ""))
        tls = None
        if self.addr.scheme == "tcp+tls":
            tls = _tls_context(o.get("syslog-tls-ca-cert", ""), o.get("syslog-tls-cert", ""),
                               o.get("syslog-tls-key", ""), "syslog-tls-skip-verify" in o)
        self.conn = _Conn(self.addr, tls=tls)
        self.facility = options.facility(o.get("syslog-facility", ""))
        self.tag = wire.tag(o.get("tag", ""), meta)
        self.fmt = o.get("syslog-format", "")
        self.hostname = hostname
        self.octets = self.addr.scheme == "tcp+tls" and self.fmt.startswith("rfc5424")

    def send(self, entries: Sequence[LogEntry]) -> None:
        msgs = [wire.syslog_message(e, facility=self.facility, tag_=self.tag, fmt=self.fmt,
                                    hostname=self.hostname, pid=os.getpid(),
                                    unix=self.addr.scheme in ("unix", "unixgram"))
                for e in entries]
        if self.octets:
            msgs = [wire.octet_frame(m) for m in msgs]
        self.conn.send(msgs)

    def close(self) -> None:
        self.conn.close()


class GelfSink:
    def __init__(self, cfg: LogConfig, meta: wire.ContainerMeta, hostname: str) -> None:
        o = cfg.opts
        self.addr = options.gelf_address(o.get("gelf-address", ""))
        self.conn = _Conn(self.addr)
        self.meta = meta
        self.hostname = hostname
        self.tag = wire.tag(o.get("tag", ""), meta)
        self.extra = wire.extra_attrs(o, meta)
        self.compression = o.get("gelf-compression-type", "gzip")
        self.level = int(o.get("gelf-compression-level", "-1") or -1)

    def send(self, entries: Sequence[LogEntry]) -> None:
        out: list[bytes] = []
        for e in entries:
            msg = wire.gelf_message(e, self.meta, hostname=self.hostname, tag_=self.tag,
                                    extra=self.extra)
            if msg is None:
                continue
            if self.addr.scheme == "tcp":
                out.append(msg + b"\0")  # GELF over TCP: uncompressed, null-terminated
            else:
                out += wire.gelf_chunks(wire.gelf_compress(msg, self.compression, self.level))
        if out:
            self.conn.send(out)

    def close(self) -> None:
        self.conn.close()


class JournaldSink:
    def __init__(self, cfg: LogConfig, meta: wire.ContainerMeta, path: str = JOURNAL_SOCKET
                 ) -> None:
        check_journald(path)
        self.conn = _Conn(Address("unixgram", path=path))
        self.meta = meta
        self.tag = wire.tag(cfg.opts.get("tag", ""), meta)
        self.attrs = wire.extra_attrs(cfg.opts, meta)

    def send(self, entries: Sequence[LogEntry]) -> None:
        self.conn.send([wire.journal_datagram(wire.journal_fields(e, self.meta, self.tag,
                                                                  self.attrs))
                        for e in entries])

    def close(self) -> None:
        self.conn.close()


def check_journald(path: str = JOURNAL_SOCKET) -> None:
    """Docker's error where no journal listens (no systemd-journald on this host)."""
    if not os.path.exists(path):
        raise InvalidParameter("failed to initialize logging driver: journald is not enabled "
                               f"on this host (no journal socket at {path})")


class _HTTPS(http.client.HTTPSConnection):
    """HTTPS whose certificate is checked against a given name (splunk-caname)."""

    def __init__(self, host: str, port: int | None, context: ssl.SSLContext,
                 server_name: str) -> None:
        super().__init__(host, port, timeout=_TIMEOUT, context=context)
        self.tls = context
        self.server_name = server_name

    def connect(self) -> None:
        http.client.HTTPConnection.connect(self)
        self.sock = self.tls.wrap_socket(self.sock, server_hostname=self.server_name)


class SplunkSink:
    """Batches of events POSTed to <splunk-url>/services/collector/event/1.0."""

    def __init__(self, cfg: LogConfig, meta: wire.ContainerMeta, hostname: str) -> None:
        o = cfg.opts
        self.url = urllib.parse.urlsplit(o["splunk-url"])
        self.token = o["splunk-token"]
        self.tag = wire.tag(o.get("tag", ""), meta)
        self.attrs = wire.extra_attrs(o, meta)
        self.fmt = o.get("splunk-format", "inline")
        self.hostname = hostname
        self.source = o.get("splunk-source", "")
        self.sourcetype = o.get("splunk-sourcetype", "")
        self.index = o.get("splunk-index", "")
        self.gzip = options.parse_bool("splunk-gzip", o["splunk-gzip"]) \
            if "splunk-gzip" in o else False
        self.gzip_level = int(o.get("splunk-gzip-level", "-1") or -1)
        self.tls: ssl.SSLContext | None = None
        if self.url.scheme == "https":
            skip = options.parse_bool("splunk-insecureskipverify",
                                      o["splunk-insecureskipverify"]) \
                if "splunk-insecureskipverify" in o else False
            self.tls = _tls_context(o.get("splunk-capath", ""), skip_verify=skip)
        self.server_name = o.get("splunk-caname", "") or None
        self.conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self.conn is None:
            host, port = self.url.hostname or "", self.url.port
            if self.tls is not None:
                self.conn = _HTTPS(host, port, self.tls, self.server_name or host)
            else:
                self.conn = http.client.HTTPConnection(host, port, timeout=_TIMEOUT)
        return self.conn

    def send(self, entries: Sequence[LogEntry]) -> None:
        events = [wire.splunk_event(e, fmt=self.fmt, tag_=self.tag, attrs=self.attrs,
                                    hostname=self.hostname, source=self.source,
                                    sourcetype=self.sourcetype, index=self.index)
                  for e in entries]
        for i in range(0, len(events), 1000):  # Docker's default batch size
            self._post(wire.splunk_body(events[i:i + 1000]))

    def _post(self, body: bytes) -> None:
        headers = {"Authorization": f"Splunk {self.token}", "Content-Type": "application/json"}
        if self.gzip:
            body = gzip.compress(body, compresslevel=9 if self.gzip_level < 0
                                 else self.gzip_level)
            headers["Content-Encoding"] = "gzip"
        conn = self._connection()
        try:
            conn.request("POST", "/services/collector/event/1.0", body=body, headers=headers)
            resp = conn.getresponse()
            text = resp.read()
        except (OSError, http.client.HTTPException) as e:
            self.close()
            raise OSError(f"splunk: {e}") from None
        if resp.status != 200:
            raise OSError(f"splunk: failed to send event - {resp.status} - "
                          f"{text.decode(errors='replace')}")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def network_sink(cfg: LogConfig, meta: wire.ContainerMeta, hostname: str) -> Sink:
    """The sink of a driver that sends its lines away (not json-file or local)."""
    if cfg.driver == "syslog":
        return SyslogSink(cfg, meta, hostname)
    if cfg.driver == "gelf":
        return GelfSink(cfg, meta, hostname)
    if cfg.driver == "splunk":
        return SplunkSink(cfg, meta, hostname)
    if cfg.driver == "journald":
        return JournaldSink(cfg, meta)
    return NoneSink()
