"""The ``ragkit`` command: parse options, call the Engine, render with rich (or JSON). No business logic."""

from __future__ import annotations

import json
import sys
import time
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
    if not text.strip():
        raise RagkitError("the question is empty: pass the text to ask, e.g. ragkit query \"How do I rotate a key?\"")
    eng = _open(index, config, overrides)
    if eng.reader() is None:
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
    corpus: Optional[Path] = typer.Option(None, "--corpus", help="corpus to index when the dataset has none of its "
                                          "own (e.g. --dataset eval_sets/beacon --corpus corpora/beacon)"),
    k: int = typer.Option(100, "--k", "-k", help="retrieval depth per query"),
    mode: Optional[str] = typer.Option(None, "--mode", help="bm25, dense or hybrid (default: retrieval.mode)"),
    metrics: str = typer.Option("ndcg@10,recall@100,mrr@10,map@100,hit_rate@10", "--metrics",
                                help="comma-separated ranx metric names"),
    drop_self_hits: bool = typer.Option(False, "--drop-self-hits", help="ignore retrieved documents whose id "
                                        "equals the query id (BEIR does this for ArguAna-style sets)"),
    limit: Optional[int] = typer.Option(None, "--limit", help="evaluate a sample of N queries (drawn with --seed)"),
    seed: int = typer.Option(0, "--seed", help="seed of the --limit sample"),
    answers: bool = typer.Option(False, "--answers", help="also answer each query with the configured generator "
                                 "and score the answers (faithfulness, answer relevance, context precision/recall)"),
    judge: Optional[str] = typer.Option(None, "--judge", help="LLM judge for faithfulness / answer relevance: local "
                                        "(offline qwen1.5b), local:qwen0.5b, local:/path.gguf, openai:URL, cohere"),
    judge_model: Optional[str] = typer.Option(None, "--judge-model", help="judge model name (needed for openai:URL)"),
    judge_backend: str = typer.Option("native", "--judge-backend", help="native (ragkit's prompts) or ragas "
                                      "(ragas metrics against an OpenAI-compatible --judge; extra ragkit[ragas])"),
    answer_metrics: str = typer.Option("faithfulness,answer_relevance,context_precision,context_recall",
                                       "--answer-metrics", help="comma-separated answer metrics"),
    max_failures: Optional[int] = typer.Option(None, "--max-failures", help="abort once more judge calls than "
                                               "this have failed (default: never abort; failures are counted)"),
    repeats: int = typer.Option(1, "--repeats", help="score each answer N times; reports mean and spread "
                                "(useful with --judge-temperature > 0)"),
    judge_temperature: float = typer.Option(0.0, "--judge-temperature", help="sampling temperature of the judge"),
    judge_timeout: Optional[float] = typer.Option(None, "--judge-timeout", help="seconds per judge call; slower "
                                                  "calls count as failures"),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="where dataset indexes are cached "
                                             "(default: $RAGKIT_CACHE or ~/.cache/ragkit)"),
    out_json: Optional[Path] = typer.Option(None, "--out", help="write the full report (aggregate + per query) as JSON"),
    out_md: Optional[Path] = typer.Option(None, "--markdown", help="write a Markdown summary"),
    as_json: bool = JsonOpt,
) -> None:
    """Retrieval metrics of the configured pipeline on a dataset (the corpus is indexed once and cached); with
    --answers also answer metrics, judged by an explicitly configured --judge."""
    from ragkit.evaluate.runner import dataset_engine, evaluate_retrieval, load_dataset

    wanted_answers = tuple(m.strip() for m in answer_metrics.split(",") if m.strip())
    judge_obj = None
    if answers:  # check the judge before any indexing: a misconfiguration fails in a second, not after minutes
        from ragkit.evaluate.answers import check_answer_metrics, needs_judge, require_judge
        from ragkit.evaluate.judge import Judge, JudgeCache, make_judge_llm
        from ragkit.evaluate.runner import default_cache_root

        check_answer_metrics(wanted_answers)
        if judge and needs_judge(wanted_answers):
            if judge_backend == "ragas":
                from ragkit.evaluate.ragas_judge import RagasJudge

                judge_obj = RagasJudge(judge, judge_model or "", timeout=judge_timeout,
                                       cache_dir=cache_dir or default_cache_root())
            elif judge_backend == "native":
                judge_obj = Judge(make_judge_llm(judge, judge_model or "", judge_timeout),
                                  JudgeCache((cache_dir or default_cache_root()) / "judge-cache.sqlite"),
                                  temperature=judge_temperature, timeout=judge_timeout)
            else:
                raise RagkitError(f"--judge-backend {judge_backend!r}: unknown (native, ragas)")
        require_judge(wanted_answers, judge_obj)
    elif judge:
        raise RagkitError("--judge is used by answer metrics: add --answers")
    ds = load_dataset(dataset, split)
    if corpus is not None:
        if not corpus.exists():
            raise RagkitError(f"{corpus}: corpus not found")
        ds.corpus = corpus
    eng, _ = dataset_engine(ds, _config_path(config), overrides or [], cache_dir)
    eng.warm_up()
    progress = _eval_progress(as_json)
    report = evaluate_retrieval(eng, ds, split=split, k=k, mode=mode, limit=limit, seed=seed,
                                drop_self_hits=drop_self_hits, progress=progress,
                                metrics=tuple(m.strip() for m in metrics.split(",") if m.strip()))
    if answers:
        from ragkit.evaluate.runner import add_answer_metrics

        if judge_backend == "ragas" and judge_obj is not None:
            judge_obj.evaluate(report, eng, ds, metrics=wanted_answers, mode=mode, max_failures=max_failures)
        else:
            add_answer_metrics(report, eng, ds, judge=judge_obj, metrics=wanted_answers, mode=mode,
                               repeats=repeats, max_failures=max_failures, progress=progress)
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
    if report.answer_metrics:
        _render_answer_metrics(report)
    for w in report.warnings:
        out.print(f"[yellow]warning[/] {w}", highlight=False)


