"""The router (rules, keywords, the LLM classifier) and routed answers through the Engine: the SQL tool answers a
numeric question with its query and rows, streams it, and falls back to passages (saying so) when it cannot. The
model is a stand-in that writes the SQL the question carries; the `ragkit tables` command lists the tables."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from ragkit.config import RouterConfig, load_config
from ragkit.llm import Completion, Usage
from ragkit.retrieve.router import Router
from tests.conftest import LLMGenerator, write_tree


def test_default_rules_route_counting_questions_to_sql():
    r = Router(load_config({}).router)
    assert r.route("How many alert rules does the Team plan allow?").route == "sql"
    assert r.route("Which plan has the longest retention?").route == "sql"
    assert r.route("What is the monthly price of the Business plan?").route == "sql"
    d = r.route("How do I rotate an API key?")
    assert d.route == "passages" and d.reason == "no rule matched"


def test_custom_rules_keywords_and_default():
    r = Router(RouterConfig(rules=[{"keywords": ["invoice"], "route": "passages"},
                                   {"pattern": r"\btotal\b", "route": "both"}], default="sql"))
    assert r.route("total of the invoice").route == "passages"  # first match wins
    assert r.route("the total seats").route == "both"
    assert r.route("anything else").route == "sql"


class YesNo:
    def __init__(self, p):
        self.p, self.asked = p, []

    def yes_probability(self, messages):
        self.asked.append(messages[-1]["content"])
        return self.p


def test_llm_classifier_and_rules_first():
    llm = YesNo(0.8)
    assert Router(RouterConfig(classifier="llm"), lambda: llm).route("How do I rotate keys?").route == "sql"
    hybrid = Router(RouterConfig(classifier="rules+llm"), lambda: YesNo(0.1))
    assert hybrid.route("How many keys?").route == "sql"  # a rule matched: the model is not asked
    d = hybrid.route("Tell me about keys")
    assert d.route == "passages" and d.p_sql == pytest.approx(0.1)
    with pytest.raises(Exception, match="LLM"):
        Router(RouterConfig(classifier="llm")).route("x")


class EchoSQL:
    model_id = "echo-sql"

    def chat(self, messages, **kw):
        m = re.search(r"SQL: (.*)", messages[1]["content"])
        return Completion(f"```sql\n{m.group(1) if m else 'SELECT 1'}\n```", Usage(1, 1))


class EchoGenerator(LLMGenerator):
    name = "test-router-echo"

    def answer(self, query, hits):
        from ragkit.types import Answer

        return Answer(query, "from passages", [], hits)

    def stream(self, query, hits):
        yield "from passages"
        yield self.answer(query, hits)


@pytest.fixture(scope="module")
def routed(tmp_path_factory):
    from ragkit import Engine
    from ragkit.plugins import registry

    registry.register(EchoGenerator)
    EchoGenerator.the_llm = EchoSQL()
    root = tmp_path_factory.mktemp("routed")
    write_tree(root / "docs", {"plans.md": "# Plans\n\n## Limits\n\n| Plan | Alert rules | Price |\n|---|---|---|\n"
                                           "| Team | 200 | $299 |\n| Business | 1,000 | $1,200 |\n",
                               "keys.md": "# Keys\n\nRotate a key from the settings page.\n"})
    eng = Engine.open(root / "idx", overrides={"ingest.tables": True, "router.enabled": True,
                                                "router.rules": [{"pattern": "SQL:", "route": "sql"}],
                                                "generator": {"name": EchoGenerator.name}})
    eng.ingest([root / "docs"])
    yield eng, root / "idx"
    eng.close()
    EchoGenerator.the_llm = None
    registry._classes.pop(("generator", EchoGenerator.name), None)


def test_routed_answer_carries_sql_rows_and_the_table_citation(routed):
    eng, _ = routed
    a = eng.query("Total alert rules? SQL: SELECT SUM(alert_rules) FROM plans__limits")
    assert a.text.startswith("The answer is 1200 [1]") and a.status == "answered"
    assert a.extras["sql"] == "SELECT SUM(alert_rules) FROM plans__limits" and a.extras["rows"] == [[1200]]
    assert a.citations[0].doc_id == "plans.md" and a.sources[0].chunk.metadata["table"] == "plans__limits"
    kinds = [e.kind for e in a.events]
    assert "route" in kinds and "sql" in kinds and any(e.text == "generator sql" for e in a.events)
    stream = eng.query_stream("Price? SQL: SELECT price FROM plans__limits WHERE plan LIKE '%team%'")
    assert "".join(stream).startswith("The answer is 299")
    assert stream.answer.extras["rows"] == [[299]]


def test_failures_fall_back_to_passages_and_say_so(routed):
    eng, _ = routed
    a = eng.query("How do I rotate a key?")  # no rule matched: passages, no fallback note
    assert a.text == "from passages" and not a.warnings and "fallback" not in a.extras
    a = eng.query("Rotate? SQL: DELETE FROM plans__limits")
    assert a.text == "from passages" and a.extras["fallback"].startswith("the SQL query failed")
    assert a.warnings == [f"answered from passages: {a.extras['fallback']}"]
    assert eng.reader().tables().n_rows("plans__limits") == 2
    a = eng.query("Anything? SQL: SELECT 1", filter="title=Keys")  # the filter hides every table
    assert a.extras["fallback"] == "no table is visible to this request"


def test_ragkit_tables_lists_columns_and_sources(routed):
    _, index = routed
    out = subprocess.run([sys.executable, "-m", "ragkit", "tables", "--index", str(index), "--json"],
                         capture_output=True, text=True, check=True).stdout
    [t] = json.loads(out)
    assert t["name"] == "plans__limits" and t["rows"] == 2 and t["source"].endswith("plans.md")
    assert [(c["name"], c["type"], c["unit"]) for c in t["columns"]] == [
        ("plan", "text", ""), ("alert_rules", "integer", ""), ("price", "integer", "$")]


def test_router_without_any_llm_is_a_config_error(tmp_path):
    from ragkit import Engine
    from ragkit.errors import ConfigError

    with pytest.raises(ConfigError, match="sql.llm"):
        Engine.open(tmp_path / "idx", overrides={"router.enabled": True})


def test_both_keeps_the_passages_as_further_sources(routed):
    eng, _ = routed
    saved = eng.router
    eng.router = Router(RouterConfig(rules=[{"pattern": "SQL:", "route": "both"}]))
    try:
        a = eng.query("Rotate keys, and the Team price? SQL: SELECT price FROM plans__limits WHERE plan = 'Team'")
    finally:
        eng.router = saved
    assert a.extras["route"] == "both" and a.extras["rows"] == [[299]]
    assert a.sources[0].chunk.metadata["table"] == "plans__limits" and len(a.sources) > 1
    assert len({h.chunk_id for h in a.sources}) == len(a.sources)


class RecordingSQL(EchoSQL):
    """EchoSQL that keeps the schema each question was shown."""

    def __init__(self) -> None:
        self.schemas: list[str] = []

    def chat(self, messages, **kw):
        self.schemas.append(messages[1]["content"].split("\n\nQuestion:")[0])
        return super().chat(messages, **kw)


@pytest.mark.parametrize("rules", [False, True])
def test_table_search_runs_through_the_rerankers_and_the_schema_shows_date_and_status(tmp_path, rules):
    """Two versions of a price list with the same shape; the deprecated one matches the question's words better.
    With one table shown, the rules reranker (status=deprecated demoted) decides which one the model sees; either
    way its schema comment carries the document's date and status."""
    from ragkit import Engine
    from ragkit.plugins import registry

    registry.register(EchoGenerator)
    llm = EchoGenerator.the_llm = RecordingSQL()
    table = "| Plan | Alert rules |\n|---|---|\n| Team | {} |\n| Business | {} |\n"
    write_tree(tmp_path / "docs", {
        "plans.md": "---\ndate: 2024-07-01\nstatus: current\n---\n# Plans\n\n## Limits\n\n" + table.format(200, 1000),
        "plans-2023.md": "---\ndate: 2023-01-05\nstatus: deprecated\n---\n# Plans 2023\n\n## Alert rules limits "
                         "per plan\n\n" + table.format(100, 500)})
    overrides = {"ingest.tables": True, "router.enabled": True, "sql.max_tables": 1,
                 "router.rules": [{"pattern": "SQL:", "route": "sql"}], "generator": {"name": EchoGenerator.name}}
    if rules:
        overrides["rerankers"] = [{"name": "rules", "rules": [{"when": "status=deprecated", "boost": 0.01}]}]
    try:
        with Engine.open(tmp_path / "idx", overrides=overrides) as eng:
            eng.ingest([tmp_path / "docs"])
            names = {t.name for t in eng.reader().tables().tables()}
            current = next(n for n in names if "2023" not in n)
            old = next(n for n in names if "2023" in n)
            a = eng.query("Alert rules limits per plan? SQL: SELECT 1")
    finally:
        EchoGenerator.the_llm = None
        registry._classes.pop(("generator", EchoGenerator.name), None)
    shown = a.extras["tables"]
    assert shown == [current if rules else old]
    [schema] = llm.schemas
    assert f"CREATE TABLE {shown[0]} (" in schema
    assert ("(date 2024-07-01; status current)" if rules else "(date 2023-01-05; status deprecated)") in schema
