"""/v1/chat/completions and /v1/models through the official openai client against a real uvicorn server."""

from __future__ import annotations

import threading
import time

import openai
import pytest
from openai import OpenAI

from ragkit.generate.extractive import ExtractiveAnswerer
from tests.serve.conftest import KEYS, LIMITS, running


@pytest.fixture(scope="module")
def client(server):
    def make(key="acme", **kw):
        return OpenAI(base_url=server + "/v1", api_key=KEYS.get(key, key), max_retries=0, **kw)
    return make


def ask(text):
    return [{"role": "user", "content": text}]


def test_models_lists_ragkit(client):
    assert [m.id for m in client().models.list()] == ["ragkit"]


def test_completion_answers_with_citations_and_sources(client):
    resp = client("globex").chat.completions.create(model="ragkit", messages=ask("How long is log retention?"))
    choice = resp.choices[0]
    assert choice.finish_reason == "stop" and choice.message.role == "assistant"
    assert "[1]" in choice.message.content
    extra = resp.model_extra
    assert extra["sources"] and all(s["doc_id"].startswith("globex/") for s in extra["sources"])
    assert {c["n"] for c in extra["citations"]} <= set(range(1, len(extra["sources"]) + 1))
    assert extra["sources"][extra["citations"][0]["n"] - 1]["chunk_id"] == extra["citations"][0]["chunk_id"]
    assert resp.usage.completion_tokens > 0


def test_streaming_matches_the_plain_answer_and_ends_with_sources(client):
    plain = client().chat.completions.create(model="ragkit", messages=ask("where are nightly backups changed?"))
    chunks = list(client().chat.completions.create(model="ragkit", messages=ask("where are nightly backups changed?"),
                                                   stream=True, stream_options={"include_usage": True}))
    assert len(chunks) >= 4  # role, content, finish (+ usage)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == plain.choices[0].message.content  # the extractive generator is deterministic
    final = [c for c in chunks if c.choices and c.choices[0].finish_reason][-1]
    assert final.choices[0].finish_reason == "stop"
    assert [s["chunk_id"] for s in final.model_extra["sources"]] == \
        [s["chunk_id"] for s in plain.model_extra["sources"]]
    assert final.model_extra["citations"] == plain.model_extra["citations"]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0


def test_retrieval_uses_the_conversation(client):
    messages = [{"role": "system", "content": "Answer briefly."},
                {"role": "user", "content": "Tell me about webhooks."},
                {"role": "assistant", "content": "Zephyr handles webhooks for every workspace. [1]"},
                {"role": "user", "content": "Who approves changes to it?"}]
    resp = client().chat.completions.create(model="ragkit", messages=messages)
    assert resp.model_extra["sources"][0]["doc_id"] == "acme/webhooks.md"


def test_ragkit_options_in_extra_body(client):
    resp = client().chat.completions.create(model="ragkit", messages=ask("settings page"),
                                            extra_body={"k": 3, "mode": "bm25", "filter": "product=cloud"})
    sources = resp.model_extra["sources"]
    assert len(sources) == 3 and all(s["metadata"]["product"] == "cloud" for s in sources)
    assert all(s["scores"].keys() == {"bm25"} for s in sources)


def test_max_tokens_cuts_the_answer(client):
    resp = client().chat.completions.create(model="ragkit", messages=ask("how do I change log retention?"),
                                            max_tokens=6)
    choice = resp.choices[0]
    assert choice.finish_reason == "length" and len(choice.message.content.split()) <= 6
    assert all(f"[{c['n']}]" in choice.message.content for c in resp.model_extra["citations"])


