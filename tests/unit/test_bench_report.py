"""The bench's Markdown rendering, ratios and root-namespace diff (pure parts)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.host import RootState, diff_states, normalize_iptables, parse_sysctl_a
from bench.report import (
    chart_panels,
    chart_series,
    figure_ratios,
    fmt_cell,
    fmt_value,
    merge_cells,
    merge_section,
    render_markdown,
    render_summary,
)


def _ok(*samples: float) -> dict[str, Any]:
    s = sorted(samples)
    mid = s[len(s) // 2] if len(s) % 2 else (s[len(s) // 2 - 1] + s[len(s) // 2]) / 2
    return {"status": "ok", "summary": {"n": len(s), "min": s[0], "median": mid,
                                        "max": s[-1]}, "samples": list(samples)}


def results() -> dict[str, Any]:
    return {
        "mode": "quick", "started": "2026-01-02 03:04 UTC", "duration_s": 123.0,
        "machine": {"kernel": "6.1.0", "arch": "x86_64", "cpus": 2, "memory_gib": 23.5,
                    "os": "Debian GNU/Linux 12"},
        "primary": "muslin",
        "peers": [
            {"id": "muslin", "label": "muslin", "version": "muslind abc", "status": "ok",
             "compare": False},
            {"id": "muslin-cli", "label": "muslin CLI", "version": "",
             "status": "could not start: /x/muslin: not found", "compare": False},
            {"id": "dockerd", "label": "dockerd", "version": "20.10", "status": "ok",
             "compare": True},
            {"id": "podman", "label": "podman", "version": "4.3", "status": "ok",
             "compare": True},
        ],
        "figures": [
            {"id": "net_create_cli", "title": "network create, CLI", "unit": "ms",
             "section": "Networks", "measures": "docker network create",
             "results": {"muslin": _ok(70.0, 80.0, 90.0),
                         "muslin-cli": {"status": "could not start: /x/muslin: not found"},
                         "dockerd": _ok(150.0, 160.0, 170.0),
                         "podman": _ok(40.0, 40.0, 40.0)}},
            {"id": "run_none", "title": "run -d, --network none", "unit": "ms",
             "section": "Containers", "measures": "docker run | pipes",
             "results": {"muslin": {"status": "not supported yet"},
                         "muslin-cli": {"status": "n/a"},
                         "dockerd": _ok(300.0, 310.0), "podman": _ok(250.0)}},
            {"id": "rss_daemon", "title": "daemon RSS", "unit": "MB", "section": "Memory",
             "measures": "", "results": {"dockerd": _ok(95.5)}},
        ],
        "cnm_inprocess": {"status": "ok", "figures": {"network_create_delete_ms": 4.25,
                                                      "endpoints": 100}},
        "machine_check": {"unchanged": True, "differences": [], "checked": ["links"],
                          "notes": []},
        "notes": ["a note"],
    }


def test_ratios_are_primary_median_over_peer_median() -> None:
    f = results()["figures"][0]
    assert figure_ratios(f, "muslin", ["dockerd", "podman"]) == {"dockerd": 0.5,
                                                                 "podman": 2.0}
    none = results()["figures"][1]
    assert figure_ratios(none, "muslin", ["dockerd"]) == {"dockerd": None}


def test_cells_show_median_and_range_or_the_status() -> None:
    assert fmt_cell(_ok(70.0, 80.0, 90.0), "ms") == "**80.0** [70.0–90.0]"
    assert fmt_cell(_ok(5.0), "ms") == "**5.00**"
    assert fmt_cell({"status": "not supported yet"}, "ms") == "not supported yet"
    assert fmt_cell({"status": "n/a"}, "ms") == "—"
    assert fmt_cell(None, "ms") == "—"
    assert fmt_cell({"status": "failed: a | b\nc"}, "ms") == "failed: a \\| b c"
    assert fmt_cell({"status": "could not start: a long reason"}, "ms") == "could not start"
    assert fmt_cell({"status": "failed: " + "x" * 100}, "ms").endswith("x...")
    assert fmt_value(1234.5, "ms") == "1234" or fmt_value(1234.5, "ms") == "1235"
    assert fmt_value(0.26, "ms") == "0.260"
    assert fmt_value(1.2345, "×") == "1.23"


def test_markdown_has_every_peer_every_figure_and_the_ratios() -> None:
    md = render_markdown(results())
    assert md.startswith("# muslin benchmarks (quick run)")
    assert "Linux 6.1.0 x86_64, 2 CPUs" in md and "2026-01-02 03:04 UTC" in md
    row = next(ln for ln in md.splitlines() if ln.startswith("| network create, CLI (ms)"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells == ["network create, CLI (ms)", "3", "**80.0** [70.0–90.0]",
                     "could not start", "**160** [150–170]",
                     "**40.0**", "0.50", "2.00"]
    run = next(ln for ln in md.splitlines() if ln.startswith("| run -d"))
    assert "not supported yet" in run and run.rstrip().endswith("| — | — |")
    assert "## Containers" in md and "## Memory" in md
    assert "could not start: /x/muslin: not found" in md.split("## Networks")[0]
    assert "| network_create_delete_ms | 4.25 |" in md and "| endpoints | 100 |" in md
    assert "- **run -d, --network none**: docker run | pipes" in md
    assert "as before the run" in md and "a note" in md
    # every table row has as many cells as its header
    for block in md.split("\n\n"):
        rows = [ln for ln in block.splitlines() if ln.startswith("|")]
        if rows:
            widths = {len(r.replace("\\|", "").strip("|").split("|")) for r in rows}
            assert len(widths) == 1, rows


def test_markdown_says_clearly_when_the_machine_changed() -> None:
    r = results()
    r["machine_check"] = {"unchanged": False, "differences": ["sysctl x: 0 -> 1"],
                          "checked": [], "notes": []}
    md = render_markdown(r)
    assert "**FAILED: the machine is not as before the run:**" in md
    assert "`sysctl x: 0 -> 1`" in md


def test_chart_series_keeps_figure_order_and_gaps() -> None:
    titles, medians, spans = chart_series(results(), "ms")
    assert titles == ["network create, CLI", "run -d, --network none"]
    assert medians["muslin"] == [80.0, None]
    assert medians["dockerd"] == [160.0, 305.0]
    assert spans["podman"] == [(40.0, 40.0), (250.0, 250.0)]


def test_root_state_diff_fails_on_rules_links_sysctls_and_notes_other_mounts() -> None:
    before = RootState(links=["lo 00", "eth0 02"], netns=[], nft_ruleset=[],
                       iptables={"iptables-save": ["*filter", ":FORWARD ACCEPT [-]"]},
                       sysctls={"net.ipv4.ip_forward": "0"}, bench_mounts=[],
                       other_mounts=["/", "/proc"], cgroups=["memory/a"], modules=["x"])
    same = RootState(**{**before.as_dict(), "other_mounts": ["/", "/proc", "/run/lab/ns"],
                        "modules": ["x", "br_netfilter"]})
    fails, notes = diff_states(before, same)
    assert fails == []
    assert notes == ["mounts of other work changed meanwhile (not the bench's): /run/lab/ns: "
                     "+1 -0",
                     "kernel module loaded during the run: br_netfilter"]
    changed = RootState(**{**before.as_dict(), "links": ["lo 00", "eth0 02", "docker0 03"],
                           "iptables": {"iptables-save": ["*filter", ":FORWARD DROP [-]"]},
                           "sysctls": {"net.ipv4.ip_forward": "1"},
                           "bench_mounts": ["/run/muslin-bench/r/ns"],
                           "cgroups": ["memory/a", "memory/muslin-bench-r",
                                       "memory/muslin-lab-x", "pids/libpod_parent"]})
    fails, notes = diff_states(before, changed)
    assert "link: + docker0 03" in fails
    assert "iptables-save: + :FORWARD DROP [-]" in fails
    assert "iptables-save: - :FORWARD ACCEPT [-]" in fails
    assert "sysctl net.ipv4.ip_forward: 0 -> 1" in fails
    assert "mount: + /run/muslin-bench/r/ns" in fails
    assert "cgroup: + memory/muslin-bench-r" in fails
    assert "cgroup: + pids/libpod_parent" in fails
    assert not any("muslin-lab-x" in f for f in fails)
    assert ("cgroups of other work changed meanwhile (not the bench's): +muslin-lab-x"
            in notes)


def test_iptables_counters_and_comments_are_ignored() -> None:
    assert normalize_iptables(["# Generated by iptables-save on x", "*filter",
                               ":INPUT ACCEPT [12:345]", "", "COMMIT"]) == [
        "*filter", ":INPUT ACCEPT [-]", "COMMIT"]


def test_sysctl_a_is_parsed_without_volatile_keys_and_changes_fail() -> None:
    parsed = parse_sysctl_a(["net.ipv4.ip_forward = 0", "fs.file-nr = 1\t0\t9",
                             "kernel.random.uuid = x", "net.core.somaxconn = 4096",
                             "vm.swappiness = 60", "garbage"])
    assert parsed == {"net.ipv4.ip_forward": "0", "net.core.somaxconn": "4096",
                      "vm.swappiness": "60"}
    before = RootState(all_sysctls=parsed)
    after = RootState(all_sysctls={**parsed, "net.core.somaxconn": "128",
                                   "net.bridge.bridge-nf-call-iptables": "1"})
    fails, notes = diff_states(before, after)
    assert fails == ["sysctl net.core.somaxconn: 4096 -> 128"]
    assert notes == ["1 sysctl key(s) appeared or went (a module loaded meanwhile)"]


def test_chart_panels_are_section_and_unit_pairs_without_ratios() -> None:
    r = {"figures": [{"section": "Networks", "unit": "ms"}, {"section": "DNS", "unit": "qps"},
                     {"section": "DNS", "unit": "ms"}, {"section": "Ports", "unit": "×"},
                     {"section": "Networks", "unit": "ms"}]}
    assert chart_panels(r) == [("Networks", "ms"), ("DNS", "qps"), ("DNS", "ms")]


def test_the_table_says_which_way_ratios_point() -> None:
    md = render_markdown(results())
    assert "for times (ms) and memory, below 1 is better for muslin" in md
    assert "for rates (qps, Gbit/s, lines/s, %), above 1 is" in md


def test_summary_keeps_the_named_figures_in_order_with_machine_and_date() -> None:
    r = results()
    r["started"] = "2026-11-28 09:13 UTC"
    md = render_summary(r, ["run_none", "missing", "net_create_cli"], ["muslin", "dockerd"])
    lines = md.splitlines()
    assert lines[0].startswith("Quick run of 2026-11-28 09:13 UTC on Linux ")
    assert lines[2] == "| figure | n | muslin | dockerd | muslin/dockerd |"
    assert lines[4].startswith("| run -d, --network none (ms) |")
    assert lines[5].startswith("| network create, CLI (ms) |")
    assert len(lines) == 6


def test_merge_section_takes_one_sections_figures_from_another_run() -> None:
    base = results()
    base["notes"] = ["kept", "logs: old format note"]
    other = results()
    other["started"] = "2026-11-28 09:39 UTC"
    other["machine_check"] = {"unchanged": True}
    other["notes"] = ["logs: muslin wrote k8s-file", "not this"]
    other["figures"] = [{"id": "log_json-file", "title": "log lines/s, json-file",
                         "unit": "lines/s", "section": "Logs", "results": {}}]
    base["figures"] = [*base["figures"],
                       {"id": "log_old", "title": "old", "unit": "lines/s",
                        "section": "Logs", "results": {}}]
    merged = merge_section(base, other, "Logs", "Docker's local driver rotated.")
    assert [f["id"] for f in merged["figures"]] == ["net_create_cli", "run_none",
                                                    "rss_daemon", "log_json-file"]
    assert merged["notes"][0] == "kept"
    assert merged["notes"][1].startswith("The Logs figures come from a separate quick run of "
                                         "that group alone, started 2026-11-28 09:39 UTC")
    assert merged["notes"][1].endswith("the machine was as before it): Docker's local "
                                       "driver rotated.")
    assert merged["notes"][2:] == ["logs: muslin wrote k8s-file"]
    with pytest.raises(ValueError, match="no figures in section 'DNS'"):
        merge_section(base, other, "DNS", "")


def test_merge_cells_takes_one_peers_cells_marked_with_a_note() -> None:
    base = results()
    base["figures"][1]["results"]["muslin"] = {"status": "failed: container 202: crashed"}
    other = results()
    other["started"] = "2026-11-28 09:52 UTC"
    other["machine_check"] = {"unchanged": True}
    other["figures"][1]["results"]["muslin"] = _ok(300.0, 310.0, 320.0)
    merged = merge_cells(base, other, "muslin", ["run_none"], "muslind crashed there.")
    cell = merged["figures"][1]["results"]["muslin"]
    assert cell["mark"] == "†"
    assert fmt_cell(cell, "ms") == "**310** [300–320] †"
    assert merged["figures"][1]["results"]["dockerd"] == base["figures"][1]["results"][
        "dockerd"]
    assert merged["notes"][-1].startswith("† muslin's cells in run -d, --network none come "
                                          "from a separate quick run with muslin alone")
    assert base["figures"][1]["results"]["muslin"]["status"].startswith("failed")
    with pytest.raises(ValueError, match="no muslin cells"):
        merge_cells(base, other, "muslin", ["nothing"], "")


def test_another_bench_runs_cgroups_are_noted_not_failed() -> None:
    before = RootState(cgroups=["memory/a"])
    after = RootState(cgroups=["memory/a", "memory/mb095204", "memory/muslin-bench-r2",
                               "memory/mb091308", "memory/docker"])
    fails, notes = diff_states(before, after, own={"mb091308", "muslin-bench-r1"})
    assert fails == ["cgroup: + memory/mb091308", "cgroup: + memory/docker"]
    assert notes == ["cgroups of other work changed meanwhile (not the bench's): "
                     "+mb095204, +muslin-bench-r2"]
