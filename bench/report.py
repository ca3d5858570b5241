"""Rendering of bench results: the Markdown table, the PNG chart, per-figure ratios.

The results are plain JSON-able data (see `bench.suite` for how they are made):

    {"mode": "quick", "started": ISO, "machine": {...}, "primary": "muslin",
     "peers": [{"id", "label", "version", "status", "compare"}],
     "figures": [{"id", "title", "unit", "section", "measures",
                  "results": {peer_id: {"status": "ok", "summary": {n, min, median, max},
                                        "samples": [...]}
                              | {"status": "not supported yet" | "could not start: ..."
                                           | "failed: ..." | "n/a"}}}],
     "cnm_inprocess": {"status": "ok", "figures": {...}} | {"status": "..."},
     "machine_check": {"unchanged": bool, "differences": [...], "checked": [...]},
     "notes": [...]}

Everything here except `write_chart` is pure and unit-tested (tests/unit/test_bench_report.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bench.stats import ratio

OK = "ok"
# units whose figures are rates (higher is better); every other figure is a cost
RATES = ("qps", "Gbit/s", "lines/s", "%")
# the chart's panels, in order (ratios "×" are in the table only)
CHART_UNITS = ("ms", "qps", "Gbit/s", "lines/s", "MB")


def peer_median(figure: Mapping[str, Any], peer: str) -> float | None:
    """The peer's median for a figure, or None when it has no measurement there."""
    cell = figure.get("results", {}).get(peer)
    if not cell or cell.get("status") != OK:
        return None
    return float(cell["summary"]["median"])


def figure_ratios(figure: Mapping[str, Any], primary: str,
                  peers: Sequence[str]) -> dict[str, float | None]:
    """primary median / peer median for each peer named (None where either is missing)."""
    mine = peer_median(figure, primary)
    return {p: ratio(mine, peer_median(figure, p)) for p in peers}


def fmt_value(v: float, unit: str) -> str:
    """A number with as many digits as a reader needs (no unit: the title carries it)."""
    if unit in ("×", "x", "ratio"):
        return f"{v:.2f}"
    a = abs(v)
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


def fmt_cell(cell: Mapping[str, Any] | None, unit: str) -> str:
    """`median [min–max]` for a measured cell, else its status ("—" when absent)."""
    if not cell:
        return "—"
    status = str(cell.get("status", ""))
    if status != OK:
        return short_status(status)
    s = cell["summary"]
    mark = f" {cell['mark']}" if cell.get("mark") else ""
    if s["n"] == 1 or s["min"] == s["max"]:
        return f"**{fmt_value(s['median'], unit)}**{mark}"
    return (f"**{fmt_value(s['median'], unit)}** "
            f"[{fmt_value(s['min'], unit)}–{fmt_value(s['max'], unit)}]{mark}")


def short_status(status: str) -> str:
    """A status for a table cell: the peers table has the whole reason a peer did not
    start; a failure keeps its first words."""
    if status == "n/a":
        return "—"
    if status.startswith("could not start"):
        return "could not start"
    return _escape(status, 80)


def fmt_ratio(r: float | None) -> str:
    return "—" if r is None else f"{r:.2f}"


def _escape(text: str, limit: int = 0) -> str:
    """Text safe inside one Markdown table cell: one line, no pipes (cut at limit)."""
    one_line = " ".join(text.split())
    if limit and len(one_line) > limit:
        one_line = one_line[:limit - 3] + "..."
    return one_line.replace("|", "\\|")


def _n_of(figure: Mapping[str, Any]) -> str:
    ns = sorted({int(c["summary"]["n"]) for c in figure.get("results", {}).values()
                 if c.get("status") == OK})
    if not ns:
        return "—"
    return str(ns[0]) if len(ns) == 1 else f"{ns[0]}–{ns[-1]}"


