"""``ragkit query``: ask a question, render the sources, the answer with its citations, and --explain details."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Optional

import typer
from rich.table import Table

from ragkit.cli.common import ConfigOpt, IndexOpt, JsonOpt, SetOpt, dump, json_line, open_engine, out
from ragkit.errors import RagkitError


def query(
    text: str = typer.Argument(..., help="the question"),
    index: Optional[str] = IndexOpt,
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
    if not text.strip():
        raise RagkitError("the question is empty: pass the text to ask, e.g. ragkit query \"How do I rotate a key?\"")
    eng = open_engine(index, config, overrides)
    if eng.reader() is None:
        where = getattr(eng.store, "where", eng.store.location)  # a URL without its password
        raise RagkitError(f"{where}: no index here yet; run `ragkit ingest PATH --index {where}` first")
    # load what this query uses first, so the reported timings are the query's own (a BM25-only retrieval
    # without an answer loads no model)
    eng.warm_up(mode=mode, generator=not no_answer)
    ask = {"k": k, "filter": filters or None, "mode": mode}
    streamed = stream and not no_answer
    if no_answer:
        r = eng.retrieve(text, **ask)
        data = {"query": text, "answer": None, "citations": [], "sources": [h.to_dict() for h in r.hits],
                "timings": r.timings, "trace": r.trace}
    elif streamed:
        data = _stream_answer(eng.query_stream(text, **ask), as_json)
    else:
        data = eng.query(text, **ask).to_dict()
    eng.close()
    if as_json:
        if not streamed:  # a streamed answer went out as JSON lines already
            dump(data)
        return
    _render(data, explain, streamed)


def _stream_answer(answer_stream, as_json: bool) -> dict[str, Any]:
    """Print the answer's text as it comes (or one JSON line per delta, then the answer); return the answer."""
    if not as_json:
        out.print("[bold]Answer[/] ", end="")
    for delta in answer_stream:
        if as_json:
            json_line({"type": "delta", "text": delta})
        else:
            sys.stdout.write(delta)
            sys.stdout.flush()
    data = answer_stream.answer.to_dict()
    if as_json:
        json_line({"type": "answer", **data})
    else:
        out.print()
    return data


def _render(data: dict[str, Any], explain: bool, streamed: bool) -> None:
    if streamed:
        if data.get("warnings"):  # the streamed text still had the citations the check removed
            out.print(f"[dim](checked answer: {data['answer']})[/]", highlight=False)
        _render_sources(data, explain)
    else:
        _render_sources(data, explain)
        if data["answer"] is not None:
            out.print()
            out.print(f"[bold]Answer[/] {data['answer']}", highlight=False)
    _render_answer_notes(data)
    if explain:
        _render_explain(data)


def _render_answer_notes(data: dict[str, Any]) -> None:
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


def _render_explain(data: dict[str, Any]) -> None:
    """The stages the query went through, the generator's notes, timings and token usage."""
    out.print()
    events = data.get("events")
    if events is None:  # --no-answer: a retrieval, whose trace is all stages
        stages, notes = data["trace"], []
    else:
        stages = [e["text"] for e in events if e["kind"] in ("retrieval", "generator")]
        notes = [e["text"] for e in events if e["kind"] not in ("retrieval", "generator")]
    out.print("stages: " + " -> ".join(stages), highlight=False)
    if data.get("status"):
        out.print(f"  outcome: {data['status']}" + (" (after a retry)" if data.get("retried") else ""),
                  highlight=False)
    for line in notes:
        out.print(f"  {line}", highlight=False)
    extras = data.get("extras") or {}
    if extras.get("sql"):
        out.print(f"  route: {extras.get('route')} · table {extras.get('table')} · SQL: {extras['sql']}",
                  highlight=False, markup=False)
        out.print("  rows: " + " | ".join(extras.get("columns") or []), highlight=False, markup=False)
        for row in (extras.get("rows") or [])[:20]:
            out.print("        " + " | ".join("NULL" if v is None else str(v) for v in row), highlight=False,
                      markup=False)
    out.print("timings (ms): " + ", ".join(f"{k}={v * 1000:.1f}" for k, v in data["timings"].items()),
              highlight=False)
    if data.get("usage"):
        out.print("usage: " + ", ".join(f"{k}={v}" for k, v in data["usage"].items()), highlight=False)
