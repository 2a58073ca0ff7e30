"""Every sparse and dense index part: build, save, load, search, and pre-filtering by row mask."""

from __future__ import annotations

import numpy as np
import pytest

from ragkit.plugins import QueryBundle, registry

PARTS = [("sparse", n) for n in registry.names("sparse")] + [("dense", n) for n in registry.names("dense")]
# parameter variants that change the data structure are conformance-tested as parts of their own
VARIANTS = {("dense", "faiss"): [{"index": "flat"}, {"index": "hnsw", "hnsw_m": 8}]}
PARTS = [(s, n, p) for s, n in PARTS for p in VARIANTS.get((s, n), [{}])]
IDS = [f"{s}.{n}" + "".join(f"-{v}" for v in p.values()) for s, n, p in PARTS]
TEXTS = [
    "rotate the api key in settings",
    "log retention is thirty days",
    "the api key for ingest agents",
    "backups of the data directory",
    "api key api key api key rotation",
]


@pytest.fixture(scope="module")
def vectors(embedder):
    return embedder.embed(TEXTS)


def _bundle(embedder, text):
    return QueryBundle(text, embedder.embed_query)


@pytest.mark.parametrize("stage,name,params", PARTS, ids=IDS)
def test_build_save_load_search(stage, name, params, tmp_path, embedder, vectors):
    part = registry.create(stage, {"name": name, **params})
    part.build(TEXTS, vectors)
    assert len(part) == len(TEXTS)
    rows, scores = part.search(_bundle(embedder, "api key rotation"), 3, None)
    assert len(rows) == 3 and len(set(rows.tolist())) == 3
    assert np.all(np.diff(scores) <= 1e-6)  # best first
    assert set(rows[:2].tolist()) <= {0, 2, 4}
    part.save(tmp_path / "p")
    again = registry.create(stage, {"name": name, **params})
    again.load(tmp_path / "p")
    rows2, scores2 = again.search(_bundle(embedder, "api key rotation"), 3, None)
    assert rows2.tolist() == rows.tolist()
    np.testing.assert_allclose(scores2, scores, rtol=1e-5)


@pytest.mark.parametrize("stage,name,params", PARTS, ids=IDS)
def test_mask_is_a_prefilter(stage, name, params, embedder, vectors):
    part = registry.create(stage, {"name": name, **params})
    part.build(TEXTS, vectors)
    allowed = np.array([False, True, False, True, False])
    rows, _ = part.search(_bundle(embedder, "api key rotation"), 5, allowed)
    assert set(rows.tolist()) <= {1, 3}
    none = np.zeros(5, dtype=bool)
    rows, scores = part.search(_bundle(embedder, "api key rotation"), 5, none)
    assert len(rows) == 0 and len(scores) == 0


@pytest.mark.parametrize("stage,name,params", PARTS, ids=IDS)
def test_empty_index(stage, name, params, tmp_path, embedder):
    part = registry.create(stage, {"name": name, **params})
    part.build([], np.zeros((0, embedder.dim), np.float32))
    part.save(tmp_path / "e")
    part = registry.create(stage, {"name": name, **params})
    part.load(tmp_path / "e")
    rows, _ = part.search(_bundle(embedder, "anything"), 5, None)
    assert len(rows) == 0
