"""Rerank depth on SciFact with the cross-encoder trained here: quality and latency at depth 10, 20 and 50.

The cross-encoder table of benchmarks/rerank_latency.py measures latency well but its quality column comes from a
weak 160-pair cross-encoder. This one uses the reranker `python benchmarks/finetune_scifact.py supervised` trains on
SciFact's train split (.cache/finetune/reranker-supervised) and SciFact's 300 test queries:

- quality: the hybrid top 50 of each question is scored once by the model (a pair's score does not depend on the
  other pairs); depth d reorders the first d by ``blend_scores`` (the plugin's ``blend``) and keeps the rest
  behind, as the plugin does. The blend weight is chosen per depth on the 81 held-out *train* questions (the
  same split as finetune_scifact.py), then nDCG@10 on test at that weight, against hybrid with a paired test;
- latency: the ``cross-encoder`` plugin itself at each depth on the first ``--latency-queries`` test questions
  (p50 / p95 per question, the same candidates for every depth).

Writes benchmarks/results/rerank_depth_scifact.json. About 15 minutes on an idle 2-core machine.
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

from _common import BLEND_WEIGHTS, CACHE, beir_index, scifact_dev_test, versus, write_result

from ragkit.evaluate.stats import percentile

MODEL = CACHE / "finetune" / "reranker-supervised"
DEPTHS = (10, 20, 50)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=str(MODEL))
    ap.add_argument("--heldout", type=float, default=0.1, help="share of train questions kept aside (as finetune)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--latency-queries", type=int, default=30)
    ap.add_argument("--result", default="rerank_depth_scifact", help="name of the JSON under benchmarks/results/")
    args = ap.parse_args()

    from ragkit.evaluate.retrieval import evaluate_run
    from ragkit.plugins import registry
    from ragkit.rerank._common import blend_scores

    if args.model == str(MODEL) and not MODEL.exists():
        print(f"{MODEL} missing: train it with `python benchmarks/finetune_scifact.py supervised` (~25 min)",
              file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    rr = registry.create("reranker", {"name": "cross-encoder", "model": args.model, "depth": max(DEPTHS)})
    rr.warm_up()
    sets = scifact_dev_test(args.heldout, args.seed)
    eng = beir_index("scifact")[0]

    # one pass: hybrid top 50 and the model's score of every pair
    scored: dict[str, list[tuple[str, list, list[float]]]] = {}
    for name, (queries, _) in sets.items():
        rows = []
        for i, (qid, text) in enumerate(queries):
            hits = eng.retrieve(text, k=max(DEPTHS), mode="hybrid").hits
            rows.append((qid, hits, rr.score(rr.pairs(text, hits))))
            if (i + 1) % 50 == 0:
                print(f"{name}: scored {i + 1}/{len(queries)}", flush=True)
        scored[name] = rows

    def ndcg(name: str, depth: int, w: float) -> tuple[float, list[float]]:
        run = {}
        for qid, hits, model in scored[name]:
            head, tail = hits[:depth], hits[depth:]
            final = blend_scores(model[:depth], [h.score for h in head], w)
            order = sorted(range(len(head)), key=lambda i: -final[i])
            ranked = [head[i].doc_id for i in order] + [h.doc_id for h in tail]
            run[qid] = {d: float(len(ranked) - r) for r, d in enumerate(ranked)}
        mean, pq = evaluate_run(sets[name][1], run, ("ndcg@10",))
        return mean["ndcg@10"], [pq["ndcg@10"].get(qid, 0.0) for qid, _ in sets[name][0]]

    hybrid, hybrid_pq = ndcg("test", max(DEPTHS), 0.0)
    quality = {}
    for depth in DEPTHS:
        dev_curve = {w: round(ndcg("dev", depth, w)[0], 4) for w in BLEND_WEIGHTS}
        best = max(BLEND_WEIGHTS[1:], key=lambda w: (dev_curve[w], -w))
        test_at, test_pq = ndcg("test", depth, best)
        alone, _ = ndcg("test", depth, 1.0)
        vs = versus(test_pq, hybrid_pq)
        quality[depth] = {"blend_chosen_on_dev": best, "dev_curve": dev_curve,
                          "test_ndcg@10_at_chosen": round(test_at, 4), "test_ndcg@10_model_alone": round(alone, 4),
                          "versus_hybrid": vs}
        print(f"depth {depth}: blend {best} (dev) -> test nDCG@10 {test_at:.4f} vs hybrid {hybrid:.4f} "
              f"({vs['delta_ndcg@10']:+.4f}, p={vs['p_value']:.3f}); model alone {alone:.4f}", flush=True)

    latency = {}
    few = scored["test"][:args.latency_queries]
    texts = dict(sets["test"][0])
    for depth in DEPTHS:
        rr.params.depth = depth
        lat = []
        for qid, hits, _ in few:
            t = time.perf_counter()
            rr.process(texts[qid], copy.deepcopy(hits))
            lat.append(time.perf_counter() - t)
        latency[depth] = {"p50_ms": round(1000 * percentile(lat, 0.5)),
                          "p95_ms": round(1000 * percentile(lat, 0.95))}
        print(f"depth {depth}: plugin latency {latency[depth]}", flush=True)
    eng.close()
    data = {"model": str(Path(args.model).resolve()), "test_queries": len(sets["test"][0]),
            "dev_questions": len(sets["dev"][0]),
            "test_hybrid_ndcg@10": round(hybrid, 4), "depths": {str(d): {**quality[d], **latency[d]} for d in DEPTHS},
            "latency_queries": len(few), "seconds": round(time.perf_counter() - t0, 1)}
    print(f"wrote {write_result(args.result, data)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
