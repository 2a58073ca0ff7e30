"""Every registered reranker and filter passes ragkit.testing.HitProcessorConformance with its defaults."""

from __future__ import annotations

import pytest

from ragkit.plugins import registry
from ragkit.testing import HitProcessorConformance

PROCESSORS = [("filter", n) for n in registry.names("filter")] + [("reranker", n) for n in registry.names("reranker")]


class TestHitProcessors(HitProcessorConformance):
    @pytest.fixture(params=PROCESSORS, ids=[f"{s}.{n}" for s, n in PROCESSORS])
    def processor(self, request, resources):
        p = registry.create(*request.param)
        p.bind(resources)
        return p
