"""Hostile request shapes against a real ``ragkit serve`` on 127.0.0.1: each gets a 4xx with a message (or a normal
answer), never a 5xx or a hang. The server's limits are the small ones of tests/serve/conftest.py."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.serve.conftest import KEYS, LIMITS


def assert_client_error(response: httpx.Response, *statuses: int) -> str:
    assert response.status_code in statuses, (response.status_code, response.text[:300])
    body = response.json()
    message = json.dumps(body)
    assert len(message) < 4000 and ("detail" in body or "error" in body), message[:300]
    return message


def post(http, path: str, content: bytes, key: str | None = "acme") -> httpx.Response:
    return http[key].post(path, content=content, headers={"Content-Type": "application/json"})


@pytest.mark.parametrize("path", ["/v1/retrieve", "/v1/query"])
def test_a_100kb_query_is_refused_by_size(http, path):
    body = json.dumps({"query": "rotate keys " * 9000}).encode()  # ~100 KB
    assert len(body) > 100_000
    assert_client_error(post(http, path, body), 413)


def test_a_long_query_inside_the_body_limit_gets_422(http):
    query = "q" * (LIMITS["max_query_chars"] + 1)
    message = assert_client_error(http["acme"].post("/v1/retrieve", json={"query": query}), 422)
    assert "max_query_chars" in message or str(LIMITS["max_query_chars"]) in message


@pytest.mark.parametrize("query", ["\x00\x01\x02 rotate \x1b[31m keys \x7f", "\u202e\u200b\ufeff retention",
                                   "\ufffd" * 50, "🔑" * 100])
def test_control_characters_and_odd_unicode_are_just_text(http, query):
    r = http["acme"].post("/v1/retrieve", json={"query": query, "k": 3})
    assert r.status_code == 200, r.text[:300]
    assert all(h["metadata"]["tenant"] == "acme" for h in r.json()["hits"])


@pytest.mark.parametrize("raw", [b'{"query": "caf\xe9"}', b'{"query": "\xff\xfe\xfd"}', b'\xef\xbb\xbf{"query": "x"}',
                                 b'{"query": "\\ud800 lone surrogate"}', b'{"query": ', b"", b"null", b"[]",
                                 b'"just a string"', b'{"query": "x", "query": 3}', b"{" * 3000])
def test_broken_json_bodies_get_4xx(http, raw):
    r = post(http, "/v1/retrieve", raw)
    assert r.status_code < 500, (raw[:40], r.status_code, r.text[:200])
    if r.status_code != 200:
        assert_client_error(r, 400, 413, 422)


@pytest.mark.parametrize("depth", [50, 1500])
def test_deeply_nested_filters_get_4xx(http, depth):
    nested = '{"and": [' * depth + '"tenant=acme"' + "]}" * depth
    body = ('{"query": "retention", "filter": ' + nested + "}").encode()
    assert_client_error(post(http, "/v1/retrieve", body), 400, 413, 422)
    lists = ("[" * depth + '"tenant=acme"' + "]" * depth).encode()
    assert_client_error(post(http, "/v1/retrieve", b'{"query": "x", "filter": ' + lists + b"}"), 400, 413, 422)


@pytest.mark.parametrize(("k", "status"), [(1, 200), (LIMITS["max_k"], 200), (LIMITS["max_k"] + 1, 422),
                                           (0, 422), (-1, 422), (2**63, 422), (10**400, 422), (1.5, 422),
                                           ("3", 200), (None, 200)])
def test_k_at_and_beyond_its_limits(http, k, status):
    body = b'{"query": "retention", "k": ' + (json.dumps(k) if not isinstance(k, int) or abs(k) < 2**64
                                              else str(k)).encode() + b"}"
    r = post(http, "/v1/retrieve", body)
    if status == 200:
        assert r.status_code == 200, r.text[:300]
    else:
        assert_client_error(r, status)


@pytest.mark.parametrize("headers", [
    {"Authorization": "Bearer " + "x" * 6000}, {"Authorization": "Basic Zm9vOmJhcg=="},
    {"Authorization": "Bearer"}, {"Authorization": "bearer rk-not-a-key"},
    {"Content-Type": "text/plain"}, {"Content-Type": "application/json; charset=latin-1"},
    {"X-Forwarded-For": ", ".join(["::1", "10.0.0.1"] * 200)}, {"Accept": "*/" * 500},
])
def test_odd_headers_never_5xx(server, headers):
    base = {"Authorization": f"Bearer {KEYS['acme']}"}
    with httpx.Client(base_url=server, timeout=30) as c:
        r = c.post("/v1/retrieve", content=b'{"query": "retention"}', headers={**base, **headers})
    assert r.status_code < 500, (headers, r.status_code, r.text[:200])


@pytest.mark.parametrize("query_string", ["?k=999999999999999999999", "?%ff%fe=%00", "?" + "a=b&" * 2000,
                                          "?filter=" + "%5B" * 500])
def test_query_strings_on_get_endpoints(http, query_string):
    for path in ("/healthz", "/v1/models"):
        r = http["acme"].get(path + query_string)
        assert r.status_code < 500, (path, r.status_code, r.text[:200])


@pytest.fixture(scope="module")
def default_limits_server(tenant_engine, keyring):
    """The same index with the default serve limits (a 256 KiB body lets deep JSON reach the parser)."""
    from ragkit.serve import create_app
    from tests.serve.conftest import running

    with running(create_app(tenant_engine, keyring)) as url:
        yield url


@pytest.mark.parametrize("body", [b'{"query": "x", "filter": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
                                  b'{"query": "x", "filter": ' + b'{"a":' * 30_000 + b"1" + b"}" * 30_000 + b"}",
                                  b"[" * 200_000])
def test_json_nested_past_the_parsers_recursion_limit_gets_4xx(default_limits_server, body):
    with httpx.Client(base_url=default_limits_server, timeout=30) as c:
        r = c.post("/v1/retrieve", content=body, headers={"Authorization": f"Bearer {KEYS['acme']}",
                                                          "Content-Type": "application/json"})
    assert_client_error(r, 400, 413, 422)
