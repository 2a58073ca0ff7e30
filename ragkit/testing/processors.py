"""``HitProcessorConformance``: a reranker or a post-retrieval filter returns hits it was given (a subset, each
at most once), copes with none, and when its defaults need what is missing (an API key, a hub model) says so in
one line naming itself.

Provide ``processor``: an instance, bound to its resources (``resources`` is a fixture too: ragkit's default
embedder and no index)::

    class TestMyReranker(HitProcessorConformance):
        @pytest.fixture
        def processor(self, resources):
            p = MyReranker()
            p.bind(resources)
            return p
"""

from __future__ import annotations

import pytest

from ragkit.errors import RagkitError
from ragkit.plugins import HitProcessor, Resources
from ragkit.testing.resources import default_resources
from ragkit.types import Chunk, Hit


def hit(doc_id: str, text: str, score: float, position: int = 0) -> Hit:
    return Hit(Chunk(f"{doc_id}#{position}", doc_id, text, position, {"title": doc_id}), score, {"rrf": score})


def sample_hits() -> list[Hit]:
    return [hit("keys.md", "Rotate keys in settings.", 3.0), hit("retention.md", "Logs are kept 30 days.", 2.0),
            hit("keys.md", "The old key keeps working for a day.", 1.0, 1)]


class HitProcessorConformance:
    @pytest.fixture
    def resources(self) -> Resources:
        return default_resources()

    @pytest.fixture
    def processor(self, resources) -> HitProcessor:
        raise NotImplementedError("subclass HitProcessorConformance and define a `processor` fixture")

    def test_no_hits_in_no_hits_out(self, processor):
        assert isinstance(processor, HitProcessor)
        assert processor.process("rotate keys", []) == []  # no model, key or network needed

    def test_returns_a_subset_of_its_hits(self, processor):
        hits = sample_hits()
        try:
            out = processor.process("rotate keys", list(hits))
        except RagkitError as exc:  # defaults that need what is not here (an API key, a hub model)
            assert "\n" not in str(exc) and processor.name in str(exc), str(exc)
            return
        assert all(isinstance(o, Hit) for o in out)
        assert all(any(h is o for h in hits) for o in out), "a processor returns the hits it was given"
        assert len({id(o) for o in out}) == len(out), "each hit at most once"
