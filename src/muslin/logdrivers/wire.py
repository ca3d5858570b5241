"""What the network log drivers put on the wire, as Docker's drivers do: syslog
messages (RFC 3164, RFC 5424, Docker's default format; framing), GELF messages
(JSON, gzip/zlib, UDP chunks), Splunk HEC events, journald native-protocol
datagrams; and the `tag` template and labels/env attributes every driver shares.

Pure: bytes in, bytes out, no sockets (`muslin.logdrivers.senders` does I/O).
"""

from __future__ import annotations

import gzip
import json
import os
import re
import struct
import time
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from muslin.containers.logs import LogEntry

SEVERITY_INFO = 6
SEVERITY_ERR = 3
GELF_CHUNK_SIZE = 1420            # go-gelf's ChunkSize (fits a WAN MTU)
GELF_MAX_CHUNKS = 128
GELF_MAGIC = b"\x1e\x0f"


@dataclass(frozen=True)
class ContainerMeta:
    """What drivers say about the container a line comes from."""

    id: str
    name: str = ""
    image_id: str = ""
    image_name: str = ""
    command: str = ""
    created: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    env: Sequence[str] = ()
    daemon_name: str = "muslin"


_TEMPLATE_FIELD = re.compile(r"\{\{\s*\.(\w+)\s*\}\}")


def tag(template: str, meta: ContainerMeta) -> str:
    """Docker's `tag` option: a Go template over the container's ID (12 digits),
    FullID, Name, ImageID (12), ImageFullID, ImageName, DaemonName; default {{.ID}}."""
    values = {"ID": meta.id[:12], "FullID": meta.id, "Name": meta.name,
              "ImageID": meta.image_id.removeprefix("sha256:")[:12],
              "ImageFullID": meta.image_id, "ImageName": meta.image_name,
              "DaemonName": meta.daemon_name}
    return _TEMPLATE_FIELD.sub(lambda m: values.get(m.group(1), ""), template or "{{.ID}}")


def extra_attrs(opts: Mapping[str, str], meta: ContainerMeta) -> dict[str, str]:
    """Docker's ExtraAttributes: the labels and env variables named by the `labels`,
    `labels-regex`, `env` and `env-regex` options."""
    out: dict[str, str] = {}
    wanted = [k for k in opts.get("labels", "").split(",") if k]
    for k in wanted:
        if k in meta.labels:
            out[k] = meta.labels[k]
    if opts.get("labels-regex"):
        rx = re.compile(opts["labels-regex"])
        out.update({k: v for k, v in meta.labels.items() if rx.match(k)})
    env = dict(e.split("=", 1) for e in meta.env if "=" in e)
    for k in [k for k in opts.get("env", "").split(",") if k]:
        if k in env:
            out[k] = env[k]
    if opts.get("env-regex"):
        rx = re.compile(opts["env-regex"])
        out.update({k: v for k, v in env.items() if rx.match(k)})
    return out


def _line(entry: LogEntry) -> bytes:
    return entry.data[:-1] if entry.data.endswith(b"\n") else entry.data


# -- syslog ------------------------------------------------------------------------------

def _stamp(ns: int, fmt: str) -> str:
    secs = ns // 1_000_000_000
    lt = time.localtime(secs)
    if fmt == "stamp":  # Go's time.Stamp: "Jan _2 15:04:05"
        return time.strftime("%b ", lt) + f"{lt.tm_mday:2d}" + time.strftime(" %H:%M:%S", lt)
    off = lt.tm_gmtoff
    zone = "Z" if off == 0 else f"{'+' if off > 0 else '-'}{abs(off) // 3600:02d}:" \
                                f"{abs(off) % 3600 // 60:02d}"
    base = time.strftime("%Y-%m-%dT%H:%M:%S", lt)
    if fmt == "micro":
        base += f".{ns % 1_000_000_000 // 1000:06d}"
    return base + zone


def syslog_message(entry: LogEntry, *, facility: int, tag_: str, fmt: str, hostname: str,
                   pid: int, unix: bool = False) -> bytes:
    """One syslog message as Docker's syslog driver (srslog) writes it, ending in a
    newline. fmt "" is Docker's default (RFC 3339 time, no hostname; time.Stamp on a
    unix socket), "rfc3164", "rfc5424" or "rfc5424micro"."""
    pri = facility * 8 + (SEVERITY_ERR if entry.stream == "stderr" else SEVERITY_INFO)
    msg = _line(entry).decode("utf-8", "replace")
    if fmt == "rfc3164":
        text = f"<{pri}>{_stamp(entry.time, 'stamp')} {hostname} {tag_}[{pid}]: {msg}"
    elif fmt in ("rfc5424", "rfc5424micro"):
        ts = _stamp(entry.time, "micro" if fmt == "rfc5424micro" else "seconds")
        text = f"<{pri}>1 {ts} {hostname} {tag_} {pid} {tag_} - {msg}"
    elif unix:
        text = f"<{pri}>{_stamp(entry.time, 'stamp')} {tag_}[{pid}]: {msg}"
    else:
        text = f"<{pri}>{_stamp(entry.time, 'seconds')} {tag_}[{pid}]: {msg}"
    return text.encode() + b"\n"


def octet_frame(message: bytes) -> bytes:
    """RFC 5425/6587 octet counting (Docker uses it for rfc5424 over TLS)."""
    return str(len(message)).encode() + b" " + message


# -- GELF --------------------------------------------------------------------------------

