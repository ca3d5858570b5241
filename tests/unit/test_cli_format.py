"""Output shapes of the CLI: docker's tables, inspect writers, JSON layout, sort, times."""

from __future__ import annotations

import json
from typing import Any

import pytest

from muslin.cli import formatter, system
from muslin.cli.network import render_ls
from muslin.cli.tabwriter import tabwrite
from muslin.cli.views import event_time, go_time_string


def net(name: str, ident: str, driver: str = "bridge", **extra: Any) -> dict[str, Any]:
    obj = {"Name": name, "Id": ident, "Driver": driver, "Scope": "local",
           "Created": "2024-05-01T10:00:00Z", "EnableIPv6": False, "Internal": False,
           "Labels": {}}
    obj.update(extra)
    return obj


NETS = [
    net("none", "9f904ee27bf5" + "a" * 52, "null"),
    net("bridge", "7fca4eb8c647" + "b" * 52),
    net("host", "cf03ee007fb4" + "c" * 52, "host"),
]


def test_tabwriter_matches_go() -> None:
    # docker's network ls: minwidth 10, padding 3; the last cell is never padded
    assert tabwrite("NETWORK ID\tNAME\tDRIVER\tSCOPE\n"
                    "7fca4eb8c647\tbridge\tbridge\tlocal\n") == (
        "NETWORK ID     NAME      DRIVER    SCOPE\n"
        "7fca4eb8c647   bridge    bridge    local\n")
    # column blocks: a line with fewer cells ends the block of the columns it lacks
    assert tabwrite("a\tbbbbbbbbbbbbb\tc\nxx\ty\nlong-first-cell\n1\t2\t3\n",
                    minwidth=0, padding=1) == (
        "a  bbbbbbbbbbbbb c\n"
        "xx y\n"
        "long-first-cell\n"
        "1 2 3\n")
    # text after the last newline is kept, unpadded
    assert tabwrite("a\tb\nc\td", minwidth=0, padding=1) == "a b\nc d"
    # wide runes count twice (go-runewidth)
    assert tabwrite("名前\tx\nab\ty\n", minwidth=0, padding=1) == "名前 x\nab   y\n"


def test_ls_default_table() -> None:
    assert render_ls(NETS, "", quiet=False, trunc=True) == (
        "NETWORK ID     NAME      DRIVER    SCOPE\n"
        "7fca4eb8c647   bridge    bridge    local\n"
        "cf03ee007fb4   host      host      local\n"
        "9f904ee27bf5   none      null      local\n")


def test_ls_no_trunc_widens_the_column() -> None:
    lines = render_ls(NETS[:1], "", quiet=False, trunc=False).splitlines()
    assert lines[0] == "NETWORK ID" + " " * 57 + "NAME      DRIVER    SCOPE"
    assert lines[1] == NETS[0]["Id"] + "   none      null      local"


def test_ls_long_names_and_empty_list() -> None:
    nets = [net("a-rather-long-network-name", "1" * 64, "macvlan")]
    assert render_ls(nets, "", quiet=False, trunc=True) == (
        "NETWORK ID     NAME                         DRIVER    SCOPE\n"
        "111111111111   a-rather-long-network-name   macvlan   local\n")
    assert render_ls([], "", quiet=False, trunc=True) == "NETWORK ID   NAME      DRIVER    SCOPE\n"
    assert render_ls([], "", quiet=True, trunc=True) == ""


@pytest.mark.parametrize(("fmt", "quiet", "want"), [
    ("", True, "7fca4eb8c647\ncf03ee007fb4\n9f904ee27bf5\n"),
    ("{{.Name}}", True, "bridge\nhost\nnone\n"),  # an explicit format wins over -q
    ("raw", True, "network_id: 7fca4eb8c647\nnetwork_id: cf03ee007fb4\nnetwork_id: 9f904ee27bf5\n"),
    ("table {{.Name}}\\t{{.IPv6}}\\t{{.Internal}}", False,
     "NAME      IPV6      INTERNAL\nbridge    false     false\nhost      false     false\n"
     "none      false     false\n"),
    ("table {{.Name}}", False, "NAME\nbridge\nhost\nnone\n"),
    ("  {{.Name}}  ", False, "bridge\nhost\nnone\n"),  # docker trims spaces
    ("{{.Name}}\\n", False, "bridge\n\nhost\n\nnone\n\n"),
])
def test_ls_formats(fmt: str, quiet: bool, want: str) -> None:
    assert render_ls(NETS, fmt, quiet=quiet, trunc=True) == want


def test_ls_table_headers_follow_docker() -> None:
    # header names from docker's header map, Label's header from the key's last part;
    # empty cells still padded, the last one not
    out = render_ls(NETS[:1], 'table {{.ID}}\t{{.CreatedAt}}\t{{.Labels}}\t{{.Label "a.b-c"}}',
                    quiet=False, trunc=True)
    assert out == ("NETWORK ID     CREATED AT                      LABELS    b c\n"
                   "9f904ee27bf5   2024-05-01 10:00:00 +0000 UTC             \n")


def test_ls_sorts_naturally() -> None:
    names = ["net10", "net2", "Net1", "net1", "net01", "a", "_x", "1net"]
    rows = [net(n, f"{i:064x}") for i, n in enumerate(names)]
    out = render_ls(rows, "{{.Name}}", quiet=False, trunc=True).split()
    assert out == ["1net", "Net1", "_x", "a", "net1", "net01", "net2", "net10"]


