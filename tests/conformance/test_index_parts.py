"""Every sparse and dense index part passes ragkit.testing.IndexPartConformance; parameter variants that change
the data structure (faiss flat / hnsw) are parts of their own."""

from __future__ import annotations

import pytest

from ragkit.plugins import registry
from ragkit.testing import IndexPartConformance

PARTS = [("sparse", n) for n in registry.names("sparse")] + [("dense", n) for n in registry.names("dense")]
VARIANTS = {("dense", "faiss"): [{"index": "flat"}, {"index": "hnsw", "hnsw_m": 8}]}
PARTS = [(s, n, p) for s, n in PARTS for p in VARIANTS.get((s, n), [{}])]
IDS = [f"{s}.{n}" + "".join(f"-{v}" for v in p.values()) for s, n, p in PARTS]


class TestIndexParts(IndexPartConformance):
    @pytest.fixture(params=PARTS, ids=IDS)
    def part_factory(self, request):
        stage, name, params = request.param
        return lambda: registry.create(stage, {"name": name, **params})
