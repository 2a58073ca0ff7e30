"""Retrieval quality on BEIR SciFact (300 test queries): BM25, dense MiniLM, and three fusion methods.

Prints a table and writes benchmarks/results/scifact_retrieval.json. The index is built once under
.cache/indexes/ (about 4 minutes of embedding on 2 cores) and reused afterwards.
"""

from __future__ import annotations

import sys
import time

from _common import DATASETS, beir_index, write_result

from ragkit.evaluate.datasets import load_beir
from ragkit.evaluate.retrieval import run_queries, score

VARIANTS = [("bm25", "bm25", None), ("dense", "dense", None), ("hybrid-rrf", "hybrid", "rrf"),
            ("hybrid-minmax", "hybrid", "minmax"), ("hybrid-zscore", "hybrid", "zscore")]


def main() -> int:
    t = time.perf_counter()
    eng, report = beir_index("scifact")
    print(f"index: {report.chunks_total} chunks, {report.chunks_embedded} embedded now, "
          f"{time.perf_counter() - t:.1f}s", flush=True)
    ds = load_beir(DATASETS / "scifact", "test")
    eng.warm_up()
    results = {}
    for name, mode, fusion in VARIANTS:
        if fusion:
            from ragkit.plugins import registry

            eng.fusion = registry.create("fusion", fusion)
        rr = run_queries(eng, ds, k=100, mode=mode)
        m = score(ds.qrels, rr.run)
        results[name] = {k: round(v, 4) for k, v in m.items()}
        print(f"{name:15s} " + "  ".join(f"{k}={v:.4f}" for k, v in m.items()), flush=True)
    best = max((n for n in results if n.startswith("hybrid")), key=lambda n: results[n]["ndcg@10"])
    path = write_result("scifact_retrieval", {"dataset": "scifact", "split": "test", "queries": len(ds.queries),
                                              "chunker": "document", "results": results, "best_fusion": best})
    print(f"best fusion: {best}; wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