def render_markdown(results: Mapping[str, Any]) -> str:
    """The whole Markdown report: machine, peers, one table per section, checks, notes."""
    primary = str(results.get("primary", "muslin"))
    peers = list(results.get("peers", []))
    labels = {str(p["id"]): str(p.get("label", p["id"])) for p in peers}
    m = results.get("machine", {})
    out: list[str] = []
    out.append(f"# muslin benchmarks ({results.get('mode', '?')} run)")
    out.append("")
    out.append(
        f"Machine: Linux {m.get('kernel', '?')} {m.get('arch', '')}, "
        f"{m.get('cpus', '?')} CPUs, {m.get('memory_gib', '?')} GiB, {m.get('os', '')}; "
        f"run {results.get('started', '?')} ({results.get('duration_s', 0):.0f} s)."
    )
    if m.get("load_before"):
        out.append(f"Load average at start: {m['load_before']}.")
    out.append("Peers run side by side in one run, operations interleaved "
               "(A, B, C, A, B, C, ...); cells are **median** [min–max]; ratios are "
               f"{labels.get(primary, primary)} median / peer median: for times (ms) and "
               "memory, below 1 is better for muslin; for rates (qps, Gbit/s, lines/s, %), "
               "above 1 is.")
    out.append("")
    out.append("## Peers")
    out.append("")
    out.append("| peer | what runs | status |")
    out.append("|---|---|---|")
    for p in peers:
        out.append(f"| {_escape(labels[str(p['id'])])} | {_escape(str(p.get('version', '')))} "
                   f"| {_escape(str(p.get('status', '?')))} |")
    sections: list[str] = []
    for f in results.get("figures", []):
        if f.get("section") not in sections:
            sections.append(str(f.get("section")))
    for section in sections:
        figs = [f for f in results.get("figures", []) if f.get("section") == section]
        out.append("")
        out.append(f"## {section}")
        out.append("")
        out += figure_table(results, figs)
    cnm = results.get("cnm_inprocess")
    if cnm:
        out.append("")
        out.append("## In-process CNM core (muslin only, `bench/cnm_inprocess.py`)")
        out.append("")
        if cnm.get("status") != OK:
            out.append(f"Not measured: {_escape(str(cnm.get('status')))}")
        else:
            out.append("| figure | value |")
            out.append("|---|--:|")
            for k, v in cnm.get("figures", {}).items():
                shown = fmt_value(float(v), "ms") if isinstance(v, int | float) else str(v)
                if isinstance(v, int):
                    shown = str(v)
                out.append(f"| {_escape(str(k))} | {shown} |")
    defs = [(f["title"], f.get("measures", "")) for f in results.get("figures", [])
            if f.get("measures")]
    if defs:
        out.append("")
        out.append("## What each figure measures")
        out.append("")
        for title, measures in defs:
            out.append(f"- **{_escape(str(title))}**: {' '.join(str(measures).split())}")
    check = results.get("machine_check")
    out.append("")
    out.append("## Machine check")
    out.append("")
    if not check:
        out.append("Not done.")
    elif check.get("unchanged"):
        out.append("The machine's root namespace is as before the run: "
                   + ", ".join(check.get("checked", [])) + ".")
    else:
        out.append("**FAILED: the machine is not as before the run:**")
        out.append("")
        out.extend(f"- `{_escape(str(d))}`" for d in check.get("differences", []))
    for note in check.get("notes", []) if check else []:
        out.append(f"- {_escape(str(note))}")
    notes = results.get("notes", [])
    if notes:
        out.append("")
        out.append("## Notes")
        out.append("")
        out.extend(f"- {_escape(str(n))}" for n in notes)
    return "\n".join(out) + "\n"


