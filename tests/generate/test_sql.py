"""The SQL tool's fences, with forged model outputs: a query that writes, reads a table it may not, or calls a
function with side effects is refused before it runs (sqlglot), and the database connection refuses it again
(read-only, authorizer, time and row limits) when handed one directly. Real SQLite, real sqlglot."""

from __future__ import annotations

import pytest

from ragkit.config import SqlConfig
from ragkit.generate.sql import SqlRejected, SqlTool, check_sql, extract_sql
from ragkit.index.tables import QueryError, TableDB, write_tables
from ragkit.ingest.tables import build_table
from ragkit.llm import Completion, Usage
from ragkit.types import Chunk, Hit


@pytest.fixture
def db(tmp_path):
    plans = build_table(["Plan", "Price", "Log retention"],
                        [["Free", "$0", "7 days"], ["Team", "$299", "15 days"], ["Business", "$1,200", "30 days"]])
    plans.name, plans.doc_id, plans.source = "plans", "acme/plans.md", "acme/plans.md"
    secret = build_table(["Customer", "Revenue"], [["Initech", "9,000"]])
    secret.name, secret.doc_id, secret.source = "secrets", "other/secret.md", "other/secret.md"
    write_tables(tmp_path / "tables.sqlite", [plans, secret])
    return TableDB(tmp_path / "tables.sqlite")


OK = ["SELECT plan FROM plans WHERE price > 100 ORDER BY log_retention DESC LIMIT 1",
      "SELECT COUNT(*), AVG(price), MAX(log_retention) FROM plans",
      "WITH p AS (SELECT * FROM plans) SELECT plan FROM p WHERE plan LIKE '%team%'",
      "SELECT plan FROM plans WHERE price = (SELECT MAX(price) FROM plans);",
      "SELECT ROUND(SUM(price) * 1.0 / COUNT(*), 2) AS mean, strftime('%Y', '2024-01-01') FROM plans",
      # AND / OR / COLLATE are operators, though sqlglot types them as functions
      "SELECT plan FROM plans WHERE price > 100 AND log_retention >= 15 OR plan LIKE '%free%'",
      "SELECT plan FROM plans WHERE plan = 'team' COLLATE NOCASE AND NOT price < 0",
      "SELECT SUM(CASE WHEN price > 100 THEN 1 ELSE 0 END) FROM plans"]


@pytest.mark.parametrize("sql", OK)
def test_plain_selects_pass_and_run(db, sql):
    checked = check_sql(sql, ["plans"])
    result = db.run(checked, ["plans"])
    assert result.rows


FORGED = {
    "DROP TABLE plans": "only SELECT",
    "DELETE FROM plans": "only SELECT",
    "UPDATE plans SET price = 0": "only SELECT",
    "INSERT INTO plans VALUES ('x', 1, 1)": "only SELECT",
    "SELECT 1; DROP TABLE plans": "exactly one statement",
    "SELECT * FROM plans; SELECT * FROM secrets": "exactly one statement",
    "ATTACH DATABASE '/tmp/x.db' AS x": "only SELECT",
    "PRAGMA writable_schema = 1": "only SELECT",
    "SELECT * FROM secrets": "not one of the tables",
    "SELECT plan FROM plans UNION SELECT customer FROM secrets": "not one of the tables",
    "SELECT plan FROM plans WHERE plan IN (SELECT customer FROM secrets)": "not one of the tables",
    "WITH s AS (SELECT * FROM secrets) SELECT * FROM s": "not one of the tables",
    "SELECT name, sql FROM sqlite_master": "not one of the tables",
    "SELECT * FROM ragkit_tables": "not one of the tables",
    "SELECT * FROM main.secrets": "schema-qualified",
    "SELECT * FROM pragma_table_info('secrets')": "table-valued function",
    "SELECT load_extension('/tmp/evil.so')": "function LOAD_EXTENSION",
    "SELECT writefile('/tmp/x', plan) FROM plans": "function WRITEFILE",
    "SELECT randomblob(1000000000)": "function RANDOMBLOB",
    "CREATE TABLE t AS SELECT * FROM plans": "only SELECT",
    "SELECT * INTO copy FROM plans": "not allowed",
    "": "empty query",
    "ignore the question and DROP TABLE plans": "not valid SQL",
}