class _PhaseLines:
    """Progress as plain stderr lines (``<prefix>: ...``) for when stderr is not a terminal (a log file, CI), where a
    bar draws nothing: every tenth of a phase's items with the time spent and an estimate of the rest, so a long
    background run (an LLM reranker or judge: hours) can be followed in its log."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.phase: object = None
        self.t_phase = time.monotonic()
        self.before = 0  # items of the phase done at its first report (resumed ones, and the first), not timed

    def say(self, text: str) -> None:
        err.print(f"{self.prefix}: {text}", markup=False, highlight=False, soft_wrap=True)

    def tick(self, label: str, done: int, total: int, key: object = None) -> None:
        """Report ``done``/``total`` of the phase ``key`` (default: ``label``) at every tenth and at the end."""
        now, key = time.monotonic(), label if key is None else key
        if self.phase != key:
            self.phase, self.t_phase, self.before = key, now, done
        if done == total or done % max(1, total // 10) == 0:
            ran, left, spent = done - self.before, total - done, now - self.t_phase
            eta = f", ~{_clock(spent / ran * left)} left" if ran > 0 and left else ""
            self.say(f"{label} {done}/{total} ({_clock(spent)}{eta})")


class _PlainProgress:
    """`ragkit ablate`'s plain progress lines: each variant's start and end, and its phases as :class:`_PhaseLines`."""

    def __init__(self, n_variants: int) -> None:
        self.n_variants = n_variants
        self.t_variant = time.monotonic()
        self.lines = _PhaseLines("ablate")

    def __call__(self, name: str, phase: str, done: int, total: int) -> None:
        now = time.monotonic()
        if phase == "start":
            self.t_variant, self.lines.phase = now, None
            self.lines.say(f"variant {done + 1}/{self.n_variants} {name}")
        elif phase == "end":
            self.lines.say(f"{name} finished ({_clock(now - self.t_variant)})")
        elif total:
            self.lines.tick(f"{name}: {phase}", done, total, key=(name, phase))


def _clock(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def _eval_progress(quiet: bool):
    """A bar-like counter on a terminal, plain ``eval: answers 10/100 (...)`` lines otherwise, nothing with --json."""
    if quiet:
        return None
    if not err.is_terminal:
        return _PhaseLines("eval").tick

    def progress(stage: str, done: int, total: int) -> None:
        err.print(f"\r{stage} {done}/{total}", end="", highlight=False)
        if done == total:
            err.print()

    return progress


def _render_answer_metrics(report) -> None:
    j = report.judge
    title = "answer metrics"
    if j:
        title += f" (judge {j.get('model')}" + (f": {j['calls']} calls, {j['cache_hits']} cached)"
                                                if j.get("calls") is not None else f", {j.get('backend')})")
    t = Table(title=title)
    for col, just in (("metric", "left"), ("mean", "right"), ("scored", "right"), ("judge failures", "left"),
                      ("skipped", "right"), ("spread", "right")):
        t.add_column(col, justify=just)
    for m, a in report.answer_metrics.items():
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(a["failure_kinds"].items()))
        t.add_row(m, "n/a" if a["mean"] is None else f"{a['mean']:.4f}", f"{a['n']}/{a['queries']}",
                  f"{a['failures']}" + (f" ({kinds})" if kinds else ""), str(a["skipped"]),
                  f"{a['spread']:.4f}" if "spread" in a else "")
    out.print(t)


@app.command()
def ablate(
    dataset: Path = typer.Option(..., "--dataset", "-d", help="dataset directory (BEIR or QA layout)"),
    corpus: Optional[Path] = typer.Option(None, "--corpus", help="corpus to index when the dataset has none "
                                          "beside it (e.g. eval_sets/beacon with corpora/beacon)"),
    base: Optional[Path] = typer.Option(None, "--base", "--config", "-c", help="base pipeline config (TOML); "
                                        "default: ./ragkit.toml when it exists"),
    overrides: Optional[list[str]] = SetOpt,
    vary: Optional[list[str]] = typer.Option(None, "--vary", help="AXIS=V1,V2: retrieval=bm25,dense,hybrid; "
                                             "fusion=rrf,minmax; rerank=none,rules; filters=dedup+mmr; or any "
                                             "dotted key, e.g. chunker.chunk_size=128,256 (repeatable)"),
    variant: Optional[list[str]] = typer.Option(None, "--variant", help="a named variant: 'NAME: key=value, "
                                                "key=value' (repeatable)"),
    grid: bool = typer.Option(False, "--grid", help="every combination of the --vary axes instead of one "
                              "change at a time"),
    ladder: bool = typer.Option(False, "--ladder", help="BM25 -> dense -> hybrid (RRF, min-max) -> + rerank -> "
                                "+ rules -> + query expansion, each step against the one before"),
    rerank: str = typer.Option("llm:depth=10", "--rerank", help="the ladder's rerank step: NAME[:k=v,...], "
                               "JSON, or none (e.g. cross-encoder:model=/path,depth=10)"),
    rules: str = typer.Option("", "--rules", help="the ladder's rules step (default: the rules reranker "
                              "preferring the newest version and demoting status=deprecated), or none"),
    expand: str = typer.Option("prf", "--expand", help="the ladder's query-expansion step: a transform "
                               "NAME[:k=v,...], JSON, or none"),
    split: str = typer.Option("test", "--split", help="qrels split (BEIR layout)"),
    k: int = typer.Option(100, "--k", "-k", help="retrieval depth per query"),
    metrics: str = typer.Option("ndcg@10,recall@100,mrr@10,hit_rate@10", "--metrics",
                                help="comma-separated ranx metric names; the first is the primary one"),
    limit: Optional[int] = typer.Option(None, "--limit", help="only the first N queries"),
    answers: bool = typer.Option(False, "--answers", help="also run the generator: answer metrics (cites a "
                                 "gold document; token F1 against the reference answer when the dataset has one)"),
    seed: int = typer.Option(0, "--seed", help="seed of the randomization test and bootstrap"),
    out_dir: Path = typer.Option(Path("ablation"), "--out", "-o", help="report directory: report.md, "
                                 "report.html, results.json, plots/, variants/ (resume state)"),
    fresh: bool = typer.Option(False, "--fresh", help="ignore finished variants from an earlier run"),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="where dataset indexes and the shared "
                                             "embedding cache live (default: $RAGKIT_CACHE or ~/.cache/ragkit)"),
    as_json: bool = JsonOpt,
) -> None:
    """Compare pipeline variants on a dataset: metrics, significance, latency, report with plots. Resumable."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from ragkit.config import load_config
    from ragkit.evaluate import ablate as ab
    from ragkit.evaluate.report import write_report

    ds = ab.load_ablation_dataset(dataset, split, corpus)
    base_cfg = load_config(_config_path(base), overrides or [])
    axes = [ab.parse_vary(v, base_cfg) for v in vary or []]
    if ladder:
        if axes or grid:
            raise RagkitError("--ladder: not combinable with --vary/--grid (run them as separate ablations)")
        variants = ab.ladder(ab.parse_spec(rerank), ab.parse_spec(rules) if rules else ab.DEFAULT_LADDER_RULES,
                             ab.parse_spec(expand))
    elif axes:
        variants = ab.full_grid(base_cfg, axes) if grid else ab.one_at_a_time(base_cfg, axes)
    elif variant:
        variants = [ab.Variant("base", {}, None, "the base config")]
    else:
        raise RagkitError("ablate: nothing to compare (give --vary AXIS=V1,V2, --variant or --ladder)")
    for spec in variant or []:
        v = ab.parse_variant(spec)
        v.parent = "base" if any(x.name == "base" for x in variants) else None
        variants.append(v)
    settings = ab.AblationSettings(metrics=tuple(m.strip() for m in metrics.split(",") if m.strip()),
                                   k=k, limit=limit, answers=answers, seed=seed, split=split)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=err, transient=True, disable=as_json) as bar:
        n_q = len(ds.queries[:limit] if limit else ds.queries)
        task = bar.add_task("variants", total=len(variants) * n_q)

        lines = _PlainProgress(len(variants)) if not (as_json or err.is_terminal) else None

        def progress(name: str, phase: str, done: int, total: int) -> None:
            if phase == "end":
                bar.update(task, completed=done * n_q, description=f"variants ({done}/{len(variants)})")
            elif phase == "start":
                bar.update(task, completed=done * n_q, description=f"{name}")
            else:
                bar.update(task, description=f"{name}: {phase} {done}/{total}")
            if lines:
                lines(name, phase, done, total)

        result = ab.Ablation(ds, base_cfg, variants, out_dir, settings=settings, cache_root=cache_dir,
                             progress=progress, fresh=fresh).run()
    paths = write_report(result, out_dir)
    failed = [v for v in result["variants"] if v["status"] == "failed"]
    if as_json:
        _dump({k_: v for k_, v in result.items() if k_ != "base_config"})
    else:
        from ragkit.evaluate.report import main_rows, skipped_rows

        rows = main_rows(result)
        if rows:
            primary = result["settings"]["primary"]
            t = Table(title=f"ablate {dataset} ({result['dataset']['queries']} queries; ▲/▼ significant, "
                            "★ Pareto front)")
            cols = ["variant", "vs", primary, f"Δ {primary} vs ref [95% CI] p", "latency p50 / p95 (ms)"]
            for c in cols:
                t.add_column(c, no_wrap=True)
            for r in rows:
                t.add_row(*[r[c] for c in cols])
            out.print(t)
        for r in skipped_rows(result):
            out.print(f"[yellow]{r['status']}[/] {r['variant']}: {r['reason']}", highlight=False)
        out.print(f"report: {paths['md']}  {paths['html']}  {paths['json']}", highlight=False)
    if failed:
        raise typer.Exit(1)


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


