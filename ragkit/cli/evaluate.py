"""Commands that measure the pipeline on a dataset: ``eval``, ``ablate`` and ``tune``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer
from rich.table import Table

from ragkit.cli.common import ConfigOpt, JsonOpt, SetOpt, config_path, csv_list, dump, out
from ragkit.cli.progress import eval_progress, variant_bar
from ragkit.errors import RagkitError
from ragkit.evaluate.answers import ANSWER_METRICS


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
    answer_metrics: str = typer.Option(",".join(ANSWER_METRICS), "--answer-metrics",
                                       help="comma-separated answer metrics"),
    max_failures: Optional[int] = typer.Option(None, "--max-failures", help="abort once more judge calls than "
                                               "this have failed (default: never abort; failures are counted)"),
    repeats: int = typer.Option(1, "--repeats", help="score each answer N times; reports mean and spread "
                                "(useful with --judge-temperature > 0)"),
    judge_temperature: float = typer.Option(0.0, "--judge-temperature", help="sampling temperature of the judge"),
    judge_timeout: Optional[float] = typer.Option(None, "--judge-timeout", help="seconds per judge call; slower "
                                                  "calls count as failures"),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="where dataset indexes are cached "
                                             "(default: $RAGKIT_CACHE or ~/.cache/ragkit)"),
    out_json: Optional[Path] = typer.Option(None, "--out",
                                            help="write the full report (aggregate + per query) as JSON"),
    out_md: Optional[Path] = typer.Option(None, "--markdown", help="write a Markdown summary"),
    as_json: bool = JsonOpt,
) -> None:
    """Retrieval metrics of the configured pipeline on a dataset (the corpus is indexed once and cached); with
    --answers also answer metrics, judged by an explicitly configured --judge."""
    from ragkit.evaluate.runner import dataset_engine, evaluate_retrieval

    wanted_answers = csv_list(answer_metrics)
    judge_obj = None
    if answers:  # check the judge before any indexing: a misconfiguration fails in a second, not after minutes
        judge_obj = _judge(wanted_answers, judge, judge_model, judge_backend, judge_timeout, judge_temperature,
                           cache_dir)
    elif judge:
        raise RagkitError("--judge is used by answer metrics: add --answers")
    ds = _dataset(dataset, split, corpus)
    eng, _ = dataset_engine(ds, config_path(config), overrides or [], cache_dir)
    eng.warm_up(mode=mode)
    progress = eval_progress(as_json)
    report = evaluate_retrieval(eng, ds, split=split, k=k, mode=mode, limit=limit, seed=seed,
                                drop_self_hits=drop_self_hits, progress=progress, metrics=csv_list(metrics))
    if answers:
        _score_answers(report, eng, ds, judge_obj, judge_backend, wanted_answers, mode, repeats, max_failures,
                       progress)
    eng.close()
    _write_report(report, out_json, out_md)
    if as_json:
        dump({k: v for k, v in report.to_dict().items() if k != "rows"})
    else:
        _render_eval(report, dataset, split)


def _dataset(dataset: Path, split: str, corpus: Optional[Path]):
    from ragkit.evaluate.runner import load_dataset

    ds = load_dataset(dataset, split)
    if corpus is not None:
        if not corpus.exists():
            raise RagkitError(f"{corpus}: corpus not found")
        ds.corpus = corpus
    return ds


def _write_report(report, out_json: Optional[Path], out_md: Optional[Path]) -> None:
    if out_json:
        out_json.write_text(json.dumps(report.to_dict(), indent=2, default=str) + "\n")
    if out_md:
        out_md.write_text(report.markdown())


def _judge(wanted: tuple[str, ...], judge: Optional[str], judge_model: Optional[str], backend: str,
           timeout: Optional[float], temperature: float, cache_dir: Optional[Path]):
    """The judge the answer metrics need (None when they need none or none is configured), checked up front."""
    from ragkit.evaluate.answers import check_answer_metrics, needs_judge, require_judge
    from ragkit.evaluate.judge import make_judge

    check_answer_metrics(wanted)
    judge_obj = None
    if judge and needs_judge(wanted):
        judge_obj = make_judge(judge, judge_model or "", backend=backend, temperature=temperature, timeout=timeout,
                               cache_dir=cache_dir)
    require_judge(wanted, judge_obj)
    return judge_obj


def _score_answers(report, eng, ds, judge_obj, backend: str, wanted: tuple[str, ...], mode: Optional[str],
                   repeats: int, max_failures: Optional[int], progress) -> None:
    from ragkit.evaluate.runner import add_answer_metrics

    if backend == "ragas" and judge_obj is not None:
        judge_obj.evaluate(report, eng, ds, metrics=wanted, mode=mode, max_failures=max_failures)
    else:
        add_answer_metrics(report, eng, ds, judge=judge_obj, metrics=wanted, mode=mode, repeats=repeats,
                           max_failures=max_failures, progress=progress)


def _render_eval(report, dataset: Path, split: str) -> None:
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
    judge: Optional[str] = typer.Option(None, "--judge", help="with --answers: LLM judge for faithfulness / "
                                        "answer relevance: local, local:qwen0.5b, local:/path.gguf, openai:URL, "
                                        "cohere"),
    judge_model: Optional[str] = typer.Option(None, "--judge-model", help="judge model name (needed for openai:URL)"),
    judge_temperature: float = typer.Option(0.0, "--judge-temperature", help="sampling temperature of the judge"),
    judge_timeout: Optional[float] = typer.Option(None, "--judge-timeout", help="seconds per judge call; slower "
                                                  "calls count as failures"),
    answer_metrics: Optional[str] = typer.Option(None, "--answer-metrics", help="comma-separated answer metrics "
                                                 "(default: every one the judge, or its absence, allows)"),
    max_failures: Optional[int] = typer.Option(None, "--max-failures", help="judge failures allowed per variant "
                                               "(default: unlimited, counted)"),
    seed: int = typer.Option(0, "--seed", help="seed of the randomization test and bootstrap"),
    out_dir: Path = typer.Option(Path("ablation"), "--out", "-o", help="report directory: report.md, "
                                 "report.html, results.json, plots/, variants/ (resume state)"),
    fresh: bool = typer.Option(False, "--fresh", help="ignore finished variants from an earlier run"),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="where dataset indexes and the shared "
                                             "embedding cache live (default: $RAGKIT_CACHE or ~/.cache/ragkit)"),
    as_json: bool = JsonOpt,
) -> None:
    """Compare pipeline variants on a dataset: metrics, significance, latency, report with plots. Resumable."""
    from ragkit.config import load_config
    from ragkit.evaluate import ablate as ab
    from ragkit.evaluate.report import write_report

    wanted = csv_list(answer_metrics) if answer_metrics else None
    judge_obj = _ablate_judge(answers, wanted, judge, judge_model, judge_timeout, judge_temperature, cache_dir)
    ds = ab.load_ablation_dataset(dataset, split, corpus)
    base_cfg = load_config(config_path(base), overrides or [])
    variants = _plan_variants(base_cfg, vary, variant, grid, ladder, rerank, rules, expand)
    settings = ab.AblationSettings(metrics=csv_list(metrics), k=k, limit=limit, answers=answers, seed=seed,
                                   split=split, answer_metrics=wanted, max_failures=max_failures)
    n_queries = len(ds.queries[:limit] if limit else ds.queries)
    with variant_bar(len(variants), n_queries, as_json) as progress:
        result = ab.Ablation(ds, base_cfg, variants, out_dir, settings=settings, cache_root=cache_dir,
                             progress=progress, fresh=fresh, judge=judge_obj).run()
    paths = write_report(result, out_dir)
    failed = [v for v in result["variants"] if v["status"] == "failed"]
    if as_json:
        dump({k_: v for k_, v in result.items() if k_ != "base_config"})
    else:
        _render_ablation(result, paths, dataset)
    if failed:
        raise typer.Exit(1)


def _ablate_judge(answers: bool, wanted: Optional[tuple[str, ...]], judge: Optional[str],
                  judge_model: Optional[str], timeout: Optional[float], temperature: float,
                  cache_dir: Optional[Path]):
    """ablate's judge: only with --answers; the native backend (ablate scores one answer at a time)."""
    if not answers:
        if judge or wanted:
            raise RagkitError(f"{'--judge' if judge else '--answer-metrics'} is used by answer metrics: add --answers")
        return None
    if wanted is not None:
        return _judge(wanted, judge, judge_model, "native", timeout, temperature, cache_dir)
    from ragkit.evaluate.judge import make_judge

    return make_judge(judge, judge_model or "", temperature=temperature, timeout=timeout, cache_dir=cache_dir)


