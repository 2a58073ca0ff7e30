"""Every registered generator passes ragkit.testing.GeneratorConformance. LLM-backed generators run with a
small model and few tokens where one is available; without a model or an API key they must fail in one line."""

from __future__ import annotations

import pytest

from ragkit.plugins import registry
from ragkit.testing import GeneratorConformance

GENERATORS = registry.names("generator")
TEST_PARAMS = {"llama-cpp": {"model": "smollm2", "n_ctx": 2048, "max_tokens": 24, "max_sources": 2}}


class TestGenerators(GeneratorConformance):
    @pytest.fixture(params=GENERATORS)
    def generator(self, request, resources):
        g = registry.create("generator", {"name": request.param, **TEST_PARAMS.get(request.param, {})})
        g.bind(resources)
        return g
