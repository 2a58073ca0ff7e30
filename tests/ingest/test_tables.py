"""Tables from every source parse into typed columns: numbers with thousands separators, currency and units,
dates, text; the heading path and title travel with each table."""

from __future__ import annotations

import datetime as dt

import pytest

from ragkit.ingest.tables import (build_table, delimited_table, html_tables, markdown_tables, parse_date,
                                  parse_number, sql_name)


def cols(table):
    return {c.name: (c.type, c.unit) for c in table.columns}


@pytest.mark.parametrize("text, expected", [
    ("1,200 requests", (1200, "requests")), ("$0.40 per GB", (0.4, "$ per GB")), ("99.9%", (99.9, "%")),
    ("6,000", (6000, "")), ("-3", (-3, "")), ("€1,250.50", (1250.5, "€")), ("13 months", (13, "months")),
])
def test_numbers_with_separators_currency_and_units(text, expected):
    assert parse_number(text) == expected


@pytest.mark.parametrize("text", ["Unlimited", "v2", "1.2.3", "us1", "203.0.113.10", "Ingest API (/v1/logs)"])
def test_words_and_codes_are_not_numbers(text):
    assert parse_number(text) is None


@pytest.mark.parametrize("text, iso", [("2024-09-10", "2024-09-10"), ("10 September 2024", "2024-09-10"),
                                       ("September 10, 2024", "2024-09-10"), ("April 2019", "2019-04"),
                                       ("31 February 2024", None), ("Team", None)])
def test_dates(text, iso):
    assert parse_date(text) == iso


def test_markdown_table_types_units_and_heading_path():
    md = """# Limits page

## API limits

| API | Limit | Burst | Since |
|-----|------:|-------|-------|
| **REST** | 1,200 requests per minute | 200 requests | 10 September 2024 |
| `Query` | 120 queries per minute | 20 queries | 2024-01-05 |
| Ingest | No request limit | – | April 2019 |

```
| not | a table |
|-----|---------|
| in  | a fence |
```
"""
    [t] = markdown_tables(md, "Limits")
    assert t.title == "Limits" and t.heading == ["Limits page", "API limits"]
    c = cols(t)
    assert c["api"] == ("text", "")
    assert c["limit_value"][0] == "integer" and "limit_value_unit" in c and c["limit_value_text"] == ("text", "")
    assert c["burst"] == ("integer", "") and "burst_unit" in c  # requests vs queries: a unit column
    assert c["since"] == ("date", "")
    names = [x.name for x in t.columns]
    rows = [dict(zip(names, r)) for r in t.rows]
    assert rows[0]["api"] == "REST" and rows[1]["api"] == "Query"
    assert rows[0]["limit_value"] == 1200 and rows[0]["limit_value_unit"] == "requests per minute"
    assert rows[2]["limit_value"] is None and rows[2]["limit_value_text"] == "No request limit"
    assert rows[2]["burst"] is None  # "–" is empty
    assert [r["since"] for r in rows] == ["2024-09-10", "2024-01-05", "2019-04"]


def test_shared_unit_becomes_the_columns_unit_and_decimals_stay_decimal():
    t = build_table(["Plan", "Price", "Uptime"], [["Team", "$299", "99.9%"], ["Business", "$1,200", "99.95%"]])
    c = cols(t)
    assert c["price"] == ("integer", "$") and c["uptime"] == ("decimal", "%")
    assert t.rows == [["Team", 299, 99.9], ["Business", 1200, 99.95]]


def test_html_tables_with_thead_caption_and_headings():
    from bs4 import BeautifulSoup

    html = """<html><body><h1>Regions</h1><h2>Available regions</h2>
    <table><caption>Cloud regions</caption><thead><tr><th>Region code</th><th>Opened</th><th>Nodes</th></tr></thead>
    <tbody><tr><td>us1</td><td>April 2019</td><td>1,024</td></tr><tr><td>eu1</td><td>March 2020</td><td>512</td></tr>
    </tbody></table><h2>Other</h2><table><tr><td>only one row</td><td>x</td></tr></table></body></html>"""
    [t] = html_tables(BeautifulSoup(html, "html.parser"), "Regions")
    assert t.heading == ["Regions", "Available regions", "Cloud regions"]
    assert cols(t) == {"region_code": ("text", ""), "opened": ("date", ""), "nodes": ("integer", "")}
    assert t.rows == [["us1", "2019-04", 1024], ["eu1", "2020-03", 512]]


