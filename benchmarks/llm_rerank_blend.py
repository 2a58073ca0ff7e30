"""The `llm` reranker blended with the fused score on SciFact, from the ladder's saved run: no LLM call.

Reads the `+rerank` step's TREC run of the `scifact-llm` ladder (benchmarks/reports/scifact-llm/runs/rerank.trec.gz:
Qwen2.5-Coder-0.5B's P(yes) for each document of the hybrid top 10, written by `ragkit ablate`), recomputes the
hybrid (RRF) top 10 of each test query from the cached SciFact index (the ladder's first stage: same index, same
config), and scores every blend weight w in 0, 0.1, ..., 1:

    final = w * minmax(P(yes)) + (1 - w) * minmax(fused score)     (both scaled over the top 10)

which is what `[[rerankers]] name = "llm", blend = w` computes. w = 0 must reproduce the ladder's hybrid-rrf step
and w = 1 its +rerank step (both are checked and recorded). The curve is measured on the test queries and no
weight is chosen on it: it says whether P(yes) carries ranking signal that the fused score lacks. Choosing a
weight needs held-out questions (and LLM calls for them), as `finetune_scifact.py blend` does for the
cross-encoder. Writes benchmarks/results/llm_rerank_blend.json.
"""

from __future__ import annotations

import json
import sys
import time

from _common import BLEND_WEIGHTS, DATASETS, ROOT, beir_index, versus, write_result

REPORT = ROOT / "benchmarks" / "reports" / "scifact-llm"
DEPTH = 10


def main() -> int:
    from ragkit.evaluate.runs import read_trec_run
    from ragkit.evaluate.datasets import load_beir
    from ragkit.evaluate.retrieval import evaluate_run
    from ragkit.rerank._common import blend_scores

    run_file = REPORT / "runs" / "rerank.trec.gz"
    if not run_file.is_file():
        print(f"{run_file.relative_to(ROOT)} missing: run `python benchmarks/ablate_ladders.py --run "
              "--only=scifact-llm` first (the llm step, 1.5-3 h of CPU here)", file=sys.stderr)
        return 2
    p_yes = read_trec_run(run_file)
    test = load_beir(DATASETS / "scifact", "test")
    t = time.perf_counter()
    eng = beir_index("scifact")[0]
    weights = BLEND_WEIGHTS
    runs: dict[float, dict[str, dict[str, float]]] = {w: {} for w in weights}
    missing = 0
    for q in test.queries:
        hits = eng.retrieve(q.text, k=DEPTH, mode="hybrid").hits[:DEPTH]
        judged = p_yes.get(q.qid, {})
        missing += sum(h.doc_id not in judged for h in hits)
        llm = [judged.get(h.doc_id, 0.0) for h in hits]
        for w in weights:
            blended = blend_scores(llm, [h.score for h in hits], w)
            runs[w][q.qid] = {h.doc_id: b for h, b in zip(hits, blended)}
    eng.close()
    if missing:
        print(f"{missing} hybrid top-{DEPTH} documents have no P(yes) in the run: the index or first-stage config "
              "differs from the ladder's", file=sys.stderr)
        return 1
    qids = [q.qid for q in test.queries]
    per_query, curve = {}, {}
    for w in weights:
        mean, pq = evaluate_run(test.qrels, runs[w], ("ndcg@10",))
        curve[w] = round(mean["ndcg@10"], 4)
        per_query[w] = [pq["ndcg@10"].get(qid, 0.0) for qid in qids]
    vs_hybrid = {w: versus(per_query[w], per_query[0.0]) for w in weights[1:]}
    summary = json.loads((REPORT / "results.json").read_text())
    ladder = {v["name"]: v.get("metrics", {}).get("ndcg@10") for v in summary["variants"]}
    data = {"dataset": "scifact test (300 queries)", "reranker": "llm (qwen0.5b, P(yes))", "depth": DEPTH,
            "run_file": str(run_file.relative_to(ROOT)), "ndcg@10_by_blend_weight": curve,
            "versus_hybrid": vs_hybrid,
            "check": {"w0_vs_ladder_hybrid_rrf": [curve[0.0], ladder.get("hybrid-rrf")],
                      "w1_vs_ladder_rerank": [curve[1.0], ladder.get("+rerank")]},
            "note": "measured on the test queries, no weight chosen on them",
            "seconds": round(time.perf_counter() - t, 1)}
    for w in weights:
        v = vs_hybrid.get(w)
        tail = f"  {v['delta_ndcg@10']:+.4f} [{v['ci95'][0]:+.4f}, {v['ci95'][1]:+.4f}] p={v['p_value']}" if v else ""
        print(f"blend {w:.1f}: nDCG@10 {curve[w]:.4f}{tail}")
    print(f"wrote {write_result('llm_rerank_blend', data)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
