"""The stores at scale: 10k -> 100k -> 1M chunks, embedded (faiss flat and HNSW) and postgres side by side.

    python benchmarks/store_scale.py                      # 10k, 100k, 1M chunks (hours on 2 cores; see below)
    python benchmarks/store_scale.py --max-chunks 100000  # stop after 100k
    python benchmarks/store_scale.py --max-chunks 2000 --out /tmp/scale.json   # a smoke run

For each size and store: ingest rate (chunks/s through the store's writer, vectors given), the commit's build
time (bm25s + faiss for the embedded store, the HNSW index for postgres), query latency p50/p95 of BM25, dense,
hybrid (RRF) and hybrid with a metadata filter that keeps 1% of the chunks (the engine's own first stage, chunk
texts fetched), dense recall@10 against exact search, the reading process's RSS (and the server's for
postgres) and the index's size on disk.

Text: real sentences from the SciFact abstracts, three consecutive sentences per chunk from a document picked
at random, so term statistics are those of scientific prose (sentences repeat across chunks at 1M, as in any
corpus with boilerplate). Vectors: 384-d, synthetic but clustered: 2000 random unit centroids, each chunk's
vector its document's centroid plus Gaussian noise (sigma 0.6 / sqrt(d) per coordinate) then normalised, so
neighbourhoods are dense the way sentence embeddings are, without embedding 1M texts. Queries: 200 SciFact
query texts, each with the vector of a random chunk plus noise. Exact neighbours are computed with numpy.
Writes benchmarks/results/store_scale.json.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
from _common import DATASETS, write_result

from ragkit.config import Config
from ragkit.index import open_store
from ragkit.index.settings import wanted
from ragkit.index.store import DocRecord, FileRecord
from ragkit.plugins import registry
from ragkit.retrieve.pipeline import first_stage
from ragkit.types import Chunk

SIZES = (10_000, 100_000, 1_000_000)
DIM, CENTROIDS, NOISE = 384, 2000, 0.6
BATCH = 20_000
QUERIES = 200
TENANTS = 100  # the selective filter keeps one tenant: 1%
STORES = ("embedded-flat", "embedded-hnsw", "postgres")


def sentences() -> list[list[str]]:
    """SciFact abstracts as lists of sentences."""
    out = []
    with gzip.open(DATASETS / "scifact" / "corpus.jsonl.gz", "rt", encoding="utf-8") as fh:
        for line in fh:
            d = json.loads(line)
            parts = [s for s in re.split(r"(?<=[.!?])\s+", d["text"]) if len(s) > 20]
            if parts:
                out.append(parts)
    return out


class Corpus:
    """Chunk i of a corpus is the same in every store and every size (a seeded stream)."""

    def __init__(self, seed: int = 0) -> None:
        self.docs = sentences()
        rng = np.random.default_rng(seed)
        c = rng.normal(size=(CENTROIDS, DIM)).astype(np.float32)
        self.centroids = c / np.linalg.norm(c, axis=1, keepdims=True)
        self.seed = seed

    def batch(self, start: int, n: int) -> tuple[list[Chunk], np.ndarray]:
        rng = np.random.default_rng([self.seed, start])
        chunks, cents = [], []
        for i in range(start, start + n):
            d = int(rng.integers(len(self.docs)))
            sents = self.docs[d]
            j = int(rng.integers(len(sents)))
            text = " ".join(sents[j:j + 3])
            chunks.append(Chunk(f"c{i}#0", f"c{i}", text, 0, {"tenant": f"t{i % TENANTS:03d}", "year": 2000 + i % 25}))
            cents.append(d % CENTROIDS)
        v = self.centroids[cents] + rng.normal(scale=NOISE / np.sqrt(DIM), size=(n, DIM)).astype(np.float32)
        return chunks, (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)

    def queries(self, n_chunks: int) -> tuple[list[str], np.ndarray]:
        texts = [json.loads(line)["text"] for line in
                 (DATASETS / "scifact" / "queries.jsonl").read_text(encoding="utf-8").splitlines()[:QUERIES]]
        rng = np.random.default_rng([self.seed, 999])
        picks = rng.integers(n_chunks, size=len(texts))
        vecs = np.stack([self.batch(int(p), 1)[1][0] for p in picks])
        vecs = vecs + rng.normal(scale=NOISE / np.sqrt(DIM), size=vecs.shape).astype(np.float32)
        return texts, (vecs / np.linalg.norm(vecs, axis=1, keepdims=True)).astype(np.float32)

    def exact(self, qvecs: np.ndarray, n_chunks: int, k: int = 10, tenant: str | None = None) -> list[set[int]]:
        """Exact dense top-k rows per query (rows = chunk numbers), optionally among one tenant's chunks."""
        best_s = np.full((len(qvecs), k), -np.inf, np.float32)
        best_i = np.zeros((len(qvecs), k), np.int64)
        for start in range(0, n_chunks, BATCH):
            _, v = self.batch(start, min(BATCH, n_chunks - start))
            s = qvecs @ v.T
            if tenant is not None:
                keep = (np.arange(start, start + len(v)) % TENANTS) == int(tenant[1:])
                s[:, ~keep] = -np.inf
            s_all = np.concatenate([best_s, s], axis=1)
            i_all = np.concatenate([best_i, np.arange(start, start + len(v))[None, :].repeat(len(qvecs), 0)], axis=1)
            top = np.argpartition(-s_all, k - 1, axis=1)[:, :k]
            best_s, best_i = np.take_along_axis(s_all, top, 1), np.take_along_axis(i_all, top, 1)
        return [set(map(int, row)) for row in best_i]


