"""Can the local model tell which source sentence answers a question? A probe of the generator's weak link.

For each of the 68 Beacon questions: the three sources `examples/beacon-answers.toml` puts in the prompt, their
six sentences most similar to the question (MiniLM cosine), numbered, and the model asked for the number of the
one that answers (or 0). Asked twice: the list best-first, then the same list reversed. A model that reads the
sentences picks the same sentence both times; a model that answers by position picks the same *number*. Reports,
per order, how often each number is picked, how often the picked sentence is from a gold document (first-written
and audited judgments), the same for the embedding's own first choice, and how often the two orders agree on the
sentence. Writes benchmarks/results/choose_probe[_<model>].json.

    python benchmarks/choose_probe.py [--model qwen0.5b] [--index DIR]
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import tempfile
import tomllib
from pathlib import Path

from _common import ROOT, write_result

from ragkit import Engine
from ragkit.evaluate.datasets import read_jsonl, read_qrels
from ragkit.text import question_similarity, split_sentences

CONFIG = ROOT / "examples" / "beacon-answers.toml"
BEACON = ROOT / "eval_sets" / "beacon"
SYSTEM = ("You find answers in documents. Below are numbered sentences taken from documents retrieved for a "
          "question. Reply with the number of the sentence that answers the question, and nothing else. Reply 0 if "
          "none of them answers it.")


def ask(llm, question: str, sentences: list[str]) -> int:
    """The number the model replies (-1 when the reply holds none)."""
    listing = "\n".join(f"{i}. {s}" for i, s in enumerate(sentences, 1))
    reply = llm.chat([{"role": "system", "content": SYSTEM},
                      {"role": "user", "content": f"Question: {question}\n\nSentences:\n{listing}\n\n"
                                                  "The number of the sentence that answers the question:"}],
                     max_tokens=4).text
    m = re.search(r"\d+", reply)
    return int(m.group()) if m else -1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="qwen0.5b")
    ap.add_argument("--candidates", type=int, default=6, help="sentences listed per question")
    ap.add_argument("--index", default="", help="reuse an index of corpora/beacon instead of building one")
    args = ap.parse_args()
    qa = read_jsonl(BEACON / "qa.jsonl")
    audited = read_qrels(BEACON / "qrels" / "audited.tsv")
    cfg = tomllib.loads(CONFIG.read_text())
    cfg["generator"] = {**cfg["generator"], "model": args.model}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        index = Path(args.index) if args.index else Path(tmp) / "idx"
        eng = Engine.open(index, cfg)
        if not args.index:
            eng.ingest([ROOT / "corpora" / "beacon"])
        llm = eng.generator.llm
        max_sources = eng.generator.params.max_sources
        for q in qa:
            hits = eng.retrieve(q["question"], k=5).hits[:max_sources]
            units = [split_sentences(h.chunk.text) for h in hits]
            sims = question_similarity(eng.embed_cached, q["question"], units)
            ranked = sorted(((float(s), h.doc_id, u) for h, us, ss in zip(hits, units, sims) for u, s in zip(us, ss)),
                            key=lambda c: -c[0])[: args.candidates]
            gold, agold = set(q["doc_ids"]), set(audited.get(q["id"], {}) or q["doc_ids"])
            row = {"id": q["id"], "question": q["question"], "candidates": [[d, u] for _, d, u in ranked],
                   "embedding_first_gold": ranked[0][1] in gold if ranked else False,
                   "embedding_first_gold_audited": ranked[0][1] in agold if ranked else False}
            for order, listed in (("best_first", ranked), ("reversed", ranked[::-1])):
                n = ask(llm, q["question"], [u for _, _, u in listed])
                pick = listed[n - 1] if 1 <= n <= len(listed) else None
                row[order] = {"number": n, "sentence": pick[2] if pick else None,
                              "gold": bool(pick and pick[1] in gold), "gold_audited": bool(pick and pick[1] in agold)}
            rows.append(row)
            print(f"{q['id']} best-first {row['best_first']['number']} reversed {row['reversed']['number']}",
                  flush=True)
        eng.close()
    summary: dict = {"model": args.model, "config": "examples/beacon-answers.toml", "candidates": args.candidates,
                     "questions": len(rows)}
    for order in ("best_first", "reversed"):
        summary[order] = {
            "numbers_picked": dict(sorted(collections.Counter(r[order]["number"] for r in rows).items())),
            "picked_first_listed": sum(r[order]["number"] == 1 for r in rows),
            "picked_gold": sum(r[order]["gold"] for r in rows),
            "picked_gold_audited": sum(r[order]["gold_audited"] for r in rows)}
    summary["embedding_first_gold"] = sum(r["embedding_first_gold"] for r in rows)
    summary["embedding_first_gold_audited"] = sum(r["embedding_first_gold_audited"] for r in rows)
    summary["same_sentence_both_orders"] = sum(
        r["best_first"]["sentence"] is not None and r["best_first"]["sentence"] == r["reversed"]["sentence"]
        for r in rows)
    name = "choose_probe" + ("" if args.model == "qwen0.5b" else f"_{args.model}")
    path = write_result(name, {**summary, "rows": rows})
    print(json.dumps(summary, indent=2))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