def test_csv_and_tsv_files(tmp_path):
    from ragkit.ingest.table_files import TableFileLoader

    (tmp_path / "usage.csv").write_text('Month,Requests,Cost\n2024-01-31,"1,200 requests",$12.50\n'
                                        '2024-02-29,"3,400 requests",$30\n', encoding="utf-8")
    (tmp_path / "nodes.tsv").write_text("Node\tCPUs\nn1\t8\nn2\t16\n", encoding="utf-8")
    [doc] = TableFileLoader().load(tmp_path / "usage.csv", "usage.csv")
    [t] = doc.tables
    assert cols(t) == {"month": ("date", ""), "requests": ("integer", "requests"), "cost": ("decimal", "$")}
    assert t.rows[1] == ["2024-02-29", 3400, 30]
    assert "| Month | Requests | Cost |" in doc.text
    [doc] = TableFileLoader().load(tmp_path / "nodes.tsv", "nodes.tsv")
    assert doc.tables[0].rows == [["n1", 8], ["n2", 16]]


def test_xlsx_sheets_keep_native_types(tmp_path):
    openpyxl = pytest.importorskip("openpyxl")
    from ragkit.ingest.table_files import TableFileLoader

    book = openpyxl.Workbook()
    ws = book.active
    ws.title = "Invoices"
    ws.append(["Invoice", "Amount", "Issued"])
    ws.append(["A-1", 1200.5, dt.datetime(2024, 3, 1)])
    ws.append(["A-2", 99, dt.datetime(2024, 4, 1)])
    other = book.create_sheet("Seats")
    other.append(["Team", "Seats"])
    other.append(["ops", "1,000"])
    book.save(tmp_path / "billing.xlsx")
    [doc] = TableFileLoader().load(tmp_path / "billing.xlsx", "billing.xlsx")
    inv, seats = doc.tables
    assert inv.heading == ["Invoices"] and cols(inv) == {"invoice": ("text", ""), "amount": ("decimal", ""),
                                                         "issued": ("date", "")}
    assert inv.rows[0] == ["A-1", 1200.5, "2024-03-01"]
    assert seats.rows == [["ops", 1000]]


def test_docx_tables_under_their_heading(tmp_path):
    docx = pytest.importorskip("docx")
    from ragkit.plugins import registry

    d = docx.Document()
    d.add_heading("Pricing", level=1)
    d.add_heading("Plans", level=2)
    table = d.add_table(rows=3, cols=2)
    for r, (a, b) in enumerate([("Plan", "Seats"), ("Team", "25"), ("Business", "1,000")]):
        table.cell(r, 0).text, table.cell(r, 1).text = a, b
    d.save(tmp_path / "p.docx")
    [doc] = registry.get("loader", "docx")().load(tmp_path / "p.docx", "p.docx")
    [t] = doc.tables
    assert t.heading == ["Pricing", "Plans"] and t.rows == [["Team", 25], ["Business", 1000]]


def test_sql_names_avoid_reserved_words_and_leading_digits():
    assert sql_name("Limit", "x") == "limit_value"
    assert sql_name("2xx responses", "x") == "c_2xx_responses"
    assert sql_name("  ", "col_3") == "col_3"
    assert delimited_table("only,header\n", ",") is None


def test_a_very_wide_table_is_cut_to_what_sqlite_can_store(tmp_path):
    from ragkit.index.tables import TableDB, write_tables
    from ragkit.ingest.tables import MAX_COLUMNS

    t = build_table([f"c{i}" for i in range(3000)], [[f"{i} ms" if i % 2 else f"x{i}" for i in range(3000)]])
    assert len({c.header.split(" (")[0] for c in t.columns}) == MAX_COLUMNS
    t.name, t.doc_id, t.source = "wide", "w.csv", "w.csv"
    write_tables(tmp_path / "t.sqlite", [t])
    assert TableDB(tmp_path / "t.sqlite").rows("wide")[0][:2] == ["x0", 1]


MATRIX = [["Feature", "Free", "Team", "Business", "Enterprise"],
          ["Price per month", "$0", "$299", "$1,200", "Custom"],
          ["Included log ingest", "1 GB per day", "20 GB per day", "100 GB per day", ""],
          ["Members", "3", "25", "Unlimited", "Unlimited"],
          ["Log retention", "7 days", "15 days", "30 days", "30 days"],
          ["Alert rules", "5", "200", "1,000", "Unlimited"]]


