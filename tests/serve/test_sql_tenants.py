"""Tenant isolation of the SQL tool through a real ``ragkit serve`` app on 127.0.0.1: a key's filter decides which
tables the model is shown and may query. The model here is a stand-in that writes whatever SQL the question
carries after ``SQL:`` (a hostile or confused model); the fences must hold whatever it writes."""

from __future__ import annotations

import re

import pytest

from ragkit.llm import Completion, Usage
from tests.conftest import LLMGenerator, write_tree
from tests.serve.conftest import running

DOCS = {f"{tenant}/prices.md": f"""---
title: Prices ({tenant})
tenant: {tenant}
---
# Prices

## Plans

| Plan | Price | Seats |
|------|-------|-------|
| Starter | ${a} | 5 |
| Growth | ${b} | 50 |
| Scale | ${c} | 500 |
""" for tenant, (a, b, c) in {"acme": (10, 20, 30), "globex": (111, 222, 333)}.items()}


class EchoSQL:
    """Writes the SQL given in the question after 'SQL:'; records every prompt it was shown."""

    model_id = "echo-sql"
    prompts: list[str] = []

    def chat(self, messages, **kw):
        text = "\n".join(m["content"] for m in messages)
        type(self).prompts.append(text)
        sql = re.search(r"SQL: (.*)", messages[1]["content"]).group(1)
        return Completion(f"```sql\n{sql}\n```", Usage(1, 1))


class EchoGenerator(LLMGenerator):
    """A generator holding EchoSQL; its own (passage) answer is empty text over the hits."""

    name = "test-echo-sql"

    def stream(self, query, hits):
        yield self.answer(query, hits)


@pytest.fixture(scope="module")
def sql_server(tmp_path_factory, keyring):
    from ragkit import Engine
    from ragkit.config import ServeConfig
    from ragkit.plugins import registry
    from ragkit.serve import create_app
    registry.register(EchoGenerator)
    EchoGenerator.the_llm = EchoSQL()
    root = tmp_path_factory.mktemp("sqltenants")
    write_tree(root / "docs", DOCS)
    eng = Engine.open(root / "idx", overrides={"ingest.tables": True, "router.enabled": True,
                                                "router.rules": [{"pattern": "SQL:", "route": "sql"}],
                                                "generator": {"name": EchoGenerator.name}})
    eng.ingest([root / "docs"])
    names = {t.metadata["tenant"]: t.name for t in eng.tables()}
    with running(create_app(eng, keyring, settings=ServeConfig())) as url:
        yield url, names
    eng.close()
    EchoGenerator.the_llm = None
    registry._classes.pop(("generator", EchoGenerator.name), None)


def _ask(url, key, sql, question="What is the highest price?"):
    import httpx

    from tests.serve.conftest import KEYS

    r = httpx.post(url + "/v1/query", json={"query": f"{question} SQL: {sql}", "k": 5},
                   headers={"Authorization": f"Bearer {KEYS[key]}"}, timeout=120)
    assert r.status_code == 200, r.text
    return r.json()


def _only(tenant, body):
    for h in body["sources"]:
        assert h["metadata"]["tenant"] == tenant, h["doc_id"]
    for c in body["citations"]:
        assert c["doc_id"].startswith(tenant + "/"), c
    assert all(str(v) not in str(body["extras"].get("rows")) for v in (111, 222, 333)) or tenant == "globex"


def test_own_table_answers_with_sql_and_rows(sql_server):
    url, names = sql_server
    EchoSQL.prompts.clear()
    body = _ask(url, "acme", f"SELECT MAX(price) FROM {names['acme']}")
    assert body["extras"]["sql"] == f"SELECT MAX(price) FROM {names['acme']}"
    assert body["extras"]["rows"] == [[30]] and "30" in body["answer"]
    assert body["citations"][0]["doc_id"] == "acme/prices.md"
    _only("acme", body)
    assert EchoSQL.prompts and all(names["globex"] not in p.split("Question:")[0] for p in EchoSQL.prompts)


@pytest.mark.parametrize("template", [
    "SELECT MAX(price) FROM {other}",
    "SELECT price FROM {own} UNION SELECT price FROM {other}",
    "SELECT price FROM {own} WHERE seats IN (SELECT seats FROM {other})",
    "WITH x AS (SELECT * FROM {other}) SELECT MAX(price) FROM x",
    "SELECT MAX(price) FROM {own}; DROP TABLE {other}",
    "SELECT * FROM ragkit_tables",
])
def test_another_tenants_table_is_never_read(sql_server, template):
    url, names = sql_server
    for tenant, other in (("acme", "globex"), ("globex", "acme")):
        body = _ask(url, tenant, template.format(own=names[tenant], other=names[other]))
        assert "sql" not in body["extras"], body["extras"]  # refused: answered from passages
        assert body["extras"]["fallback"].startswith("the SQL query failed")
        assert any("answered from passages" in w for w in body["warnings"])
        _only(tenant, body)


def test_a_key_whose_filter_hides_every_table_gets_no_sql(sql_server):
    url, names = sql_server
    body = _ask(url, "acme-cloud", f"SELECT MAX(price) FROM {names['acme']}")  # acme docs here are not product=cloud
    assert body["extras"].get("fallback") == "no table is visible to this request"