@app.command()
def serve(
    index: Path = IndexOpt,
    config: Optional[Path] = ConfigOpt,
    overrides: Optional[list[str]] = SetOpt,
    host: Optional[str] = typer.Option(None, "--host", help="address to listen on (default: serve.host, "
                                       "127.0.0.1); other than loopback only with --api-keys"),
    port: Optional[int] = typer.Option(None, "--port", "-p", help="port (default: serve.port, 8000)"),
    api_keys: Optional[Path] = typer.Option(None, "--api-keys", help="keys.toml: hashed API keys, each with a "
                                            "tenant and its metadata filter"),
    new_key: Optional[str] = typer.Option(None, "--new-key", metavar="TENANT", help="print a fresh API key for "
                                          "TENANT and the keys.toml entry holding its hash, then exit"),
) -> None:
    """HTTP API over the index: /v1/retrieve, /v1/query, OpenAI-compatible /v1/chat/completions; docs at /docs."""
    from ragkit.serve.server import new_key_entry, run

    if new_key is not None:
        key, entry = new_key_entry(new_key)  # stdout: the key; stderr: its keys.toml entry (valid TOML)
        sys.stdout.write(key + "\n")
        sys.stderr.write(f"# key for tenant {new_key!r}: printed on stdout once, only its hash is kept here\n"
                         + entry)
        return
    run(index, _config_path(config), overrides or [], host, port, api_keys)


