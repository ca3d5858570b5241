"""Pure parsers of the load tools' output (dnsperf -v, iperf3 -J) and of the head of a
container's log file (which format a peer really wrote).

No I/O: unit-tested in tests/unit/test_bench_loadtools.py.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

_QPS = re.compile(r"Queries per second:\s+([0-9.]+)")
_SENT = re.compile(r"Queries sent:\s+(\d+)")
_COMPLETED = re.compile(r"Queries completed:\s+(\d+)")
_LOST = re.compile(r"Queries lost:\s+(\d+)")
_RCODES = re.compile(r"Response codes:\s+(.*)")
_RCODE = re.compile(r"([A-Z]+) (\d+) \(")


@dataclass
class DnsperfResult:
    qps: float
    sent: int
    completed: int
    lost: int
    rcodes: dict[str, int] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)

    def noerror_share(self) -> float:
        total = sum(self.rcodes.values())
        return self.rcodes.get("NOERROR", 0) / total if total else 0.0


def parse_dnsperf(text: str) -> DnsperfResult:
    """dnsperf's statistics and, with -v, every answer's latency (`> NOERROR name A 0.000123`
    lines, seconds) in milliseconds. ValueError when the statistics are missing."""
    m = _QPS.search(text)
    if not m:
        tail = " / ".join(text.strip().splitlines()[-3:])
        raise ValueError(f"no 'Queries per second' in dnsperf's output: {tail[:300]}")

    def num(rx: re.Pattern[str]) -> int:
        found = rx.search(text)
        return int(found.group(1)) if found else 0

    rcodes: dict[str, int] = {}
    rc = _RCODES.search(text)
    if rc:
        rcodes = {k: int(v) for k, v in _RCODE.findall(rc.group(1))}
    lat = []
    for line in text.splitlines():
        if line.startswith("> "):
            parts = line.split()
            try:
                lat.append(float(parts[-1]) * 1000)
            except (ValueError, IndexError):
                continue
    return DnsperfResult(qps=float(m.group(1)), sent=num(_SENT), completed=num(_COMPLETED),
                         lost=num(_LOST), rcodes=rcodes, latencies_ms=lat)


def parse_iperf3(text: str) -> float:
    """The receiver's throughput of an `iperf3 -c ... -J` run, in Gbit/s (ValueError on an
    error report or an unreadable document)."""
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise ValueError(f"iperf3 gave no JSON: {text.strip()[:200]!r}") from e
    if doc.get("error"):
        raise ValueError(f"iperf3: {doc['error']}")
    try:
        bps = float(doc["end"]["sum_received"]["bits_per_second"])
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError("iperf3's JSON has no end.sum_received.bits_per_second") from e
    return bps / 1e9


_CRI = re.compile(rb"^\d{4}-\d\d-\d\dT[0-9:.]+(Z|[+-]\d\d:\d\d) (stdout|stderr) [FP] ")


def log_file_format(head: bytes) -> str:
    """The format of a log file from its first bytes: Docker's json-file, the CRI's
    k8s-file (conmon's), or neither (a binary format such as Docker's `local`)."""
    if head.startswith(b'{"log":'):
        return "json-file"
    if _CRI.match(head):
        return "k8s-file (CRI)"
    return "another (binary or unknown)"
