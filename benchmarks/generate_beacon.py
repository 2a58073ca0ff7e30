"""Grounded answers from the local Qwen2.5-Coder-0.5B model (generator.llama-cpp) on the bundled Beacon corpus.

For each of the 68 questions of eval_sets/beacon/qa.jsonl: hybrid retrieval (top 5), then the generator. Measures
the share of answers citing at least one gold document (acceptance: >= 70%), the abstain rate (the retrieval-score
rule) and the model's own "not found" replies, latency p50/p95 per question, and generation speed; plus how often a
few out-of-corpus questions abstain. Writes benchmarks/results/generate_beacon.json after every question (so a long
run can be inspected while it goes; "complete" says whether it finished).

    python benchmarks/generate_beacon.py [--limit N] [--model qwen0.5b] [--max-sources 3] [--max-tokens 96]
    python benchmarks/generate_beacon.py --dataset hotpotqa_dev500 --limit 50 --name generate_hotpotqa
        # the same measures on a public QA set (its first N questions; gold = the set's doc_ids)
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import sys
import tempfile
import time
import tomllib
from dataclasses import asdict
from pathlib import Path

from _common import BEIR_OVERRIDES, CACHE, DATASETS, ROOT, write_result

from ragkit import Engine
from ragkit.evaluate.answers import words
from ragkit.evaluate.datasets import read_jsonl, read_qrels
from ragkit.evaluate.stats import percentile
from ragkit.index.analysis import stop_words
from ragkit.types import Answer

OUT_OF_CORPUS = ["What is the capital of France?", "How do I bake sourdough bread at home?",
                 "Who won the 2018 football world cup?", "What is the boiling point of tungsten in kelvin?",
                 "How many moons does Jupiter have?", "What is the best recipe for lasagna?",
                 "How do I change a flat bicycle tire?", "What is the population of Tokyo?",
                 "Explain the theory of general relativity.", "How do I reset my Windows password?"]


# What each grounding step did to an answer, counted from its events: (kind, and a data field and value that tell
# steps of one kind apart).
STEPS = {"uncited_sentences": ("citation", "action", "uncited"),
         "attributed_sentences": ("citation", "action", "attributed"),
         "moved_citations": ("citation", "action", "moved"), "dropped_echoes": ("echo", None, None),
         "retry_rejected": ("retry_check", "reason", "unlike_sources"),
         "retry_off_topic": ("retry_check", "reason", "off_topic"), "lead_in_removed": ("lead_in", None, None)}
NOT_ANSWERED = ("abstained", "no_context")  # the generator did not ask the model (its abstain rule, or no sources)
LOAD: list[float] = []
# the Beacon qrels as first written (= qa.jsonl doc_ids) and after the 2026-11-24 audit (eval_sets/beacon/README.md)
AUDITED = ROOT / "eval_sets" / "beacon" / "qrels" / "audited.tsv"
BEACON_QA = ROOT / "eval_sets" / "beacon" / "qa.jsonl"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=0, help="first N questions only")
    ap.add_argument("--model", default="qwen0.5b")
    ap.add_argument("--max-sources", type=int, default=3)
    ap.add_argument("--max-tokens", type=int, default=96)
    ap.add_argument("--template", default="answer-v1")
    ap.add_argument("--order", default="score", choices=("score", "lost-in-the-middle"),
                    help="source order in the prompt (the generator's `order`)")
    ap.add_argument("--threads", type=int, default=2, help="llama.cpp threads")
    ap.add_argument("--name", default="generate_beacon", help="result name (benchmarks/results/<name>.json)")
    ap.add_argument("--index", default="", help="reuse an index of corpora/beacon instead of building one")
    ap.add_argument("--ids", default="", help="only these question ids (comma-separated), e.g. to re-run failures")
    ap.add_argument("--config", default="", help="a ragkit TOML whose retrieval stages (rerankers, filters, ...) "
                    "are used; its [generator] is replaced by this script's")
    ap.add_argument("--retry-template", default="answer-retry-v1", help="prompt asked once more after a 'not found' "
                    "reply ('none' disables)")
    ap.add_argument("--compress", type=int, default=0, help="give the model each source's N sentences most "
                    "similar to the question (the generator's `compress`; 0 = whole chunks)")
    ap.add_argument("--regrade", default="", help="only recompute the gold measures of an existing result "
                    "(benchmarks/results/<name>.json) against the current qrels, e.g. after an audit; no LLM call")
    ap.add_argument("--dataset", default="", help="a QA set under ../shared/datasets with a corpus (e.g. "
                    "hotpotqa_dev500) instead of the bundled Beacon set: an out-of-domain check of a generator "
                    "setting; its index is the cached one `ragkit eval` builds")
    args = ap.parse_args()
    if args.regrade:
        return regrade(args.regrade)
    if args.dataset and args.index:
        ap.error("--index is for the Beacon corpus; --dataset uses the dataset's cached index")
    qa = read_jsonl(DATASETS / args.dataset / "qa.jsonl" if args.dataset else BEACON_QA)
    if args.ids:
        wanted = set(args.ids.split(","))
        qa = [q for q in qa if q["id"] in wanted]
    if args.limit:
        qa = qa[: args.limit]
    gen_cfg = {"name": "llama-cpp", "model": args.model, "max_sources": args.max_sources,
               "max_tokens": args.max_tokens, "template": args.template,
               "order": args.order, "n_threads": args.threads,
               "retry_template": None if args.retry_template == "none" else args.retry_template,
               "compress": args.compress or None}
    with tempfile.TemporaryDirectory() as tmp:
        index = Path(args.index) if args.index else Path(tmp) / "idx"
        base = tomllib.loads(Path(args.config).read_text()) if args.config else {}
        if args.dataset:
            from ragkit.evaluate.runner import dataset_engine, load_dataset

            eng, _ = dataset_engine(load_dataset(DATASETS / args.dataset), {**base, "generator": gen_cfg},
                                    BEIR_OVERRIDES, CACHE)
        else:
            eng = Engine.open(index, {**base, "generator": gen_cfg})
        if not args.index and not args.dataset:
            eng.ingest([ROOT / "corpora" / "beacon"])
        t = time.perf_counter()
        eng.warm_up()
        load_s = time.perf_counter() - t
        rows = []
        summary: dict = {}
        for i, q in enumerate(qa):
            t = time.perf_counter()
            ans = eng.query(q["question"], k=5)
            secs = time.perf_counter() - t
            LOAD.append(os.getloadavg()[0])
            packed = first_prompt(ans)
            answered = ans.status == "answered"
            events = [asdict(e) for e in ans.events]
            rows.append({"id": q["id"], "type": q.get("type", "?"), "question": q["question"], "answer": ans.text,
                         "status": ans.status, "cited": [c.doc_id for c in ans.citations], "gold": q["doc_ids"],
                         "packed": packed, "gold_in_prompt": any(d in q["doc_ids"] for d in packed),
                         "cites_gold": answered and any(c.doc_id in q["doc_ids"] for c in ans.citations),
                         "reference_recall": reference_recall(ans.text, q.get("reference_answer", ""), answered),
                         **audited_gold(q["id"], answered, [c.doc_id for c in ans.citations], args.dataset),
                         "abstained": ans.status in NOT_ANSWERED, "retried": ans.retried,
                         "said_not_found": ans.status == "declined", **step_counts(events),
                         "removed_citations": len(ans.warnings), "seconds": round(secs, 3),
                         "llm_seconds": round(ans.timings.get("generate:llm", 0.0), 3), **ans.usage,
                         "trace": ans.trace, "events": events})
            r = rows[-1]
            print(f"{i + 1:3d}/{len(qa)} {secs:6.1f}s gold={'Y' if r['cites_gold'] else 'n'} {q['question'][:60]!r} "
                  f"-> {ans.text[:100]!r}", flush=True)
            summary = summarise(rows, len(qa), args, load_s)
            write_result(args.name, {**summary, "complete": False, "rows": rows})
        ooc = []
        for question in OUT_OF_CORPUS:
            ans = eng.query(question, k=5)
            ooc.append({"question": question, "abstained": ans.status in NOT_ANSWERED, "status": ans.status,
                        "answer": ans.text})
        eng.close()
    summary["out_of_corpus_abstain_rate"] = round(sum(o["abstained"] for o in ooc) / len(ooc), 3)
    summary["out_of_corpus_not_found_rate"] = round(sum(o["status"] != "answered" for o in ooc) / len(ooc), 3)
    path = write_result(args.name, {**summary, "complete": True, "rows": rows, "out_of_corpus": ooc})
    print(json.dumps(summary, indent=2))
    print(f"wrote {path}")
    return 0


def first_prompt(ans: Answer) -> list[str]:
    """The documents packed (whole or trimmed) into the first prompt, in packing order."""
    return [e.data["doc_id"] for e in ans.events if e.kind == "pack" and e.data.get("action") in ("packed", "trimmed")]


def answered_row(row: dict) -> bool:
    """Whether a result row is an answer (rows written before ``status`` existed: neither abstained nor declined)."""
    return row["status"] == "answered" if "status" in row else not (row["abstained"] or row["said_not_found"])


def reference_recall(answer: str, reference: str, answered: bool) -> float:
    """Share of the reference answer's words (stop words left out) that the answer contains: a rough check that an
    answer citing the right page also says what the page says (0 when it is not an answer)."""
    stop = stop_words("en")
    ref = [w for w in dict.fromkeys(words(reference)) if w not in stop]
    if not ref or not answered:
        return 0.0
    have = set(words(answer))
    return round(sum(w in have for w in ref) / len(ref), 3)


@functools.cache
def audited_qrels() -> dict[str, dict[str, int]]:
    return read_qrels(AUDITED)


def audited_gold(qid: str, answered: bool, cited: list[str], dataset: str = "") -> dict:
    """The question's gold documents in the audited Beacon qrels and whether the answer cites one."""
    if dataset or not AUDITED.is_file():
        return {}
    gold = sorted(audited_qrels().get(qid, {}))
    return {"gold_audited": gold, "cites_gold_audited": answered and any(d in gold for d in cited)}


