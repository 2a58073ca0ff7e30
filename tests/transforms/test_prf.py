"""RM3 pseudo-relevance feedback: changes the BM25 query, keeps the dense one, honours the pre-filter, and does not
hurt BM25 on the bundled eval set."""

from __future__ import annotations

from pathlib import Path

from ragkit import Engine
from ragkit.evaluate.datasets import load_beir
from ragkit.evaluate.retrieval import run_queries, score
from ragkit.plugins import Plugin, QueryVariant, registry

ROOT = Path(__file__).resolve().parents[2]


def test_prf_expands_the_bm25_query_only(beacon_engine):
    with Engine.open(beacon_engine.store.path, {"transforms": [{"name": "prf"}]}) as eng:
        prf = eng.transforms[0]
        query = "How do I rotate an API key?"
        expanded = prf.expand(query)
        assert expanded != query and expanded.startswith(query)
        new_terms = set(eng._analyze(expanded)) - set(eng._analyze(query))
        assert len(new_terms) >= 3  # feedback terms from the first pass
        out = prf.transform(query)
        assert out == [QueryVariant(expanded, ("bm25",), label="prf"), QueryVariant(query, ("dense",))]
        r = eng.retrieve(query, k=5, mode="hybrid")
        assert any(t.startswith("transform prf") for t in r.trace)
        assert "bm25 + dense -> fusion rrf" in r.trace


def test_prf_first_pass_honours_the_pre_filter(beacon_engine):
    seen = []

    class Probe(Plugin):
        stage, name = "transform", "test-probe"

        def transform(self, query, scope=None):
            seen.extend(c.metadata.get("product") for c, _ in scope.sparse_search(query, 20))
            return [query]

    registry.register(Probe)
    try:
        with Engine.open(beacon_engine.store.path, {"transforms": [{"name": "test-probe"}]}) as eng:
            eng.retrieve("API key rotation", filter="product=selfhosted")
    finally:
        registry._classes.pop(("transform", "test-probe"), None)
    assert seen and set(seen) == {"selfhosted"}


def test_prf_does_not_hurt_bm25_on_the_bundled_eval_set(beacon_engine):
    beir = load_beir(ROOT / "eval_sets" / "beacon", "test")
    base = score(beir.qrels, run_queries(beacon_engine, beir, k=20, mode="bm25").run, ("ndcg@10",))["ndcg@10"]
    with Engine.open(beacon_engine.store.path, {"transforms": [{"name": "prf"}]}) as eng:
        prf = score(beir.qrels, run_queries(eng, beir, k=20, mode="bm25").run, ("ndcg@10",))["ndcg@10"]
    assert prf >= base - 1e-9, (prf, base)
