"""Fusion methods against hand-computed values."""

import numpy as np
import pytest

from ragkit.retrieve.fusion import rrf
from ragkit.plugins import registry


def R(rows, scores):
    return np.array(rows, np.int64), np.array(scores, np.float32)


RANKINGS = {"bm25": R([10, 20, 30], [12.0, 8.0, 2.0]), "dense": R([30, 10, 40], [0.9, 0.8, 0.1])}


def test_rrf_matches_formula():
    rows, scores = rrf(RANKINGS, 10, rrf_k=60)
    expected = {10: 1 / 61 + 1 / 62, 20: 1 / 62, 30: 1 / 63 + 1 / 61, 40: 1 / 63}
    assert rows.tolist() == [10, 30, 20, 40]
    np.testing.assert_allclose(scores, [expected[r] for r in rows.tolist()], rtol=1e-6)


def test_rrf_k_changes_the_order_when_it_should():
    # with a tiny k the top rank dominates: 30 (ranks 3 and 1) vs 10 (ranks 1 and 2)
    rows, _ = rrf(RANKINGS, 10, rrf_k=0.01)
    assert rows[0] in (10, 30)
    w_rows, _ = rrf(RANKINGS, 10, rrf_k=60, weights={"dense": 3.0})
    assert w_rows[0] == 30  # weighting dense favours its top document


def test_minmax():
    fusion = registry.create("fusion", "minmax")
    rows, scores = fusion.fuse(RANKINGS, 10)
    # bm25 normalized: 10->1, 20->0.6, 30->0 ; dense: 30->1, 10->0.875, 40->0
    expected = {10: 1.875, 20: 0.6, 30: 1.0, 40: 0.0}
    assert rows.tolist() == [10, 30, 20, 40]
    np.testing.assert_allclose(scores, [expected[r] for r in rows.tolist()], rtol=1e-6)


def test_zscore_and_weights():
    fusion = registry.create("fusion", {"name": "zscore", "weights": {"bm25": 0.0}})
    rows, _ = fusion.fuse(RANKINGS, 10)
    assert rows[0] == 30  # bm25 switched off: dense order decides
    rows, _ = registry.create("fusion", "zscore").fuse(RANKINGS, 2)
    assert len(rows) == 2


@pytest.mark.parametrize("name", registry.names("fusion"))
def test_fusion_conformance(name):
    f = registry.create("fusion", name)
    rows, scores = f.fuse(RANKINGS, 3)
    assert len(rows) == 3 and len(set(rows.tolist())) == 3 and np.all(np.diff(scores) <= 1e-9)
    rows, scores = f.fuse({"bm25": R([], []), "dense": R([5], [0.3])}, 3)
    assert rows.tolist() == [5]
    rows, _ = f.fuse({"bm25": R([], []), "dense": R([], [])}, 3)
    assert rows.tolist() == []
