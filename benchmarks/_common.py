"""Shared by the benchmark scripts: where the offline datasets are and where cached indexes live."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("RAGKIT_SHARED", ROOT.parent / "shared"))
DATASETS = SHARED / "datasets"
CACHE = Path(os.environ.get("RAGKIT_CACHE", ROOT / ".cache"))
RESULTS = ROOT / "benchmarks" / "results"

# One doc = one chunk, as BEIR evaluations do (the embedder truncates at its max length).
BEIR_OVERRIDES = ["chunker.name=document"]
# Weights of a reranker's score against the fused one that the blend curves try (0 = fused alone, 1 = model alone).
BLEND_WEIGHTS = [round(0.1 * i, 1) for i in range(11)]


def machine() -> dict:
    import torch

    return {"python": platform.python_version(), "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "platform": platform.platform()}


def _portable(value):
    """Paths in results read the same on every machine: the repository's own relative to it, ../shared as such."""
    if isinstance(value, str):
        return value.replace(str(SHARED.resolve()) + "/", "../shared/").replace(str(ROOT) + "/", "")
    if isinstance(value, dict):
        return {k: _portable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_portable(v) for v in value]
    return value


def write_result(name: str, data: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    data = _portable({"benchmark": name, "date": time.strftime("%Y-%m-%d"), "machine": machine(), **data})
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    return path


def beir_index(name: str, overrides: list[str] | None = None, progress=None):
    """Open (building once) the index of a BEIR corpus; the same cache `ragkit eval --cache-dir .cache` uses."""
    from ragkit.evaluate.runner import dataset_engine, load_dataset

    return dataset_engine(load_dataset(DATASETS / name), None, BEIR_OVERRIDES + (overrides or []), CACHE, progress)


def scifact_dev_test(heldout: float, seed: int) -> dict:
    """SciFact's question sets for choosing a setting and then measuring it: ``dev`` = the train questions
    ``split_heldout`` keeps aside (as ``ragkit finetune`` does), ``test`` = the test split; each as
    ([(qid, text)], qrels)."""
    from ragkit.evaluate.datasets import load_beir
    from ragkit.finetune.data import labelled_examples, split_heldout

    _, held = split_heldout(labelled_examples(DATASETS / "scifact", "train"), heldout, seed)
    train_qrels = load_beir(DATASETS / "scifact", "train").qrels
    test = load_beir(DATASETS / "scifact", "test")
    return {"dev": ([(ex.qid, ex.query) for ex in held], {ex.qid: train_qrels[ex.qid] for ex in held}),
            "test": ([(q.qid, q.text) for q in test.queries], test.qrels)}


def versus(per_query, base, metric: str = "ndcg@10") -> dict:
    """A metric per query (nDCG@10 unless named) against a baseline's: paired randomization test and bootstrap CI,
    rounded for the JSON."""
    import numpy as np

    from ragkit.evaluate.stats import compare

    c = compare(np.array(per_query), np.array(base))
    return {f"delta_{metric}": round(c.delta, 4), "ci95": [round(c.ci_low, 4), round(c.ci_high, 4)],
            "p_value": round(c.p_value, 4), "significant": c.significant}
