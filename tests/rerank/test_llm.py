"""The LLM reranker on real llama.cpp models: SmolLM2 for the code paths, Qwen 0.5B for one quality check."""

from __future__ import annotations

import math

import pytest

from ragkit.errors import ConfigError
from ragkit.plugins import registry
from ragkit.types import Chunk, Hit

QUERY = "How long does the old API key keep working after a rotation?"
PASSAGES = ["Invoices are emailed on the first day of each month.",
            "After you press Rotate, the previous API key keeps working for 24 hours so agents can switch over.",
            "Dashboards hold at most 40 panels."]


def hits(texts):
    return [Hit(Chunk(f"c{i}", f"d{i}", t, 0), score=1.0 - i / 10, scores={"rrf": 1.0 - i / 10},
                ranks={"rrf": i + 1}) for i, t in enumerate(texts)]


def test_scores_are_the_models_yes_probability(small_llm, smollm2_path):
    rr = registry.create("reranker", {"name": "llm", "model": str(smollm2_path), "depth": 3})
    out = rr.process(QUERY, hits(PASSAGES))
    assert [h.ranks["llm"] for h in out] == [1, 2, 3]
    assert all(a.scores["llm"] >= b.scores["llm"] for a, b in zip(out, out[1:]))
    for h in out:
        direct = small_llm.yes_probability(rr.messages(QUERY, h.chunk.text))
        # the same prompt through the same weights (the KV prefix reuse may move the last digits)
        assert h.scores["llm"] == pytest.approx(0.0 if math.isnan(direct) else direct, abs=0.02)
        assert "rrf" in h.scores and "rrf" in h.ranks


def test_prompt_puts_instruction_and_question_first():
    rr = registry.create("reranker", "llm")
    a, b = (rr.messages(QUERY, p) for p in PASSAGES[:2])
    assert a[0] == b[0]  # the system instruction
    prefix = a[1]["content"].split("Passage:")[0]
    assert QUERY in prefix and b[1]["content"].startswith(prefix)  # shared prefix -> KV cache reuse


def test_depth_limits_the_model_calls(smollm2_path):
    rr = registry.create("reranker", {"name": "llm", "model": str(smollm2_path), "depth": 1})
    out = rr.process(QUERY, hits(PASSAGES))
    assert "llm" in out[0].scores and all("llm" not in h.scores for h in out[1:])
    assert [h.chunk_id for h in out[1:]] == ["c1", "c2"]


def test_use_generator_takes_the_generators_llm(mini_index, small_llm, llm_generator):
    from ragkit import Engine

    llm_generator.the_llm = small_llm
    cfg = {"generator": {"name": llm_generator.name},
           "rerankers": [{"name": "llm", "use_generator": True, "depth": 2}]}
    with Engine.open(mini_index.store.path, cfg) as eng:
        r = eng.retrieve("rotate API key", k=3)
    assert "reranker llm" in r.trace and all("llm" in h.scores for h in r.hits[:2])


def test_use_generator_without_an_llm_generator_names_what_to_configure(mini_index):
    from ragkit import Engine

    with Engine.open(mini_index.store.path, {"rerankers": [{"name": "llm", "use_generator": True}]}) as eng:
        with pytest.raises(ConfigError, match="generator 'extractive' has none"):
            eng.retrieve("rotate API key")


def test_qwen_prefers_the_passage_that_answers(qwen_llm, qwen05_path):
    rr = registry.create("reranker", {"name": "llm", "model": str(qwen05_path), "n_ctx": 4096, "depth": 3})
    out = rr.process(QUERY, hits(PASSAGES))
    assert out[0].chunk_id == "c1"


def test_blend_mixes_yes_probability_with_the_fused_score(smollm2_path):
    spec = {"name": "llm", "model": str(smollm2_path), "depth": 3}
    alone = registry.create("reranker", spec).process(QUERY, hits(PASSAGES))
    p_yes = {h.chunk_id: h.scores["llm"] for h in alone}
    # blend 0: the fused order stands, P(yes) is still recorded as the model's score
    kept = registry.create("reranker", {**spec, "blend": 0.0}).process(QUERY, hits(PASSAGES))
    assert [h.chunk_id for h in kept] == ["c0", "c1", "c2"]
    assert {h.chunk_id: h.scores["llm:model"] for h in kept} == pytest.approx(p_yes, abs=0.02)
    # blend 1: P(yes) alone decides, as without blending
    only = registry.create("reranker", {**spec, "blend": 1.0}).process(QUERY, hits(PASSAGES))
    assert [h.chunk_id for h in only] == [h.chunk_id for h in alone]
    # in between: min-max scaled P(yes) and fused score, weighted
    half = registry.create("reranker", {**spec, "blend": 0.5}).process(QUERY, hits(PASSAGES))
    lo, hi = min(p_yes.values()), max(p_yes.values())
    fused = {"c0": 1.0, "c1": 0.5, "c2": 0.0}  # 1.0, 0.9, 0.8 min-max scaled
    for h in half:
        assert h.scores["llm"] == pytest.approx(0.5 * (p_yes[h.chunk_id] - lo) / (hi - lo) + 0.5 * fused[h.chunk_id],
                                                abs=0.03)
