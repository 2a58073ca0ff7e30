"""Ablation reports: ``report.md`` (GitHub), ``report.html`` (self-contained: PNG plots embedded as base64,
no scripts, opens offline), ``results.json`` (the machine-readable summary) and ``plots/*.png``.

Everything here is computed from the summary that :class:`ragkit.evaluate.ablate.Ablation` returns; the
same summary gives byte-identical tables and plots (latency columns are measured, so they vary by machine).
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

MARK = {"win": "▲", "loss": "▼", "tie": ""}
COLOURS = {"win": "#2e7d32", "loss": "#c62828", "tie": "#607d8b", "ref": "#1565c0"}


def write_report(summary: dict[str, Any], out: Path) -> dict[str, Path]:
    out = Path(out)
    (out / "plots").mkdir(parents=True, exist_ok=True)
    plots = make_plots(summary, out / "plots")
    paths = {"json": out / "results.json", "md": out / "report.md", "html": out / "report.html"}
    paths["json"].write_text(json.dumps(summary, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    paths["md"].write_text(markdown(summary, {k: p.relative_to(out).as_posix() for k, p in plots.items()}),
                           encoding="utf-8")
    paths["html"].write_text(render_html(summary, plots), encoding="utf-8")
    paths.update({f"plot:{k}": p for k, p in plots.items()})
    return paths


# --- tables -----------------------------------------------------------------------------------------------------

def _fmt(x: float | None, digits: int = 4) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def _delta_cell(c: dict[str, Any] | None) -> str:
    if not c:
        return "–"
    mark = MARK[c["direction"]]
    p = "p<0.001" if c["p_value"] < 0.001 else f"p={c['p_value']:.3f}"
    return (f"{c['delta']:+.4f} [{c['ci_low']:+.4f}, {c['ci_high']:+.4f}] {p}"
            + (f" {mark}" if mark else ""))


def main_rows(summary: dict[str, Any]) -> list[dict[str, str]]:
    s = summary["settings"]
    primary = s["primary"]
    rows = []
    front = set(summary.get("pareto", []))
    for v in summary["variants"]:
        if v["status"] != "done":
            continue
        cmp = (v.get("vs_reference") or {}).get(primary)
        lat = v["latency_ms"]["total"]
        row = {"variant": v["name"] + (" ★" if v["name"] in front else "") + (" (over budget)"
                                                                           if v.get("status_note") else ""),
               "vs": v.get("reference") or "–"}
        for m in s["metrics"]:
            row[m] = _fmt(v["metrics"].get(m))
        row[f"Δ {primary} vs ref [95% CI] p"] = _delta_cell(cmp)
        row["latency p50 / p95 (ms)"] = f"{lat['p50']:.1f} / {lat['p95']:.1f}"
        row["index (chunks, MB)"] = f"{v['index']['chunks']}, {v['index']['bytes'] / 2**20:.1f}"
        rows.append(row)
    return rows


def stage_rows(summary: dict[str, Any]) -> list[dict[str, str]]:
    rows = []
    for v in summary["variants"]:
        if v["status"] != "done":
            continue
        for stage, lat in v["latency_ms"].items():
            if stage == "total":
                continue
            label = "first stage (all of it)" if stage == "first_stage" else stage.replace("first:", "first stage: ")
            rows.append({"variant": v["name"], "stage": label,
                         "p50 (ms)": f"{lat['p50']:.2f}", "p95 (ms)": f"{lat['p95']:.2f}"})
    return rows


def delta_rows(summary: dict[str, Any]) -> list[dict[str, str]]:
    rows = []
    for v in summary["variants"]:
        if v["status"] != "done" or not v.get("vs_reference"):
            continue
        row = {"variant": v["name"], "vs": v["reference"]}
        for m in summary["settings"]["metrics"]:
            row[m] = _delta_cell(v["vs_reference"].get(m))
        rows.append(row)
    return rows


def group_rows(summary: dict[str, Any]) -> list[dict[str, str]]:
    primary = summary["settings"]["primary"]
    groups = list(summary["dataset"].get("groups") or {})
    if not groups:
        return []
    rows = []
    for v in summary["variants"]:
        if v["status"] != "done" or "by_group" not in v:
            continue
        row = {"variant": v["name"]}
        for g in groups:
            row[f"{g} (n={summary['dataset']['groups'][g]})"] = _fmt(v["by_group"][g].get(primary), 3)
        rows.append(row)
    return rows


def skipped_rows(summary: dict[str, Any]) -> list[dict[str, str]]:
    return [{"variant": v["name"], "status": v["status"], "reason": v.get("reason") or ""}
            for v in summary["variants"] if v["status"] != "done"]


def _md_table(rows: list[dict[str, str]]) -> list[str]:
    if not rows:
        return []
    cols = list(rows[0])
    esc = lambda t: str(t).replace("|", "\\|").replace("\n", " ")  # noqa: E731
    return (["| " + " | ".join(esc(c) for c in cols) + " |", "|" + "---|" * len(cols)]
            + ["| " + " | ".join(esc(r.get(c, "")) for c in cols) + " |" for r in rows])


def _title(summary: dict[str, Any]) -> str:
    return summary.get("title") or f"Ablation: {Path(summary['dataset']['root']).name}"


def tune_sections(summary: dict[str, Any]) -> list[tuple[str, str, list[dict[str, str]]]]:
    """``ragkit tune``'s sections (heading, a paragraph, a table): the held-out comparison of the winner with
    the baseline, and the path the search took. None for an ablation."""
    t = summary.get("tune")
    if not t:
        return []
    primary = summary["settings"]["primary"]
    budget = f"{t['budget_ms']:g} ms" if t.get("budget_ms") is not None else "none"
    w, b = t["winner"], t["baseline"]
    text = (f"Strategy **{t['strategy']}**, objective {_objective(t['objective'])}, latency budget (p95 per query) "
            f"{budget}. {t['trials']} trials ({t['trials_run']} run now, {t['trials_resumed']} resumed from "
            f"trials.jsonl, {t['trials_skipped']} could not run, {t['trials_over_budget']} over budget) of a space of "
            f"{t['space_size']} configurations, in {t['search_seconds']:.0f} s on {t['dev_queries']} dev questions"
            + (f"; {t['stopped']}" if t.get("stopped") else "") + f". Winner: `{w['name']}` (trial #{w['trial']}).")
    out = []
    test = t.get("test")
    rows = [{"pipeline": f"winner: {w['name']}", f"dev {primary}": _fmt(w["dev_metrics"].get(primary)),
             "dev p95 (ms)": _fmt(w["dev_p95_ms"], 1)},
            {"pipeline": f"baseline: {b['name']}", f"dev {primary}": _fmt((b.get("dev_metrics") or {}).get(primary)),
             "dev p95 (ms)": _fmt(b.get("dev_p95_ms"), 1)}]
    if test:
        for row, side in zip(rows, ("winner", "baseline")):
            r = test[side]
            ci = r["ci95"][primary]
            row[f"test {primary} [95% CI]"] = f"{r['metrics'][primary]:.4f} [{ci[0]:.4f}, {ci[1]:.4f}]"
            row["test p50 / p95 (ms)"] = f"{r['latency_ms']['p50']:.1f} / {r['latency_ms']['p95']:.1f}"
        rows.append({"pipeline": "winner − baseline", f"dev {primary}": "", "dev p95 (ms)": "",
                     f"test {primary} [95% CI]": _delta_cell(test["comparison"][primary]),
                     "test p50 / p95 (ms)": ""})
        source = test.get("source", "test split")
        what = f"the {test['queries']} test questions ({source})" if source != "test split" else \
            f"the {test['queries']} test questions"
        held = (f"Selected on the dev questions only; {what} were used once, after "
                f"the search, for these two pipelines. Δ is the mean per-query difference with a "
                f"{summary['settings']['ci']} and a {summary['settings']['test']}.")
        if source.startswith("held-out synthetic"):
            held += (" The test questions are synthetic like the dev ones (there are no labelled questions): this "
                     "guards against a winner that only fits the dev questions, not against synthetic questions "
                     "that differ from real ones.")
    else:
        held = "No test questions were given: the numbers are the dev (selection) numbers, optimistic for the winner."
    out.append(("Held-out test: winner against the baseline", held, rows))
    path_rows = [{"stage": p["stage"], "chosen": p["chosen"], "trial": f"#{p['trial']}",
                  f"dev objective": _fmt(p.get("objective")), "p95 (ms)": _fmt(p.get("p95_ms"), 1),
                  "eligible / tried": f"{p['eligible']} / {p['tried']}"} for p in t.get("path", [])]
    out.append(("Search path", text, path_rows))
    return out


def _objective(obj: dict[str, float]) -> str:
    if len(obj) == 1:
        return f"**{next(iter(obj))}**"
    return "weighted mean of " + ", ".join(f"{m} ×{w:g}" for m, w in obj.items())


def _intro(summary: dict[str, Any]) -> list[str]:
    d, s = summary["dataset"], summary["settings"]
    n_done = sum(v["status"] == "done" for v in summary["variants"])
    where = f"the existing index `{d['index']}`" if d.get("index") else f"corpus `{d['corpus']}`"
    return [f"Dataset `{d['root']}` ({d['split']}, {d['queries']} queries), {where}. "
            f"{n_done} of {len(summary['variants'])} variants ran; primary metric **{s['primary']}** "
            f"(retrieval depth {s['k']}).",
            "",
            f"Each variant is compared with its reference (`vs`): Δ is the mean per-query difference, the interval "
            f"a {s['ci']}, p a {s['test']} ({s['resamples']} resamples, seed {s['seed']}). "
            f"▲ / ▼ mark significant wins and losses (p < {s['alpha']}). ★ marks the quality/latency Pareto front. "
            "Latency is per query, measured on this machine (see the notes)."]


def _variant_list(summary: dict[str, Any]) -> list[dict[str, str]]:
    return [{"variant": v["name"], "builds on": v.get("parent") or "base config",
             "change": v.get("description") or json.dumps(v.get("overrides") or {})}
            for v in summary["variants"]]


def _notes(summary: dict[str, Any]) -> list[str]:
    r = summary.get("reuse", {})
    notes = [f"Reuse: {r.get('indexes_built', 0)} index(es) built, {r.get('indexes_reused', 0)} reused from the "
             f"cache; {r.get('chunks_embedded', 0)} chunks embedded; {r.get('first_stage_runs', 0)} first-stage "
             f"runs shared by {r.get('first_stage_runs', 0) + r.get('first_stage_reused', 0)} variants; "
             f"{r.get('variants_resumed', 0)} variants resumed from an earlier run. Time spent on the variants "
             f"{summary.get('variant_seconds', 0):.0f} s (this run, wall: {summary.get('seconds', 0):.0f} s)."]
    scored, reused = r.get("rerank_pairs_scored", 0), r.get("rerank_pairs_reused", 0)
    if reused:
        notes.append(f"Reranker scores were reused across variants: the model scored {scored} (question, passage) "
                     f"pairs and {reused} more were served from memory (a pair is scored once per model, whatever "
                     "depth, blend or first stage asks for it again). Latency stays honest: a pair served from "
                     "memory charges the time the model took to score it, so each variant's rerank latency is that "
                     "of scoring its full depth.")
    notes += summary.get("notes", [])
    return notes


def markdown(summary: dict[str, Any], plots: dict[str, str]) -> str:
    s = summary["settings"]
    lines = [f"# {_title(summary)}", ""] + _intro(summary) + [""]
    for heading, text, rows in tune_sections(summary):
        lines += [f"## {heading}", ""] + ([text, ""] if text else []) + _md_table(rows) + [""]
    lines += ["## Results", ""]
    lines += _md_table(main_rows(summary))
    if "primary" in plots:
        lines += ["", f"![{s['primary']} per variant with 95% CI]({plots['primary']})"]
    if "pareto" in plots:
        lines += ["", f"![{s['primary']} vs latency, Pareto front]({plots['pareto']})"]
    lines += ["", "## Deltas against the reference, every metric", ""] + _md_table(delta_rows(summary))
    groups = group_rows(summary)
    if groups:
        lines += ["", f"## {s['primary']} by query type / tag", ""] + _md_table(groups)
        if "groups" in plots:
            lines += ["", f"![{s['primary']} by query type]({plots['groups']})"]
    skipped = skipped_rows(summary)
    if skipped:
        lines += ["", "## Skipped or failed", ""] + _md_table(skipped)
    lines += ["", "## Latency per stage", ""] + _md_table(stage_rows(summary))
    lines += ["", "## Variants", ""] + _md_table(_variant_list(summary))
    lines += ["", "## Notes", ""] + [f"- {n}" for n in _notes(summary)]
    return "\n".join(lines) + "\n"


# --- HTML -------------------------------------------------------------------------------------------------------

_CSS = """body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1200px;
color:#222;padding:0 1em}table{border-collapse:collapse;margin:.6em 0 1.4em;font-size:13px}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}th{background:#f3f3f3}
td.win{color:#2e7d32;font-weight:600}td.loss{color:#c62828;font-weight:600}img{max-width:100%;
border:1px solid #ddd;margin:.5em 0}code{background:#f5f5f5;padding:0 3px}"""


def _html_table(rows: list[dict[str, str]]) -> str:
    if not rows:
        return ""
    cols = list(rows[0])
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = []
    for r in rows:
        cells = []
        for c in cols:
            text = str(r.get(c, ""))
            cls = ' class="win"' if text.endswith("▲") else ' class="loss"' if text.endswith("▼") else ""
            cells.append(f"<td{cls}>{html.escape(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def render_html(summary: dict[str, Any], plots: dict[str, Path]) -> str:
    s = summary["settings"]
    title = _title(summary)
    parts = [f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
             f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>"]
    for para in _intro(summary):
        if para:
            text = html.escape(para).replace("**", "")
            parts.append(f"<p>{text.replace('`', '')}</p>")
    for heading, text, rows in tune_sections(summary):
        parts.append(f"<h2>{html.escape(heading)}</h2>" + (f"<p>{html.escape(text).replace('`', '')}</p>" if text
                                                            else "") + _html_table(rows))
    parts.append("<h2>Results</h2>" + _html_table(main_rows(summary)))
    for key, alt in (("primary", f"{s['primary']} per variant with 95% CI"),
                     ("pareto", f"{s['primary']} vs latency, Pareto front")):
        if key in plots:
            parts.append(_img(plots[key], alt))
    parts.append("<h2>Deltas against the reference, every metric</h2>" + _html_table(delta_rows(summary)))
    groups = group_rows(summary)
    if groups:
        parts.append(f"<h2>{html.escape(s['primary'])} by query type / tag</h2>" + _html_table(groups))
        if "groups" in plots:
            parts.append(_img(plots["groups"], f"{s['primary']} by query type"))
    skipped = skipped_rows(summary)
    if skipped:
        parts.append("<h2>Skipped or failed</h2>" + _html_table(skipped))
    parts.append("<h2>Latency per stage</h2>" + _html_table(stage_rows(summary)))
    parts.append("<h2>Variants</h2>" + _html_table(_variant_list(summary)))
    parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in _notes(summary)) + "</ul>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


# --- plots ------------------------------------------------------------------------------------------------------

def make_plots(summary: dict[str, Any], directory: Path) -> dict[str, Path]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        from ragkit.errors import RagkitError

        raise RagkitError("ablation plots need matplotlib: pip install 'ragkit[eval]'") from None
    plt.rcParams.update({"svg.hashsalt": "ragkit", "font.size": 9})
    primary = summary["settings"]["primary"]
    done = [v for v in summary["variants"] if v["status"] == "done"]
    out: dict[str, Path] = {}
    if not done:
        return out
    names = [v["name"] for v in done]
    values = [v["metrics"][primary] for v in done]
    # clamped at 0: an interval computed from rounded per-query values may miss the mean by a rounding error
    lo = [max(0.0, v["metrics"][primary] - v.get("ci95", {}).get(primary, [values[i]] * 2)[0])
          for i, v in enumerate(done)]
    hi = [max(0.0, v.get("ci95", {}).get(primary, [values[i]] * 2)[1] - v["metrics"][primary])
          for i, v in enumerate(done)]
    colours = []
    for v in done:
        c = (v.get("vs_reference") or {}).get(primary)
        colours.append(COLOURS["ref"] if c is None else COLOURS[c["direction"]])

    fig, ax = plt.subplots(figsize=(7.5, 0.45 * len(done) + 1.4), dpi=110)
    ypos = list(range(len(done)))[::-1]
    ax.barh(ypos, values, xerr=[lo, hi], color=colours, capsize=3, ecolor="#333")
    ax.set_yticks(ypos, names)
    for y, val in zip(ypos, values):
        ax.text(val, y + 0.3, f"{val:.3f}", fontsize=7, ha="left", va="center")
    ax.set_xlabel(f"{primary} (mean over queries, 95% bootstrap CI)\nagainst its reference: green = significant "
                  "win, red = significant loss,\ngrey = no significant difference, blue = no reference")
    ax.set_title(f"{primary} per variant")
    ax.set_xlim(0, max(1e-9, max(v + h for v, h in zip(values, hi))) * 1.12)
    fig.tight_layout()
    out["primary"] = directory / f"{_safe(primary)}.png"
    fig.savefig(out["primary"], metadata={"Software": None})
    plt.close(fig)

    front = summary.get("pareto", [])
    fig, ax = plt.subplots(figsize=(7.5, 4.5), dpi=110)
    lat = [v["latency_ms"]["total"]["p50"] for v in done]
    on = [n in front for n in names]
    ax.scatter([x for x, f in zip(lat, on) if not f], [y for y, f in zip(values, on) if not f], c="#90a4ae", s=40,
               zorder=3)
    ax.scatter([x for x, f in zip(lat, on) if f], [y for y, f in zip(values, on) if f], c="#ef6c00", s=40,
               zorder=4)  # on top of a dominated point at almost the same spot
    labels: dict[tuple[float, float], list[str]] = {}
    for x, y, n in zip(lat, values, names):  # variants at the same spot share one label
        spot = next((k for k in labels if abs(k[0] - x) <= 0.08 * max(k[0], x) and abs(k[1] - y) < 0.004), (x, y))
        labels.setdefault(spot, []).append(n)
    for i, ((x, y), ns) in enumerate(sorted(labels.items())):
        ax.annotate(", ".join(ns), (x, y), textcoords="offset points", xytext=(6, 6 if i % 2 == 0 else -11),
                    fontsize=7)
    ax.margins(x=0.12, y=0.1)
    pts = sorted((v["latency_ms"]["total"]["p50"], v["metrics"][primary]) for v in done if v["name"] in front)
    if pts:
        ax.step([p[0] for p in pts], [p[1] for p in pts], where="post", color="#ef6c00", lw=1.2, zorder=2,
                label="Pareto front")
        ax.legend(loc="upper left")
    ax.set_xscale("log" if max(lat) > 20 * max(min(lat), 1e-6) else "linear")
    ax.set_xlabel("latency per query, p50 (ms)")
    ax.set_ylabel(primary)
    ax.set_title(f"quality vs latency ({primary})")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    out["pareto"] = directory / "pareto.png"
    fig.savefig(out["pareto"], metadata={"Software": None})
    plt.close(fig)

    groups = list(summary["dataset"].get("groups") or {})
    if groups and all("by_group" in v for v in done):
        import numpy as np

        grid = np.array([[v["by_group"][g].get(primary, 0.0) for g in groups] for v in done])
        fig, ax = plt.subplots(figsize=(1.0 * len(groups) + 3, 0.45 * len(done) + 1.8), dpi=110)
        im = ax.imshow(grid, cmap="viridis", vmin=0, vmax=1, aspect="auto")
        ax.set_xticks(range(len(groups)), [g.split(":", 1)[-1] for g in groups], rotation=35, ha="right")
        ax.set_yticks(range(len(done)), names)
        for i in range(len(done)):
            for j in range(len(groups)):
                ax.text(j, i, f"{grid[i, j]:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if grid[i, j] < 0.6 else "black")
        fig.colorbar(im, ax=ax, label=primary)
        ax.set_title(f"{primary} by query type")
        fig.tight_layout()
        out["groups"] = directory / "by_type.png"
        fig.savefig(out["groups"], metadata={"Software": None})
        plt.close(fig)
    return out


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in name)