def test_inspect_writers() -> None:
    raws = ['{"Name":"a","Id":"1","IPAM":{"Config":[]},"Options":{},"Labels":{"k":"v"}}\n',
            '{"Name":"b", "Id":"2" ,"X":[1,2.50,{"y":null}],"S":"a\\u003cb"}']
    out, errors = formatter.inspect_output(raws, "", "network.Inspect")
    assert errors == []
    assert out == """[
    {
        "Name": "a",
        "Id": "1",
        "IPAM": {
            "Config": []
        },
        "Options": {},
        "Labels": {
            "k": "v"
        }
    },
    {
        "Name": "b",
        "Id": "2",
        "X": [
            1,
            2.50,
            {
                "y": null
            }
        ],
        "S": "a\\u003cb"
    }
]
"""
    assert formatter.inspect_output([], "", None) == ("[]\n", [])
    out, _ = formatter.inspect_output(raws, "json", None)
    assert out == ('[{"Name":"a","Id":"1","IPAM":{"Config":[]},"Options":{},"Labels":{"k":"v"}},'
                   '{"Name":"b","Id":"2","X":[1,2.50,{"y":null}],"S":"a\\u003cb"}]\n')
    out, errors = formatter.inspect_output(raws, "{{.Name}}:{{.Id}}", "network.Inspect")
    assert (out, errors) == ("a:1\nb:2\n", [])
    # typed first (.ID), raw map next (.Id); a key missing from both is an error
    out, errors = formatter.inspect_output(raws, "{{.X}}", "network.Inspect")
    assert out == "[1 2.50 map[y:<nil>]]\n"
    assert len(errors) == 1 and 'map has no entry for key "X"' in errors[0]


def test_go_times() -> None:
    assert go_time_string("2024-05-01T10:00:00.123456789Z") == (
        "2024-05-01 10:00:00.123456789 +0000 UTC")
    assert go_time_string("2024-05-01T10:00:00.500Z") == "2024-05-01 10:00:00.5 +0000 UTC"
    assert go_time_string("2024-05-01T10:00:00Z") == "2024-05-01 10:00:00 +0000 UTC"
    assert go_time_string("") == "0001-01-01 00:00:00 +0000 UTC"
    got = go_time_string("2024-05-01T12:00:00+02:00")
    assert got.startswith("2024-05-01 12:00:00 +0200 ")
    assert system.reformat_date("2025-01-22T13:41:48.000000000+00:00") == (
        "Wed Jan 22 13:41:48 2025")
    assert system.reformat_date("2024-02-05T01:02:03Z") == "Mon Feb  5 01:02:03 2024"


def test_events_text(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "UTC")
    import time

    time.tzset()
    try:
        ev = {"Type": "network", "Action": "connect",
              "Actor": {"ID": "abc", "Attributes": {"name": "n1", "container": "c1"}},
              "time": 1714557600, "timeNano": 1714557600000000042}
        assert system.pretty_event(ev) == (
            "2024-05-01T10:00:00.000000042Z network connect abc (container=c1, name=n1)")
        assert event_time(0, 1714557600) == "2024-05-01T10:00:00.000000000Z"
        assert system.pretty_event({"Type": "network", "Action": "destroy",
                                    "Actor": {"ID": "x"}}) == "network destroy x"
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_timestamps_for_since_until() -> None:
    now = 1_700_000_000.0
    assert system.get_timestamp("10m", now) == str(int(now) - 600)
    assert system.get_timestamp("1h30m", now) == str(int(now) - 5400)
    assert system.get_timestamp("1714557600", now) == "1714557600"
    assert system.get_timestamp("1714557600.5", now) == "1714557600.5"
    assert system.get_timestamp("2024-05-01T10:00:00Z", now) == "1714557600.000000000"
    assert system.get_timestamp("2024-05-01T12:00:00.25+02:00", now) == "1714557600.250000000"
    assert system.parse_duration("0") == 0.0
    assert system.parse_duration("bogus") is None
    with pytest.raises(Exception, match="failed to parse value as time or duration"):
        system.get_timestamp("yesterday", now)


def test_version_text_layout() -> None:
    client = {"Version": "0.1.0", "ApiVersion": "1.44", "DefaultAPIVersion": "1.47",
              "PythonVersion": "3.11.7", "Os": "linux", "Arch": "amd64", "Context": "default"}
    server = {"Platform": {"Name": "muslin"}, "Components": [
        {"Name": "Engine", "Version": "0.1.0",
         "Details": {"ApiVersion": "1.44", "MinAPIVersion": "1.24", "Os": "linux",
                     "Arch": "amd64", "Experimental": "false"}},
        {"Name": "conmon", "Version": "2.1.6", "Details": {"GitCommit": "abc"}}]}
    assert system.version_text(client, server) == (
        "Client:\n"
        " Version:           0.1.0\n"
        " API version:       1.44 (downgraded from 1.47)\n"
        " Python version:    3.11.7\n"
        " OS/Arch:           linux/amd64\n"
        " Context:           default\n"
        "\n"
        "Server: muslin\n"
        " Engine:\n"
        "  Version:          0.1.0\n"
        "  API version:      1.44 (minimum version 1.24)\n"
        "  OS/Arch:          linux/amd64\n"
        "  Experimental:     false\n"
        " conmon:\n"
        "  Version:          2.1.6\n"
        "  GitCommit:        abc\n")


def test_bytes_size() -> None:
    assert system.bytes_size(2087428096) == "1.944GiB"
    assert system.bytes_size(512) == "512B"
    assert system.bytes_size(1536) == "1.5KiB"


def test_json_compact_and_indent_are_inverse() -> None:
    doc = {"a": [1, {"b": "x y", "c": []}], "d": {}, "e": "q\"uote"}
    text = json.dumps(doc)
    assert json.loads(formatter.json_indent(text)) == doc
    assert formatter.json_compact(formatter.json_indent(text)) == json.dumps(
        doc, separators=(",", ":"))