def test_a_feature_by_plan_matrix_is_stored_in_long_form():
    t = build_table(MATRIX[0], MATRIX[1:], title="Pricing", heading=["Pricing", "Compare plans"])
    assert [c.name for c in t.columns] == ["feature", "plan", "value", "unit", "as_written"]
    assert [c.type for c in t.columns] == ["text", "text", "integer", "text", "text"]
    assert "Free, Team, Business, Enterprise" in t.columns[1].header
    got = {(r[0], r[1]): r[2:] for r in t.rows}
    assert got[("Alert rules", "Business")] == [1000, None, "1,000"]
    assert got[("Included log ingest", "Team")] == [20, "GB per day", "20 GB per day"]
    assert got[("Price per month", "Team")] == [299, "$", "$299"]
    assert got[("Members", "Enterprise")] == [None, None, "Unlimited"]  # words: only as written
    assert ("Included log ingest", "Enterprise") not in got  # an empty cell gives no row
    assert len(t.rows) == 5 * 4 - 1
    wide = build_table(MATRIX[0], MATRIX[1:], long_matrices=False)
    assert [c.name for c in wide.columns][:3] == ["feature", "free", "free_unit"]


def test_only_matrices_are_reshaped_and_the_item_column_falls_back_to_item():
    # entities whose quantities differ in unit from row to row, also along the row: stays wide
    api = build_table(["API", "Limit", "Burst"], [["REST", "1,200 requests", "200 requests per second"],
                                                  ["Query", "120 queries", "20 queries per second"]])
    assert [c.name for c in api.columns][0] == "api" and "value" not in [c.name for c in api.columns]
    # one unit per column: the columns are quantities, not items
    plans = build_table(["Plan", "Price", "Retention"], [["Team", "$299", "15 days"], ["Business", "$1,200", "30 days"]])
    assert [c.name for c in plans.columns] == ["plan", "price", "retention"]
    # repeated row labels: not a matrix
    assert build_table(MATRIX[0], MATRIX[1:] + [MATRIX[1]]).columns[1].name == "free"
    t = build_table(MATRIX[0], MATRIX[1:], heading=["Compare"])
    assert t.columns[1].name == "item"


def test_a_matrix_description_names_its_row_labels():
    from ragkit.ingest.tables import describe

    t = build_table(MATRIX[0], MATRIX[1:], heading=["Compare plans"])
    t.name = "plans"
    text = describe(t)
    assert "Feature: Price per month; Included log ingest; Members; Log retention; Alert rules" in text
    plain = build_table(["Plan", "Price"], [["Team", "$299"], ["Business", "$1,200"]])
    plain.name = "prices"
    assert "Plan:" not in describe(plain)


def test_a_matrix_labelled_by_a_reserved_word_gets_a_name_column_not_a_value_look_alike():
    t = build_table(["Limit", "Cloud", "Self-hosted"],
                    [["Query timeout", "60 seconds", "120 seconds"], ["Rows returned", "1,000 rows", "1,000 rows"]],
                    heading=["Limits"])
    assert [c.name for c in t.columns] == ["limit_name", "item", "value", "unit", "as_written"]


def test_a_yes_no_matrix_is_stored_in_long_form_with_1_for_yes():
    from ragkit.index.tables import is_flag_form

    t = build_table(["Permission", "Owner", "Admin", "Viewer"],
                    [["Run queries", "yes", "Yes", "✓"], ["Delete the organisation", "yes", "no", "✗"],
                     ["See invoices", "true", "false", ""]], heading=["Roles"])
    assert [c.name for c in t.columns] == ["permission", "role", "value", "unit", "as_written"]
    assert is_flag_form(t) and t.columns[2].type == "integer"
    got = {(r[0], r[1]): r[2:] for r in t.rows}
    assert got[("Run queries", "Viewer")] == [1, None, "✓"]
    assert got[("Delete the organisation", "Admin")] == [0, None, "no"]
    assert got[("See invoices", "Admin")] == [0, None, "false"]
    assert ("See invoices", "Viewer") not in got  # an empty cell gives no row
    # a price matrix is in long form too, but its value is a number, not a flag
    assert not is_flag_form(build_table(MATRIX[0], MATRIX[1:]))
    # not yes/no matrices: one kind of answer only, a cell that is neither, a single item column
    assert build_table(["Permission", "Owner", "Admin"], [["Run", "yes", "yes"], ["Delete", "yes", "yes"]]
                       ).columns[1].name == "owner"
    assert build_table(["Permission", "Owner", "Admin"], [["Run", "yes", "no"], ["Delete", "yes", "ask"]]
                       ).columns[1].name == "owner"
    assert build_table(["Feature", "Enabled"], [["SSO", "yes"], ["SCIM", "no"]]).columns[1].name == "enabled"
