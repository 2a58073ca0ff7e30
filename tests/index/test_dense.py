"""The faiss dense index part: filtered search over the HNSW graph and its exact path for selective filters."""

from __future__ import annotations

import numpy as np
import pytest

from ragkit.index.settings import canonical
from ragkit.plugins import QueryBundle, registry


def _clustered(n: int, dim: int = 32, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(20, dim))
    v = centres[rng.integers(20, size=n)] + 0.3 * rng.normal(size=(n, dim))
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def _exact(vectors: np.ndarray, q: np.ndarray, k: int, allowed: np.ndarray) -> set[int]:
    s = np.where(allowed, vectors @ q, -np.inf)
    return set(np.argsort(-s)[:k].tolist())


@pytest.fixture(scope="module")
def data():
    vectors = _clustered(3000)
    allowed = np.zeros(len(vectors), bool)
    allowed[::100] = True  # a filter that keeps 1% of the rows
    queries = _clustered(20, seed=1)
    return vectors, allowed, queries


def _index(vectors: np.ndarray, **params):
    idx = registry.create("dense", {"name": "faiss", "index": "hnsw", "hnsw_m": 4, "ef_construction": 8,
                                    "ef_search": 8, **params})
    idx.build([""] * len(vectors), vectors)
    return idx


def test_a_selective_filter_on_hnsw_gives_the_exact_neighbours_among_the_kept_rows(data):
    vectors, allowed, queries = data
    idx = _index(vectors)
    for q in queries:
        rows, scores = idx.search(QueryBundle("q", lambda _t, q=q: q), 10, allowed)
        assert len(rows) == 10 and allowed[rows].all()
        assert set(rows.tolist()) == _exact(vectors, q, 10, allowed)
        assert np.all(np.diff(scores) <= 0)
        assert np.allclose(scores, vectors[rows] @ q, atol=1e-5)


def test_the_graph_walk_is_used_when_the_filter_keeps_many_rows(data):
    vectors, allowed, queries = data
    exact_path = _index(vectors)
    graph_path = _index(vectors, filtered_exact_below=0)  # never exact: a sparse graph with a tiny ef misses some
    found = {"exact": 0, "graph": 0}
    for q in queries:
        want = _exact(vectors, q, 10, allowed)
        b = QueryBundle("q", lambda _t, q=q: q)
        found["exact"] += len(want & set(exact_path.search(b, 10, allowed)[0].tolist()))
        rows = graph_path.search(b, 10, allowed)[0]
        assert allowed[rows].all()
        found["graph"] += len(want & set(rows.tolist()))
    assert found["exact"] == 10 * len(queries)
    assert found["graph"] < found["exact"]


def test_the_exact_threshold_is_not_part_of_the_index_stamp():
    a = canonical("dense", {"name": "faiss", "index": "hnsw"})
    b = canonical("dense", {"name": "faiss", "index": "hnsw", "filtered_exact_below": 10})
    assert a == b and "filtered_exact_below" not in a
