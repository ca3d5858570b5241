"""The bench's pure pieces for the data-path figures: the load tools' parsers
(bench/loadtools.py), percentiles (bench/stats.py) and the stub DNS server's answers
(bench/dnsstub.py, byte for byte against dnspython). No root, no peers."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import dns.flags
import dns.message
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.dnsstub import ANSWER_ADDRESS, TTL, answer
from bench.loadtools import log_file_format, parse_dnsperf, parse_iperf3
from bench.stats import paired_differences, percentile

DNSPERF = """DNS Performance Testing Tool
Version 2.10.0

[Status] Command line: dnsperf -s 127.0.0.11 -d q -l 2 -q 20 -v
> NOERROR c1 A 0.000500
> NOERROR c1 A 0.001500
> SERVFAIL c1 A 0.002500
Statistics:

  Queries sent:         3
  Queries completed:    3 (100.00%)
  Queries lost:         0 (0.00%)

  Response codes:       NOERROR 2 (66.67%), SERVFAIL 1 (33.33%)
  Average packet size:  request 20, response 36
  Run time (s):         2.000000
  Queries per second:   1.500000
"""


def test_dnsperf_statistics_and_latencies() -> None:
    r = parse_dnsperf(DNSPERF)
    assert (r.qps, r.sent, r.completed, r.lost) == (1.5, 3, 3, 0)
    assert r.rcodes == {"NOERROR": 2, "SERVFAIL": 1}
    assert r.latencies_ms == pytest.approx([0.5, 1.5, 2.5])
    assert r.noerror_share() == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="no 'Queries per second'"):
        parse_dnsperf("Error: could not open datafile\n")


def test_iperf3_json_in_gbits_and_errors_named() -> None:
    doc = {"end": {"sum_received": {"bits_per_second": 9.5e9}}}
    assert parse_iperf3(json.dumps(doc)) == pytest.approx(9.5)
    with pytest.raises(ValueError, match="iperf3: unable to connect"):
        parse_iperf3(json.dumps({"error": "unable to connect to server"}))
    with pytest.raises(ValueError, match="no JSON"):
        parse_iperf3("")
    with pytest.raises(ValueError, match="bits_per_second"):
        parse_iperf3("{}")


def test_percentiles_are_nearest_rank_and_pairs_subtract() -> None:
    xs = [float(x) for x in range(1, 101)]
    assert percentile(xs, 50) == 50.0
    assert percentile(xs, 99) == 99.0
    assert percentile([3.0], 99) == 3.0
    assert percentile([5.0, 1.0], 0) == 1.0
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)
    assert paired_differences([100.0, 110.0, 120.0], [130.0, 150.0]) == [30.0, 40.0]


@pytest.mark.parametrize("qname,qtype,rd", [("c1.", "A", True), ("ext.bench.test.", "A", False),
                                            ("ext.bench.test.", "AAAA", True)])
def test_stub_answers_exactly_as_dnspython_encodes(qname: str, qtype: str, rd: bool) -> None:
    q = dns.message.make_query(qname, qtype, use_edns=False)
    if not rd:
        q.flags &= ~dns.flags.RD
    want = dns.message.make_response(q)
    want.flags |= dns.flags.RA
    if qtype == "A":
        want.answer.append(dns.rrset.from_text(qname, TTL, dns.rdataclass.IN,
                                               dns.rdatatype.A, ANSWER_ADDRESS))
    assert answer(q.to_wire()) == want.to_wire()


def test_stub_drops_what_is_not_one_standard_query() -> None:
    q = dns.message.make_query("c1.", "A", use_edns=False).to_wire()
    assert answer(q[:11]) is None                       # short header
    assert answer(q[:2] + b"\x80\x00" + q[4:]) is None  # a response, not a query
    assert answer(q[:4] + b"\x00\x02" + q[6:]) is None  # two questions
    assert answer(q[:-3]) is None                       # truncated question
    assert answer(q[:12] + b"\xc0\x0c" + q[-4:]) is None  # compression in the question


def test_log_file_formats_are_told_apart() -> None:
    assert log_file_format(b'{"log":"x\\n","stream":"stdout","time":"2026-11-28T09:00:00Z"}\n'
                           ) == "json-file"
    assert log_file_format(b"2026-11-28T09:00:00.123456789+00:00 stdout F xxx\n") == (
        "k8s-file (CRI)")
    assert log_file_format(b"2026-11-28T09:00:00.1Z stderr P xx") == "k8s-file (CRI)"
    assert log_file_format(b"\x00\x00\x00\x1a\n\x06stdout") == "another (binary or unknown)"
