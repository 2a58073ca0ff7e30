"""Every registered chunker passes ragkit.testing.ChunkerConformance, with the embedder's real tokenizer."""

from __future__ import annotations

import pytest

from ragkit.plugins import registry
from ragkit.testing import ChunkerConformance

CHUNKERS = registry.names("chunker")


class TestChunkers(ChunkerConformance):
    @pytest.fixture(params=CHUNKERS)
    def chunker_class(self, request):
        return registry.get("chunker", request.param)


def test_the_cap_is_the_models(budget):
    assert budget.max_tokens == 254  # 256 positions minus [CLS] and [SEP]
