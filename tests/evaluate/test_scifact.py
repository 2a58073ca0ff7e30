"""Acceptance on BEIR SciFact (300 test queries, one document = one chunk), scored with ranx.

The expected floors are the foundation issue's; the index is built once per machine (.cache/indexes)."""

from __future__ import annotations

import pytest

from ragkit.evaluate.datasets import load_beir
from ragkit.evaluate.retrieval import run_queries, score

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def scifact(shared_datasets):
    return load_beir(shared_datasets / "scifact", "test")


@pytest.fixture(scope="module")
def ndcg(scifact_engine, scifact):
    out = {}
    for mode in ("bm25", "dense", "hybrid"):
        out[mode] = score(scifact.qrels, run_queries(scifact_engine, scifact, k=100, mode=mode).run,
                          ("ndcg@10",))["ndcg@10"]
    return out


def test_dataset_counts(scifact, scifact_engine):
    assert len(scifact.queries) == 300
    assert sum(len(q.relevant) for q in scifact.queries) == 339
    assert scifact_engine.stats()["documents"] == 5183 == scifact_engine.stats()["chunks"]


def test_bm25(ndcg):
    assert ndcg["bm25"] >= 0.66


def test_dense_minilm(ndcg):
    assert ndcg["dense"] >= 0.63


def test_hybrid_at_least_the_better_branch(ndcg):
    assert ndcg["hybrid"] >= max(ndcg["bm25"], ndcg["dense"])
