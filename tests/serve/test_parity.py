"""The server answers through the engine's own query path: for the same question, key filter and options, a
/v1/query response carries exactly what ``Engine.query`` returns in-process (answer text, citations, sources
with their per-stage scores and ranks). If the server assembled retrieval or generation on its own, these
would drift apart."""

from __future__ import annotations

import pytest

from ragkit.filter_expr import to_filter

CASES = [
    ("how do I change log retention?", 3, None, None),
    ("who approves nightly backups", 5, "hybrid", "product=cloud"),
    ("zephyr support desk for webhooks", 4, "bm25", None),
    ("settings page for single sign-on", 2, "dense", "product=selfhosted"),
]


@pytest.mark.parametrize("question,k,mode,user_filter", CASES)
def test_server_answer_equals_engine_query(http, tenant_engine, question, k, mode, user_filter):
    body = {"query": question, "k": k, "max_tokens": 64}
    if mode:
        body["mode"] = mode
    if user_filter:
        body["filter"] = user_filter
    r = http["acme"].post("/v1/query", json=body)
    assert r.status_code == 200, r.text
    served = r.json()

    flt = to_filter("tenant=acme") & to_filter(user_filter)  # the acme key's own filter, narrowed by the request
    local = tenant_engine.query(question, k=k, mode=mode, filter=flt)

    assert [s["chunk_id"] for s in served["sources"]] == [h.chunk_id for h in local.sources]
    for s, h in zip(served["sources"], local.sources):
        assert s["score"] == pytest.approx(h.score, abs=1e-6)
        assert s["ranks"] == h.ranks
        assert s["scores"] == pytest.approx(h.scores, abs=1e-6)
    assert all(s["metadata"]["tenant"] == "acme" for s in served["sources"])
    if served["finish_reason"] == "stop":
        assert served["answer"] == local.text
        assert [(c["n"], c["chunk_id"]) for c in served["citations"]] == [(c.n, c.chunk_id) for c in local.citations]
    else:  # cut at max_tokens: what was sent is the start of the same answer
        assert local.text.startswith(served["answer"])
    assert served["warnings"][:len(local.warnings)] == local.warnings