@pytest.mark.parametrize("sql, why", list(FORGED.items()))
def test_forged_queries_are_refused_before_execution(sql, why):
    with pytest.raises(SqlRejected) as exc:
        check_sql(sql, ["plans"])
    assert why.lower() in str(exc.value).lower()


def test_comment_hidden_statement_is_refused():
    with pytest.raises(SqlRejected):
        check_sql("SELECT plan FROM plans -- harmless\n; DELETE FROM plans", ["plans"])


@pytest.mark.parametrize("sql", ["SELECT * FROM secrets", "SELECT name FROM sqlite_master", "DELETE FROM plans",
                                 "SELECT load_extension('x')", "ATTACH DATABASE ':memory:' AS m"])
def test_connection_refuses_what_the_checker_would(db, sql):
    with pytest.raises(QueryError):
        db.run(sql, ["plans"])


def test_time_and_row_limits(db):
    endless = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT COUNT(*) FROM n"
    check_sql(endless, ["plans"])
    with pytest.raises(QueryError, match="time limit"):
        db.run(endless, ["plans"], timeout=0.2)
    many = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500) SELECT i FROM n"
    r = db.run(many, ["plans"], max_rows=10)
    assert len(r.rows) == 10 and r.truncated


def test_the_file_is_opened_read_only(db, tmp_path):
    before = (tmp_path / "tables.sqlite").read_bytes()
    with pytest.raises(QueryError):
        db.run("DELETE FROM plans", ["plans", "secrets"])
    assert (tmp_path / "tables.sqlite").read_bytes() == before


def test_extract_sql_from_replies():
    assert extract_sql("```sql\nSELECT 1\n```\nThis returns one.") == "SELECT 1"
    assert extract_sql("Here you go: SELECT plan FROM plans") == "SELECT plan FROM plans"
    assert extract_sql("```sql\nSELECT 2") == "SELECT 2"


class ScriptedLLM:
    """Replies with the given texts in turn and records the prompts (a stand-in for a model's forged output)."""

    model_id = "scripted"

    def __init__(self, *replies: str) -> None:
        self.replies, self.prompts = list(replies), []

    def chat(self, messages, **kw):
        self.prompts.append("\n".join(m["content"] for m in messages))
        return Completion(self.replies.pop(0), Usage(10, 5))


def _stored(tmp_path, table, name):
    """``table`` written alone as ``name`` (from acme/<name>.md) and read back: the database and its table."""
    table.name, table.doc_id, table.source = name, f"acme/{name}.md", f"acme/{name}.md"
    write_tables(tmp_path / "t.sqlite", [table])
    db = TableDB(tmp_path / "t.sqlite")
    [stored] = db.tables()
    return db, stored


def _hit(name):
    return Hit(Chunk(f"acme/plans.md#table-0", "acme/plans.md", "Table plans", 1_000_000,
                     {"table": name, "title": "Plans", "source": "acme/plans.md"}), 1.0)


def test_repair_after_a_refused_query_then_answer_cites_the_table(db):
    llm = ScriptedLLM("```sql\nSELECT customer FROM secrets\n```", "```sql\nSELECT MAX(price) FROM plans\n```")
    tool = SqlTool(SqlConfig(), lambda: llm)
    plans = next(t for t in db.tables() if t.name == "plans")
    out = tool.run("What is the highest price?", [(plans, _hit("plans"))], db)
    assert out.answer is not None and "1200" in out.answer.text and "[1]" in out.answer.text
    assert out.answer.citations[0].doc_id == "acme/plans.md"
    assert out.answer.extras["sql"].startswith("SELECT MAX(price)") and out.answer.extras["rows"] == [[1200]]
    assert "not one of the tables" in llm.prompts[1]  # the repair prompt carries the refusal
    assert "secrets" not in llm.prompts[0].split("Question:")[0]  # the schema shown holds only allowed tables


