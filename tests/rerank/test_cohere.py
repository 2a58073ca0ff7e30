"""The Cohere reranker through the real cohere SDK against a local server speaking the v2 rerank API."""

from __future__ import annotations

import pytest

from ragkit.errors import ConfigError, PluginError
from ragkit.plugins import registry
from ragkit.types import Chunk, Hit
from tests.fakes.cohere import VALID_KEY, FakeCohere


@pytest.fixture
def fake():
    with FakeCohere() as server:
        yield server


def hits(texts):
    return [Hit(Chunk(f"c{i}", f"d{i}", t, 0), score=1.0 - i / 10, scores={"rrf": 1.0 - i / 10},
                ranks={"rrf": i + 1}) for i, t in enumerate(texts)]


TEXTS = ["Invoices are emailed monthly.", "Rotate an API key in Settings.", "API key rotation keeps the old key "
         "working for 24 hours after you rotate it.", "Backups run nightly."]
QUERY = "how do I rotate an API key"


def make(fake, **kw):
    return registry.create("reranker", {"name": "cohere", "api_key": VALID_KEY, "base_url": fake.base_url,
                                        "backoff": 0.01, **kw})


def test_reranks_by_relevance_score(fake):
    out = make(fake, model="rerank-v3.5").process(QUERY, hits(TEXTS))
    assert [h.chunk_id for h in out[:2]] == ["c1", "c2"]  # 4 and 3 of the 7 query words; the others none
    assert [h.ranks["cohere"] for h in out] == [1, 2, 3, 4]
    assert out[0].scores["cohere"] == pytest.approx(4 / 7, abs=1e-5) and out[0].ranks["rrf"] == 2
    (req,) = fake.requests
    assert req["path"] == "/v2/rerank"
    assert req["body"]["model"] == "rerank-v3.5" and req["body"]["query"] == QUERY
    assert req["body"]["documents"] == TEXTS


def test_depth_sends_only_the_head(fake):
    out = make(fake, depth=2, top_n=1).process(QUERY, hits(TEXTS))
    assert fake.requests[0]["body"]["documents"] == TEXTS[:2]
    assert [h.chunk_id for h in out] == ["c1"]


def test_401_is_a_one_line_error_without_retries(fake):
    rr = registry.create("reranker", {"name": "cohere", "api_key": "wrong", "base_url": fake.base_url, "backoff": 0.01})
    with pytest.raises(PluginError, match=r"authentication failed \(401\).*COHERE_API_KEY") as exc:
        rr.process(QUERY, hits(TEXTS))
    assert "\n" not in str(exc.value) and len(fake.requests) == 1 and rr.retries == 0


def test_429_then_success_is_retried(fake):
    fake.fail_next = [429, 503]
    rr = make(fake, max_retries=3)
    out = rr.process(QUERY, hits(TEXTS))
    assert out[0].chunk_id == "c1"
    assert len(fake.requests) == 3 and rr.retries == 2


def test_429_beyond_the_retries_names_the_cause(fake):
    fake.fail_next = [429] * 5
    rr = make(fake, max_retries=1)
    with pytest.raises(PluginError, match=r"rate limit or quota exceeded \(429\)"):
        rr.process(QUERY, hits(TEXTS))
    assert len(fake.requests) == 2


def test_quota_402_fails_at_once(fake):
    fake.fail_next = [402]
    with pytest.raises(PluginError, match=r"quota exhausted \(402\)"):
        make(fake).process(QUERY, hits(TEXTS))
    assert len(fake.requests) == 1


def test_off_until_configured(monkeypatch):
    monkeypatch.delenv("COHERE_API_KEY", raising=False)
    rr = registry.create("reranker", "cohere")  # constructing it needs no key and makes no call
    with pytest.raises(ConfigError, match="no API key .*COHERE_API_KEY"):
        rr.process(QUERY, hits(TEXTS))


def test_unreachable_endpoint_is_one_line():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket is closed
    rr = registry.create("reranker", {"name": "cohere", "api_key": VALID_KEY, "base_url": f"http://127.0.0.1:{port}",
                                      "max_retries": 0, "timeout": 5})
    with pytest.raises(PluginError, match="cohere at http://127.0.0.1"):
        rr.process(QUERY, hits(TEXTS))