def figure_table(results: Mapping[str, Any], figs: Sequence[Mapping[str, Any]],
                 peers: Sequence[str] | None = None) -> list[str]:
    """The Markdown rows of one table: a figure per row, a column per peer (all of the
    results' peers, or those named), then the primary's ratio to each compared peer."""
    primary = str(results.get("primary", "muslin"))
    all_peers = list(results.get("peers", []))
    labels = {str(p["id"]): str(p.get("label", p["id"])) for p in all_peers}
    peer_ids = [str(p["id"]) for p in all_peers if peers is None or str(p["id"]) in peers]
    compare = [str(p["id"]) for p in all_peers if p.get("compare") and str(p["id"]) in peer_ids]
    head = ["figure", "n", *[labels[p] for p in peer_ids],
            *[f"{labels.get(primary, primary)}/{labels[p]}" for p in compare]]
    out = ["| " + " | ".join(_escape(h) for h in head) + " |",
           "|" + "|".join(["---", "--:"] + ["--:"] * (len(head) - 2)) + "|"]
    for f in figs:
        unit = str(f.get("unit", ""))
        title = f"{f['title']} ({unit})" if unit else str(f["title"])
        cells = [fmt_cell(f.get("results", {}).get(p), unit) for p in peer_ids]
        ratios = figure_ratios(f, primary, compare)
        out.append("| " + " | ".join([_escape(title), _n_of(f), *cells,
                                      *[fmt_ratio(ratios[p]) for p in compare]]) + " |")
    return out


def render_summary(results: Mapping[str, Any], figure_ids: Sequence[str],
                   peers: Sequence[str] | None = None) -> str:
    """A short table for the README: the figures named (in that order, those present),
    with the machine and date they came from."""
    by_id = {str(f.get("id")): f for f in results.get("figures", [])}
    figs = [by_id[i] for i in figure_ids if i in by_id]
    m = results.get("machine", {})
    lines = [f"{results.get('mode', '?').capitalize()} run of {results.get('started', '?')} "
             f"on Linux {m.get('kernel', '?')}, {m.get('cpus', '?')} CPUs, "
             f"{m.get('os', '')}; load average at start {m.get('load_before', '?')}. Cells: "
             "**median** [min–max]; times and memory: lower is better, rates: higher is.", ""]
    return "\n".join(lines + figure_table(results, figs, peers)) + "\n"