def grade_summary(rows: list[dict]) -> dict:
    """The summary fields that depend on the judgments and references (what ``--regrade`` recomputes)."""
    n = len(rows)
    out = {}
    if "cites_gold_audited" in rows[0]:
        hits = sum(r["cites_gold_audited"] for r in rows)
        out = {"cites_gold_rate_audited": round(hits / n, 4), "cites_gold_audited": hits}
    return {**out, "reference_recall_mean": round(statistics.mean(r["reference_recall"] for r in rows), 4),
            "cites_gold_and_recall_half": round(sum(r["cites_gold"] and r["reference_recall"] >= 0.5 for r in rows)
                                                / n, 4)}


def step_counts(events: list[dict]) -> dict[str, int]:
    """How often each grounding step in STEPS happened, from an answer's events (as dicts)."""
    return {name: sum(e["kind"] == kind and (key is None or e["data"].get(key) == value) for e in events)
            for name, (kind, key, value) in STEPS.items()}


def retry_summary(rows: list[dict]) -> dict[str, int]:
    return {"retries_rejected_as_unsupported": sum(r.get("retry_rejected", 0) > 0 for r in rows),
            "retries_rejected_as_off_topic": sum(r.get("retry_off_topic", 0) > 0 for r in rows)}


def regrade(name: str) -> int:
    """Recompute the audited-qrels measures (and reference_recall) of benchmarks/results/<name>.json from its rows:
    the answers do not depend on the qrels, so no model is run."""
    path = ROOT / "benchmarks" / "results" / f"{name}.json"
    if not path.is_file():
        raise SystemExit(f"--regrade {name}: no such result ({path.relative_to(ROOT)})")
    data = json.loads(path.read_text())
    qa = {q["id"]: q for q in read_jsonl(BEACON_QA)}
    for r in data["rows"]:
        r.update(audited_gold(r["id"], answered_row(r), r["cited"]))
        r["reference_recall"] = reference_recall(r["answer"], qa[r["id"]].get("reference_answer", ""), answered_row(r))
        if "events" in r:  # rows written before events existed keep the step counts of their run
            r.update(step_counts(r["events"]))
    rows = data["rows"]
    data.update(retry_summary(rows))
    extra = {**grade_summary(rows), "regraded": time.strftime("%Y-%m-%d")}
    judged = path.with_name(f"{name}_judged.json")  # a reader's labels of the answers, when there are any
    if judged.is_file():
        label = {x["id"]: x["label"] for x in json.loads(judged.read_text())["labels"]}
        for r in rows:
            r["judged"] = label[r["id"]]
        extra["judged"] = {k: sum(r["judged"] == k for r in rows)
                           for k in ("right", "partly", "wrong", "non-answer", "declined")}
        extra["cites_gold_audited_and_judged_right"] = sum(r["cites_gold_audited"] and r["judged"] == "right"
                                                           for r in rows)
    at = list(data).index("cites_gold_rate") + 1
    items = [(k, v) for k, v in data.items() if k not in extra]
    data = dict(items[:at] + list(extra.items()) + items[at:])
    path.write_text(json.dumps(data, indent=2) + "\n")
    print(json.dumps({k: data[k] for k in ("cites_gold_rate", *extra)}, indent=2))
    return 0