def settings(store: str) -> dict:
    s = wanted(Config())
    s["chunker"] = registry.create("chunker", {"name": "document"}).spec()
    if store == "embedded-hnsw":
        s["dense"] = registry.create("dense", {"name": "faiss", "index": "hnsw"}).spec()
    return s


def rss_mb(pid: int | None = None, children: bool = False) -> float:
    import psutil

    p = psutil.Process(pid or os.getpid())
    procs = [p, *(p.children(recursive=True) if children else [])]
    return round(sum(x.memory_info().rss for x in procs) / 2 ** 20, 1)


def disk_mb(store, location: str) -> float:
    if location.startswith("postgres"):
        rows = store.query("SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c JOIN pg_namespace n "
                           "ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relkind IN ('r', 'm')",
                           (store.schema,))
        return round(float(rows[0][0]) / 2 ** 20, 1)
    return round(sum(f.stat().st_size for f in Path(location).rglob("*") if f.is_file()) / 2 ** 20, 1)


def graph(store_kind: str) -> dict | None:
    """The HNSW parameters a store builds and searches with (None: exact search only)."""
    dense = settings(store_kind)["dense"]
    if store_kind == "postgres":
        from ragkit.index.postgres.store import hnsw_params

        return hnsw_params(dense)
    if dense["index"] != "hnsw":
        return None
    return {"m": dense["hnsw_m"], "ef_construction": dense["ef_construction"], "ef_search": dense["ef_search"]}


def build(location: str, store_kind: str, corpus: Corpus, n: int) -> dict:
    store = open_store(location)
    t0 = time.perf_counter()
    with store.writer(settings(store_kind), model_id="synthetic-clustered-384") as w:
        for start in range(0, n, BATCH):
            chunks, vecs = corpus.batch(start, min(BATCH, n - start))
            w.add([DocRecord(c.doc_id, f"{c.doc_id}.txt", "", {}) for c in chunks], chunks, vecs,
                  [FileRecord(f"{c.doc_id}.txt", "0" * 64, 1, 0.0, [c.doc_id]) for c in chunks])
        t1 = time.perf_counter()
        w.commit()
    t2 = time.perf_counter()
    return {"store": store, "add_s": round(t1 - t0, 1), "commit_s": round(t2 - t1, 1),
            "ingest_chunks_per_s": round(n / (t2 - t0), 1)}


