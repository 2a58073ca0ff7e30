"""The two retrieval branches: BM25 scored by the reader from packed postings, dense search as SQL.

BM25 postings live in ``term_blocks``: one row per term and generation, holding the chunk ids (big-endian int8)
and term frequencies (int4) of every chunk that generation added, as two packed byte strings. A query reads the
few rows of its terms that the reading generation sees (``added_in <= gen``), and :func:`bm25_top_k` scores them
with numpy against the reader's own list of visible chunks (their ids and lengths, read once per reader), with
the sparse plugin's analyzer, k1, b and IDF formula (the bm25s methods lucene, robertson and atire), so scores
equal the embedded store's up to float rounding:

    score(c) = sum over query tokens t of idf(df_t) * tf / (tf + k1 * (1 - b + b * len(c) / avglen))

A chunk that a later commit removed stays in its block; it no longer counts because the reader does not see
it. ``df_t`` is counted over the chunks the generation sees (not over the filtered ones, as in the embedded
store); a filter decides which chunks are scored. (Schema 2 scored one row per posting in SQL, exact as well but
about 8x slower at 100,000 chunks, and growing with the corpus: docs/postgres.md.)

Dense search orders by inner product (``<#>``) on the normalised vectors: exactly while few chunks can match
(fewer than ``EXACT_BELOW`` in all, or a filter that keeps fewer than ``FILTERED_EXACT_BELOW``: the filter's
own index finds its rows and their distances are computed), else through the HNSW index with pgvector's
iterative scan, which keeps walking the graph until k chunks pass the filter; when it still comes back short,
the exact query answers. A graph walk under a selective filter steps over many rows it must drop and stops at
pgvector's scan limit with rows that are not the exact top k (docs/postgres.md has the measurements).
"""

from __future__ import annotations

import struct
from collections import Counter
from collections.abc import Sequence

import numpy as np

from ragkit.errors import ConfigError

IDF_METHODS = ("lucene", "robertson", "atire")
EXACT_BELOW = 5_000  # candidate chunks below which dense search is exact
FILTERED_EXACT_BELOW = 50_000  # the same for the chunks a filter keeps (as the embedded store's default)
HNSW_FROM = 10_000  # chunks in the index from which an HNSW index is built


def bm25_params(spec: dict) -> dict:
    """k1, b and the method of a sparse spec the postgres store can score (bm25s's lucene/robertson/atire)."""
    name, method = spec.get("name"), spec.get("method", "lucene")
    if name != "bm25s" or method not in IDF_METHODS:
        raise ConfigError(f"sparse {name!r} (method {method!r}): the postgres store scores BM25 like bm25s with "
                          f"method {', '.join(IDF_METHODS)}; set [sparse] name = 'bm25s'")
    return {"k1": float(spec.get("k1", 0.9)), "b": float(spec.get("b", 0.4)), "method": method}


def term_counts(tokens: Sequence[str]) -> tuple[list[str], list[int]]:
    counts = Counter(tokens)
    return list(counts), list(counts.values())


def blocks_sql(schema: str, visible: str) -> str:
    """The posting blocks of the query's terms (``%(terms)s``) that a generation sees; ``visible`` is its
    condition on alias ``b``."""
    return f'SELECT b.term, b.ids, b.tfs FROM "{schema}".term_blocks b WHERE b.term = ANY(%(terms)s) AND {visible}'


def pack_postings(ids: Sequence[int], tfs: Sequence[int]) -> tuple[bytes, bytes]:
    """One block's two columns: chunk ids as big-endian int8, term frequencies as big-endian int4 (the byte
    order of PostgreSQL's int8send / int4send, which the schema migration uses)."""
    return np.asarray(ids, dtype=">i8").tobytes(), np.asarray(tfs, dtype=">i4").tobytes()


def idf(method: str, n: int, df: float) -> np.float32:
    """bm25s's IDF of a term in ``df`` of ``n`` chunks, rounded to float32 as the embedded store keeps it."""
    if method == "lucene":
        value = np.log(1 + (n - df + 0.5) / (df + 0.5))
    elif method == "robertson":
        value = np.log(max(1.0, (n - df + 0.5) / (df + 0.5)))
    else:  # atire
        value = np.log(n / df)
    return np.float32(value)


