"""The cross-encoder reranker with a real (tiny, weak) CrossEncoder trained here from the offline MiniLM weights."""

from __future__ import annotations

import numpy as np
import pytest

from ragkit.errors import PluginError
from ragkit.plugins import registry
from ragkit.types import Chunk, Hit

from tests.conftest import ROOT


@pytest.fixture(scope="session")
def tiny_cross_encoder(tmp_path_factory):
    """2 MiniLM layers, 64 tokens, one pass over 40 Beacon pairs: trained in seconds, real weights, weak."""
    from _tiny_ce import beacon_pairs, train_cross_encoder

    pairs = beacon_pairs(ROOT / "eval_sets" / "beacon" / "qa.jsonl")[:40]
    return train_cross_encoder(pairs, tmp_path_factory.mktemp("ce") / "tiny", layers=2, max_length=64,
                               batch_size=8)


def _hits(texts):
    return [Hit(Chunk(f"c{i}", f"d{i}", t, 0), score=1.0 - i * 0.01, scores={"rrf": 1.0 - i * 0.01},
                ranks={"rrf": i + 1}) for i, t in enumerate(texts)]


TEXTS = ["Open Settings > API keys and press Rotate; the old key keeps working for 24 hours.",
         "Invoices are sent on the first day of each month by email.",
         "Log retention is 30 days on the Starter plan and 400 days on Enterprise.",
         "Back up the data directory nightly with beacon backup create.",
         "Dashboards hold at most 40 panels each."]
QUERY = "how long does an old API key keep working after rotation?"


def test_reorders_by_the_models_scores(tiny_cross_encoder):
    from sentence_transformers import CrossEncoder

    rr = registry.create("reranker", {"name": "cross-encoder", "model": str(tiny_cross_encoder), "depth": 5})
    out = rr.process(QUERY, _hits(TEXTS))
    expected = CrossEncoder(str(tiny_cross_encoder)).predict([(QUERY, t) for t in TEXTS])
    want = [f"c{i}" for i in np.argsort(-expected, kind="stable")]
    assert [h.chunk_id for h in out] == want
    for h in out:  # the fused score and rank survive next to the reranker's
        i = int(h.chunk_id[1:])
        assert h.scores["cross-encoder"] == pytest.approx(float(expected[i]), abs=1e-5)
        assert h.ranks["rrf"] == i + 1
    assert [h.ranks["cross-encoder"] for h in out] == [1, 2, 3, 4, 5]
    assert out[0].score == max(h.score for h in out)


def test_blend_interpolates_with_the_previous_score(tiny_cross_encoder):
    from sentence_transformers import CrossEncoder

    model = CrossEncoder(str(tiny_cross_encoder)).predict([(QUERY, t) for t in TEXTS])
    lo, hi = float(model.min()), float(model.max())
    prev = [1.0 - i * 0.01 for i in range(5)]
    for w in (0.0, 0.3, 1.0):
        rr = registry.create("reranker", {"name": "cross-encoder", "model": str(tiny_cross_encoder), "depth": 5,
                                          "blend": w})
        out = rr.process(QUERY, _hits(TEXTS))
        for h in out:
            i = int(h.chunk_id[1:])
            want = w * (model[i] - lo) / (hi - lo) + (1 - w) * (prev[i] - 0.96) / 0.04
            assert h.scores["cross-encoder"] == pytest.approx(want, abs=1e-5)
            assert h.scores["cross-encoder:model"] == pytest.approx(float(model[i]), abs=1e-5)
        if w == 0.0:  # all weight on the previous stage: its order is kept
            assert [h.chunk_id for h in out] == ["c0", "c1", "c2", "c3", "c4"]
        if w == 1.0:
            assert [h.chunk_id for h in out] == [f"c{i}" for i in np.argsort(-model, kind="stable")]


def test_depth_and_top_n(tiny_cross_encoder):
    rr = registry.create("reranker", {"name": "cross-encoder", "model": str(tiny_cross_encoder), "depth": 2})
    out = rr.process(QUERY, _hits(TEXTS))
    assert {h.chunk_id for h in out[:2]} == {"c0", "c1"}  # only the head is rescored ...
    assert [h.chunk_id for h in out[2:]] == ["c2", "c3", "c4"]  # ... the tail keeps its order behind it
    assert all("cross-encoder" not in h.scores for h in out[2:])
    assert all(a.score >= b.score for a, b in zip(out, out[1:]))
    rr = registry.create("reranker", {"name": "cross-encoder", "model": str(tiny_cross_encoder), "depth": 5,
                                      "top_n": 2})
    assert len(rr.process(QUERY, _hits(TEXTS))) == 2


def test_long_passages_are_cut_to_what_the_model_reads(tiny_cross_encoder):
    rr = registry.create("reranker", {"name": "cross-encoder", "model": str(tiny_cross_encoder)})
    long_text = TEXTS[0] + " " + "filler words that the model never sees. " * 2000
    (q, p), = rr.pairs(QUERY, _hits([long_text]))
    assert len(p) < len(long_text) and p.startswith(TEXTS[0])
    # the 64-token model truncates anyway: cutting the text first does not change the score
    full = float(rr.model.predict([(QUERY, long_text)])[0])
    assert rr.score([(q, p)])[0] == pytest.approx(full, abs=1e-5)


def test_bad_model_is_a_one_line_error(tmp_path):
    rr = registry.create("reranker", {"name": "cross-encoder", "model": str(tmp_path)})  # empty dir
    with pytest.raises(PluginError, match=r"reranker 'cross-encoder': cannot load model") as exc:
        rr.warm_up()
    assert "\n" not in str(exc.value)


def test_in_the_engine_explain_keeps_every_stage(beacon_engine, tiny_cross_encoder):
    from ragkit import Engine

    with Engine.open(beacon_engine.store.path, {"rerankers": [{"name": "cross-encoder", "depth": 8,
                                                             "model": str(tiny_cross_encoder)}]}) as eng:
        r = eng.retrieve("How do I rotate an API key?", k=5)
    assert "reranker cross-encoder" in r.trace
    assert all({"rrf", "cross-encoder"} <= set(h.scores) for h in r.hits)
    assert [h.ranks["cross-encoder"] for h in r.hits] == [1, 2, 3, 4, 5]