def chart_panels(results: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The chart's panels: (section, unit) pairs in the results' order, units the chart
    draws only (ratios "×" stay in the table)."""
    panels: list[tuple[str, str]] = []
    for f in results.get("figures", []):
        key = (str(f.get("section", "")), str(f.get("unit", "")))
        if key[1] in CHART_UNITS and key not in panels:
            panels.append(key)
    return panels


def chart_series(results: Mapping[str, Any], unit: str, section: str | None = None
                 ) -> tuple[list[str], dict[str, list[float | None]],
                            dict[str, list[tuple[float, float] | None]]]:
    """(figure titles, peer -> medians, peer -> (min, max)) for the figures in one unit
    (and section, when given), in the results' order; a peer without a measurement has
    None at that figure."""
    figs = [f for f in results.get("figures", []) if f.get("unit") == unit
            and (section is None or f.get("section") == section)]
    titles = [str(f["title"]) for f in figs]
    medians: dict[str, list[float | None]] = {}
    spans: dict[str, list[tuple[float, float] | None]] = {}
    for p in results.get("peers", []):
        pid = str(p["id"])
        medians[pid] = []
        spans[pid] = []
        for f in figs:
            cell = f.get("results", {}).get(pid)
            if cell and cell.get("status") == OK:
                s = cell["summary"]
                medians[pid].append(float(s["median"]))
                spans[pid].append((float(s["min"]), float(s["max"])))
            else:
                medians[pid].append(None)
                spans[pid].append(None)
    return titles, medians, spans


def write_chart(results: Mapping[str, Any], path: str) -> None:
    """A PNG: one panel per section and unit, one bar group per figure, one bar per peer
    (median, min–max whiskers); times on a log scale when their spread is wide."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    panels = chart_panels(results) or [("", "ms")]
    peers = list(results.get("peers", []))
    figures = list(results.get("figures", []))
    most = max(len(chart_series(results, u, sec)[0]) for sec, u in panels) or 1
    fig, axes = plt.subplots(len(panels), 1, figsize=(max(9.0, 1.1 * most + 3),
                                                      3.3 * len(panels) + 1.2), squeeze=False)
    colors = ["#2a9d8f", "#8ab17d", "#264653", "#e76f51", "#e9c46a", "#6d597a"]
    n_peers = max(1, len(peers))
    width = 0.8 / n_peers
    for ax, (section, unit) in zip(axes[:, 0], panels, strict=True):
        titles, medians, spans = chart_series(results, unit, section)
        for i, p in enumerate(peers):
            pid = str(p["id"])
            xs, ys, lo, hi = [], [], [], []
            for j, v in enumerate(medians.get(pid, [])):
                span = spans[pid][j]
                if v is None or span is None:
                    continue
                xs.append(j - 0.4 + width * (i + 0.5))
                ys.append(v)
                lo.append(max(v - span[0], 0.0))
                hi.append(max(span[1] - v, 0.0))
            if xs:
                ax.bar(xs, ys, width, yerr=[lo, hi], capsize=2,
                       color=colors[i % len(colors)], error_kw={"elinewidth": 0.8})
        ax.set_xticks(range(len(titles)))
        ax.set_xticklabels(titles, rotation=15, ha="right", fontsize=8)
        ax.set_xlim(-0.6, max(len(titles), most) - 0.4)
        better = "higher is better" if unit in RATES else "lower is better"
        ax.set_title(f"{section} ({unit}, {better})", fontsize=9, loc="left")
        values = [v for vs in medians.values() for v in vs if v]
        if unit == "ms" and values and max(values) / max(min(values), 1e-9) > 20:
            ax.set_yscale("log")
            ax.set_ylabel(f"{unit} (log)")
        else:
            ax.set_ylabel(unit)
        ax.grid(axis="y", alpha=0.3)
        bottom = ax.get_ylim()[0]
        figs = [f for f in figures if f.get("unit") == unit and f.get("section") == section]
        for i, p in enumerate(peers):
            for j, f in enumerate(figs):
                cell = f.get("results", {}).get(str(p["id"])) or {}
                status = str(cell.get("status", ""))
                mark = (" not yet" if status.startswith("not supported yet")
                        else " failed" if status.startswith("failed") else "")
                if mark:
                    ax.text(j - 0.4 + width * (i + 0.5), bottom, mark, rotation=90,
                            fontsize=6, ha="center", va="bottom", color="#555555")
    m = results.get("machine", {})
    fig.suptitle(f"muslin vs dockerd vs podman — {results.get('mode', '')} run "
                 f"{str(results.get('started', ''))[:20]}, Linux {m.get('kernel', '')}, "
                 f"{m.get('cpus', '?')} CPUs; median, whiskers min–max", fontsize=10, y=0.998)
    handles = []
    for i, p in enumerate(peers):
        label = str(p.get("label", p["id"]))
        if str(p.get("status", "ok")).startswith("could not start"):
            label += " (could not start)"
        handles.append(Patch(color=colors[i % len(colors)], label=label))
    fig.tight_layout(rect=(0, 0, 1, 0.955))
    fig.legend(handles=handles, fontsize=8, loc="upper center", ncol=max(1, len(handles)),
               bbox_to_anchor=(0.5, 0.985))
    fig.savefig(path, dpi=100)
    plt.close(fig)


def merge_section(base: Mapping[str, Any], other: Mapping[str, Any], section: str,
                  why: str) -> dict[str, Any]:
    """base with one section's figures taken from another run (its peers measured side by
    side there), and notes saying so: for re-measuring one group without an hour's run."""
    theirs = [f for f in other.get("figures", []) if f.get("section") == section]
    if not theirs:
        raise ValueError(f"the other run has no figures in section {section!r}")
    figures: list[Any] = []
    placed = False
    for f in base.get("figures", []):
        if f.get("section") == section:
            if not placed:
                figures += theirs
                placed = True
            continue
        figures.append(f)
    if not placed:
        figures += theirs
    merged = dict(base)
    merged["figures"] = figures
    check = other.get("machine_check") or {}
    verdict = ("the machine was as before it" if check.get("unchanged")
               else "its machine check FAILED: " + "; ".join(check.get("differences", [])))
    m = other.get("machine", {})
    notes = [n for n in base.get("notes", []) if not str(n).startswith(f"{section.lower()}:")]
    notes.append(f"The {section} figures come from a separate {other.get('mode', '?')} run "
                 f"of that group alone, started {other.get('started', '?')} on the same "
                 f"machine (load average at its start {m.get('load_before', '?')}; "
                 f"{verdict}): {why}")
    notes += [n for n in other.get("notes", []) if str(n).startswith(f"{section.lower()}:")]
    merged["notes"] = notes
    return merged


MARK = "†"


def merge_cells(base: Mapping[str, Any], other: Mapping[str, Any], peer: str,
                figure_ids: Sequence[str], why: str) -> dict[str, Any]:
    """base with one peer's cells of the named figures taken from another run; those
    cells carry a mark (†) and a note says where they come from, since their ratios were
    not measured side by side in one run."""
    theirs = {str(f.get("id")): f for f in other.get("figures", [])}
    merged = dict(base)
    figures = []
    taken = []
    for f in base.get("figures", []):
        fid = str(f.get("id"))
        cell = theirs.get(fid, {}).get("results", {}).get(peer)
        if fid in figure_ids and cell:
            f = dict(f)
            f["results"] = {**f.get("results", {}), peer: {**cell, "mark": MARK}}
            taken.append(str(f.get("title", fid)))
        figures.append(f)
    if not taken:
        raise ValueError(f"the other run has no {peer} cells for {', '.join(figure_ids)}")
    merged["figures"] = figures
    check = other.get("machine_check") or {}
    verdict = ("the machine was as before it" if check.get("unchanged")
               else "its machine check FAILED: " + "; ".join(check.get("differences", [])))
    merged["notes"] = [*base.get("notes", []), (
        f"{MARK} {peer}'s cells in {'; '.join(taken)} come from a separate "
        f"{other.get('mode', '?')} run with {peer} alone, started {other.get('started', '?')} "
        f"on the same machine ({verdict}): {why} Their ratios compare runs, not one run.")]
    return merged


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m bench.report merge --section S --why TEXT BASE.json OTHER.json --out DIR`
    (or `merge-cells --peer P --figure ID ...`): writes DIR/latest.{json,md,png}."""
    import argparse
    import json
    from pathlib import Path

    p = argparse.ArgumentParser(prog="python -m bench.report")
    sub = p.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("merge", help="take one section's figures from another run")
    m.add_argument("--section", required=True)
    m.add_argument("--why", required=True)
    m.add_argument("base", type=Path)
    m.add_argument("other", type=Path)
    m.add_argument("--out", type=Path, required=True)
    c = sub.add_parser("merge-cells", help="take one peer's cells from another run")
    c.add_argument("--peer", required=True)
    c.add_argument("--figure", nargs="+", required=True)
    c.add_argument("--why", required=True)
    c.add_argument("base", type=Path)
    c.add_argument("other", type=Path)
    c.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    base, other = json.loads(args.base.read_text()), json.loads(args.other.read_text())
    if args.cmd == "merge":
        merged = merge_section(base, other, args.section, args.why)
    else:
        merged = merge_cells(base, other, args.peer, args.figure, args.why)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latest.json").write_text(json.dumps(merged, indent=2))
    (args.out / "latest.md").write_text(render_markdown(merged))
    write_chart(merged, str(args.out / "latest.png"))
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
