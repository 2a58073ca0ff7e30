"""Acceptance on BEIR SciFact (300 test queries, one document = one chunk), scored with ranx.

The expected floors are the foundation issue's; the index is built once per machine (.cache/indexes). The same
index also checks every SciFact pipeline of benchmarks/expected.toml (the guard `benchmarks/run.py --suite quick`
enforces too), with each query embedded once for all pipelines."""

from __future__ import annotations

import pytest

from ragkit.evaluate.datasets import load_beir
from ragkit.evaluate.retrieval import run_queries, score

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def scifact(shared_datasets):
    return load_beir(shared_datasets / "scifact", "test")


@pytest.fixture(scope="module")
def pipeline_ndcg(scifact_engine, scifact):
    """nDCG@10 of every pipeline benchmarks/expected.toml names for SciFact, on the session's SciFact index."""
    from _common import BEIR_OVERRIDES
    from suite import PIPELINES, load_expected

    from ragkit.embedding.query_cache import QueryVectorCache
    from ragkit.engine import Engine

    vectors = QueryVectorCache()  # one embedding per query, shared by the dense and hybrid pipelines
    out = {}
    for name in sorted({e.pipeline for e in load_expected() if e.dataset == "scifact"}):
        with Engine.open(scifact_engine.store.location, PIPELINES[name].config(), BEIR_OVERRIDES,
                         query_cache=vectors) as eng:
            out[name] = score(scifact.qrels, run_queries(eng, scifact, k=100).run, ("ndcg@10",))["ndcg@10"]
    return out


@pytest.fixture(scope="module")
def ndcg(pipeline_ndcg):
    return {"bm25": pipeline_ndcg["bm25"], "dense": pipeline_ndcg["dense"], "hybrid": pipeline_ndcg["hybrid-rrf"]}


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


def test_scores_meet_benchmarks_expected_toml(pipeline_ndcg):
    from suite import check_scores, load_expected

    expected = [e for e in load_expected() if e.dataset == "scifact"]
    assert {e.pipeline for e in expected} >= {"bm25", "dense", "hybrid-rrf"}
    assert check_scores({"scifact": pipeline_ndcg}, expected) == []


def test_ndcg_equals_ranx_on_a_hand_made_example():
    """Three queries whose nDCG@10 is computed here by hand from the definition, with linear gains as
    trec_eval and ranx use (gain = relevance grade, discount = log2(rank + 1))."""
    import math

    qrels = {"q1": {"a": 1}, "q2": {"b": 2, "c": 1}, "q3": {"x": 1}}
    run = {"q1": {"a": 3.0, "z": 2.0}, "q2": {"c": 3.0, "z": 2.0, "b": 1.0}, "q3": {"y": 1.0}}
    dcg2 = 1 / math.log2(2) + 2 / math.log2(4)  # c (grade 1) at rank 1, b (grade 2) at rank 3
    idcg2 = 2 / math.log2(2) + 1 / math.log2(3)
    expected = (1.0 + dcg2 / idcg2 + 0.0) / 3
    assert score(qrels, run, ("ndcg@10",))["ndcg@10"] == pytest.approx(expected, abs=1e-9)
