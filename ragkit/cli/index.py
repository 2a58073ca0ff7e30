"""Commands about the index itself: ``ingest``, ``info`` and ``plugins``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer
from rich.markup import escape
from rich.table import Table

from ragkit.cli.common import ConfigOpt, IndexOpt, JsonOpt, SetOpt, dump, open_engine, out
from ragkit.cli.progress import stage_bars


def ingest(
    paths: list[Path] = typer.Argument(..., help="files or directories to ingest"),
    index: Optional[str] = IndexOpt,
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
    extra = list(overrides or [])
    if include:
        extra.append("ingest.include=" + json.dumps(include))
    if exclude:
        extra.append("ingest.exclude=" + json.dumps(exclude))
    eng = open_engine(index, config, extra)
    with stage_bars(as_json, width=8, eta_label=False) as progress:
        report = eng.ingest([str(p) for p in paths], sync=sync, rebuild=rebuild, progress=progress)
    eng.close()
    if as_json:
        dump(report.to_dict())
    else:
        _render_report(report, getattr(eng.store, "where", eng.store.location))  # a URL without its password
    if strict and (report.failed or report.warnings):
        raise typer.Exit(1)


def _render_report(r, index: str) -> None:
    t = Table(title=f"ingest into {index}", show_header=False, box=None)
    t.add_row("files", f"{r.files_seen} seen · {r.files_read} read · {r.files_unchanged} unchanged · "
                       f"{len(r.skipped)} skipped · {len(r.failed)} failed")
    t.add_row("documents", f"+{r.documents_added} added · ~{r.documents_updated} updated · "
                           f"-{r.documents_removed} removed · {r.documents_total} total")
    t.add_row("chunks", f"{r.chunks_total} total · {r.chunks_embedded} embedded")
    if r.tables_added:
        t.add_row("tables", f"{r.tables_added} stored (see ragkit tables)")
    t.add_row("commit", f"{r.generation} (new)" if r.committed else f"{r.generation or 'none'} (unchanged)")
    t.add_row("seconds", f"{r.seconds:.2f}")
    out.print(t)
    for label, items, style in (("failed", r.failed, "red"), ("skipped", r.skipped, "yellow"),
                                ("warning", r.warnings, "yellow")):
        for path, reason in items:
            out.print(f"[{style}]{label}[/] {escape(path)}: {escape(reason)}", highlight=False)


def info(index: Optional[str] = IndexOpt, config: Optional[Path] = ConfigOpt, as_json: bool = JsonOpt) -> None:
    """Show what an index holds and the settings it was built with."""
    eng = open_engine(index, config, [])
    data = eng.stats()
    eng.close()
    if as_json:
        dump(data)
        return
    t = Table(show_header=False, box=None)
    for key, value in data.items():
        t.add_row(key, json.dumps(value) if isinstance(value, dict) else str(value))
    out.print(t)


def tables(index: Path = IndexOpt, config: Optional[Path] = ConfigOpt,
           where: Optional[list[str]] = typer.Option(None, "--filter", help="only tables of documents that pass "
                                                     "this metadata filter (repeatable)"),
           as_json: bool = JsonOpt) -> None:
    """List the SQL tables an index holds: columns (type, unit), rows, source document and heading."""
    eng = open_engine(index, config, [])
    found = eng.tables(where or None)
    rows = [{"name": t.name, "title": t.title, "heading": t.heading, "source": t.source, "doc_id": t.doc_id,
             "rows": eng.reader().tables().n_rows(t.name),
             "columns": [{"name": c.name, "type": c.type, "unit": c.unit, "header": c.header} for c in t.columns]}
            for t in found]
    eng.close()
    if as_json:
        dump(rows)
        return
    t = Table(title=f"{len(rows)} tables in {index}")
    for col in ("table", "rows", "columns", "source"):
        t.add_column(col, overflow="fold")
    for r in rows:
        cols = ", ".join(f"{c['name']} {c['type']}" + (f" [{c['unit']}]" if c["unit"] else "") for c in r["columns"])
        where_ = escape(r["source"]) + ("".join(f" > {escape(h)}" for h in r["heading"]))
        t.add_row(r["name"], str(r["rows"]), escape(cols), where_)
    out.print(t)


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
        dump(rows)
    else:
        _render_plugins(rows, STAGES)


def _render_plugins(rows: list[dict[str, Any]], stages) -> None:
    t = Table(title="ragkit plugins")
    for col in ("stage", "name", "parameters (default)"):
        t.add_column(col)
    for r in rows:
        params = ", ".join(f"{p['name']}={p['default']!r}" for p in r["params"]) or "-"
        if r["extensions"]:
            params = f"files: {' '.join(r['extensions'])}" + ("" if params == "-" else f"; {params}")
        t.add_row(r["stage"], r["name"], params)
    out.print(t)
    empty = [s for s in stages if not any(r["stage"] == s for r in rows)]
    if empty:
        out.print("stages with no plugin installed yet: " + ", ".join(empty), highlight=False)
