"""generator.openai against a real OpenAI-compatible server: llama-cpp-python's server on 127.0.0.1 (SmolLM2)."""

from __future__ import annotations

import pytest

from ragkit.errors import ConfigError, PluginError
from ragkit.generate.openai import OpenAIGenerator

from ._hits import make_hits

HITS = make_hits(["API keys are rotated from Settings > API keys. The old key keeps working for 24 hours.",
                  "Logs are retained for 30 days on the Starter plan."])


def test_answer_and_stream_through_the_server(llama_server):
    gen = OpenAIGenerator(base_url=llama_server, model="smollm2", context_window=2048, max_tokens=24)
    gen.warm_up()
    ans = gen.answer("How long does the old key keep working?", HITS)
    assert ans.text and ans.usage["prompt_tokens"] > 50 and 1 <= ans.usage["completion_tokens"] <= 24
    assert {c.n for c in ans.citations} <= {1, 2}
    items = list(gen.stream("How long are logs retained?", HITS))
    deltas, final = items[:-1], items[-1]
    assert len(deltas) > 1 and all(isinstance(d, str) for d in deltas)
    assert final.usage["completion_tokens"] >= 1 and final.trace[0].startswith("prompt answer-v1@")


def test_unconfigured_or_unreachable_endpoint_errors_are_one_line():
    with pytest.raises(ConfigError, match="generator 'openai'.*base_url is required"):
        OpenAIGenerator().answer("q", HITS)
    from tests.conftest import free_port

    gen = OpenAIGenerator(base_url=f"http://127.0.0.1:{free_port()}/v1", model="m", timeout=2)
    gen.llm.max_retries = 0
    with pytest.raises(PluginError, match="cannot connect"):
        gen.answer("q", HITS)
