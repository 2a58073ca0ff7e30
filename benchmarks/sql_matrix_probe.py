"""Probe: does a feature-by-plan matrix in long form help the SQL tool's model?

In ``sql_tool.py`` the numeric questions over the two Beacon price lists (one row per feature, one column per plan)
were answered worst: the model filters on the plan name as if plans were rows. Ingest now stores such a matrix in
long form (``feature, plan, value, unit, as_written``: one row per feature and plan, ``ragkit.ingest.tables``).
This probe gives the model each such question's gold tables directly (no retrieval, no routing), once as ingest
stores them (long) and once pivoted back to the page's wide form, alternating, with the same model and the same
SQL tool, and counts exact answers. It is a probe of the table form only.

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
from _common import write_result  # noqa: E402
from sql_tool import SET, exact, table_index  # noqa: E402

MATRICES = ("plans__compare_plans", "plans_2023__plans_and_pricing")


def wide_form(table, rows):
    """The stored long form (``label, item, value, unit, as_written``) pivoted back to the page's matrix (one row
    per label, one column per item, each cell as written) and typed as ingest types a table that is not a
    matrix; the same name, so the questions' gold tables name it."""
    from ragkit.ingest.tables import build_table

    items = list(dict.fromkeys(r[1] for r in rows))
    cells: dict[str, dict[str, str]] = {}
    for label, item, _value, _unit, written in rows:
        cells.setdefault(label, {})[item] = written
    header = [table.columns[0].header, *items]
    body = [[label, *(row.get(i) for i in items)] for label, row in cells.items()]
    wide = build_table(header, body, title=table.title, heading=table.heading, long_matrices=False)
    return dataclasses.replace(wide, name=table.name, doc_id=table.doc_id, source=table.source,
                               metadata=table.metadata)


def main() -> None:
    from ragkit.config import SqlConfig
    from ragkit.generate.sql import SqlTool
    from ragkit.index.tables import TableDB, write_tables
    from ragkit.llm import make_llm
    from ragkit.types import Chunk, Hit

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="qwen1.5b")
    args = ap.parse_args()

    src = max(table_index().glob("gens/*/tables.sqlite"))
    long_db = TableDB(src)
    long_tables = {t.name: t for t in long_db.tables()}
    tmp = tempfile.TemporaryDirectory(prefix="ragkit-matrix-")
    wide_path = Path(tmp.name) / "tables.sqlite"
    write_tables(wide_path, [wide_form(long_tables[n], long_db.rows(n)) for n in MATRICES])
    wide_db = TableDB(wide_path)
    full = {t.name: t for t in wide_db.tables()}

    def hit(t) -> Hit:
        return Hit(Chunk(f"table:{t.name}", t.doc_id, t.title, 0, {"table": t.name, "source": t.source}), 1.0)

    questions = [json.loads(line) for line in SET.read_text().splitlines() if line.strip()]
    questions = [q for q in questions if q["route"] == "sql" and set(q["tables"]) & set(MATRICES)]
    llm = make_llm({"backend": "llama-cpp", "model": args.model, "n_ctx": 4096})
    tool = SqlTool(SqlConfig(), lambda: llm)
    rows = []
    for i, q in enumerate(questions, 1):
        for form, db, tables in (("wide", wide_db, full), ("long", long_db, long_tables)):
            names = list(q["tables"])
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
