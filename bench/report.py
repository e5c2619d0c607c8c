"""bench/results.md and bench/results.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.analysis import ANALYSIS


def _num(value: float | None, unit: str = "") -> str:
    if value is None:
        return "—"
    if abs(value) >= 100:
        text = f"{value:,.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.2f}"
    return f"{text} {unit}".strip()


def _check_row(w: dict[str, Any], c: dict[str, Any]) -> str:
    unit = c["unit"]
    target = f"{c['op']} {_num(c['target'])} {unit}"
    measured = _num(c["measured"], unit)
    baseline = f"{_num(c['baseline'], unit)} ({c['baseline_label']})" if c["baseline"] is not None else "—"
    ratio = f"{c['ratio']:.2f}x" if c["ratio"] is not None else "—"
    met = "met" if c["met"] else "**MISSED**"
    return f"| {w['title']} | {c['metric']} | {target} | {measured} | {baseline} | {ratio} | {met} |"


def summary_table(workloads: list[dict[str, Any]]) -> list[str]:
    lines = ["| workload | metric | target | measured (median) | limit / baseline (median, same run) | "
             "measured ÷ baseline | |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for w in workloads:
        if w.get("error"):
            error = " ".join(str(w["error"]).split()).replace("|", "/")[:240]
            lines.append(f"| {w['title']} | — | — | error: {error} | — | — | **MISSED** |")
        for c in w["checks"]:
            lines.append(_check_row(w, c))
    return lines


def _runs_table(rows: list[dict[str, Any]]) -> list[str]:
    if not rows:
        return []
    cols: list[str] = []
    for r in rows:
        for k in r:
            if k not in cols:
                cols.append(k)
    out = ["| run | " + " | ".join(cols) + " |", "| --- |" + " --- |" * len(cols)]
    for i, r in enumerate(rows, 1):
        out.append(f"| {i} | " + " | ".join(str(r.get(c, "")) for c in cols) + " |")
    return out


def render_markdown(doc: dict[str, Any]) -> str:
    meta = doc["meta"]
    lines = [
        "# starpromo benchmark results (SPEC 12)",
        "",
        f"Written by `{meta['command']}` at commit `{meta.get('commit', 'unknown')}` on {meta['finished_at']} in "
        f"{meta['seconds']:.0f} s. "
        f"Machine: {meta['cpus']} CPUs ({meta['cpu_model']}), {meta['memory_gb']:.1f} GB RAM, "
        f"Python {meta['python']}, {meta['postgres']}, on loopback "
        "(the throwaway cluster of scripts/with-services.sh: fsync off, synchronous_commit off). "
        f"Load average (1/5/15 min) at start {meta['load_before']}, at end {meta['load_after']}; other processes "
        "on this machine share both cores, so the figures are pessimistic when the load is above ~0.5."
        + (f" Machine probe at start (work no change to starpromo alters): pgbench `SELECT 1` with 16 clients "
           f"{meta['probe']['pgbench_select1_tps']:,} transactions/s, a pure-Python loop "
           f"(`sum(range(50))`) {meta['probe']['python_loop_ns']} ns." if meta.get("probe") else ""),
        "",
        f"Each workload ran {meta['runs']} time(s) ({meta['duration']:.0f} s per throughput run); the figure is the "
        "median of the runs, and its limit/baseline was measured in the same run, interleaved with it.",
        "",
        "## Summary",
        "",
        *summary_table(doc["workloads"]),
        "",
    ]
    for w in doc["workloads"]:
        lines += [f"## {w['title']}", "",
                  f"`{w['name']}` — {'all targets met' if w['met'] else 'target(s) MISSED'}; "
                  f"measured at {w.get('measured_at', meta['finished_at'])}, load average "
                  f"{w['load_before']} → {w['load_after']}, {w['seconds']:.0f} s.", ""]
        if w.get("error"):
            lines += [f"Error: `{w['error']}`", ""]
        if w["runs"]:
            lines += ["Runs:", "", *_runs_table(w["runs"]), ""]
        if w["baseline_runs"]:
            lines += ["Baseline runs:", "", *_runs_table(w["baseline_runs"]), ""]
        for note in w["notes"]:
            if "\n" in note:
                head, _, body = note.partition("\n")
                lines += [f"- {head}", "", "```", body.rstrip(), "```", ""]
            else:
                lines.append(f"- {note}")
        lines.append("")
        if not w["met"] and w["name"] in ANALYSIS:
            lines += ["### Why it is missed and what would close it", "", ANALYSIS[w["name"]].strip(), ""]
        elif w["name"] in ANALYSIS and ANALYSIS[w["name"]].strip():
            lines += ["### Analysis", "", ANALYSIS[w["name"]].strip(), ""]
        if w.get("profile"):
            lines += ["### Profile", "", "```", w["profile"].rstrip(), "```", ""]
    return "\n".join(lines).rstrip() + "\n"


def write(doc: dict[str, Any], out_dir: Path, stem: str) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    js = out_dir / f"{stem}.json"
    md = out_dir / f"{stem}.md"
    js.write_text(json.dumps(doc, indent=2, sort_keys=False) + "\n")
    md.write_text(render_markdown(doc))
    return md, js