@pytest.mark.parametrize("kwargs, error, code", [
    ({"model": "gpt-4o", "messages": ask("backups")}, openai.NotFoundError, "model_not_found"),
    ({"model": "ragkit", "messages": [{"role": "assistant", "content": "hi"}]}, openai.BadRequestError,
     "no_user_message"),
    ({"model": "ragkit", "messages": ask("backups"), "n": 2}, openai.BadRequestError, "unsupported_n"),
    ({"model": "ragkit", "messages": ask("backups"), "max_tokens": LIMITS["max_tokens"] + 1},
     openai.UnprocessableEntityError, "max_tokens_too_large"),
    ({"model": "ragkit", "messages": ask("backups") * (LIMITS["max_messages"] + 1)},
     openai.UnprocessableEntityError, "too_many_messages"),
    ({"model": "ragkit", "messages": ask("x" * (LIMITS["max_query_chars"] + 1))},
     openai.UnprocessableEntityError, "query_too_long"),
    ({"model": "ragkit", "messages": []}, openai.UnprocessableEntityError, "invalid_field"),
    ({"model": "ragkit", "messages": ask("backups") + [{"role": "user", "content": " "}]}, openai.BadRequestError,
     "no_user_message"),
])
def test_errors_map_to_openai_exceptions(client, kwargs, error, code):
    with pytest.raises(error) as info:
        client().chat.completions.create(**kwargs)
    assert info.value.code == code


def test_bad_key_and_forbidden_endpoint(client):
    with pytest.raises(openai.AuthenticationError):
        client("rk-not-a-key").chat.completions.create(model="ragkit", messages=ask("backups"))
    with pytest.raises(openai.PermissionDeniedError):
        client("acme-retrieve-only").chat.completions.create(model="ragkit", messages=ask("backups"))


# --- a generator that streams word by word, slowly: deadlines and multi-delta streams --------------------------

class SlowWords(ExtractiveAnswerer):
    """The extractive answer, one word per delta, ``SlowWords.delay`` seconds before each word."""

    stage, name = "generator", "test-slow-words"
    delay = 0.0
    closed = threading.Event()

    def stream(self, query, hits):
        answer = self.answer(query, hits)
        try:
            for i, word in enumerate(answer.text.split(" ")):
                time.sleep(SlowWords.delay)
                yield word if i == 0 else " " + word
            yield answer
        finally:
            SlowWords.closed.set()


@pytest.fixture(scope="module")
def slow_server(tenant_index, keyring):
    """Yields (base URL, server state): tests set the generator's delay and the server's timeout."""
    from ragkit import Engine
    from ragkit.config import ServeConfig
    from ragkit.plugins import registry
    from ragkit.serve import create_app

    registry.register(SlowWords)
    try:
        eng = Engine.open(tenant_index, {"generator": {"name": "test-slow-words"}})
        app = create_app(eng, keyring, settings=ServeConfig(**LIMITS))
        with running(app) as url:
            yield url, app.state.ragkit
        eng.close()
    finally:
        registry._classes.pop(("generator", "test-slow-words"), None)


def test_word_stream_is_many_events_and_max_tokens_stops_it(slow_server):
    url, st = slow_server
    SlowWords.delay = 0.0
    c = OpenAI(base_url=url + "/v1", api_key=KEYS["acme"], max_retries=0)
    chunks = list(c.chat.completions.create(model="ragkit", messages=ask("how do I change webhooks?"),
                                            stream=True, max_tokens=3))
    contents = [ch.choices[0].delta.content for ch in chunks if ch.choices and ch.choices[0].delta.content]
    assert len(contents) == 3
    assert chunks[-1].choices[0].finish_reason == "length"


def test_generation_timeout_is_504_and_stops_the_generator(slow_server):
    url, st = slow_server
    SlowWords.delay = 3.0  # the first word comes after the deadline, however fast the machine
    st.settings = st.settings.model_copy(update={"generation_timeout": 1.0})
    c = OpenAI(base_url=url + "/v1", api_key=KEYS["acme"], max_retries=0)
    SlowWords.closed.clear()
    with pytest.raises(openai.InternalServerError) as info:
        c.chat.completions.create(model="ragkit", messages=ask("how do I change webhooks?"))
    assert info.value.status_code == 504 and info.value.code == "generation_timeout"
    assert SlowWords.closed.wait(60)  # the worker stopped pulling words and closed the generator
    with pytest.raises(openai.APIError, match="no complete answer within"):
        for _ in c.chat.completions.create(model="ragkit", messages=ask("how do I change webhooks?"), stream=True):
            pass
