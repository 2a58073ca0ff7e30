"""The two retrieval branches as SQL.

BM25 is scored at query time from postings (term, chunk, term frequency, chunk length; one index range per
query term, read by an index-only scan) and
the reading generation's corpus statistics, with the sparse plugin's own analyzer, k1, b and IDF formula (the
bm25s methods lucene, robertson and atire), so scores equal the embedded store's up to float rounding:

    score(c) = sum over query tokens t of idf(df_t) * tf / (tf + k1 * (1 - b + b * len(c) / avglen))

``df_t`` is counted over the chunks the generation sees (not over the filtered ones, as in the embedded
store); the filter applies to which chunks are scored. Dense search orders by inner product (``<#>``) on the
normalised vectors: exactly (a sequential scan) while few chunks can match, else through the HNSW index with
pgvector's iterative scan, which keeps walking the graph until k chunks pass the filter; when it still comes
back short, the exact query answers.
"""

from __future__ import annotations

import struct
from collections import Counter
from collections.abc import Sequence

import numpy as np

from ragkit.errors import ConfigError

IDF = {
    "lucene": "ln(1 + (%(n)s - df.df + 0.5) / (df.df + 0.5))",
    "robertson": "ln(greatest(1, (%(n)s - df.df + 0.5) / (df.df + 0.5)))",
    "atire": "ln(%(n)s::float8 / df.df)",
}
EXACT_BELOW = 5_000  # candidate chunks below which dense search is exact
HNSW_FROM = 10_000  # chunks in the index from which an HNSW index is built


def bm25_params(spec: dict) -> dict:
    """k1, b and the method of a sparse spec the postgres store can score (bm25s's lucene/robertson/atire)."""
    name, method = spec.get("name"), spec.get("method", "lucene")
    if name != "bm25s" or method not in IDF:
        raise ConfigError(f"sparse {name!r} (method {method!r}): the postgres store scores BM25 like bm25s with "
                          f"method {', '.join(IDF)}; set [sparse] name = 'bm25s'")
    return {"k1": float(spec.get("k1", 0.9)), "b": float(spec.get("b", 0.4)), "method": method}


def term_counts(tokens: Sequence[str]) -> tuple[list[str], list[int]]:
    counts = Counter(tokens)
    return list(counts), list(counts.values())


def bm25_sql(schema: str, method: str, visible: str, condition: str) -> str:
    """``visible`` is the generation's condition on the postings (alias ``p``); ``condition`` the filter on the
    chunks (alias ``c``, ``true`` for none)."""
    s = f'"{schema}"'
    keep = "" if condition == "true" else f"JOIN {s}.chunks c ON c.id = scored.id AND ({condition})"
    return f"""
WITH q AS (SELECT * FROM unnest(%(terms)s::text[], %(qtf)s::int[]) AS q(term, qtf)),
hits AS MATERIALIZED (
    SELECT p.id, p.n_tokens, p.tf, q.term, q.qtf FROM q JOIN {s}.postings p ON p.term = q.term WHERE {visible}),
df AS (SELECT term, count(*)::float8 AS df FROM hits GROUP BY term),
scored AS (
    SELECT h.id, sum((h.qtf * ({IDF[method]})::real * h.tf
                      / (h.tf + %(k1)s * (1 - %(b)s + %(b)s * h.n_tokens / %(avglen)s)))::real)::real AS score
    FROM hits h JOIN df USING (term) GROUP BY h.id)
SELECT scored.id, scored.score FROM scored {keep}
WHERE scored.score > 0 ORDER BY scored.score DESC, scored.id LIMIT %(k)s"""


def dense_sql(schema: str, visible: str, condition: str, exact: bool) -> str:
    # "+ 0" hides the distance from the planner, so the HNSW index cannot answer the exact query
    order = "(c.embedding <#> %(q)s::vector) + 0, c.id" if exact else "c.embedding <#> %(q)s::vector"
    return (f'SELECT c.id, -(c.embedding <#> %(q)s::vector) AS score FROM "{schema}".chunks c '
            f"WHERE {visible} AND ({condition}) ORDER BY {order} LIMIT %(k)s")


def vector_text(v: np.ndarray) -> str:
    return "[" + ",".join(repr(float(x)) for x in np.asarray(v, dtype=np.float32).ravel()) + "]"


def vector_binary(v: np.ndarray) -> bytes:
    """pgvector's binary wire format: dimension, an unused int16, big-endian float32s."""
    v = np.asarray(v, dtype=">f4").ravel()
    return struct.pack(">hh", v.size, 0) + v.tobytes()


def parse_vector(text: str) -> np.ndarray:
    return np.array(text.strip("[]").split(","), dtype=np.float32) if text.strip("[]") else \
        np.zeros(0, np.float32)
