"""The store contract (ragkit.testing.StoreConformance) on every store ragkit ships: the embedded one and the
postgres one (on the session's PostgreSQL, see tests/conftest.py)."""

from __future__ import annotations

import pytest

from ragkit.index import open_store
from ragkit.testing import StoreConformance


class TestStores(StoreConformance):
    @pytest.fixture
    def store_factory(self, index_location):
        return lambda: open_store(index_location())
