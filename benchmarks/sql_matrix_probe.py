"""Probe: does a feature-by-plan matrix in long form help the SQL tool's model?

In ``sql_tool.py`` the numeric questions over the two Beacon price lists (one row per feature, one column per plan)
were answered worst: the model filters on the plan name as if plans were rows. This probe gives the model each such
question's gold tables directly (no retrieval, no routing), once in the stored wide form and once in a long form
(``feature, plan, value, unit, as_written``: one row per feature and plan), alternating, with the same model and
the same SQL tool, and counts exact answers. It is a probe of the table form only: the index is not changed.

    python benchmarks/sql_matrix_probe.py --model qwen1.5b

Writes benchmarks/results/sql_matrix_probe.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import CACHE, write_result  # noqa: E402
from sql_tool import SET, build_index, exact  # noqa: E402

MATRICES = ("plans__compare_plans", "plans_2023__plans_and_pricing")


def long_form(table):
    """The matrix as rows of (feature, plan, value, unit, as_written): each value column with its ``_unit`` and
    ``_text`` companions becomes the rows of one plan; a plain text column (e.g. "Custom") keeps only as_written."""
    from ragkit.types import Table, TableColumn

    cols = [c.name for c in table.columns]
    label, groups = cols[0], [c for c in table.columns[1:] if not c.name.endswith(("_unit", "_text"))]
    rows = []
    for row in table.rows:
        get = dict(zip(cols, row))
        for c in groups:
            numeric = c.type in ("integer", "decimal")
            value = get.get(c.name) if numeric else None
            written = get.get(f"{c.name}_text") if f"{c.name}_text" in get else get.get(c.name)
            if value is None and written in (None, ""):
                continue
            rows.append([get[label], c.header, value, get.get(f"{c.name}_unit") or "", written])
    columns = [TableColumn(label, table.columns[0].header, "text"), TableColumn("plan", "Plan", "text"),
               TableColumn("value", "Value", "decimal"), TableColumn("unit", "Unit", "text"),
               TableColumn("as_written", "As written", "text")]
    return Table(columns=columns, rows=rows, title=table.title, heading=table.heading, name=f"{table.name}_long",
                 doc_id=table.doc_id, source=table.source, metadata=table.metadata)


def main() -> None:
    from ragkit.config import SqlConfig
    from ragkit.generate.sql import SqlTool
    from ragkit.index.tables import TableDB, write_tables
    from ragkit.llm import make_llm
    from ragkit.types import Chunk, Hit

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="qwen1.5b")
    args = ap.parse_args()

    index = CACHE / "indexes" / "beacon-tables"
    if not index.exists():
        build_index(index)
    src = max(index.glob("gens/*/tables.sqlite"))
    wide_db = TableDB(src)
    full = {t.name: t for t in wide_db.tables()}
    tmp = tempfile.TemporaryDirectory(prefix="ragkit-matrix-")
    long_path = Path(tmp.name) / "tables.sqlite"
    write_tables(long_path, [long_form(dataclasses.replace(full[n], rows=wide_db.rows(n))) for n in MATRICES])
    long_db = TableDB(long_path)
    long_tables = {t.name: t for t in long_db.tables()}

    def hit(t) -> Hit:
        return Hit(Chunk(f"table:{t.name}", t.doc_id, t.title, 0, {"table": t.name, "source": t.source}), 1.0)

    questions = [json.loads(line) for line in SET.read_text().splitlines() if line.strip()]
    questions = [q for q in questions if q["route"] == "sql" and set(q["tables"]) & set(MATRICES)]
    llm = make_llm({"backend": "llama-cpp", "model": args.model, "n_ctx": 4096})
    tool = SqlTool(SqlConfig(), lambda: llm)
    rows = []
    for i, q in enumerate(questions, 1):
        for form, db, tables in (("wide", wide_db, full), ("long", long_db, long_tables)):
            names = [n if form == "wide" else f"{n}_long" for n in q["tables"]]
            chosen = [(tables[n], hit(tables[n])) for n in names]
            t = time.perf_counter()
            out = tool.run(q["question"], chosen, db)
            sql = out.answer.extras["sql"] if out.answer else None
            text = out.answer.text if out.answer else ""
            rows.append({"id": q["id"], "kind": q["kind"], "form": form, "tables": names, "sql": sql,
                         "ran": out.answer is not None, "answer": text, "reason": out.reason,
                         "em": exact(text, q), "seconds": round(time.perf_counter() - t, 3)})
            print(f"[{i}/{len(questions)}] {q['id']} {form}: ran={out.answer is not None} em={rows[-1]['em']} "
                  f"{sql or out.reason}", file=sys.stderr)
    tmp.cleanup()

    em = {form: [r["em"] for r in rows if r["form"] == form] for form in ("wide", "long")}
    ran = {form: [r["ran"] for r in rows if r["form"] == form] for form in ("wide", "long")}
    data = {"model": args.model, "set": "eval_sets/beacon-numeric",
            "questions": len(questions), "tables": list(MATRICES),
            **{form: {"ran": round(sum(ran[form]) / len(questions), 4),
                      "exact_match": round(sum(em[form]) / len(questions), 4), "right": sum(em[form])}
               for form in ("wide", "long")},
            "only_long_right": sum(b and not a for a, b in zip(em["wide"], em["long"])),
            "only_wide_right": sum(a and not b for a, b in zip(em["wide"], em["long"])),
            "rows": rows}
    write_result("sql_matrix_probe", data)
    print(json.dumps({k: v for k, v in data.items() if k != "rows"}, indent=2))


if __name__ == "__main__":
    main()