def bm25_top_k(blocks: Sequence[tuple[str, bytes, bytes]], qtf: dict[str, int], row_of: np.ndarray,
               lengths: np.ndarray, avglen: float, params: dict, k: int,
               allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The top ``k`` (rows, scores) by BM25, best first, ties by row (= by chunk id).

    ``blocks``: (term, ids, tfs) rows of :func:`blocks_sql`; ``row_of``: chunk id -> the reader's row, -1 where
    the generation does not see the chunk; ``lengths``: BM25 tokens per row; ``allowed``: a mask over rows (a
    filter), or None. Only chunks with a positive score are returned."""
    n = len(lengths)
    by_term: dict[str, list[tuple[bytes, bytes]]] = {}
    for term, ids, tfs in blocks:
        by_term.setdefault(term, []).append((ids, tfs))
    k1, b = float(params["k1"]), float(params["b"])
    all_rows, all_weights = [], []
    for term, parts in by_term.items():
        ids = np.concatenate([np.frombuffer(i, dtype=">i8") for i, _ in parts]).astype(np.int64)
        tfs = np.concatenate([np.frombuffer(t, dtype=">i4") for _, t in parts]).astype(np.float64)
        inside = ids < len(row_of)  # ids past the reader's largest: chunks it cannot see
        rows = np.full(len(ids), -1, np.int64)
        rows[inside] = row_of[ids[inside]]
        seen = rows >= 0
        df = int(seen.sum())
        if not df:
            continue
        rows, tfs = rows[seen], tfs[seen]
        if allowed is not None:
            keep = allowed[rows]
            rows, tfs = rows[keep], tfs[keep]
        norm = k1 * (1 - b + b * lengths[rows] / avglen)
        weight = qtf.get(term, 1) * float(idf(params["method"], n, df)) * tfs / (tfs + norm)
        all_rows.append(rows)
        all_weights.append(weight.astype(np.float32))
    if not all_rows:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    scores = np.bincount(np.concatenate(all_rows), weights=np.concatenate(all_weights), minlength=n)
    scores = scores.astype(np.float32)
    cand = np.flatnonzero(scores > 0)
    if len(cand) > k:
        kth = np.partition(scores[cand], len(cand) - k)[len(cand) - k]  # the k-th best score
        cand = cand[scores[cand] >= kth]  # ties at the boundary stay for the ordering below
    order = np.lexsort((cand, -scores[cand]))[:k]
    return cand[order].astype(np.int64), scores[cand[order]]


def dense_sql(schema: str, visible: str, condition: str, exact: bool) -> str:
    # "+ 0" hides the distance from the planner, so the HNSW index cannot answer the exact query
    order = "(c.embedding <#> %(q)s::vector) + 0, c.id" if exact else "c.embedding <#> %(q)s::vector"
    return (f'SELECT c.id, -(c.embedding <#> %(q)s::vector) AS score FROM "{schema}".chunks c '
            f"WHERE {visible} AND ({condition}) ORDER BY {order} LIMIT %(k)s")


def copy_columns(data: bytes, types: Sequence[str]) -> list[np.ndarray]:
    """The columns of a ``COPY ... TO STDOUT (FORMAT BINARY)`` of fixed-width, non-null numbers (``types`` as
    numpy big-endian codes, e.g. ``">i8"``), as native arrays: each row is a field count, then per field its
    length and value, between a 19-byte header and a 2-byte trailer."""
    fields = [("n", ">i2")] + [f for i, t in enumerate(types) for f in ((f"l{i}", ">i4"), (f"v{i}", t))]
    rows = np.frombuffer(data[19:-2], dtype=fields) if len(data) > 21 else np.zeros(0, dtype=fields)
    return [rows[f"v{i}"].astype(t.lstrip(">")) for i, t in enumerate(types)]


def vector_text(v: np.ndarray) -> str:
    return "[" + ",".join(repr(float(x)) for x in np.asarray(v, dtype=np.float32).ravel()) + "]"


def vector_binary(v: np.ndarray) -> bytes:
    """pgvector's binary wire format: dimension, an unused int16, big-endian float32s."""
    v = np.asarray(v, dtype=">f4").ravel()
    return struct.pack(">hh", v.size, 0) + v.tobytes()


def parse_vector(text: str) -> np.ndarray:
    return np.array(text.strip("[]").split(","), dtype=np.float32) if text.strip("[]") else \
        np.zeros(0, np.float32)
