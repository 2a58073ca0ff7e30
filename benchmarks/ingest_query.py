"""Ingest and query speed on BEIR SciFact, measured against the raw encoder in the same run.

  1. ingest the corpus into a fresh index with an empty embedding cache (one doc = one chunk)
  2. encode the same chunk texts directly with sentence-transformers (the floor ragkit cannot beat)
  3. re-ingest the unchanged corpus (must embed nothing)
  4. query latency per stage over the 300 test queries, BM25-only and hybrid (no rerank)

Prints a table and writes benchmarks/results/ingest_query.json. Takes about 9 minutes on 2 cores
(``--limit N`` uses the first N documents for a quicker run).
"""

from __future__ import annotations

import argparse
import gzip
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

from _common import BEIR_OVERRIDES, DATASETS, write_result

from ragkit import Engine
from ragkit.evaluate.datasets import load_beir
from ragkit.evaluate.stats import percentile


def pct(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0..100) in milliseconds."""
    return 1000.0 * percentile(values, q / 100, 0.0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=0, help="use only the first N documents")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="ragkit-bench-"))
    corpus = DATASETS / "scifact" / "corpus.jsonl.gz"
    if args.limit:
        small = work / "corpus.jsonl.gz"
        with gzip.open(corpus, "rt", encoding="utf-8") as src, gzip.open(small, "wt", encoding="utf-8") as dst:
            for i, line in enumerate(src):
                if i >= args.limit:
                    break
                dst.write(line)
        corpus = small
    try:
        eng = Engine.open(work / "idx", None, BEIR_OVERRIDES)
        eng.embedder.warm_up()  # model load is start-up cost, measured separately from throughput
        t = time.perf_counter()
        first = eng.ingest([corpus])
        ingest_s = time.perf_counter() - t
        print(f"ingest: {first.documents_total} docs, {first.chunks_total} chunks in {ingest_s:.1f}s "
              f"(stages: {', '.join(f'{k}={v:.1f}s' for k, v in first.timings.items())})", flush=True)

        texts = eng.reader().iter_chunks()
        texts = [c.text for c in texts]
        t = time.perf_counter()
        eng.embedder.model.encode(texts, batch_size=eng.config.ingest.embed_batch_size,
                                  normalize_embeddings=True, show_progress_bar=False)
        raw_s = time.perf_counter() - t
        print(f"raw sentence-transformers encode of the same {len(texts)} chunks: {raw_s:.1f}s", flush=True)

        t = time.perf_counter()
        again = eng.ingest([corpus])
        reingest_s = time.perf_counter() - t
        assert again.chunks_embedded == 0 and not again.committed

        ds = load_beir(DATASETS / "scifact", "test")
        eng.warm_up()
        latency: dict[str, dict[str, float]] = {}
        for mode in ("bm25", "dense", "hybrid"):
            for q in ds.queries[:20]:  # warm caches
                eng.retrieve(q.text, k=10, mode=mode)
            stages: dict[str, list[float]] = {}
            totals = []
            for q in ds.queries:
                t = time.perf_counter()
                r = eng.retrieve(q.text, k=10, mode=mode)
                totals.append(time.perf_counter() - t)
                for stage, sec in r.timings.items():
                    stages.setdefault(stage, []).append(sec)
            latency[mode] = {"p50_ms": round(pct(totals, 50), 2), "p95_ms": round(pct(totals, 95), 2)}
            for stage, vals in stages.items():
                latency[mode][f"{stage}_p50_ms"] = round(pct(vals, 50), 2)
                latency[mode][f"{stage}_p95_ms"] = round(pct(vals, 95), 2)
            print(f"query {mode:6s}: " + ", ".join(f"{k}={v}" for k, v in latency[mode].items()), flush=True)

        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        result = {
            "dataset": "scifact", "documents": first.documents_total, "chunks": first.chunks_total,
            "ingest_seconds": round(ingest_s, 2),
            "ingest_docs_per_s": round(first.documents_total / ingest_s, 2),
            "ingest_chunks_per_s": round(first.chunks_total / ingest_s, 2),
            "ingest_stage_seconds": {k: round(v, 2) for k, v in first.timings.items()},
            "raw_encode_seconds": round(raw_s, 2),
            "raw_encode_chunks_per_s": round(len(texts) / raw_s, 2),
            "ingest_vs_raw_encode": round(raw_s / ingest_s, 3),
            "reingest_unchanged_seconds": round(reingest_s, 3),
            "reingest_vs_first": round(reingest_s / ingest_s, 4),
            "query_latency": latency,
            "peak_rss_mb": round(peak_mb, 1),
            "targets": {"ingest_vs_raw_encode>=0.85": raw_s / ingest_s >= 0.85,
                        "reingest_vs_first<0.10": reingest_s / ingest_s < 0.10,
                        "bm25_p50_ms<=5": latency["bm25"]["p50_ms"] <= 5,
                        "hybrid_p50_ms<=25": latency["hybrid"]["p50_ms"] <= 25},
        }
        path = write_result("ingest_query" + (f"_limit{args.limit}" if args.limit else ""), result)
        print(f"ingest {result['ingest_docs_per_s']} docs/s = {result['ingest_vs_raw_encode']:.1%} of raw encode; "
              f"re-ingest {result['reingest_vs_first']:.2%} of first; peak RSS {result['peak_rss_mb']} MB")
        print(f"targets: {result['targets']}")
        print(f"wrote {path}")
        eng.close()
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
