"""The ``ragkit`` command: parse options, call the Engine, render with rich (or JSON). No business logic."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from ragkit.errors import RagkitError

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="ragkit: ingest documents into a hybrid (BM25 + dense) index, query it with cited "
                       "answers, and measure which retrieval optimizations help. Works offline.")
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

IndexOpt = typer.Option(Path(".ragkit"), "--index", "-i", help="index directory")
ConfigOpt = typer.Option(None, "--config", "-c",
                         help="pipeline config (TOML); default: ./ragkit.toml when it exists")
SetOpt = typer.Option(None, "--set", help="override a config value, e.g. --set chunker.chunk_size=128 (repeatable)")
JsonOpt = typer.Option(False, "--json", help="print machine-readable JSON instead of tables")


def _config_path(config: Optional[Path]) -> Optional[Path]:
    if config is not None:
        return config
    default = Path("ragkit.toml")
    return default if default.is_file() else None


def _open(index: Path, config: Optional[Path], overrides: Optional[list[str]]):
    from ragkit.engine import Engine

    return Engine.open(index, _config_path(config), overrides or [])


def _dump(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


@app.command()
def ingest(
    paths: list[Path] = typer.Argument(..., help="files or directories to ingest"),
    index: Path = IndexOpt,
    config: Optional[Path] = ConfigOpt,
    overrides: Optional[list[str]] = SetOpt,
    include: Optional[list[str]] = typer.Option(None, "--include", help="glob of files to take (repeatable)"),
    exclude: Optional[list[str]] = typer.Option(None, "--exclude", help="glob of files to leave out (repeatable)"),
    sync: bool = typer.Option(False, "--sync", help="remove indexed documents whose files are gone from PATHS"),
    rebuild: bool = typer.Option(False, "--rebuild", help="rebuild from scratch (needed after changing the "
                                 "chunker, embedder or index settings)"),
    strict: bool = typer.Option(False, "--strict", help="exit 1 if any file failed or any record was skipped"),
    as_json: bool = JsonOpt,
) -> None:
    """Add or update documents in the index. Unchanged files are skipped; every commit is atomic."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, \
        TimeRemainingColumn

    extra = list(overrides or [])
    if include:
        extra.append("ingest.include=" + json.dumps(include))
    if exclude:
        extra.append("ingest.exclude=" + json.dumps(exclude))
    eng = _open(index, config, extra)
    bars = Progress(TextColumn("{task.description:>8}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TimeRemainingColumn(), console=err, transient=True, disable=as_json or not err.is_terminal)
    tasks: dict[str, Any] = {}

    def progress(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = bars.add_task(stage, total=total)
        bars.update(tasks[stage], completed=done, total=total)

    with bars:
        report = eng.ingest([str(p) for p in paths], sync=sync, rebuild=rebuild, progress=progress)
    eng.close()
    if as_json:
        _dump(report.to_dict())
    else:
        _render_report(report, index)
    if strict and (report.failed or report.warnings):
        raise typer.Exit(1)


def _render_report(r, index: Path) -> None:
    t = Table(title=f"ingest into {index}", show_header=False, box=None)
    t.add_row("files", f"{r.files_seen} seen · {r.files_read} read · {r.files_unchanged} unchanged · "
                       f"{len(r.skipped)} skipped · {len(r.failed)} failed")
    t.add_row("documents", f"+{r.documents_added} added · ~{r.documents_updated} updated · "
                           f"-{r.documents_removed} removed · {r.documents_total} total")
    t.add_row("chunks", f"{r.chunks_total} total · {r.chunks_embedded} embedded")
    t.add_row("commit", f"{r.generation} (new)" if r.committed else f"{r.generation or 'none'} (unchanged)")
    t.add_row("seconds", f"{r.seconds:.2f}")
    out.print(t)
    for label, items, style in (("failed", r.failed, "red"), ("skipped", r.skipped, "yellow"),
                                ("warning", r.warnings, "yellow")):
        for path, reason in items:
            out.print(f"[{style}]{label}[/] {path}: {reason}", highlight=False)


@app.command()
def query(
    text: str = typer.Argument(..., help="the question"),
    index: Path = IndexOpt,
    config: Optional[Path] = ConfigOpt,
    overrides: Optional[list[str]] = SetOpt,
    k: Optional[int] = typer.Option(None, "--k", "-k", help="number of sources to return (default: retrieval.k)"),
    filters: Optional[list[str]] = typer.Option(None, "--filter", "-f", help="metadata filter, e.g. product=cloud, "
                                                "'year>=2020', 'tier in a,b', status? (repeatable, ANDed)"),
    mode: Optional[str] = typer.Option(None, "--mode", help="bm25, dense or hybrid (default: retrieval.mode)"),
    explain: bool = typer.Option(False, "--explain", help="show per-stage scores, ranks, stages and timings, "
                                 "and the generator's packing decisions, removed citations and uncited sentences"),
    no_answer: bool = typer.Option(False, "--no-answer", help="retrieve only, skip the generator"),
    stream: bool = typer.Option(False, "--stream", help="print the answer as it is generated, then the sources "
                                "(with --json: one JSON object per line, deltas then the answer)"),
    as_json: bool = JsonOpt,
) -> None:
    """Ask a question: ranked sources and an answer with [n] citations."""
    eng = _open(index, config, overrides)
    if eng.generation() is None:
        raise RagkitError(f"{index}: no index here yet; run `ragkit ingest PATH --index {index}` first")
    eng.warm_up()  # load models first, so the reported timings are the query's own
    if no_answer:
        r = eng.retrieve(text, k=k, filter=filters or None, mode=mode)
        data = {"query": text, "answer": None, "citations": [], "sources": [h.to_dict() for h in r.hits],
                "timings": r.timings, "trace": r.trace}
    elif stream:
        answer_stream = eng.query_stream(text, k=k, filter=filters or None, mode=mode)
        if not as_json:
            out.print("[bold]Answer[/] ", end="")
        for delta in answer_stream:
            if as_json:
                sys.stdout.write(json.dumps({"type": "delta", "text": delta}, ensure_ascii=False) + "\n")
            else:
                sys.stdout.write(delta)
            sys.stdout.flush()
        data = answer_stream.answer.to_dict()
        if as_json:
            sys.stdout.write(json.dumps({"type": "answer", **data}, ensure_ascii=False, default=str) + "\n")
            eng.close()
            return
        out.print()
    else:
        data = eng.query(text, k=k, filter=filters or None, mode=mode).to_dict()
    eng.close()
    if as_json:
        _dump(data)
        return
    if stream:
        if data.get("warnings"):  # the streamed text still had the citations the check removed
            out.print(f"[dim](checked answer: {data['answer']})[/]", highlight=False)
        _render_sources(data, explain)
    else:
        _render_sources(data, explain)
        if data["answer"] is not None:
            out.print()
            out.print(f"[bold]Answer[/] {data['answer']}", highlight=False)
    _render_answer_notes(data, explain)
    if explain:
        out.print()
        trace = data["trace"]
        cut = next((i + 1 for i, t in enumerate(trace) if t.startswith("generator ")), len(trace))
        out.print("stages: " + " -> ".join(trace[:cut]), highlight=False)
        for line in trace[cut:]:
            out.print(f"  {line}", highlight=False)
        out.print("timings (ms): " + ", ".join(f"{k}={v * 1000:.1f}" for k, v in data["timings"].items()),
                  highlight=False)
        if data.get("usage"):
            out.print("usage: " + ", ".join(f"{k}={v}" for k, v in data["usage"].items()), highlight=False)


def _render_answer_notes(data: dict[str, Any], explain: bool) -> None:
    """Citations of the answer (what each [n] points at) and warnings such as removed citations."""
    if data.get("citations"):
        for c in data["citations"]:
            where = f", page {c['page']}" if c.get("page") else ""
            out.print(f"  [{c['n']}] {c['doc_id']}" + (f" — {c['title']}" if c.get("title") else "") + where,
                      highlight=False, markup=False)
    for w in data.get("warnings") or []:
        out.print(f"[yellow]warning[/] {w}", highlight=False)


def _render_sources(data: dict[str, Any], explain: bool) -> None:
    t = Table(title=f"sources for: {data['query']}", title_justify="left", show_lines=True)
    t.add_column("#", justify="right")
    t.add_column("score", justify="right")
    if explain:
        t.add_column("per stage: score #rank", no_wrap=True)
    t.add_column("document", overflow="fold", max_width=34)
    t.add_column("text", overflow="fold", ratio=1)
    for i, h in enumerate(data["sources"], 1):
        meta = h["metadata"]
        where = f"page {meta['page']}" if meta.get("page") else str(meta.get("heading_path") or "")
        row = [str(i), f"{h['score']:.4f}"]
        if explain:
            row.append("\n".join(f"{s} {v:.4f} #{h['ranks'][s]}" for s, v in h["scores"].items()))
        snippet = " ".join(h["text"].split())
        row += [h["doc_id"] + (f"\n{where}" if where else ""), snippet[:200] + ("…" if len(snippet) > 200 else "")]
        t.add_row(*row)
    out.print(t)


@app.command("eval")
def eval_(
    dataset: Path = typer.Option(..., "--dataset", "-d", help="dataset directory: BEIR (queries.jsonl + "
                                 "qrels/<split>.tsv + corpus) or QA (qa.jsonl + corpus)"),
    config: Optional[Path] = ConfigOpt,
    overrides: Optional[list[str]] = SetOpt,
    split: str = typer.Option("test", "--split", help="qrels split to evaluate (BEIR layout)"),
    k: int = typer.Option(100, "--k", "-k", help="retrieval depth per query"),
    mode: Optional[str] = typer.Option(None, "--mode", help="bm25, dense or hybrid (default: retrieval.mode)"),
    metrics: str = typer.Option("ndcg@10,recall@100,mrr@10,map@100,hit_rate@10", "--metrics",
                                help="comma-separated ranx metric names"),
    drop_self_hits: bool = typer.Option(False, "--drop-self-hits", help="ignore retrieved documents whose id "
                                        "equals the query id (BEIR does this for ArguAna-style sets)"),
    limit: Optional[int] = typer.Option(None, "--limit", help="evaluate only the first N queries"),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="where dataset indexes are cached "
                                             "(default: $RAGKIT_CACHE or ~/.cache/ragkit)"),
    out_json: Optional[Path] = typer.Option(None, "--out", help="write the full report (aggregate + per query) as JSON"),
    out_md: Optional[Path] = typer.Option(None, "--markdown", help="write a Markdown summary"),
    as_json: bool = JsonOpt,
) -> None:
    """Retrieval metrics of the configured pipeline on a dataset; the corpus is indexed once and cached."""
    from ragkit.evaluate.runner import dataset_engine, evaluate_retrieval, load_dataset

    ds = load_dataset(dataset, split)
    eng, _ = dataset_engine(ds, _config_path(config), overrides or [], cache_dir)
    eng.warm_up()
    report = evaluate_retrieval(eng, ds, split=split, k=k, mode=mode, limit=limit, drop_self_hits=drop_self_hits,
                                metrics=tuple(m.strip() for m in metrics.split(",") if m.strip()))
    eng.close()
    if out_json:
        out_json.write_text(json.dumps(report.to_dict(), indent=2, default=str) + "\n")
    if out_md:
        out_md.write_text(report.markdown())
    if as_json:
        _dump({k: v for k, v in report.to_dict().items() if k != "rows"})
        return
    t = Table(title=f"eval {dataset} ({split}, {report.queries} queries, mode {report.config['mode']})")
    t.add_column("metric")
    t.add_column("value", justify="right")
    for m, v in report.metrics.items():
        t.add_row(m, f"{v:.4f}")
    for m, v in report.latency_ms.items():
        t.add_row(f"latency {m}", f"{v:.1f} ms")
    out.print(t)
    for w in report.warnings:
        out.print(f"[yellow]warning[/] {w}", highlight=False)


@app.command()
def plugins(as_json: bool = JsonOpt) -> None:
    """List every registered plugin, by stage, with its parameters and defaults."""
    from ragkit.plugins import STAGES, describe_params, registry

    rows = []
    for stage in STAGES:
        for name in registry.names(stage):
            cls = registry.get(stage, name)
            rows.append({"stage": stage, "name": name, "class": f"{cls.__module__}.{cls.__qualname__}",
                         "extensions": list(getattr(cls, "extensions", ())), "params": describe_params(cls)})
    if as_json:
        _dump(rows)
        return
    t = Table(title="ragkit plugins")
    for col in ("stage", "name", "parameters (default)"):
        t.add_column(col)
    for r in rows:
        params = ", ".join(f"{p['name']}={p['default']!r}" for p in r["params"]) or "-"
        if r["extensions"]:
            params = f"files: {' '.join(r['extensions'])}" + ("" if params == "-" else f"; {params}")
        t.add_row(r["stage"], r["name"], params)
    out.print(t)
    empty = [s for s in STAGES if not any(r["stage"] == s for r in rows)]
    if empty:
        out.print("stages with no plugin installed yet: " + ", ".join(empty), highlight=False)


@app.command()
def info(index: Path = IndexOpt, config: Optional[Path] = ConfigOpt, as_json: bool = JsonOpt) -> None:
    """Show what an index holds and the settings it was built with."""
    eng = _open(index, config, [])
    data = eng.stats()
    eng.close()
    if as_json:
        _dump(data)
        return
    t = Table(show_header=False, box=None)
    for key, value in data.items():
        t.add_row(key, json.dumps(value) if isinstance(value, dict) else str(value))
    out.print(t)


def main() -> None:
    try:
        rc = app(standalone_mode=False)  # click returns the code of a typer.Exit instead of raising it
        sys.exit(rc if isinstance(rc, int) else 0)
    except RagkitError as exc:
        err.print(f"error: {exc}", highlight=False, markup=False)
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err.print("aborted", highlight=False)
        sys.exit(130)
    except Exception as exc:  # click usage errors carry their own exit code and message
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise
