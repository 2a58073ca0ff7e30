"""The store contract (ragkit.testing.StoreConformance) on every store ragkit ships: the embedded one."""

from __future__ import annotations

import pytest

from ragkit.index.embedded import EmbeddedStore
from ragkit.testing import StoreConformance


class TestEmbeddedStore(StoreConformance):
    @pytest.fixture
    def store_factory(self, tmp_path):
        made = iter(range(1000))
        return lambda: EmbeddedStore(tmp_path / f"index-{next(made)}")