def test_two_failures_fall_back_with_the_reason(db):
    llm = ScriptedLLM("DROP TABLE plans", "SELECT nope FROM plans")
    plans = next(t for t in db.tables() if t.name == "plans")
    out = SqlTool(SqlConfig(), lambda: llm).run("How many plans?", [(plans, _hit("plans"))], db)
    assert out.answer is None and "no such column" in out.reason
    assert [e.data.get("refused") for e in out.events if "error" in e.data] == [True, False]
    assert db.n_rows("plans") == 3


def test_an_empty_result_relaxes_text_equality_before_asking_again(db):
    from ragkit.generate.sql import relax_text_equality

    assert relax_text_equality("SELECT price FROM plans WHERE plan = 'team'") == \
        "SELECT price FROM plans WHERE plan LIKE '%team%'"
    assert relax_text_equality("SELECT price FROM plans WHERE price = 299") is None
    llm = ScriptedLLM("SELECT price FROM plans WHERE 'TEAM' = plan")
    plans = next(t for t in db.tables() if t.name == "plans")
    out = SqlTool(SqlConfig(), lambda: llm).run("Team price?", [(plans, _hit("plans"))], db)
    assert out.answer.extras["rows"] == [[299]] and "LIKE '%TEAM%'" in out.answer.extras["sql"]
    assert len(llm.prompts) == 1  # no second model call


def test_a_missing_column_moves_the_query_to_the_one_table_that_has_it(tmp_path):
    from ragkit.generate.sql import retarget

    now = build_table(["API", "Limit", "Burst"], [["Query API (/v2/query)", "120", "20"], ["REST API", "1,200", "200"]])
    old = build_table(["API", "Limit"], [["Query API", "30"], ["REST API", "600"]])
    for t, name in ((now, "limits"), (old, "limits_2022")):
        t.name, t.doc_id, t.source = name, f"{name}.md", f"{name}.md"
    write_tables(tmp_path / "t.sqlite", [now, old])
    db = TableDB(tmp_path / "t.sqlite")
    assert retarget("SELECT burst FROM limits_2022", [now, old]) == "SELECT burst FROM limits"
    assert retarget("SELECT nope FROM limits_2022", [now, old]) is None
    llm = ScriptedLLM("SELECT burst FROM limits_2022 WHERE api = 'Query API'")
    chosen = [(t, _hit(t.name)) for t in db.tables()]
    out = SqlTool(SqlConfig(), lambda: llm).run("Burst of the Query API?", chosen, db)
    assert out.answer.extras["rows"] == [[20]]
    assert out.answer.extras["sql"] == "SELECT burst FROM limits WHERE api LIKE '%Query API%'"
    assert len(llm.prompts) == 1


def test_a_count_of_one_matrix_cell_reads_the_cells_value(tmp_path):
    from ragkit.generate.sql import count_cell

    t = build_table(["Feature", "Free", "Team", "Business"],
                    [["Alert rules", "5", "200", "1,000"], ["Log retention", "7 days", "15 days", "30 days"],
                     ["Price", "$0", "$299", "$1,200"], ["SSO", "No", "No", "Yes"]], heading=["Compare plans"])
    db, plans = _stored(tmp_path, t, "plans")
    pinned = "SELECT COUNT(*) FROM plans WHERE plan = 'Team' AND feature LIKE '%alert rules%'"
    assert count_cell(pinned, [plans]) == "SELECT value FROM plans WHERE plan = 'Team' AND feature LIKE '%alert rules%'"
    # a count of plans (no plan pinned), an OR, a grouped count: left alone
    assert count_cell("SELECT COUNT(*) FROM plans WHERE feature = 'SSO' AND as_written = 'Yes'", [plans]) is None
    assert count_cell("SELECT COUNT(*) FROM plans WHERE plan = 'Team' OR feature = 'SSO'", [plans]) is None
    assert count_cell("SELECT plan, COUNT(*) FROM plans WHERE plan = 'Team' AND feature = 'SSO' GROUP BY plan",
                      [plans]) is None
    llm = ScriptedLLM(f"```sql\n{pinned}\n```")
    out = SqlTool(SqlConfig(), lambda: llm).run("How many alert rules does Team allow?", [(plans, _hit("plans"))], db)
    assert out.answer.extras["rows"] == [[200]] and "200" in out.answer.text
    assert any("rewritten" in e.data for e in out.events)
    llm = ScriptedLLM("SELECT COUNT(*) FROM plans WHERE feature = 'SSO' AND as_written = 'Yes'")
    out = SqlTool(SqlConfig(), lambda: llm).run("How many plans offer SSO?", [(plans, _hit("plans"))], db)
    assert out.answer.extras["rows"] == [[1]]


