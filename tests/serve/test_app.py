"""REST endpoints of a real uvicorn server: /v1/retrieve, /v1/query, /healthz, /docs; auth, limits and
JSON errors with their status codes."""

from __future__ import annotations

import httpx
import pytest

from ragkit.serve import schemas as S
from tests.serve.conftest import LIMITS


def test_retrieve_returns_ranked_hits_with_scores_and_sources(http):
    r = http["acme"].post("/v1/retrieve", json={"query": "how do I change nightly backups", "k": 5})
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["k"] == 5 and data["mode"] == "hybrid" and 0 < len(data["hits"]) <= 5
    top = data["hits"][0]
    assert top["doc_id"] == "acme/nightly-backups.md" and top["rank"] == 1
    assert {"bm25", "dense", "rrf"} <= set(top["scores"])
    assert top["metadata"]["tenant"] == "acme" and top["metadata"]["source"].endswith("nightly-backups.md")
    scores = [h["score"] for h in data["hits"]]
    assert scores == sorted(scores, reverse=True)
    assert r.headers["content-type"] == "application/json"
    assert S.RetrieveResponse.model_validate(data).model_dump(mode="json") == data  # the documented shape, whole


def test_query_answers_with_citations_of_its_sources(http):
    r = http["globex"].post("/v1/query", json={"query": "how do I change log retention?", "k": 3, "mode": "bm25"})
    assert r.status_code == 200, r.text
    data = r.json()
    assert "[1]" in data["answer"] and data["citations"]
    for c in data["citations"]:
        assert data["sources"][c["n"] - 1]["chunk_id"] == c["chunk_id"]
        assert c["doc_id"].startswith("globex/")
    assert S.QueryResponse.model_validate(data).model_dump(mode="json") == data


def test_user_filter_narrows_within_the_tenant(http):
    r = http["acme"].post("/v1/retrieve", json={"query": "settings page", "k": 20, "filter": "product=cloud"})
    hits = r.json()["hits"]
    assert hits and all(h["metadata"]["product"] == "cloud" and h["metadata"]["tenant"] == "acme" for h in hits)
    key_narrowed = http["acme-cloud"].post("/v1/retrieve", json={"query": "settings page", "k": 20}).json()["hits"]
    assert {h["doc_id"] for h in key_narrowed} == {h["doc_id"] for h in hits}


def test_health_and_docs_need_no_key_and_reveal_nothing(http):
    h = http[None].get("/healthz")
    assert h.status_code == 200 and h.json() == {"status": "ok", "ready": True}
    assert http[None].get("/docs").status_code == 200
    spec = http[None].get("/openapi.json").json()
    assert {"/v1/retrieve", "/v1/query", "/v1/chat/completions", "/v1/models"} <= set(spec["paths"])
    for path, model in [("/v1/retrieve", "RetrieveResponse"), ("/v1/query", "QueryResponse"),
                        ("/v1/chat/completions", "ChatCompletionResponse")]:
        ok = spec["paths"][path]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
        assert ok == {"$ref": f"#/components/schemas/{model}"}


@pytest.mark.parametrize("headers, code", [({}, "missing_api_key"),
                                           ({"Authorization": "Bearer nope"}, "invalid_api_key"),
                                           ({"Authorization": "Basic abc"}, "invalid_api_key")])
def test_auth_failures_are_401(server, headers, code):
    r = httpx.post(server + "/v1/retrieve", json={"query": "backups"}, headers=headers)
    assert r.status_code == 401 and r.json()["error"]["code"] == code
    assert r.headers["www-authenticate"] == "Bearer"


def test_key_without_permission_is_403(http):
    assert http["acme-retrieve-only"].post("/v1/retrieve", json={"query": "backups"}).status_code == 200
    r = http["acme-retrieve-only"].post("/v1/query", json={"query": "backups"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "endpoint_not_allowed"


def test_rate_limited_key_gets_429_with_retry_after(http):
    codes = [http["acme-limited"].post("/v1/retrieve", json={"query": "backups", "mode": "bm25"}).status_code
             for _ in range(3)]
    assert codes[:2] == [200, 200] and codes[2] == 429


@pytest.mark.parametrize("body, status, code", [
    ({"query": "x" * (LIMITS["max_query_chars"] + 1)}, 422, "query_too_long"),
    ({"query": "backups", "k": LIMITS["max_k"] + 1}, 422, "k_too_large"),
    ({"query": "backups", "k": 0}, 422, "invalid_field"),
    ({"query": "backups", "mode": "fuzzy"}, 422, "invalid_field"),
    ({"query": "backups", "limit": 3}, 422, "invalid_field"),
    ({"k": 3}, 422, "invalid_field"),
    ({"query": "   "}, 422, "empty_query"),
    ({"query": "backups", "filter": "tenant=="}, 400, "invalid_filter"),
    ({"query": "backups", "filter": {"year": {"near": 3}}}, 400, "invalid_filter"),
])
def test_bad_requests_get_json_errors(http, body, status, code):
    for path in ("/v1/retrieve", "/v1/query"):
        r = http["acme"].post(path, json=body)
        assert (r.status_code, r.json()["error"]["code"]) == (status, code), r.text
        assert r.json()["error"]["message"]


def test_malformed_json_body_size_and_unknown_routes(http):
    c = http["acme"]
    r = c.post("/v1/retrieve", content=b'{"query": ', headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"
    r = c.post("/v1/retrieve", content=b'["a list"]', headers={"content-type": "application/json"})
    assert r.status_code == 400
    big = {"query": "backups", "filter": {"tenant": "acme", "pad": "x" * LIMITS["max_body_bytes"]}}
    r = c.post("/v1/retrieve", json=big)
    assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"

    def chunked():  # no Content-Length: the limit is enforced on the bytes received
        yield b'{"query": "backups", "pad": "'
        for _ in range(8):
            yield b"x" * 1024
        yield b'"}'

    r = c.post("/v1/retrieve", content=chunked(), headers={"content-type": "application/json"})
    assert r.status_code == 413
    r = c.get("/v1/nothing-here")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = c.get("/v1/retrieve")
    assert r.status_code == 405


def test_query_max_tokens_cuts_the_answer_and_is_capped(http):
    r = http["acme"].post("/v1/query", json={"query": "how do I change log retention?", "max_tokens": 4})
    assert r.status_code == 200 and r.json()["finish_reason"] == "length"
    assert len(r.json()["answer"].split()) <= 4 and r.json()["warnings"]
    r = http["acme"].post("/v1/query", json={"query": "backups", "max_tokens": LIMITS["max_tokens"] + 1})
    assert r.status_code == 422 and r.json()["error"]["code"] == "max_tokens_too_large"


def test_concurrent_retrievals_can_be_capped(tenant_engine, keyring):
    from concurrent.futures import ThreadPoolExecutor

    from ragkit.config import ServeConfig
    from ragkit.serve import create_app
    from tests.serve.conftest import KEYS, running

    app = create_app(tenant_engine, keyring, settings=ServeConfig(max_concurrent_retrievals=1))
    assert app.state.ragkit.gate is not None
    with running(app) as url, httpx.Client(base_url=url, headers={"Authorization": f"Bearer {KEYS['globex']}"}) as c:
        with ThreadPoolExecutor(4) as pool:
            codes = list(pool.map(lambda q: c.post("/v1/retrieve", json={"query": q, "k": 3}).status_code,
                                  ["invoices", "webhooks", "backups", "rate limits"] * 3))
    assert codes == [200] * 12
