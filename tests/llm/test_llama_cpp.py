"""The local llama.cpp backend on the small SmolLM2 model: code paths, not answer quality."""

import math

import pytest

from ragkit.errors import ConfigError, PluginError
from ragkit.llm import Usage, make_llm
from ragkit.llm.llama_cpp import LlamaCppLLM

QUESTION = [{"role": "system", "content": "Answer with one word: yes or no."},
            {"role": "user", "content": "Is the sky blue on a clear day?"}]


def test_chat_counts_usage_and_respects_max_tokens(small_llm):
    out = small_llm.chat([{"role": "user", "content": "Count from one to twenty in words."}], max_tokens=8)
    assert out.text.strip()
    assert out.usage.prompt_tokens > 5
    assert 1 <= out.usage.completion_tokens <= 8
    assert out.finish_reason == "length"


def test_stream_yields_several_pieces_that_join_to_the_chat_text(small_llm):
    messages = [{"role": "user", "content": "Name three colours."}]
    usage = Usage()
    pieces = list(small_llm.stream(messages, max_tokens=12, usage=usage))
    assert len(pieces) > 1
    assert "".join(pieces).strip()
    assert usage.completion_tokens == len(pieces)


def test_yes_probability_agrees_with_the_greedy_reply(small_llm):
    p = small_llm.yes_probability(QUESTION)
    assert 0.0 <= p <= 1.0
    first = small_llm.chat(QUESTION, max_tokens=2).text.strip().lower()
    if first.startswith("yes"):
        assert p > 0.5
    elif first.startswith("no"):
        assert p < 0.5


def test_yes_probability_is_nan_when_the_reply_is_not_yes_or_no(small_llm):
    p = small_llm.yes_probability([{"role": "user", "content": "Write the Python keyword that defines a function."}])
    assert math.isnan(p) or 0.0 <= p <= 1.0  # NaN unless yes/no happens to be among the top 20 first tokens
    assert small_llm.count_tokens("hello world") >= 2


def test_prompt_longer_than_the_window_is_a_clear_error(smollm2_path):
    tiny = LlamaCppLLM(str(smollm2_path), n_ctx=64)
    with pytest.raises(PluginError, match="context window"):
        list(tiny.stream([{"role": "user", "content": "word " * 200}]))


def test_unknown_offline_model_names_the_fetch_script():
    with pytest.raises(ConfigError, match="smollm2, qwen0.5b"):
        make_llm("local:no-such-model").warm_up()