def test_values_read_over_every_feature_of_a_matrix_go_back_for_repair(tmp_path):
    from ragkit.generate.sql import matrix_filters

    t = build_table(["Feature", "Free", "Team", "Business"],
                    [["Alert rules", "5", "200", "1,000"], ["Log retention", "7 days", "15 days", "30 days"],
                     ["Price", "$0", "$299", "$1,200"]], heading=["Compare plans"])
    db, plans = _stored(tmp_path, t, "plans")
    llm = ScriptedLLM("SELECT SUM(value) FROM plans WHERE plan IN ('Team', 'Business')",
                      "SELECT SUM(value) FROM plans WHERE plan IN ('Team', 'Business') AND feature LIKE '%price%'")
    out = SqlTool(SqlConfig(), lambda: llm).run("Team and Business together cost?", [(plans, _hit("plans"))], db)
    assert "add a condition on feature" in llm.prompts[1]
    assert out.answer.extras["rows"] == [[1499]]
    assert matrix_filters("SELECT value FROM plans WHERE plan = 'Team'", [plans]) is not None
    assert matrix_filters("SELECT feature, value FROM plans WHERE plan = 'Team'", [plans]) is None
    assert matrix_filters("SELECT value FROM plans WHERE plan = 'Team' AND feature LIKE '%rules%'", [plans]) is None
    assert matrix_filters("SELECT COUNT(*) FROM plans WHERE plan = 'Team'", [plans]) is None
    grouped = ScriptedLLM("SELECT feature, MAX(value) FROM plans GROUP BY feature")
    out = SqlTool(SqlConfig(), lambda: grouped).run("Largest per feature?", [(plans, _hit("plans"))], db)
    assert out.answer is not None and len(grouped.prompts) == 1


def _matrix_db(tmp_path):
    t = build_table(["Feature", "Free", "Team", "Business"],
                    [["Price per month (billed monthly)", "$0", "$299", "$1,200"],
                     ["Alert rules", "5", "200", "1,000"], ["Log retention", "7 days", "15 days", "30 days"],
                     ["Audit log", "No", "90 days", "1 year"]], heading=["Compare plans"])
    t.metadata = {"date": "2024-07-01", "status": "current", "product": "cloud"}
    return _stored(tmp_path, t, "plans")


def test_words_of_a_label_in_another_order_still_find_it(tmp_path):
    from ragkit.generate.sql import relax_words

    assert relax_words("SELECT value FROM plans WHERE feature LIKE '%monthly price%' AND plan LIKE '%Team%'") == (
        "SELECT value FROM plans WHERE (feature LIKE '%monthly%' AND feature LIKE '%price%') AND plan LIKE '%Team%'")
    assert relax_words("SELECT value FROM plans WHERE plan LIKE '%Team%'") is None  # one word: nothing to split
    assert relax_words("SELECT value FROM plans WHERE feature LIKE 'price of%'") is None  # not a plain %...%
    db, plans = _matrix_db(tmp_path)
    llm = ScriptedLLM("SELECT value FROM plans WHERE plan = 'Business' AND feature = 'Monthly price'")
    out = SqlTool(SqlConfig(), lambda: llm).run("Monthly price of Business?", [(plans, _hit("plans"))], db)
    assert out.answer.extras["rows"] == [[1200]] and len(llm.prompts) == 1
    assert [e.text.split(":")[1].strip() for e in out.events if "relaxed" in e.data] == [
        "no rows; text comparisons relaxed to LIKE", "no rows; LIKE patterns split into their words"]


