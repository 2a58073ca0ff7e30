"""The SQL tool on eval_sets/beacon-numeric: routing accuracy, SQL execution success, exact match (numbers compared as
numbers) and latency, beside today's passages-only answers to the same questions, per local model.

    python benchmarks/sql_tool.py                        # qwen0.5b and qwen1.5b (those fetched), every question
    python benchmarks/sql_tool.py --models qwen1.5b      # one model; the other's run in the results is kept
    python benchmarks/sql_tool.py --limit 5 --out /tmp/sql_tool.json     # a smoke run
    python benchmarks/sql_tool.py --ids n07,n08 --out /tmp/sql_tool.json  # some questions only

Both engines (routed and passages-only) use the same query config, ``--config`` (default
examples/prefer-newest.toml: the Beacon corpus keeps superseded pages, and the rules reranker demotes them for the
passages and, since the SQL tool's table search runs through the rerankers, for the tables too).

The index (corpora/beacon with ``ingest.tables = true``) is built once under .cache/indexes/beacon-tables-<hash>
(named after ragkit/ingest/tables.py, see ``table_index``).
Writes benchmarks/results/sql_tool.json (unless ``--out``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import CACHE, RESULTS, ROOT, write_result  # noqa: E402

SET = ROOT / "eval_sets" / "beacon-numeric" / "questions.jsonl"
_NUM = re.compile(r"(?<![\w.])[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?")


def numbers_in(text: str) -> list[float]:
    """Numbers in an answer, without citation markers and the SQL tool's table note."""
    text = re.sub(r"\[\d+(?:[,;]\s*\d+)*\]", " ", text)
    text = re.sub(r"\(SQL over table [^)]*\)", " ", text)
    return [float(m.replace(",", "")) for m in _NUM.findall(text)]


def exact(answer: str, q: dict) -> bool:
    """Every gold number occurs in the answer (as a number, 0.01 tolerance) and every gold entity as text."""
    nums = numbers_in(answer)
    ok = all(any(abs(n - g) <= 0.01 * max(1.0, abs(g) / 100) for n in nums) for g in q["numbers"])
    return ok and all(e.lower() in answer.lower() for e in q["entities"])


def listed(answer: str) -> bool:
    """An SQL answer that lists several rows (the SQL tool's wording for a result of more than one row)."""
    return answer.startswith("The query returned ")


def table_index() -> Path:
    """The Beacon index with tables, built when missing. Its folder is named after the code that makes tables
    (``ragkit/ingest/tables.py``), so a change there gets a fresh index instead of a stale one."""
    code = (ROOT / "ragkit" / "ingest" / "tables.py").read_bytes()
    path = CACHE / "indexes" / f"beacon-tables-{hashlib.sha256(code).hexdigest()[:12]}"
    if not (path / "CURRENT").exists():
        build_index(path)
    return path


def build_index(path: Path) -> None:
    from ragkit import Engine

    with Engine.open(path, overrides=["ingest.tables=true"]) as eng:
        rep = eng.ingest([ROOT / "corpora" / "beacon"])
        print(f"index {path}: {rep.documents_total} documents, {rep.chunks_total} chunks", file=sys.stderr)


