"""Retrieval evaluation of a pipeline on a dataset directory (BEIR or QA layout).

The dataset's corpus is indexed once per (corpus content, index-shaping config) under a cache directory and
reused by every later run with the same pair.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ragkit.config import load_config
from ragkit.errors import RagkitError
from ragkit.evaluate import default_cache_root
from ragkit.evaluate.datasets import Dataset, doc_keyer, load_beir, load_qa
from ragkit.evaluate.retrieval import DEFAULT_METRICS, evaluate_run, run_queries
from ragkit.evaluate.runs import doc_key_for, indexed_doc_ids
from ragkit.evaluate.stats import percentile


def load_dataset(root: str | Path, split: str = "test") -> Dataset:
    root = Path(root)
    if (root / "qrels" / f"{split}.tsv").is_file():
        return load_beir(root, split)
    if (root / "qa.jsonl").is_file():
        return load_qa(root)
    raise RagkitError(f"{root}: not a dataset (expected qrels/{split}.tsv with queries.jsonl, or qa.jsonl)")


def corpus_fingerprint(corpus: Path) -> str:
    """12 hex digits over the corpus's file names and contents (not their times: a dataset copied or
    re-extracted elsewhere keeps its cached index)."""
    from ragkit.ingest.files import sha256_file

    h = hashlib.sha256()
    files = [corpus] if corpus.is_file() else sorted(p for p in corpus.rglob("*") if p.is_file())
    for p in files:
        try:
            h.update(f"{p.relative_to(corpus.parent)}\0{sha256_file(p)}\0".encode())
        except RagkitError as exc:
            raise RagkitError(f"{p}: {exc}") from None
    return h.hexdigest()[:12]


SHARED_EMBEDDINGS = "shared-embeddings.sqlite"


def index_shape(cfg) -> dict[str, Any]:
    """The index-shaping part of a config, canonical (plugin defaults filled in), as the index stamps it."""
    from ragkit.index.settings import wanted

    return wanted(cfg)


def dataset_index_path(dataset: Dataset, cfg, cache_root: Path | None = None) -> Path:
    """Where the index of this corpus with these index settings is cached."""
    key = hashlib.sha256(json.dumps(index_shape(cfg), sort_keys=True).encode()).hexdigest()[:10]
    name = f"{dataset.root.name}-{corpus_fingerprint(dataset.corpus)}-{key}"
    return (cache_root or default_cache_root()) / "eval-indexes" / name


def dataset_engine(dataset: Dataset, config: Any = None, overrides: list[str] | None = None,
                   cache_root: Path | None = None, progress=None, embedding_cache: Path | None = None):
    """An Engine over the dataset's corpus, built on first use and cached by corpus + index settings.

    ``embedding_cache``: the embedding-cache file (default: one shared by all dataset indexes under the cache
    root, so an index rebuilt for other settings or a re-copied corpus embeds only text it has not seen)."""
    from ragkit.engine import Engine

    if dataset.corpus is None:
        raise RagkitError(f"{dataset.root}: no corpus (corpus.jsonl[.gz] or docs/) to index")
    cfg = load_config(config, overrides)
    path = dataset_index_path(dataset, cfg, cache_root)
    if embedding_cache is None:  # one cache for every dataset index: a rebuilt index re-embeds nothing
        embedding_cache = path.parent / SHARED_EMBEDDINGS
    eng = Engine.open(path, cfg, embedding_cache=embedding_cache)
    report = eng.ingest([dataset.corpus], progress=progress)
    return eng, report


@dataclass
class EvalReport:
    dataset: str
    split: str
    queries: int
    metrics: dict[str, float]
    latency_ms: dict[str, float]
    rows: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    answer_metrics: dict[str, dict[str, Any]] = field(default_factory=dict)  # metric -> mean, n, failures, ...
    judge: dict[str, Any] = field(default_factory=dict)  # model, calls, cache hits, failures

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def markdown(self) -> str:
        lines = [f"# ragkit eval: {self.dataset} ({self.split}, {self.queries} queries)", "",
                 "| metric | value |", "|---|---|"]
        lines += [f"| {m} | {v:.4f} |" for m, v in self.metrics.items()]
        lines += [f"| latency {k} | {v:.1f} ms |" for k, v in self.latency_ms.items()]
        if self.answer_metrics:
            lines += ["", "| answer metric | mean | scored | judge failures | skipped | spread |",
                      "|---|---|---|---|---|---|"]
            for m, a in self.answer_metrics.items():
                mean = "n/a" if a["mean"] is None else f"{a['mean']:.4f}"
                kinds = ", ".join(f"{k} {n}" for k, n in sorted(a["failure_kinds"].items()))
                spread = f"{a['spread']:.4f}" if "spread" in a else ""
                lines.append(f"| {m} | {mean} | {a['n']}/{a['queries']} | {a['failures']}"
                             f"{f' ({kinds})' if kinds else ''} | {a['skipped']} | {spread} |")
        if self.judge:
            lines += ["", f"Judge: {self.judge.get('model')} ({self.judge.get('backend')}), "
                          f"{self.judge.get('calls', 0)} calls, {self.judge.get('cache_hits', 0)} cached."]
        if self.warnings:
            lines += ["", "Warnings:", ""] + [f"- {w}" for w in self.warnings]
        return "\n".join(lines) + "\n"


def evaluate_retrieval(engine, dataset: Dataset, *, split: str = "test", k: int = 100, mode: str | None = None,
                       metrics: tuple[str, ...] = DEFAULT_METRICS, drop_self_hits: bool = False,
                       limit: int | None = None, seed: int | None = 0, progress=None) -> EvalReport:
    from ragkit.evaluate.answers import sample_queries

    queries = sample_queries(dataset.queries, limit, seed)
    indexed = indexed_doc_ids(engine.reader())
    warnings = []
    wanted = {d for q in queries for d in q.relevant}
    doc_key = doc_keyer(indexed, wanted)  # QA layouts may name documents by file stem
    known = {doc_key(d) for d in indexed} if doc_key else indexed
    missing = sorted(wanted - known)
    if missing:
        warnings.append(f"{len(missing)} judged document ids are not in the corpus (e.g. {missing[0]}); "
                        "they count as unretrievable")
    result = run_queries(engine, dataset, k=k, mode=mode, queries=queries, drop_self_hits=drop_self_hits,
                         doc_key=doc_key, progress=progress)
    rows = [{"qid": q.qid, "query": q.text, "retrieved": list(result.docs[q.qid])[:10],
             "scores": [round(v, 5) for v in list(result.docs[q.qid].values())[:10]],
             "relevant": q.relevant, "latency_ms": round(result.latencies[q.qid] * 1000, 2)} for q in queries]
    qrels = {q.qid: q.relevant for q in queries}
    agg, per_query = evaluate_run(qrels, result.run, metrics)
    for row in rows:
        row["metrics"] = {m: round(per_query[m].get(row["qid"], 0.0), 4) for m in metrics}
    lat_ms = [x * 1000 for x in result.latencies.values()]
    latency = {"p50": percentile(lat_ms, 0.5), "p95": percentile(lat_ms, 0.95)} if lat_ms else {}
    return EvalReport(dataset=str(dataset.root), split=split, queries=len(queries), metrics=agg,
                      latency_ms=latency, rows=rows, warnings=warnings,
                      config={"mode": mode or engine.config.retrieval.mode, "k": k,
                              "fusion": engine.fusion.spec(), "index": engine.stats().get("config")})


def add_answer_metrics(report: EvalReport, engine, dataset: Dataset, *, judge=None,
                       metrics: tuple[str, ...] | None = None, k: int | None = None, mode: str | None = None,
                       repeats: int = 1, max_failures: int | None = None, n_questions: int = 3,
                       context_tokens: int = 1500, progress=None) -> EvalReport:
    """Answer the report's queries with the engine's generator and add the answer metrics to it (aggregate in
    ``report.answer_metrics``, per query in each row). ``judge`` is a :class:`~ragkit.evaluate.judge.Judge` or
    None; judge-only metrics without one are a ConfigError. Raises TooManyFailures past ``max_failures``."""
    from ragkit.evaluate.answers import ANSWER_METRICS, AnswerScorer, evaluate_answers
    from ragkit.evaluate.judge import FailureLog

    if repeats < 1:
        raise RagkitError(f"--repeats must be at least 1 (got {repeats})")
    failures = FailureLog(max_failures)
    embedder = engine.embedder
    embedder.warm_up()
    scorer = AnswerScorer(judge, embedder.embed, failures, ANSWER_METRICS if metrics is None else tuple(metrics),
                          n_questions=n_questions, context_tokens=context_tokens)
    wanted = {row["qid"] for row in report.rows}
    queries = [q for q in dataset.queries if q.qid in wanted]
    agg, rows = evaluate_answers(engine, queries, scorer, k=k, mode=mode, repeats=repeats,
                                 doc_key=doc_key_for(engine.reader(), queries), progress=progress)
    by_qid = {r["qid"]: r for r in rows}
    for row in report.rows:
        row.update({key: v for key, v in by_qid[row["qid"]].items() if key not in ("qid", "query")})
    report.answer_metrics = agg
    if judge is not None:
        report.judge = {**judge.describe(), "calls": judge.calls, "cache_hits": judge.hits,
                        "seconds": round(judge.seconds, 2), "failures": failures.to_dict()}
    if scorer.skipped:
        report.warnings += [f"{reason}: {n} queries" for reason, n in sorted(scorer.skipped.items())]
    return report
