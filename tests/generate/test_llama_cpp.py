"""generator.llama-cpp end to end: SmolLM2 for code paths (streaming, usage, tiny window), Qwen 0.5B once for
a grounded answer on the bundled corpus."""

from __future__ import annotations

import re

import pytest

from ragkit import Engine
from ragkit.generate.replies import NOT_FOUND
from ragkit.types import Answer


@pytest.fixture(scope="module")
def smol_engine(beacon_engine, smollm2_path):
    eng = Engine.open(beacon_engine.store.path, {"generator": {"name": "llama-cpp", "model": str(smollm2_path),
                                                             "n_ctx": 2048, "max_tokens": 24, "max_sources": 3}})
    yield eng
    eng.close()


def test_streaming_yields_several_chunks_then_a_checked_answer(smol_engine):
    stream = smol_engine.query_stream("How fast does a revoked API key stop working?", k=5)
    chunks = list(stream)
    assert len(chunks) > 1 and all(isinstance(c, str) for c in chunks)
    ans = stream.answer
    assert isinstance(ans, Answer)
    assert ans.usage["prompt_tokens"] > 100 and 1 <= ans.usage["completion_tokens"] <= 24
    assert {"generate", "generate:pack", "generate:llm", "first_token", "total"} <= set(ans.timings)
    assert any(t.startswith("prompt answer-v1@") for t in ans.trace)
    assert ans.events[0].kind == "retrieval" and any(e.kind == "generator" for e in ans.events)
    # whatever the small model wrote, every [n] left in the checked answer points at a packed source
    cited = {int(n) for n in re.findall(r"\[(\d+)\]", ans.text)}
    assert cited <= {1, 2, 3} and {c.n for c in ans.citations} == cited
    assert all(ans.sources[c.n - 1].doc_id == c.doc_id for c in ans.citations)
    assert smol_engine.resources.llm() is smol_engine.generator.llm  # shared with other stages


def test_tiny_window_is_never_exceeded(beacon_engine, smollm2_path):
    eng = Engine.open(beacon_engine.store.path, {"generator": {"name": "llama-cpp", "model": str(smollm2_path),
                                                             "n_ctx": 512, "max_tokens": 48, "max_sources": 10}})
    ans = eng.query("Which regions does Beacon Cloud run in and how long are logs kept?", k=10)
    assert ans.usage["prompt_tokens"] + 48 <= 512
    assert any(t.startswith(("dropped", "trimmed")) for t in ans.trace)
    eng.close()


def test_out_of_corpus_question_abstains_without_loading_the_model(beacon_engine):
    eng = Engine.open(beacon_engine.store.path, {"generator": {"name": "llama-cpp", "model": "/nonexistent/x.gguf"}})
    ans = eng.query("What is the capital of France?", k=5)
    assert ans.status == "abstained" and ans.text.startswith(NOT_FOUND)
    assert ans.citations == [] and ans.usage == {} and len(ans.sources) == 3
    assert any(t.startswith("abstained: best dense score") for t in ans.trace)
    assert eng.generator._llm is None  # the LLM was never even built
    eng.close()


def test_qwen_answers_from_the_corpus_with_a_gold_citation(beacon_engine, qwen05_path):
    eng = Engine.open(beacon_engine.store.path, {"generator": {"name": "llama-cpp", "model": str(qwen05_path),
                                                             "max_tokens": 60, "max_sources": 3}})
    ans = eng.query("max number of panels per dashboard?", k=5)
    assert "40" in ans.text
    assert {c.doc_id for c in ans.citations} & {"guides/dashboards.md", "release-notes/cloud-2024.html"}
    eng.close()