def run_model(index: Path, model: str, questions: list[dict], llm_router: bool, fresh: bool = False,
              config: Path | None = None) -> dict:
    from ragkit import Engine
    from ragkit.config import read_toml

    # every finished question is appended here, so an interrupted run resumes where it stopped (--fresh: anew)
    # (named after the config and the questions: a run with other ones starts its own file)
    setup = hashlib.sha256(((config.read_text() if config else "") + ",".join(q["id"] for q in questions))
                           .encode()).hexdigest()[:8]
    partial = CACHE / "sql_tool" / f"{model}{'' if llm_router else '-no-llm-router'}-{setup}.jsonl"
    partial.parent.mkdir(parents=True, exist_ok=True)
    if fresh:
        partial.unlink(missing_ok=True)
    done = {r["id"]: r for r in map(json.loads, partial.read_text().splitlines())} if partial.exists() else {}
    gen = {"name": "llama-cpp", "model": model, "n_ctx": 4096}
    base = read_toml(config, "config file") if config else {}
    routed = Engine.open(index, config={**base, "generator": gen, "router": {"enabled": True}})
    plain = Engine.open(index, config={**base, "generator": gen})
    plain.generator = routed.generator  # one loaded model serves both
    routed.warm_up()  # load the model and the index before the clock runs
    rows = []
    for i, q in enumerate(questions, 1):
        if q["id"] in done:
            rows.append(done[q["id"]])
            print(f"[{model} {i}/{len(questions)}] {q['id']} (resumed)", file=sys.stderr)
            continue
        rows.append(one_question(routed, plain, q, llm_router))
        with partial.open("a") as fh:
            fh.write(json.dumps(rows[-1]) + "\n")
        r = rows[-1]
        print(f"[{model} {i}/{len(questions)}] {q['id']} route={r['route']}"
              + (f" em={r['em']} passages_em={r['passages_em']} {r['seconds']:.1f}s" if "em" in r else ""),
              file=sys.stderr)
    routed.close()
    plain.close()
    out = summarise(model, rows, llm_router, resumed=len(done))
    out["config"] = str(config.relative_to(ROOT)) if config and config.is_relative_to(ROOT) else \
        (str(config) if config else None)
    return out


def one_question(routed, plain, q: dict, llm_router: bool) -> dict:
    """One question's row: the route (and, for a numeric one, the routed and the passages-only answers)."""
    if q["route"] != "sql":  # only the route matters: a passage question's answer is today's path
        d = routed.router.route(q["question"])
        row = {"id": q["id"], "kind": q["kind"], "gold_route": q["route"], "route": d.route,
               "route_ok": d.route == "passages"}
        if llm_router:
            row["route_llm"] = routed.router.by_llm(q["question"]).route
            row["route_llm_ok"] = row["route_llm"] == "passages"
        return row
    t = time.perf_counter()
    a = routed.query(q["question"])
    sql_s = time.perf_counter() - t
    route = next((e.data["route"] for e in a.events if e.kind == "route"), "passages")
    tables = next((e.data["tables"] for e in a.events if e.kind == "sql" and "tables" in e.data), [])
    row = {"id": q["id"], "kind": q["kind"], "gold_route": q["route"], "route": route,
           "route_ok": (route != "passages") == (q["route"] == "sql"), "sql": a.extras.get("sql"),
           "executed": bool(a.extras.get("sql")), "fallback": a.extras.get("fallback"),
           "attempts": [e.data for e in a.events if e.kind == "sql" and "error" in e.data],
           "gold_table_shown": bool(q["tables"]) and set(q["tables"]) <= set(tables),
           "answer": a.text, "seconds": round(sql_s, 3)}
    if llm_router:
        row["route_llm"] = routed.router.by_llm(q["question"]).route
        row["route_llm_ok"] = (row["route_llm"] != "passages") == (q["route"] == "sql")
    row["em"] = exact(a.text, q)
    t = time.perf_counter()
    p = plain.query(q["question"])  # the same question without the router: today's path
    row["passages_answer"], row["passages_seconds"] = p.text, round(time.perf_counter() - t, 3)
    row["passages_em"] = exact(p.text, q)
    return row


