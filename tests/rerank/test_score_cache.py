"""The reranker score cache: each (identity, question, passage) is scored once, in the caller's order, and a
score served from memory charges the time computing it took."""

from __future__ import annotations

from ragkit.plugins import registry
from ragkit.rerank.score_cache import RerankScoreCache


def _length_scorer(calls: list):
    def score(pairs):
        calls.append(list(pairs))
        return [float(len(q) * 1000 + len(p)) for q, p in pairs]
    return score


def test_pairs_are_scored_once_in_order_and_charged_when_reused():
    calls: list = []
    cache = RerankScoreCache()
    scorer = cache.scorer("m1", _length_scorer(calls), "reranker:x")
    pairs = [("q", "aaa"), ("q", "b"), ("q", "aaa"), ("q", "cc")]
    assert scorer(pairs) == [1003.0, 1001.0, 1003.0, 1002.0]
    assert calls == [[("q", "aaa"), ("q", "b"), ("q", "cc")]]  # a repeated passage is scored once...
    first = cache.take_charges()
    assert set(first) == {"reranker:x"} and first["reranker:x"] > 0  # ...and charged for its repeat
    assert scorer([("q", "cc"), ("q", "dddd"), ("q", "b")]) == [1002.0, 1004.0, 1001.0]
    assert calls[1:] == [[("q", "dddd")]]  # only the unseen pair reaches the model
    assert cache.take_charges()["reranker:x"] > 0 and cache.take_charges() == {}
    assert cache.scored == 4 and cache.reused == 3 and len(cache) == 4
    # another model (identity) or another question is another pair
    cache.scorer("m2", _length_scorer(calls), "reranker:y")([("q", "b")])
    scorer([("q2", "b")])
    assert calls[2:] == [[("q", "b")], [("q2", "b")]]


def test_the_cross_encoders_identity_ignores_depth_blend_and_top_n(tmp_path):
    def ident(**params):
        return registry.create("reranker", {"name": "cross-encoder", **params}).score_identity()

    local = tmp_path / "model"
    local.mkdir()
    assert ident(model=str(local), depth=10) == ident(model=str(local), depth=50, blend=0.2, top_n=5, batch_size=4)
    assert ident(model=str(local)) != ident(model=str(local), max_length=64)
    assert ident(model=str(local)) != ident(model=str(tmp_path))
    assert str(local.resolve()) in ident(model=str(local))  # no model is loaded to name it


def test_attach_routes_only_rerankers_that_take_part(tmp_path):
    cache = RerankScoreCache()
    ce = registry.create("reranker", {"name": "cross-encoder", "model": str(tmp_path)})
    rules = registry.create("reranker", {"name": "rules", "source_priority": ["a*"]})
    assert cache.attach([ce, rules]) == 1 and ce.scorer is not None and not hasattr(rules, "scorer")