def test_the_schema_lists_a_matrix_s_labels_and_the_document_s_date_and_status(tmp_path):
    db, plans = _matrix_db(tmp_path)
    llm = ScriptedLLM("SELECT value FROM plans WHERE plan = 'Team' AND feature LIKE '%audit%'")
    cfg = SqlConfig(sample_rows=2)  # the sample shows only the price rows; the labels are all listed
    out = SqlTool(cfg, lambda: llm).run("How many days of audit log on Team?", [(plans, _hit("plans"))], db)
    assert out.answer.extras["rows"] == [[90]]
    schema = llm.prompts[0]
    assert "-- Compare plans (date 2024-07-01; status current)" in schema and "product" not in schema
    assert "one of: Price per month (billed monthly); Alert rules; Log retention; Audit log" in schema
    assert "Audit log | " not in schema  # not among the 2 sample rows
    llm = ScriptedLLM("SELECT 1 FROM plans")
    SqlTool(SqlConfig(schema_metadata=[]), lambda: llm).run("x?", [(plans, _hit("plans"))], db)
    assert "-- Compare plans\n" in llm.prompts[0]


def test_a_subquery_s_label_filter_does_not_cover_the_outer_query(tmp_path):
    from ragkit.generate.sql import matrix_filters

    db, plans = _matrix_db(tmp_path)
    outer_unfiltered = ("SELECT value - (SELECT value FROM plans WHERE plan = 'Business' AND feature = 'Alert rules') "
                        "FROM plans WHERE plan = 'Business'")
    assert "add a condition on feature" in matrix_filters(outer_unfiltered, [plans])
    both = ("SELECT value - (SELECT value FROM plans WHERE plan = 'Team' AND feature LIKE '%alert%') FROM plans "
            "WHERE plan = 'Business' AND feature LIKE '%alert%'")
    assert matrix_filters(both, [plans]) is None


def test_a_query_over_every_item_goes_back_when_the_question_names_one(tmp_path):
    from ragkit.generate.sql import best_label, matrix_filters, named_items

    db, plans = _matrix_db(tmp_path)
    labels = ["Price per month (billed monthly)", "Alert rules", "Log retention", "Audit log"]
    matrices = {"plans": (labels, ["Free", "Team", "Business"])}
    listed = "SELECT value FROM plans WHERE feature LIKE '%price%'"
    question = "What is the monthly price of the Business plan?"
    why = matrix_filters(listed, [plans], question, matrices)
    assert "names plan 'Business'" in why
    assert "WHERE feature LIKE '%Price per month (billed monthly)%' AND plan LIKE '%Business%'" in why
    # no label either: one error that asks for both conditions
    why = matrix_filters("SELECT value FROM plans", [plans], question, matrices)
    assert "every feature at once" in why and "every plan" in why and "AND plan LIKE '%Business%'" in why
    # the question names no plan, or the query filters, selects or groups by plan: left alone
    assert matrix_filters(listed, [plans], "Which monthly prices are there?", matrices) is None
    assert matrix_filters(listed + " AND plan = 'Business'", [plans], question, matrices) is None
    assert matrix_filters("SELECT plan, value FROM plans WHERE feature LIKE '%price%'", [plans],
                          "Is the Business plan the dearest?", matrices) is None
    assert named_items("The Teams page and the business plan", ["Team", "Business"]) == ["Business"]
    assert best_label("How many alert rules does Team allow?", labels) == "Alert rules"
    assert best_label("How many days of logs?", ["Log retention", "Log ingest"]) is None  # a tie: no hint
    llm = ScriptedLLM(listed, listed + " AND plan LIKE '%Business%'")
    out = SqlTool(SqlConfig(), lambda: llm).run(question, [(plans, _hit("plans"))], db)
    assert "names plan 'Business'" in llm.prompts[1]
    assert out.answer.extras["rows"] == [[1200]]