def summarise(rows: list[dict], total: int, args, load_s: float) -> dict:
    n = len(rows)
    lat = [r["seconds"] for r in rows]
    answered = [r for r in rows if not r["abstained"]]
    by_type: dict[str, list[int]] = {}
    for r in rows:
        by_type.setdefault(r["type"], []).append(int(r["cites_gold"]))
    comp = sum(r.get("completion_tokens", 0) for r in answered)
    llm_s = sum(r["llm_seconds"] for r in answered)
    return {
        "model": args.model, "template": args.template, "order": args.order, "retry_template": args.retry_template,
        "compress": args.compress or None,
        "retried": sum(r.get("retried", False) for r in rows), "max_sources": args.max_sources,
        "max_tokens": args.max_tokens, "retrieval": "hybrid (rrf), k=5", "config": args.config or None,
        "dataset": args.dataset or "eval_sets/beacon", "questions": n, "of": total,
        "cites_gold_rate": round(sum(r["cites_gold"] for r in rows) / n, 4),
        **grade_summary(rows),
        "gold_in_prompt_rate": round(sum(r["gold_in_prompt"] for r in rows) / n, 4),
        "cites_gold_when_in_prompt": round(sum(r["cites_gold"] for r in rows if r["gold_in_prompt"])
                                           / max(1, sum(r["gold_in_prompt"] for r in rows)), 4),
        "cites_gold_by_type": {t: round(sum(v) / len(v), 3) for t, v in sorted(by_type.items())},
        "any_citation_rate": round(sum(bool(r["cited"]) for r in rows) / n, 4),
        "abstain_rate": round(sum(r["abstained"] for r in rows) / n, 4),
        "model_not_found_rate": round(sum(r["said_not_found"] for r in rows) / n, 4),
        "removed_citations": sum(r["removed_citations"] for r in rows),
        "answers_with_uncited_sentences": sum(r["uncited_sentences"] > 0 for r in rows),
        "answers_with_attributed_sentences": sum(r.get("attributed_sentences", 0) > 0 for r in rows),
        "answers_with_moved_citations": sum(r.get("moved_citations", 0) > 0 for r in rows),
        "answers_with_dropped_echoes": sum(r.get("dropped_echoes", 0) > 0 for r in rows),
        **retry_summary(rows),
        "latency_p50_s": round(percentile(lat, 0.5), 2), "latency_p95_s": round(percentile(lat, 0.95), 2),
        "prompt_tokens_mean": round(statistics.mean(r.get("prompt_tokens", 0) for r in answered), 1) if answered else 0,
        "completion_tokens_mean": round(comp / len(answered), 1) if answered else 0,
        "completion_tokens_per_llm_second": round(comp / llm_s, 2) if llm_s else 0,
        "model_load_s": round(load_s, 2),
        "load_avg_1min_mean": round(statistics.mean(LOAD), 2) if LOAD else None,
        "note": "tokens/s divides completion tokens by the whole LLM call (prompt evaluation included); a "
                "load_avg above the 2 cores means the CPU was shared and latencies are pessimistic",
    }


if __name__ == "__main__":
    sys.exit(main())