def measure(store, corpus: Corpus, n: int) -> dict:
    reader = store.reader()
    reader.warm_up()
    texts, qvecs = corpus.queries(n)
    vec_of = dict(zip(texts, qvecs))
    fusion = registry.create("fusion", "rrf")
    runs = {"bm25": ("bm25", None), "dense": ("dense", None), "hybrid": ("hybrid", None),
            "hybrid+1% filter": ("hybrid", "tenant=t007")}
    out, got = {}, {}
    for name, (mode, flt) in runs.items():
        lat = []
        for text in texts:
            t = time.perf_counter()
            r = first_stage(reader, text, mode=mode, depth=10, candidates=100, transforms=[], fusion=fusion,
                            embed_query=lambda q: vec_of[q], filter=flt)
            lat.append(time.perf_counter() - t)
            if name in ("dense",):
                got.setdefault(name, []).append({int(h.chunk.doc_id[1:]) for h in r.hits})
        lat.sort()
        out[name] = {"p50_ms": round(1000 * statistics.median(lat), 1),
                     "p95_ms": round(1000 * lat[int(0.95 * (len(lat) - 1))], 1)}
    exact = corpus.exact(qvecs, n)
    out["dense_recall@10"] = round(float(np.mean([len(g & e) / 10 for g, e in zip(got["dense"], exact)])), 4)
    exact_f = corpus.exact(qvecs[:50], n, tenant="t007")
    hits = [{int(h.chunk.doc_id[1:]) for h in first_stage(
        reader, t, mode="dense", depth=10, candidates=100, transforms=[], fusion=fusion,
        embed_query=lambda q: vec_of[q], filter="tenant=t007").hits} for t in texts[:50]]
    out["dense_recall@10_1%_filter"] = round(float(np.mean([len(g & e) / 10 for g, e in zip(hits, exact_f)])), 4)
    out["returned_k_under_1%_filter"] = all(len(h) == 10 for h in hits)
    reader.close()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max-chunks", type=int, default=SIZES[-1], help="largest size to run (smaller sizes: "
                    "10k, 100k; a value below 10k runs that size alone)")
    ap.add_argument("--stores", default=",".join(STORES), help=f"comma-separated subset of {', '.join(STORES)}")
    ap.add_argument("--pg-url", help="a PostgreSQL server with pgvector (default: a throwaway local one)")
    ap.add_argument("--out", type=Path, help="write the result here instead of benchmarks/results/")
    args = ap.parse_args(argv)
    sizes = [s for s in SIZES if s <= args.max_chunks] or [args.max_chunks]
    kinds = [s for s in args.stores.split(",") if s]
    corpus = Corpus()
    server, base = None, args.pg_url
    if "postgres" in kinds and not base:
        from ragkit.testing.postgres import TestServer

        server = TestServer().start()
        base = server.url
    results = []

    def save(finished: bool) -> None:
        """Written after every row, so a run cut short keeps the sizes it finished."""
        data = {"sizes": sizes, "stores": kinds, "dim": DIM, "centroids": CENTROIDS, "noise": NOISE,
                "queries": QUERIES, "filter_keeps": 1 / TENANTS, "finished": finished, "runs": results,
                "goal": {"chunks": 1_000_000, "hybrid_p50_ms_at_most": 50, "dense_recall@10_at_least": 0.95}}
        if args.out:
            args.out.write_text(json.dumps(data, indent=2) + "\n")
        elif args.max_chunks >= SIZES[0]:
            write_result("store_scale", data)

    tmp = Path(tempfile.mkdtemp(prefix="store-scale-"))
    try:
        for n in sizes:
            for kind in kinds:
                if kind == "postgres":
                    location = f"{base}{'&' if '?' in base else '?'}schema=scale_{uuid.uuid4().hex[:8]}"
                else:
                    location = str(tmp / f"{kind}-{n}")
                b = build(location, kind, corpus, n)
                store = b.pop("store")
                m = measure(store, corpus, n)
                row = {"chunks": n, "store": kind, "graph": graph(kind), **b, **m, "disk_mb": disk_mb(store, location),
                       "client_rss_mb": rss_mb(), "load_average_1m": round(os.getloadavg()[0], 2)}
                if kind == "postgres" and server is not None:
                    row["server_rss_mb"] = rss_mb(server.process.pid, children=True)
                results.append(row)
                print(json.dumps(row), flush=True)
                save(finished=False)
                if kind != "postgres":
                    shutil.rmtree(location, ignore_errors=True)
                elif server is None:
                    store.query(f'DROP SCHEMA "{store.schema}" CASCADE')
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    save(finished=True)
    print(f"wrote {args.out or 'benchmarks/results/store_scale.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