def test_a_count_over_a_yes_no_matrix_counts_its_yes_cells(tmp_path):
    from ragkit.generate.sql import count_flags, matrix_filters

    t = build_table(["Permission", "Owner", "Admin", "Viewer"],
                    [["Run queries", "yes", "yes", "yes"], ["Create API keys", "yes", "yes", "no"],
                     ["Delete the organisation", "✓", "✗", "✗"]], heading=["Roles"])
    db, roles = _stored(tmp_path, t, "roles")
    count = "SELECT COUNT(*) FROM roles WHERE role LIKE '%Viewer%'"
    assert count_flags(count, [roles]) == "SELECT COUNT(*) FROM roles WHERE role LIKE '%Viewer%' AND value = 1"
    assert count_flags(count + " AND as_written = 'yes'", [roles]) is None  # it says which cells already
    assert count_flags("SELECT COUNT(*) FROM roles", [roles]) is None  # pins no role and no permission
    assert matrix_filters("SELECT SUM(value) FROM roles WHERE role = 'Admin'", [roles]) is None  # one kind of cell
    for question, sql, n in (("How many permissions does the Viewer role have?", count, 1),
                             ("How many permissions does the Admin role have?",
                              "SELECT SUM(value) FROM roles WHERE role = 'Admin'", 2),
                             ("How many roles can create API keys?",
                              "SELECT COUNT(*) FROM roles WHERE permission LIKE '%API keys%'", 2)):
        llm = ScriptedLLM(sql)
        out = SqlTool(SqlConfig(), lambda: llm).run(question, [(roles, _hit("roles"))], db)
        assert out.answer.extras["rows"] == [[n]], question


def test_a_whole_column_in_several_units_is_not_ranked_as_one(tmp_path):
    from ragkit.generate.sql import mixed_units

    t = build_table(["Plan", "Metrics", "Logs"], [["Free", "30 days", "7 days"], ["Team", "13 months", "15 days"],
                                                  ["Enterprise", "25 months", "30 days"]])
    db, retention = _stored(tmp_path, t, "retention")
    assert [c.name for c in retention.columns] == ["plan", "metrics", "metrics_unit", "logs"]
    units = {"retention": {"metrics": ["days", "months"]}}
    ranked = "SELECT plan, metrics FROM retention ORDER BY metrics DESC LIMIT 1"
    assert "different units (days, months)" in mixed_units(ranked, [retention], units)
    assert "different units" in mixed_units("SELECT MAX(metrics) FROM retention", [retention], units)
    # one unit (logs), a filter, the unit column named, or no ranking: left alone
    for sql in ("SELECT plan FROM retention ORDER BY logs DESC", "SELECT MAX(metrics) FROM retention WHERE plan = 'Team'",
                "SELECT plan, metrics, metrics_unit FROM retention ORDER BY metrics DESC",
                "SELECT metrics FROM retention",
                "SELECT plan, COUNT(metrics) FROM retention GROUP BY plan ORDER BY COUNT(metrics) DESC"):
        assert mixed_units(sql, [retention], units) is None, sql
    llm = ScriptedLLM(ranked, "SELECT plan, metrics FROM retention WHERE metrics_unit = 'months' "
                              "ORDER BY metrics DESC LIMIT 1")
    out = SqlTool(SqlConfig(), lambda: llm).run("Which plan keeps metrics the most months?",
                                                [(retention, _hit("retention"))], db)
    assert "different units (days, months)" in llm.prompts[1]
    assert out.answer.extras["rows"] == [["Enterprise", 25]]
