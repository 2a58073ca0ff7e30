"""multi-query and HyDE: off unless configured, never touching a model before then; with a real (small) model
they add their rankings to the fusion."""

from __future__ import annotations

import pytest

from ragkit import Engine
from ragkit.errors import ConfigError
from ragkit.transforms.multi_query import parse_lines

from .conftest import FailingLLM


def test_never_called_when_not_configured(mini_index, llm_generator):
    llm_generator.the_llm = FailingLLM()
    with Engine.open(mini_index.store.path, {"generator": {"name": llm_generator.name}}) as eng:
        r = eng.retrieve("rotate API key", k=3)  # no transform listed: the generator's LLM is never touched
        assert r.hits and not any(t.startswith("transform") for t in r.trace)


def test_listing_them_calls_nothing_until_a_query(mini_index, llm_generator):
    llm_generator.the_llm = FailingLLM()
    cfg = {"generator": {"name": llm_generator.name}, "transforms": [{"name": "multi-query"}, {"name": "hyde"}]}
    with Engine.open(mini_index.store.path, cfg) as eng:
        eng.warm_up()  # building and warming the pipeline resolves no model
        with pytest.raises(BaseException, match="the LLM was used"):
            eng.retrieve("rotate API key")  # the first query is what calls it


def test_without_an_llm_the_error_names_what_to_configure(mini_index):
    with Engine.open(mini_index.store.path, {"transforms": [{"name": "hyde"}]}) as eng:
        with pytest.raises(ConfigError, match="generator 'extractive' has none"):
            eng.retrieve("rotate API key")


def test_parse_lines_strips_numbering_and_duplicates():
    reply = "Here are 3 queries:\n1. rotate api key\n- How to ROTATE API KEY\n2) api key rotation steps\n\n* rotate api key"
    assert parse_lines(reply, "How to rotate API key", 3) == ["rotate api key", "api key rotation steps"]


def test_hyde_with_a_real_model_runs_on_the_dense_branch_only(mini_index, small_llm, llm_generator):
    llm_generator.the_llm = small_llm
    cfg = {"generator": {"name": llm_generator.name}, "transforms": [{"name": "hyde", "max_tokens": 24}]}
    with Engine.open(mini_index.store.path, cfg) as eng:
        r = eng.retrieve("How do I rotate an API key?", k=3, mode="hybrid")
        passage = eng.transforms[0].passage("How do I rotate an API key?")  # cached: no second model call
    fused = next(t for t in r.trace if "-> fusion" in t)
    assert fused == "bm25 + dense + dense#hyde -> fusion rrf"  # the question on both, the passage on dense only
    assert passage and r.hits and all("rrf" in h.scores for h in r.hits)


def test_multi_query_with_a_real_model(mini_index, small_llm, llm_generator):
    from ragkit.plugins import QueryVariant

    llm_generator.the_llm = small_llm
    cfg = {"generator": {"name": llm_generator.name}, "transforms": [{"name": "multi-query", "n": 2,
                                                                     "max_tokens": 30}]}
    with Engine.open(mini_index.store.path, cfg) as eng:
        mq = eng.transforms[0]
        out = mq.transform("How do I rotate an API key?")
        assert out[0] == "How do I rotate an API key?" and len(out) <= 3
        assert all(isinstance(v, QueryVariant) and v.branches == ("bm25", "dense") for v in out[1:])
        r = eng.retrieve("How do I rotate an API key?", k=3, mode="bm25")  # reuses the cached reformulations
    fused = next((t for t in r.trace if t.startswith("bm25")), "")
    assert fused.count("bm25") == len(out) and r.hits


def test_hyde_without_the_question_on_dense():
    from ragkit.plugins import QueryVariant, registry

    hyde = registry.create("transform", {"name": "hyde", "keep_query": False, "prepend_query": False})
    hyde._llm._llm = FailingLLM()
    hyde._cache.put("How long are logs kept?", "Logs are kept for 30 days.")  # as if the model had answered
    assert hyde.transform("How long are logs kept?") == [
        QueryVariant("How long are logs kept?", ("bm25",)), QueryVariant("Logs are kept for 30 days.", ("dense",),
                                                                          label="hyde")]
