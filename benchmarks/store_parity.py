"""The embedded store and the postgres store side by side on BEIR SciFact (one document = one chunk): nDCG@10 and
recall@100 for BM25, dense and hybrid (RRF), query latency, ingest throughput, and how closely the two BM25
implementations agree (identical top-10 rankings, largest score difference).

    python benchmarks/store_parity.py                  # warm embedding cache: ingest measures the stores alone
    python benchmarks/store_parity.py --cold           # each store embeds the corpus itself (about 2 x 4 min)
    python benchmarks/store_parity.py --limit 300      # a smoke run on the first 300 documents (not written)

Both indexes are built from scratch in this run. By default they reuse the shared embedding cache of the
dataset indexes (.cache/eval-indexes/shared-embeddings.sqlite, filled by scifact_retrieval.py), so nothing is
re-embedded and the ingest rate is that of loading, chunking, BM25 analysis and the store's writes. PostgreSQL is
a throwaway server from ragkit.testing.postgres unless --pg-url names one (a schema is created and dropped).
Writes benchmarks/results/store_parity.json (full runs only, unless --out).
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from _common import BEIR_OVERRIDES, CACHE, DATASETS, write_result

from ragkit.config import load_config
from ragkit.engine import Engine
from ragkit.evaluate.datasets import load_beir
from ragkit.evaluate.retrieval import run_queries, score
from ragkit.evaluate.runner import SHARED_EMBEDDINGS
from ragkit.plugins import QueryBundle

MODES = ("bm25", "dense", "hybrid")


def subset(corpus: Path, n: int, into: Path) -> Path:
    """The first ``n`` documents of a corpus.jsonl.gz, as a corpus file of their own."""
    out = into / "corpus.jsonl"
    with gzip.open(corpus, "rt", encoding="utf-8") as fh, open(out, "w", encoding="utf-8") as dst:
        for _, line in zip(range(n), fh):
            dst.write(line)
    return out


def ingest(location: str, cfg, corpus: Path, cache: Path) -> tuple[Engine, dict]:
    eng = Engine(location, cfg, embedding_cache=cache)
    eng.warm_up(post=False, generator=False)  # the model loads outside the timed ingest
    t = time.perf_counter()
    rep = eng.ingest([corpus], rebuild=True)
    seconds = time.perf_counter() - t
    return eng, {"seconds": round(seconds, 2), "documents": rep.documents_total, "chunks": rep.chunks_total,
                 "chunks_embedded": rep.chunks_embedded, "docs_per_s": round(rep.documents_total / seconds, 1)}


def quality(eng: Engine, ds) -> dict:
    eng.warm_up()
    out = {}
    for mode in MODES:
        rr = run_queries(eng, ds, k=100, mode=mode)
        m = score(ds.qrels, rr.run)
        lat = sorted(rr.latencies.values())
        out[mode] = {"ndcg@10": round(m["ndcg@10"], 4), "recall@100": round(m["recall@100"], 4),
                     "p50_ms": round(1000 * statistics.median(lat), 1),
                     "p95_ms": round(1000 * lat[int(0.95 * (len(lat) - 1))], 1)}
    return out


def bm25_agreement(a: Engine, b: Engine, ds, k: int = 10) -> dict:
    """Per query: are the two stores' BM25 top-k chunk ids identical, and how far apart are their scores."""
    ra, rb = a.reader(), b.reader()
    same, worst = 0, 0.0
    for q in ds.queries:
        qa = ra.sparse_search(QueryBundle(q.text), k, None)
        qb = rb.sparse_search(QueryBundle(q.text), k, None)
        ids_a = [c.chunk_id for c in ra.chunks(qa[0].tolist())]
        ids_b = [c.chunk_id for c in rb.chunks(qb[0].tolist())]
        same += ids_a == ids_b
        if ids_a == ids_b and len(ids_a):
            worst = max(worst, float(abs(qa[1].astype(float) - qb[1].astype(float)).max()))
    return {"queries": len(ds.queries), "identical_top10": same, "max_abs_score_diff": worst}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=0, help="only the first N documents (and the queries they "
                    "answer): a smoke run, not written unless --out")
    ap.add_argument("--cold", action="store_true", help="each store embeds the corpus (fresh embedding caches)")
    ap.add_argument("--pg-url", help="a PostgreSQL server with pgvector (default: a throwaway local one)")
    ap.add_argument("--out", type=Path, help="write the result here instead of benchmarks/results/")
    args = ap.parse_args(argv)

    ds = load_beir(DATASETS / "scifact", "test")
    cfg = load_config(None, BEIR_OVERRIDES)
    with tempfile.TemporaryDirectory(prefix="store-parity-") as tmp:
        tmp = Path(tmp)
        corpus = ds.corpus
        if args.limit:
            corpus = subset(ds.corpus, args.limit, tmp)
            kept = {json.loads(line)["_id"] for line in corpus.read_text(encoding="utf-8").splitlines()}
            ds.queries = [q for q in ds.queries if set(q.relevant) & kept]
        shared = CACHE / "eval-indexes" / SHARED_EMBEDDINGS
        caches = {"embedded": tmp / "emb-cache.sqlite", "postgres": tmp / "pg-cache.sqlite"} if args.cold \
            else {"embedded": shared, "postgres": shared}
        server = None
        if args.pg_url:
            base = args.pg_url
        else:
            from ragkit.testing.postgres import TestServer

            server = TestServer().start()
            base = server.url
        schema = f"store_parity_{uuid.uuid4().hex[:8]}"
        locations = {"embedded": str(tmp / "index"), "postgres": f"{base}{'&' if '?' in base else '?'}schema={schema}"}
        try:
            engines, stores = {}, {}
            for name, location in locations.items():
                eng, ing = ingest(location, cfg, corpus, caches[name])
                print(f"{name:9s} ingest {ing['documents']} docs in {ing['seconds']} s ({ing['docs_per_s']} docs/s, "
                      f"{ing['chunks_embedded']} embedded)", flush=True)
                q = quality(eng, ds)
                for mode, m in q.items():
                    print(f"{name:9s} {mode:7s} nDCG@10 {m['ndcg@10']:.4f}  recall@100 {m['recall@100']:.4f}  "
                          f"p50 {m['p50_ms']} ms", flush=True)
                engines[name], stores[name] = eng, {"ingest": ing, "retrieval": q}
            agreement = bm25_agreement(engines["embedded"], engines["postgres"], ds)
            print(f"BM25 top-10 identical for {agreement['identical_top10']}/{agreement['queries']} queries; "
                  f"largest score difference {agreement['max_abs_score_diff']:.2e}")
            for eng in engines.values():
                eng.close()
        finally:
            if server is not None:
                server.stop()
            elif args.pg_url:
                import psycopg

                with psycopg.connect(args.pg_url, autocommit=True) as conn:
                    conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    delta = {m: round(stores["postgres"]["retrieval"][m]["ndcg@10"] - stores["embedded"]["retrieval"][m]["ndcg@10"], 4)
             for m in MODES}
    ratio = round(stores["postgres"]["ingest"]["docs_per_s"] / stores["embedded"]["ingest"]["docs_per_s"], 3)
    print(f"nDCG@10 postgres - embedded: {delta}; ingest throughput ratio {ratio}")
    data = {"dataset": "scifact", "split": "test", "queries": len(ds.queries), "chunker": "document",
            "documents": stores["embedded"]["ingest"]["documents"], "embedding_cache": "cold" if args.cold else "warm",
            "stores": stores, "delta_ndcg@10": delta, "ingest_ratio": ratio, "bm25_agreement": agreement,
            "goals": {"ndcg_within": 0.005, "ingest_ratio_at_least": 0.8}}
    if args.out:
        args.out.write_text(json.dumps(data, indent=2) + "\n")
        print(f"wrote {args.out}")
    elif not args.limit:
        print(f"wrote {write_result('store_parity' + ('_cold' if args.cold else ''), data)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
