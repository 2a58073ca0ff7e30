"""Retrieval and extractive-answer quality on the bundled Beacon corpus and eval set.

Retrieval: nDCG@10, hit rate@5, MRR@10, recall@10 for BM25, dense and hybrid (document level).
Answers: share of questions whose extractive answer cites at least one gold document.
Everything is scored against qrels/test.tsv and, under "audited", against qrels/audited.tsv.
Prints a table and writes benchmarks/results/beacon_eval.json (about a minute on 2 cores).
"""

from __future__ import annotations

import sys
import tempfile
import tomllib
from pathlib import Path

from _common import ROOT, write_result

from ragkit import Engine
from ragkit.evaluate.datasets import load_beir, load_qa
from ragkit.evaluate.retrieval import run_queries, score

METRICS = ("ndcg@10", "hit_rate@5", "mrr@10", "recall@10")


# the hybrid+rules row runs the shipped examples/prefer-newest.toml as it is, so the two cannot drift apart
RULES_FILE = ROOT / "examples" / "prefer-newest.toml"
RULES = tomllib.loads(RULES_FILE.read_text())


def evaluate(eng: Engine) -> dict:
    beacon = ROOT / "eval_sets" / "beacon"
    beir, audited = load_beir(beacon, "test"), load_beir(beacon, "audited")
    results: dict = {}
    runs = {}
    for mode in ("bm25", "dense", "hybrid"):
        runs[mode] = run_queries(eng, beir, k=20, mode=mode).run
    # same index, + the rules reranker of examples/prefer-newest.toml
    with Engine.open(eng.store.path, RULES) as ruled:
        runs["hybrid+rules"] = run_queries(ruled, beir, k=20, mode="hybrid").run
    for mode, run in runs.items():
        results[mode] = {m: round(v, 4) for m, v in score(beir.qrels, run, METRICS).items()}
    qa = load_qa(beacon)
    gold_audited = {q.qid: q.relevant for q in audited.queries}
    cited = cited_audited = 0
    by_type: dict[str, list[int]] = {}
    for q in qa.queries:
        ans = eng.query(q.text, k=5)
        ok = int(any(c.doc_id in q.relevant for c in ans.citations))
        cited += ok
        cited_audited += int(any(c.doc_id in gold_audited[q.qid] for c in ans.citations))
        by_type.setdefault(q.extra.get("type", "?"), []).append(ok)
    results["extractive_answer_cites_gold"] = round(cited / len(qa.queries), 4)
    results["extractive_answer_cites_gold_by_type"] = {t: round(sum(v) / len(v), 3) for t, v in sorted(by_type.items())}
    results["questions"] = len(qa.queries)
    # the same runs and answers judged with the audited qrels (eval_sets/beacon/README.md, "Audited qrels")
    results["audited"] = {mode: {m: round(v, 4) for m, v in score(audited.qrels, run, METRICS).items()}
                          for mode, run in runs.items()}
    results["audited"]["extractive_answer_cites_gold"] = round(cited_audited / len(qa.queries), 4)
    return results


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        eng = Engine.open(Path(tmp) / "idx")
        rep = eng.ingest([ROOT / "corpora" / "beacon"])
        eng.warm_up()
        results = evaluate(eng)
        eng.close()
    for mode in ("bm25", "dense", "hybrid", "hybrid+rules"):
        print(f"{mode:13s} " + "  ".join(f"{m}={v:.4f}" for m, v in results[mode].items()))
    print(f"extractive answers citing a gold document: {results['extractive_answer_cites_gold']:.1%} "
          f"of {results['questions']} questions; by type: {results['extractive_answer_cites_gold_by_type']}")
    path = write_result("beacon_eval", {"documents": rep.documents_total, "chunks": rep.chunks_total,
                                        "chunker": "sentence", "rules_config": str(RULES_FILE.relative_to(ROOT)),
                                        **results})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