def _plan_variants(base_cfg, vary: Optional[list[str]], named: Optional[list[str]], grid: bool, ladder: bool,
                   rerank: str, rules: str, expand: str) -> list[Any]:
    """The variants to compare, from --ladder, --vary (one at a time or --grid) and --variant."""
    from ragkit.evaluate import variants as va

    axes = [va.parse_vary(v, base_cfg) for v in vary or []]
    if ladder:
        if axes or grid:
            raise RagkitError("--ladder: not combinable with --vary/--grid (run them as separate ablations)")
        variants = va.ladder(va.parse_spec(rerank), va.parse_spec(rules) if rules else va.DEFAULT_LADDER_RULES,
                             va.parse_spec(expand))
    elif axes:
        variants = va.full_grid(base_cfg, axes) if grid else va.one_at_a_time(base_cfg, axes)
    elif named:
        variants = [va.Variant("base", {}, None, "the base config")]
    else:
        raise RagkitError("ablate: nothing to compare (give --vary AXIS=V1,V2, --variant or --ladder)")
    for spec in named or []:
        v = va.parse_variant(spec)
        v.parent = "base" if any(x.name == "base" for x in variants) else None
        variants.append(v)
    return variants


def _render_ablation(result: dict[str, Any], paths: dict[str, Any], dataset: Path) -> None:
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


