"""Run a query set through an engine and score it with ranx (a maintained IR-metrics library)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from ragkit.evaluate.datasets import Dataset

DEFAULT_METRICS = ("ndcg@10", "recall@100", "mrr@10", "map@100", "hit_rate@10")


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
    from ranx import Qrels, Run, evaluate

    result = evaluate(Qrels(qrels), Run(run), list(metrics), return_mean=not per_query, make_comparable=True)
    if not isinstance(result, dict):  # ranx returns a bare value for a single metric
        result = {metrics[0]: result}
    return {m: (float(v) if not per_query else v) for m, v in result.items()}