def summarise(model: str, rows: list[dict], llm_router: bool, resumed: int = 0) -> dict:
    from ragkit.llm.models import offline_model_path

    numeric = [r for r in rows if r["gold_route"] == "sql"]
    to_sql = [r for r in numeric if r["route"] != "passages"]

    def mean(xs):
        return round(statistics.mean(xs), 4) if xs else None

    return {"model": model, "date": time.strftime("%Y-%m-%d"), "file": str(offline_model_path(model)),
            "questions": len(rows), "resumed": resumed,
            "numeric": len(numeric), "non_numeric": len(rows) - len(numeric),
            "routing_accuracy": mean([r["route_ok"] for r in rows]),
            "routing_accuracy_llm": mean([r["route_llm_ok"] for r in rows]) if llm_router else None,
            "sql_execution_success": mean([r["executed"] for r in to_sql]),
            "gold_table_shown": mean([r["gold_table_shown"] for r in to_sql]),
            "exact_match_sql_route": mean([r["em"] for r in numeric]),
            "exact_match_passages_only": mean([r["passages_em"] for r in numeric]),
            # exact, but only because the gold number is one of the rows a query listed: counted above, shown apart
            "exact_from_lists": sum(r["em"] and listed(r["answer"]) for r in numeric),
            "latency_s_sql_route": {"mean": mean([r["seconds"] for r in numeric]),
                                    "p50": round(statistics.median([r["seconds"] for r in numeric]), 3)
                                    if numeric else None},
            "latency_s_passages_only": {"mean": mean([r["passages_seconds"] for r in numeric]),
                                        "p50": round(statistics.median([r["passages_seconds"] for r in numeric]), 3)
                                        if numeric else None},
            "by_kind": {k: {"n": len(g), "em": mean([r["em"] for r in g]),
                            "passages_em": mean([r["passages_em"] for r in g])}
                        for k in sorted({r["kind"] for r in numeric})
                        for g in [[r for r in numeric if r["kind"] == k]]},
            "rows": rows}


def main() -> None:
    from ragkit.llm.models import offline_model_path

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="qwen0.5b,qwen1.5b")
    ap.add_argument("--limit", type=int, default=0, help="first N numeric and N non-numeric questions only")
    ap.add_argument("--no-llm-router", action="store_true", help="skip measuring the LLM classifier")
    ap.add_argument("--fresh", action="store_true", help="ignore the finished questions of an interrupted run")
    ap.add_argument("--out", type=Path, help="write here instead of benchmarks/results/sql_tool.json")
    ap.add_argument("--ids", default="", help="only these question ids (comma-separated); needs --out")
    ap.add_argument("--config", type=Path, default=ROOT / "examples" / "prefer-newest.toml",
                    help="query config for both engines (its generator and router are set here)")
    args = ap.parse_args()
    questions = [json.loads(line) for line in SET.read_text().splitlines() if line.strip()]
    if args.ids:
        if not args.out:
            ap.error("--ids writes a partial run: give --out")
        wanted = set(args.ids.split(","))
        questions = [q for q in questions if q["id"] in wanted]
    if args.limit:
        questions = ([q for q in questions if q["route"] == "sql"][:args.limit]
                     + [q for q in questions if q["route"] != "sql"][:args.limit])
    index = table_index()
    runs, missing = [], []
    for model in args.models.split(","):
        if offline_model_path(model) is None:
            missing.append(model)
            print(f"skipping {model}: not fetched (../shared/models/fetch.sh {model})", file=sys.stderr)
            continue
        runs.append(run_model(index, model, questions, not args.no_llm_router, fresh=args.fresh,
                              config=args.config.resolve()))
    out = args.out or RESULTS / "sql_tool.json"
    if out.exists() and not args.limit:  # keep the runs of models not run this time (one model per invocation)
        done = {r["model"] for r in runs}
        old = json.loads(out.read_text())
        if not old.get("limit"):
            runs = [{"date": old.get("date"), **r} for r in old.get("runs", []) if r["model"] not in done] + runs
            missing = [m for m in missing if m not in {r["model"] for r in runs}]
    runs.sort(key=lambda r: r["model"])  # the same row order whichever model ran last
    data = {"set": "eval_sets/beacon-numeric", "limit": args.limit or None, "models_missing": missing,
            "router": "default rules (config.SQL_CUES)", "runs": runs}
    if args.out:
        args.out.write_text(json.dumps(data, indent=2) + "\n")
        print(args.out)
    else:
        print(write_result("sql_tool", data))


if __name__ == "__main__":
    main()
