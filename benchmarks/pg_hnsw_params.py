"""pgvector's HNSW at 1M chunks: dense recall@10 and latency against its build and search parameters.

    python benchmarks/pg_hnsw_params.py                    # 1M vectors, the grid below (about 40 min on 2 cores)
    python benchmarks/pg_hnsw_params.py --chunks 100000 --out /tmp/pg_hnsw.json

The vectors, queries and exact neighbours are store_scale.py's (clustered synthetic 384-d vectors; see there).
They are copied into a bare table (id, embedding) of a throwaway PostgreSQL with pgvector; for each build
setting (m, ef_construction) the HNSW index is built once and every ef_search in the grid is queried the way
the postgres store's dense branch queries it: inner-product order, LIMIT 100 (the first stage's candidate
depth), iterative scan in strict order, the top 10 of what comes back compared with the exact top 10.
Also measured: the exact filtered query (a 1% metadata filter answered without the graph) that the store uses
below its filtered_exact_below. Writes benchmarks/results/pg_hnsw_params.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from _common import write_result
from store_scale import BATCH, TENANTS, Corpus

from ragkit.index.postgres import search

GRID = ((16, 64, (100, 200, 400, 800)), (16, 128, (100, 200, 400)))
DEPTH = 100  # rows the dense branch asks for (the first stage's candidates)
QUERIES = 200


def load(conn, corpus: Corpus, n: int) -> None:
    conn.execute("CREATE TABLE v (id bigint PRIMARY KEY, tenant text NOT NULL, embedding vector(384) NOT NULL)")
    with conn.cursor() as cur:
        for start in range(0, n, BATCH):
            _, vecs = corpus.batch(start, min(BATCH, n - start))
            # binary COPY as the store's writer does it: the vector in pgvector's binary format
            with cur.copy("COPY v (id, tenant, embedding) FROM STDIN (FORMAT BINARY)") as cp:
                cp.set_types(["int8", "text", "bytea"])
                for i, v in enumerate(vecs):
                    cp.write_row((start + i, f"t{(start + i) % TENANTS:03d}", search.vector_binary(v)))
    conn.execute("CREATE INDEX v_tenant ON v (tenant)")
    conn.execute("VACUUM ANALYZE v")


def timed(conn, sql: str, params: dict, setup: list[str]) -> tuple[list[int], float]:
    with conn.transaction():
        for s in setup:
            conn.execute(s)
        t = time.perf_counter()
        rows = conn.execute(sql, params).fetchall()
        return [r[0] for r in rows], time.perf_counter() - t


def recall(got: list[list[int]], exact: list[set[int]]) -> float:
    return round(float(np.mean([len(set(g[:10]) & e) / 10 for g, e in zip(got, exact)])), 4)


def summary(lat: list[float]) -> dict:
    lat = sorted(lat)
    return {"p50_ms": round(1000 * statistics.median(lat), 2), "p95_ms": round(1000 * lat[int(0.95 * (len(lat) - 1))], 2)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chunks", type=int, default=1_000_000)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    import psycopg

    from ragkit.testing.postgres import TestServer

    corpus = Corpus()
    texts, qvecs = corpus.queries(args.chunks)
    qvecs = qvecs[:QUERIES]
    exact = corpus.exact(qvecs, args.chunks)
    exact_f = corpus.exact(qvecs[:50], args.chunks, tenant="t007")
    q = [search.vector_text(v) for v in qvecs]
    data: dict = {"chunks": args.chunks, "depth": DEPTH, "queries": len(q), "builds": []}

    def save() -> None:
        if args.out:
            args.out.write_text(json.dumps(data, indent=2) + "\n")
        else:
            write_result("pg_hnsw_params", data)

    with TestServer() as server, psycopg.connect(server.url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        t = time.perf_counter()
        load(conn, corpus, args.chunks)
        data["load_s"] = round(time.perf_counter() - t, 1)
        # the exact filtered query: the filter through its btree, distances for the rows it keeps
        got, lat = [], []
        for v in q[:50]:
            ids, s = timed(conn, "SELECT id FROM v WHERE tenant = 't007' ORDER BY (embedding <#> %(q)s::vector) + 0 "
                           "LIMIT %(k)s", {"q": v, "k": DEPTH}, [])
            got.append(ids)
            lat.append(s)
        data["exact_1%_filter"] = {**summary(lat), "recall@10": recall(got, exact_f)}
        print(json.dumps(data["exact_1%_filter"]), flush=True)
        for m, efc, efs in GRID:
            conn.execute("DROP INDEX IF EXISTS v_hnsw")
            conn.execute("SET maintenance_work_mem = '4GB'")
            t = time.perf_counter()
            conn.execute(f"CREATE INDEX v_hnsw ON v USING hnsw (embedding vector_ip_ops) "
                         f"WITH (m = {m}, ef_construction = {efc})")
            build = {"m": m, "ef_construction": efc, "build_s": round(time.perf_counter() - t, 1),
                     "load_average_1m": round(os.getloadavg()[0], 2), "searches": []}
            for ef in efs:
                got, lat = [], []
                setup = [f"SET LOCAL hnsw.ef_search = {ef}", "SET LOCAL hnsw.iterative_scan = strict_order"]
                for v in q:
                    ids, s = timed(conn, "SELECT id FROM v ORDER BY embedding <#> %(q)s::vector LIMIT %(k)s",
                                   {"q": v, "k": DEPTH}, setup)
                    got.append(ids)
                    lat.append(s)
                row = {"ef_search": ef, **summary(lat), "recall@10": recall(got, exact)}
                build["searches"].append(row)
                print(json.dumps({"m": m, "ef_construction": efc, "build_s": build["build_s"], **row}), flush=True)
            data["builds"].append(build)
            save()
    save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