def tune(
    dataset: Optional[Path] = typer.Option(None, "--dataset", "-d", help="dataset directory (BEIR or QA layout); "
                                           "with --index, only its --test-split is read (real test questions)"),
    index: Optional[str] = typer.Option(None, "--index", "-i", help="tune over this existing index (directory or "
                                        "store URL) with synthetic --questions, no labels needed: its chunks and "
                                        "embeddings are reused, trials that would change them are skipped"),
    corpus: Optional[Path] = typer.Option(None, "--corpus", help="corpus to index when the dataset has none "
                                          "beside it (e.g. eval_sets/beacon with corpora/beacon)"),
    dev_split: str = typer.Option("dev", "--dev-split", help="qrels split the search selects on"),
    test_split: Optional[str] = typer.Option("test", "--test-split", help="qrels split the winner is proved on, "
                                             "once; the same as --dev-split: a seeded half of it each"),
    dev_fraction: Optional[float] = typer.Option(None, "--dev-fraction", help="divide --dev-split's questions: this "
                                                 "fraction (seeded) for the search, the rest for the test"),
    questions: Optional[Path] = typer.Option(None, "--questions", help="synthetic dev questions (JSONL from "
                                             "`ragkit finetune queries`); the real --test-split proves the winner "
                                             "(with --index and no --dataset: a held-out --dev-fraction of them)"),
    base: Optional[Path] = typer.Option(None, "--base", "--config", "-c", help="base pipeline config (TOML), also "
                                        "the baseline; default: ./ragkit.toml when it exists"),
    overrides: Optional[list[str]] = SetOpt,
    space: Optional[Path] = typer.Option(None, "--space", help="search space (TOML; default: the shipped one)"),
    skip_stage: Optional[list[str]] = typer.Option(None, "--skip-stage", help="leave a stage of the space out "
                                                   "(repeatable), e.g. --skip-stage chunking"),
    strategy: str = typer.Option("greedy", "--strategy", help="greedy (stage by stage) or bayes (optuna TPE; "
                                 "extra ragkit[tune])"),
    trials: int = typer.Option(30, "--trials", help="bayes: how many trials"),
    budget_ms: Optional[float] = typer.Option(None, "--budget-ms", help="a configuration whose p95 latency per "
                                              "query exceeds this is not eligible"),
    max_minutes: Optional[float] = typer.Option(None, "--max-minutes", help="start no trial after this long"),
    objective: str = typer.Option("ndcg@10", "--objective", help="metric to maximise, or a weighted mean: "
                                  "ndcg@10:0.7,recall@100:0.3"),
    metrics: str = typer.Option("ndcg@10,recall@100,mrr@10", "--metrics", help="metrics reported per trial"),
    k: int = typer.Option(100, "--k", "-k", help="retrieval depth per query"),
    seed: int = typer.Option(0, "--seed", help="seed of the search, the dev/test division and the statistics"),
    out_dir: Path = typer.Option(Path("tune"), "--out", "-o", help="ragkit.toml (the winner), report.md/.html, "
                                 "results.json, trials.jsonl (resume state)"),
    fresh: bool = typer.Option(False, "--fresh", help="ignore trials.jsonl from an earlier run"),
    refit: Optional[list[str]] = typer.Option(None, "--refit", help="OLD=NEW: after the search, the chosen "
                                              "pipeline uses model NEW (e.g. retrained with the dev questions) "
                                              "where it searched with OLD, in the test run and the written config "
                                              "(repeatable)"),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="where dataset indexes and the shared "
                                             "embedding cache live (default: $RAGKIT_CACHE or ~/.cache/ragkit)"),
    as_json: bool = JsonOpt,
) -> None:
    """Search the pipeline for this data (greedy or bayes) under a latency budget, selecting on dev questions;
    prove the winner against the baseline on the test questions. Resumable."""
    from ragkit.config import load_config
    from ragkit.evaluate import tune as tu
    from ragkit.cli.progress import tune_progress

    settings = tu.TuneSettings(strategy=strategy, objective=tu.parse_objective(objective),
                               metrics=csv_list(metrics), budget_ms=budget_ms, max_minutes=max_minutes,
                               trials=trials, k=k, seed=seed)
    if strategy == "bayes":
        tu.require_optuna()
    base_cfg = load_config(config_path(base), overrides or [])
    test_source = "test split"
    if index is not None:
        if questions is None:
            raise RagkitError("--index needs --questions (synthetic questions from `ragkit finetune queries`)")
        base_cfg = tu.index_base(index, base_cfg)
        dev, test, test_source = tu.index_datasets(index, questions, dataset=dataset, test_split=test_split,
                                                   corpus=corpus, dev_fraction=dev_fraction, seed=seed)
    elif dataset is None:
        raise RagkitError("give --dataset (labelled questions), or --index with --questions (synthetic ones)")
    else:
        dev, test = tu.tune_datasets(dataset, dev_split=dev_split, test_split=test_split, questions=questions,
                                     corpus=corpus, dev_fraction=dev_fraction, seed=seed)
    search_space = tu.load_space(space, base_cfg, skip_stage or ())
    with tune_progress(as_json) as progress:
        result = tu.Tuner(dev, base_cfg, search_space, out_dir, test=test, settings=settings, cache_root=cache_dir,
                          progress=progress, fresh=fresh, index=index, test_source=test_source,
                          refit=tu.parse_refit(refit)).run()
    paths = tu.write_outputs(result, out_dir)
    t = result["tune"]
    if as_json:
        dump({"tune": {k_: v for k_, v in t.items() if k_ != "space"}, "outputs": {k_: str(p) for k_, p in
                                                                                  paths.items()}})
        return
    primary = result["settings"]["primary"]
    out.print(f"{t['trials']} trials in {t['search_seconds']:.0f} s"
              + (f" ({t['stopped']})" if t["stopped"] else "") + f"; winner: {t['winner']['name']} "
              f"(dev {primary} {t['winner']['dev_metrics'][primary]:.4f}, p95 {t['winner']['dev_p95_ms']:.1f} ms)",
              highlight=False)
    if t["test"]:
        c = t["test"]["comparison"][primary]
        out.print(f"test ({t['test']['source']}, {t['test']['queries']}) {primary}: winner "
                  f"{t['test']['winner']['metrics'][primary]:.4f}, baseline "
                  f"{t['test']['baseline']['metrics'][primary]:.4f}, Δ {c['delta']:+.4f} "
                  f"[{c['ci_low']:+.4f}, {c['ci_high']:+.4f}] p={c['p_value']:.3f}", highlight=False)
    out.print(f"config: {paths['config']}  report: {paths['md']}  {paths['html']}", highlight=False)
