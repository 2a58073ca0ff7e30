"""Run a query set through an engine and score it with ranx (a maintained IR-metrics library)."""

from __future__ import annotations

import time
from typing import Any

from ragkit.errors import RagkitError
from ragkit.evaluate.datasets import Dataset
from ragkit.evaluate.runs import RunResult, doc_run

DEFAULT_METRICS = ("ndcg@10", "recall@100", "mrr@10", "map@100", "hit_rate@10")
KNOWN_METRICS = ("hits", "hit_rate", "precision", "recall", "f1", "r-precision", "mrr", "map", "ndcg",
                 "ndcg_burges", "bpref", "dcg", "dcg_burges")


def check_metrics(metrics: tuple[str, ...]) -> None:
    for m in metrics:
        base, _, cut = m.partition("@")
        if base not in KNOWN_METRICS or (cut and not cut.isdigit()):
            raise RagkitError(f"unknown metric {m!r} (known: {', '.join(KNOWN_METRICS)}, optionally @k)")


def run_queries(engine, dataset: Dataset, *, k: int = 100, mode: str | None = None, doc_level: str = "max",
                queries: list | None = None, doc_key=None, drop_self_hits: bool = False,
                progress=None) -> RunResult:
    """Document-level run: a document's score is its best chunk's (``doc_level='max'``) or the sum.

    ``doc_key`` maps an indexed doc id to the id the qrels use; ``drop_self_hits`` ignores a retrieved
    document whose id equals the query id."""
    queries = dataset.queries if queries is None else queries
    out = RunResult({}, {})
    for i, q in enumerate(queries):
        t = time.perf_counter()
        hits = engine.retrieve(q.text, k=k, mode=mode).hits
        out.latencies[q.qid] = time.perf_counter() - t
        out.docs[q.qid] = doc_run(hits, doc_key, level=doc_level, exclude=q.qid if drop_self_hits else None)
        if progress:
            progress("queries", i + 1, len(queries))
    return out


def evaluate_run(qrels: dict[str, dict[str, int]], run: dict[str, dict[str, float]],
                 metrics: tuple[str, ...] = DEFAULT_METRICS) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """One ranx evaluation: (mean per metric, {metric: {qid: value}})."""
    try:
        from ranx import Qrels, Run, evaluate
    except ImportError:
        raise RagkitError("retrieval metrics need ranx: pip install 'ragkit[eval]'") from None

    check_metrics(metrics)
    ranx_run = Run(run)
    result = evaluate(Qrels(qrels), ranx_run, list(metrics), make_comparable=True)
    if not isinstance(result, dict):  # ranx returns a bare value for a single metric
        result = {metrics[0]: result}
    per_query = {m: {qid: float(v) for qid, v in ranx_run.scores[m].items()} for m in metrics}
    return {m: float(v) for m, v in result.items()}, per_query


def score(qrels: dict[str, dict[str, int]], run: dict[str, dict[str, float]],
          metrics: tuple[str, ...] = DEFAULT_METRICS, per_query: bool = False) -> dict[str, Any]:
    """Mean metrics ``{metric: value}``, or with ``per_query`` ``{metric: {qid: value}}``."""
    mean, each = evaluate_run(qrels, run, metrics)
    return each if per_query else mean
