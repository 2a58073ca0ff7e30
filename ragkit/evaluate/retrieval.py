"""Run a query set through an engine and score it with ranx (a maintained IR-metrics library)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from ragkit.errors import RagkitError
from ragkit.evaluate.datasets import Dataset

DEFAULT_METRICS = ("ndcg@10", "recall@100", "mrr@10", "map@100", "hit_rate@10")
KNOWN_METRICS = ("hits", "hit_rate", "precision", "recall", "f1", "r-precision", "mrr", "map", "ndcg",
                 "ndcg_burges", "bpref", "dcg", "dcg_burges")


def check_metrics(metrics: tuple[str, ...]) -> None:
    for m in metrics:
        base, _, cut = m.partition("@")
        if base not in KNOWN_METRICS or (cut and not cut.isdigit()):
            raise RagkitError(f"unknown metric {m!r} (known: {', '.join(KNOWN_METRICS)}, optionally @k)")


@dataclass
class RunResult:
    run: dict[str, dict[str, float]]
    latencies: list[float]


def run_queries(engine, dataset: Dataset, *, k: int = 100, mode: str | None = None,
                doc_level: str = "max") -> RunResult:
    """Document-level run: a document's score is its best chunk's (``doc_level='max'``) or the sum."""
    run: dict[str, dict[str, float]] = {}
    latencies = []
    for q in dataset.queries:
        t = time.perf_counter()
        hits = engine.retrieve(q.text, k=k, mode=mode).hits
        latencies.append(time.perf_counter() - t)
        docs: dict[str, float] = {}
        for h in hits:
            if doc_level == "sum":
                docs[h.doc_id] = docs.get(h.doc_id, 0.0) + h.score
            elif h.doc_id not in docs:
                docs[h.doc_id] = h.score  # hits are best-first, so the first is the best chunk
        if not docs:  # ranx requires at least one entry per query
            docs = {"__none__": 0.0}
        run[q.qid] = docs
    return RunResult(run, latencies)


def score(qrels: dict[str, dict[str, int]], run: dict[str, dict[str, float]],
          metrics: tuple[str, ...] = DEFAULT_METRICS, per_query: bool = False) -> dict[str, Any]:
    """Mean metrics ``{metric: value}``, or with ``per_query`` ``{metric: {qid: value}}``."""
    try:
        from ranx import Qrels, Run, evaluate
    except ImportError:
        raise RagkitError("retrieval metrics need ranx: pip install 'ragkit[eval]'") from None

    check_metrics(metrics)
    ranx_run = Run(run)
    result = evaluate(Qrels(qrels), ranx_run, list(metrics), make_comparable=True)
    if per_query:
        return {m: {qid: float(v) for qid, v in ranx_run.scores[m].items()} for m in metrics}
    if not isinstance(result, dict):  # ranx returns a bare value for a single metric
        result = {metrics[0]: result}
    return {m: float(v) for m, v in result.items()}
