"""Tenant isolation: two tenants whose documents share topics and vocabulary; 200 queries each (40 on postgres), in BM25-only,
dense-only and hybrid modes, through /v1/retrieve and /v1/query (cited answers), from concurrent clients.
Not one chunk or citation of the other tenant may come back, also when a request's own filter names it. On both
stores: the tenant fence is a filter like any other, compiled by each store."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.serve.conftest import TENANTS, tenant_queries

MODES = ("bm25", "dense", "hybrid")


QUERIES = {"embedded": 200, "postgres": 40}  # per tenant; fewer on the second store keeps the suite's time down


@pytest.fixture(params=["embedded", "postgres"])
def served(request):
    """(clients, queries per tenant) of the tenant server: the embedded index, or the same corpus in postgres."""
    return request.getfixturevalue("http" if request.param == "embedded" else "pg_http"), QUERIES[request.param]


def _check(tenant, payload):
    """Every chunk and citation in a response belongs to ``tenant``; returns how many chunks were seen."""
    hits = payload.get("hits", payload.get("sources", []))
    for h in hits:
        assert h["metadata"]["tenant"] == tenant and h["doc_id"].startswith(tenant + "/"), h["doc_id"]
    for c in payload.get("citations", []):
        assert c["doc_id"].startswith(tenant + "/"), c
    return len(hits)


@pytest.mark.parametrize("tenant", sorted(TENANTS))
def test_no_cross_tenant_chunks_or_citations(served, tenant):
    other = next(t for t in TENANTS if t != tenant)
    clients, n = served
    client = clients[tenant]
    queries = tenant_queries(tenant, n)
    assert len(queries) == n

    def one(i_query):
        i, q = i_query
        seen, cited = 0, 0
        for mode in MODES:
            r = client.post("/v1/retrieve", json={"query": q, "k": 10, "mode": mode})
            assert r.status_code == 200, r.text
            seen += _check(tenant, r.json())
        r = client.post("/v1/query", json={"query": q, "k": 5, "mode": MODES[i % 3]})
        assert r.status_code == 200, r.text
        seen += _check(tenant, r.json())
        cited += len(r.json()["citations"])
        if i % 10 == 0:  # a request filter naming the other tenant narrows to nothing, never widens
            for flt in (f"tenant={other}", {"tenant": [tenant, other]}, [f"tenant in {other},{tenant}"]):
                r = client.post("/v1/retrieve", json={"query": q, "k": 10, "mode": MODES[i % 3], "filter": flt})
                assert r.status_code == 200, r.text
                _check(tenant, r.json())
                if flt == f"tenant={other}":
                    assert r.json()["hits"] == []
        return seen, cited

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(one, enumerate(queries)))
    assert sum(s for s, _ in results) > n * 3 * 5  # queries did retrieve (the check above is not vacuous)
    assert sum(c for _, c in results) > n // 2