def gelf_message(entry: LogEntry, meta: ContainerMeta, *, hostname: str, tag_: str,
                 extra: Mapping[str, str]) -> bytes | None:
    """Docker's GELF 1.1 message (JSON), or None for an empty line (Docker skips it)."""
    short = _line(entry).strip()
    if not short:
        return None
    doc: dict[str, object] = {
        "version": "1.1", "host": hostname, "short_message": short.decode("utf-8", "replace"),
        "timestamp": round(entry.time // 1_000_000 / 1000.0, 3),
        "level": SEVERITY_ERR if entry.stream == "stderr" else SEVERITY_INFO,
        "_container_id": meta.id, "_container_name": meta.name, "_image_id": meta.image_id,
        "_image_name": meta.image_name, "_command": meta.command, "_tag": tag_,
        "_created": meta.created,
    }
    for k, v in extra.items():
        doc["_" + k] = v
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()


def gelf_compress(payload: bytes, kind: str, level: int = -1) -> bytes:
    if kind == "gzip":
        return gzip.compress(payload, compresslevel=9 if level < 0 else level, mtime=0)
    if kind == "zlib":
        return zlib.compress(payload, level)
    return payload


def gelf_chunks(datagram: bytes, message_id: bytes | None = None,
                chunk_size: int = GELF_CHUNK_SIZE) -> list[bytes]:
    """A (compressed) GELF message as UDP datagrams: itself when it fits, else chunks
    `0x1e 0x0f <8-byte id> <seq> <count>` + data (at most 128)."""
    if len(datagram) <= chunk_size:
        return [datagram]
    body = chunk_size - 12
    count = -(-len(datagram) // body)
    if count > GELF_MAX_CHUNKS:
        raise ValueError(f"GELF message too big: {count} chunks (at most {GELF_MAX_CHUNKS})")
    mid = message_id or os.urandom(8)
    return [GELF_MAGIC + mid + struct.pack("BB", i, count) + datagram[i * body:(i + 1) * body]
            for i in range(count)]


def gelf_reassemble(datagrams: Sequence[bytes]) -> bytes:
    """The message of a set of chunks (for tests and tools): decompressed JSON."""
    if datagrams and datagrams[0][:2] == GELF_MAGIC:
        parts = sorted(datagrams, key=lambda d: d[10])
        data = b"".join(p[12:] for p in parts)
    else:
        data = datagrams[0]
    if data[:2] == b"\x1f\x8b":
        return gzip.decompress(data)
    if data[:1] == b"\x78":
        return zlib.decompress(data)
    return data


# -- Splunk HEC --------------------------------------------------------------------------

def splunk_event(entry: LogEntry, *, fmt: str, tag_: str, attrs: Mapping[str, str],
                 hostname: str, source: str = "", sourcetype: str = "", index: str = ""
                 ) -> dict[str, object]:
    """One HTTP Event Collector event as Docker's splunk driver sends it."""
    line = _line(entry).decode("utf-8", "replace")
    event: object
    if fmt == "raw":
        prefix = tag_ + " " if tag_ else ""
        prefix += "".join(f"{k}={v} " for k, v in sorted(attrs.items()))
        event = prefix + line
    else:
        value: object = line
        if fmt == "json":
            try:
                value = json.loads(line)
            except ValueError:
                value = line
        inner: dict[str, object] = {"line": value, "source": entry.stream}
        if tag_:
            inner["tag"] = tag_
        if attrs:
            inner["attrs"] = dict(attrs)
        event = inner
    doc: dict[str, object] = {"event": event, "time": f"{entry.time / 1e9:.6f}",
                              "host": hostname}
    if source:
        doc["source"] = source
    if sourcetype:
        doc["sourcetype"] = sourcetype
    if index:
        doc["index"] = index
    return doc


def splunk_body(events: Sequence[Mapping[str, object]]) -> bytes:
    return b"".join(json.dumps(e, ensure_ascii=False, separators=(",", ":")).encode()
                    for e in events)


# -- journald ----------------------------------------------------------------------------

def journal_datagram(fields: Mapping[str, str | bytes]) -> bytes:
    """systemd's native journal protocol: `KEY=value\\n`, or for a value with a
    newline `KEY\\n<u64 little-endian length>value\\n`."""
    out = bytearray()
    for k, v in fields.items():
        b = v.encode() if isinstance(v, str) else v
        if b"\n" in b:
            out += k.encode() + b"\n" + struct.pack("<Q", len(b)) + b + b"\n"
        else:
            out += k.encode() + b"=" + b + b"\n"
    return bytes(out)


def journal_fields(entry: LogEntry, meta: ContainerMeta, tag_: str,
                   attrs: Mapping[str, str]) -> dict[str, str | bytes]:
    """The fields Docker's journald driver sends with a line."""
    fields: dict[str, str | bytes] = {
        "MESSAGE": _line(entry), "CONTAINER_ID": meta.id[:12], "CONTAINER_ID_FULL": meta.id,
        "CONTAINER_NAME": meta.name, "CONTAINER_TAG": tag_, "IMAGE_NAME": meta.image_name,
        "SYSLOG_IDENTIFIER": tag_,
        "PRIORITY": str(SEVERITY_ERR if entry.stream == "stderr" else SEVERITY_INFO),
        "SYSLOG_TIMESTAMP": str(entry.time // 1000),
    }
    if not entry.data.endswith(b"\n"):
        fields["CONTAINER_PARTIAL_MESSAGE"] = "true"
    for k, v in attrs.items():
        key = re.sub(r"[^A-Z0-9_]", "_", k.upper()).lstrip("_")
        if key:
            fields[key] = v
    return fields