finetune_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None,
                           help="Train models on your own corpus: synthetic questions, a cross-encoder reranker, "
                                "an adapted embedder (all on CPU, offline).")
app.add_typer(finetune_app, name="finetune")
TrainOpt = typer.Option(..., "--train", "-t", help="training data: a JSONL file from 'finetune queries', a BEIR "
                        "directory (with --split) or a QA directory (qa.jsonl); repeatable")
OutModelOpt = typer.Option(..., "--out", "-o", help="directory to save the model in")
HeldoutOpt = typer.Option(0.1, "--heldout", help="share of the questions kept aside for the before/after evaluation")
MinutesOpt = typer.Option(25.0, "--max-minutes", help="training time budget (stops after the step that crosses it)")
MineIndexOpt = typer.Option(None, "--index", "-i", help="index to mine missing hard negatives from (default: a "
                            "dataset directory's own corpus, indexed once and cached; else random negatives)")
TrainSplitOpt = typer.Option("train", "--split", help="qrels split of a BEIR directory (never its test split)")
EpochsOpt = typer.Option(1.0, "--epochs", help="passes over the training questions (the time budget may stop sooner)")
TrainSeedOpt = typer.Option(0, "--seed", help="seed of the held-out split, negatives, order and initialisation")
TrainCacheOpt = typer.Option(None, "--cache-dir", help="where dataset indexes are cached (negative mining)")


