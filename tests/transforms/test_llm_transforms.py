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
    with Engine.open(mini_index.dir.path, {"generator": {"name": llm_generator.name}}) as eng:
        r = eng.retrieve("rotate API key", k=3)  # no transform listed: the generator's LLM is never touched
        assert r.hits and not any(t.startswith("transform") for t in r.trace)


def test_listing_them_calls_nothing_until_a_query(mini_index, llm_generator):
    llm_generator.the_llm = FailingLLM()
    cfg = {"generator": {"name": llm_generator.name}, "transforms": [{"name": "multi-query"}, {"name": "hyde"}]}
    with Engine.open(mini_index.dir.path, cfg) as eng:
        eng.warm_up()  # building and warming the pipeline resolves no model
        with pytest.raises(BaseException, match="the LLM was used"):
            eng.retrieve("rotate API key")  # the first query is what calls it


def test_without_an_llm_the_error_names_what_to_configure(mini_index):
    with Engine.open(mini_index.dir.path, {"transforms": [{"name": "hyde"}]}) as eng:
        with pytest.raises(ConfigError, match="generator 'extractive' has none"):
            eng.retrieve("rotate API key")


def test_parse_lines_strips_numbering_and_duplicates():
    reply = "Here are 3 queries:\n1. rotate api key\n- How to ROTATE API KEY\n2) api key rotation steps\n\n* rotate api key"
    assert parse_lines(reply, "How to rotate API key", 3) == ["rotate api key", "api key rotation steps"]


def test_multi_query_and_hyde_with_a_real_model(mini_index, small_llm, llm_generator):
    llm_generator.the_llm = small_llm
    cfg = {"generator": {"name": llm_generator.name},
           "transforms": [{"name": "multi-query", "n": 2, "max_tokens": 40}, {"name": "hyde", "max_tokens": 40}]}
    with Engine.open(mini_index.dir.path, cfg) as eng:
        r = eng.retrieve("How do I rotate an API key?", k=3, mode="hybrid")
    fused = next(t for t in r.trace if "-> fusion" in t)
    assert "dense#hyde" in fused  # the hypothetical passage ran on the dense branch only ...
    assert "bm25#hyde" not in fused and "bm25" in fused
    assert any(t.startswith("transform multi-query") for t in r.trace)
    assert r.hits and all("rrf" in h.scores for h in r.hits)
    mq = eng.transforms[0]
    assert mq.reformulate("How do I rotate an API key?") is mq.reformulate("How do I rotate an API key?")  # cached


def test_hyde_passage_is_dense_only(mini_index, small_llm):
    from ragkit.plugins import QueryVariant, registry

    hyde = registry.create("transform", {"name": "hyde", "keep_query": False, "max_tokens": 30})
    hyde._llm._llm = small_llm
    out = hyde.transform("How long are logs kept?")
    assert out[0] == QueryVariant("How long are logs kept?", ("bm25",))
    assert out[1].branches == ("dense",) and out[1].label == "hyde"
    assert out[1].text.startswith("How long are logs kept?\n") and len(out[1].text) > 30
