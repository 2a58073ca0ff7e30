"""generator.cohere through the real cohere SDK against a local server speaking Cohere's v2 chat API."""

from __future__ import annotations

import pytest

from ragkit.errors import ConfigError, PluginError
from ragkit.generate.cohere import CohereGenerator, with_markers
from tests.fakes.cohere import FakeCohere

from ._hits import make_hits

HITS = make_hits(["Invoices are sent on the first day of each month. They are paid by card.",
                  "API keys expire after 90 days. Rotate them in Settings.",
                  "Support is available by chat at any time."])


@pytest.fixture
def fake():
    with FakeCohere() as server:
        yield server


def gen_for(fake, **kw):
    return CohereGenerator(api_key="test-key", base_url=fake.base_url, **kw)


def test_answer_maps_cohere_citations_to_numbered_sources(fake):
    ans = gen_for(fake).answer("When do API keys expire?", HITS)
    assert ans.text == "API keys expire after 90 days [2]."
    assert [(c.n, c.doc_id) for c in ans.citations] == [(2, "doc2.md")]
    assert ans.usage["prompt_tokens"] > 0 and ans.usage["completion_tokens"] == 6
    assert ans.status == "answered" and ans.packed == [1, 2, 3]
    assert next(e for e in ans.events if e.kind == "cohere").data == {"spans": 1}
    body = fake.requests[-1]["body"]
    assert [d["id"] for d in body["documents"]] == ["1", "2", "3"]
    assert body["documents"][1]["data"] == {"title": "Title 2", "snippet": HITS[1].chunk.text}
    assert body["messages"][0]["role"] == "system" and body["messages"][-1] == \
        {"role": "user", "content": "When do API keys expire?"}
    assert body["model"] == "command-r" and not body.get("stream")


def test_stream_yields_deltas_then_the_cited_answer(fake):
    items = list(gen_for(fake).stream("How are invoices paid and when are they sent?", HITS))
    deltas, final = items[:-1], items[-1]
    assert len(deltas) > 1 and "".join(deltas) == "Invoices are sent on the first day of each month."
    assert final.text == "Invoices are sent on the first day of each month [1]."
    assert final.citations[0].doc_id == "doc1.md" and final.usage["completion_tokens"] > 0
    assert fake.requests[-1]["body"]["stream"] is True


def test_markers_and_foreign_ids():
    assert with_markers("A is 1. B is 2.", [(7, ["1"]), (15, ["2", "3"])]) == "A is 1 [1]. B is 2 [2][3]."
    assert with_markers("A.", [(2, ["web-1"])]) == "A."


def test_errors_are_one_line(fake):
    with pytest.raises(ConfigError, match="no API key"):
        CohereGenerator(base_url=fake.base_url).answer("q", HITS)
    with pytest.raises(PluginError, match="authentication failed"):
        CohereGenerator(api_key="wrong", base_url=fake.base_url).answer("q", HITS)
    fake.fail_next = [503, 503, 503]
    with pytest.raises(PluginError, match="server error 503 after retries"):
        gen_for(fake).answer("When do API keys expire?", HITS)
    fake.fail_next = [429]  # one retry is enough
    assert gen_for(fake).answer("When do API keys expire?", HITS).citations


def test_stream_errors_are_classified_too(fake):
    fake.fail_next = [401]
    with pytest.raises(PluginError, match="authentication failed"):
        list(gen_for(fake).stream("When do API keys expire?", HITS))