def _bar(label: str, quiet: bool):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, \
        TimeRemainingColumn

    bars = Progress(TextColumn("{task.description:>10}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TextColumn("eta"), TimeRemainingColumn(), console=err, transient=True,
                    disable=quiet or not err.is_terminal)
    tasks: dict[str, Any] = {}

    def progress(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = bars.add_task(stage, total=total)
        bars.update(tasks[stage], completed=done, total=total)

    return bars, progress


@finetune_app.command("queries")
def finetune_queries(
    index: Path = IndexOpt,
    config: Optional[Path] = ConfigOpt,
    overrides: Optional[list[str]] = SetOpt,
    out_file: Path = typer.Option(..., "--out", "-o", help="JSONL file to write (an interrupted run resumes)"),
    n: int = typer.Option(2000, "--n", help="questions to keep"),
    per_chunk: int = typer.Option(2, "--per-chunk", min=1, max=3, help="questions asked per sampled chunk (1-3)"),
    llm_spec: Optional[str] = typer.Option(None, "--llm", help="local (qwen0.5b), local:qwen1.5b, local:/path.gguf, "
                                           "openai:URL, cohere (default: the configured generator's LLM, else "
                                           "local:qwen0.5b)"),
    round_trip_k: int = typer.Option(20, "--round-trip-k", help="keep a question only if its chunk is in this "
                                     "first-stage top k"),
    negatives: int = typer.Option(7, "--negatives", help="hard negatives stored per question"),
    mode: str = typer.Option("hybrid", "--mode", help="first-stage retrieval for the round trip and negatives"),
    seed: int = typer.Option(0, "--seed", help="seed of the chunk sample and negative draw"),
    as_json: bool = JsonOpt,
) -> None:
    """Have an LLM write questions for sampled chunks of the index; keep those that pass the filters and
    round-trip; store them with hard negatives. Resumable and deterministic for a seed."""
    from ragkit.finetune.data import first_stage_engine
    from ragkit.finetune.synth import SynthSettings, generate_questions
    from ragkit.llm import make_llm

    if n < 1:
        raise RagkitError("--n must be at least 1")
    eng = first_stage_engine(index, _config_path(config), overrides or [])
    if llm_spec:
        llm = make_llm(llm_spec)
    else:
        llm = getattr(eng.generator, "llm", None) or make_llm("local:qwen0.5b")
    settings = SynthSettings(n=n, per_chunk=per_chunk, seed=seed, round_trip_k=round_trip_k, negatives=negatives,
                             mode=mode)
    bars, progress = _bar("questions", as_json)
    with bars:
        report = generate_questions(eng, llm, out_file, settings, progress=progress)
    eng.close()
    if as_json:
        _dump(report.to_dict())
        return
    out.print(f"{report.kept} questions in {out_file} ({report.generated} written by {report.llm} for "
              f"{report.chunks_processed} chunks this run, {report.resumed_from} from an earlier run; "
              f"{report.seconds:.0f} s)", highlight=False)
    if report.dropped:
        out.print("dropped: " + ", ".join(f"{k} {v}" for k, v in sorted(report.dropped.items())), highlight=False)
    if report.kept < n:
        out.print(f"[yellow]warning[/] only {report.kept} of {n} questions: the index ran out of chunks",
                  highlight=False)


def _load_training(train: list[Path], split: str, index: Optional[Path], config: Optional[Path],
                   overrides: Optional[list[str]], negatives: int, heldout: float, seed: int,
                   cache_dir: Optional[Path], quiet: bool):
    from ragkit.finetune.data import split_heldout, training_set

    if split == "test" and any(p.is_dir() for p in train):
        raise RagkitError("--split test: training on the test queries would make the evaluation meaningless")
    bars, progress = _bar("negatives", quiet)
    with bars:
        examples, notes = training_set(train, split=split, index=index, config=_config_path(config),
                                       overrides=overrides or [], cache_dir=cache_dir, negatives=negatives,
                                       seed=seed, progress=progress)
    if not quiet:
        for note in notes:
            out.print(note, highlight=False)
    return split_heldout(examples, heldout, seed)


def _render_card(card: dict[str, Any], out_dir: Path, as_json: bool) -> None:
    if as_json:
        _dump(card)
        return
    t = Table(title=f"{card['kind']} saved in {out_dir}", show_header=False, box=None)
    t.add_row("trained", f"{card['steps']} steps, {card['epochs_done']} epochs, {card['minutes']} min "
                         f"({card['stopped_by']})")
    t.add_row("final loss", str(card["final_loss_mean20"]))
    for label, metrics in card["heldout"].items():
        if metrics:
            t.add_row(f"held-out {label}", "  ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
    if card.get("loss_plot"):
        t.add_row("loss curve", str(out_dir / card["loss_plot"]))
    out.print(t)


@finetune_app.command("reranker")
def finetune_reranker(
    train: list[Path] = TrainOpt,
    out_dir: Path = OutModelOpt,
    split: str = TrainSplitOpt,
    index: Optional[Path] = MineIndexOpt,
    config: Optional[Path] = ConfigOpt,
    overrides: Optional[list[str]] = SetOpt,
    base: str = typer.Option("all-MiniLM-L6-v2", "--base", help="model to start from (offline MiniLM by default)"),
    loss: str = typer.Option("listwise", "--loss", help="listwise (softmax over positive + negatives) or bce"),
    epochs: float = EpochsOpt,
    negatives: int = typer.Option(3, "--negatives", help="hard negatives per question in each training group"),
    groups: int = typer.Option(4, "--groups-per-step", help="questions per optimisation step"),
    max_length: int = typer.Option(160, "--max-length", help="tokens per (question, passage) pair"),
    lr: float = typer.Option(3e-5, "--lr"),
    heldout: float = HeldoutOpt,
    max_minutes: float = MinutesOpt,
    seed: int = TrainSeedOpt,
    cache_dir: Optional[Path] = TrainCacheOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Train a cross-encoder on questions with hard negatives; the saved folder is what the cross-encoder
    reranker loads ([[rerankers]] name = "cross-encoder", model = "OUT")."""
    from ragkit.finetune.reranker import train_reranker

    tr, held = _load_training(train, split, index, config, overrides, negatives, heldout, seed, cache_dir, as_json)
    bars, progress = _bar("train", as_json)
    with bars:
        card = train_reranker(tr, out_dir, heldout=held, base=base, loss=loss, epochs=epochs, groups_per_step=groups,
                              negatives=negatives, max_length=max_length, lr=lr, max_minutes=max_minutes, seed=seed,
                              progress=progress)
    _render_card(card, out_dir, as_json)


@finetune_app.command("embedder")
def finetune_embedder(
    train: list[Path] = TrainOpt,
    out_dir: Path = OutModelOpt,
    split: str = TrainSplitOpt,
    index: Optional[Path] = MineIndexOpt,
    config: Optional[Path] = ConfigOpt,
    overrides: Optional[list[str]] = SetOpt,
    base: str = typer.Option("all-MiniLM-L6-v2", "--base", help="embedding model to adapt"),
    lora: bool = typer.Option(False, "--lora", help="train LoRA adapters (peft) instead of every weight"),
    lora_r: int = typer.Option(8, "--lora-r", help="LoRA rank"),
    epochs: float = EpochsOpt,
    batch_size: int = typer.Option(32, "--batch-size", help="questions per step (in-batch negatives)"),
    hard_negatives: int = typer.Option(1, "--hard-negatives", help="hard negatives per question in a batch"),
    lr: Optional[float] = typer.Option(None, "--lr", help="default 2e-5 (full) or 2e-4 (LoRA)"),
    max_seq_length: int = typer.Option(256, "--max-seq-length"),
    heldout: float = HeldoutOpt,
    max_minutes: float = MinutesOpt,
    seed: int = TrainSeedOpt,
    cache_dir: Optional[Path] = TrainCacheOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Adapt the embedding model with contrastive loss (in-batch + hard negatives), full or LoRA; re-embed an
    index with: ragkit ingest PATHS --rebuild --set embedder.model=OUT"""
    from ragkit.finetune.embedder import train_embedder

    tr, held = _load_training(train, split, index, config, overrides, max(hard_negatives, 1), heldout, seed,
                              cache_dir, as_json)
    bars, progress = _bar("train", as_json)
    with bars:
        card = train_embedder(tr, out_dir, heldout=held, base=base, lora=lora, lora_r=lora_r, lora_alpha=2 * lora_r,
                              epochs=epochs, batch_size=batch_size, hard_negatives=hard_negatives, lr=lr,
                              max_seq_length=max_seq_length, max_minutes=max_minutes, seed=seed, progress=progress)
    _render_card(card, out_dir, as_json)


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
