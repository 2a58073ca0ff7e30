"""``IndexPartConformance``: a sparse or dense index part builds, saves, loads and searches, and applies a row
mask as a pre-filter.

Provide ``part_factory``: a function returning a new, empty part. Texts are embedded with ragkit's default
embedder (the ``embedder`` fixture).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from ragkit.plugins import Embedder, IndexPart, QueryBundle
from ragkit.testing.resources import default_embedder

TEXTS = [
    "rotate the api key in settings",
    "log retention is thirty days",
    "the api key for ingest agents",
    "backups of the data directory",
    "api key api key api key rotation",
]
QUERY = "api key rotation"


class IndexPartConformance:
    @pytest.fixture
    def part_factory(self) -> Callable[[], IndexPart]:
        raise NotImplementedError("subclass IndexPartConformance and define a `part_factory` fixture")

    @pytest.fixture
    def embedder(self) -> Embedder:
        return default_embedder()

    @pytest.fixture
    def built(self, part_factory, embedder) -> IndexPart:
        part = part_factory()
        part.build(TEXTS, embedder.embed(TEXTS))
        return part

    def test_build_save_load_search(self, built, part_factory, embedder, tmp_path):
        assert isinstance(built, IndexPart) and len(built) == len(TEXTS)
        rows, scores = built.search(QueryBundle(QUERY, embedder.embed_query), 3, None)
        assert len(rows) == 3 and len(set(rows.tolist())) == 3
        assert np.all(np.diff(scores) <= 1e-6)  # best first
        assert set(rows[:2].tolist()) <= {0, 2, 4}
        built.save(tmp_path / "p")
        again = part_factory()
        again.load(tmp_path / "p")
        rows2, scores2 = again.search(QueryBundle(QUERY, embedder.embed_query), 3, None)
        assert rows2.tolist() == rows.tolist()
        np.testing.assert_allclose(scores2, scores, rtol=1e-5)

    def test_mask_is_a_prefilter(self, built, embedder):
        allowed = np.array([False, True, False, True, False])
        rows, _ = built.search(QueryBundle(QUERY, embedder.embed_query), 5, allowed)
        assert set(rows.tolist()) <= {1, 3}
        rows, scores = built.search(QueryBundle(QUERY, embedder.embed_query), 5, np.zeros(5, dtype=bool))
        assert len(rows) == 0 and len(scores) == 0

    def test_empty_index(self, part_factory, embedder, tmp_path):
        part = part_factory()
        part.build([], np.zeros((0, embedder.dim), np.float32))
        part.save(tmp_path / "e")
        part = part_factory()
        part.load(tmp_path / "e")
        rows, _ = part.search(QueryBundle("anything", embedder.embed_query), 5, None)
        assert len(rows) == 0
