"""``ChunkerConformance``: chunk ids, metadata, order, coverage, segments, and the token cap measured with a real
tokenizer.

Provide ``chunker_class``; the token budget is ragkit's default embedder's unless ``token_budget`` is overridden.
A chunker that documents ``capped = False`` (one chunk per document) skips the cap tests.
"""

from __future__ import annotations

from typing import Any

import pytest

from ragkit.plugins import Chunker, Plugin, TokenBudget
from ragkit.testing.resources import default_embedder
from ragkit.types import Document, Segment

LONG = "\n\n".join(
    f"## Section {i}\n\n" + " ".join(
        f"Sentence {i}.{j} explains how the Beacon agent ships logs, metrics and traces to region eu-{j}."
        for j in range(40))
    for i in range(6))


def long_document() -> Document:
    return Document(doc_id="guide.md", text=LONG, title="Guide", metadata={"product": "cloud"})


class ChunkerConformance:
    @pytest.fixture
    def chunker_class(self) -> type[Plugin]:
        raise NotImplementedError("subclass ChunkerConformance and define a `chunker_class` fixture")

    @pytest.fixture
    def token_budget(self) -> TokenBudget:
        return default_embedder().token_budget()

    @staticmethod
    def capped(cls: Any) -> bool:
        return getattr(cls, "capped", True)

    def test_chunk_shape(self, chunker_class, token_budget):
        chunker = chunker_class()
        assert isinstance(chunker, Chunker)
        chunks = chunker.split(long_document(), token_budget)
        assert chunks
        assert [c.position for c in chunks] == list(range(len(chunks)))
        assert len({c.chunk_id for c in chunks}) == len(chunks)
        for c in chunks:
            assert c.doc_id == "guide.md" and c.chunk_id.startswith("guide.md#")
            assert c.metadata["product"] == "cloud" and c.metadata["title"] == "Guide"
            assert c.text.strip() == c.text and c.text

    def test_token_cap(self, chunker_class, token_budget):
        if not self.capped(chunker_class):
            pytest.skip(f"{chunker_class.name} documents that it does not cap (one chunk per document)")
        for size in (32, 200, 100000):  # includes a size above the model's max: must still be capped
            params = {"chunk_size": size} if "chunk_size" in chunker_class.Params.model_fields else {}
            chunks = chunker_class(**params).split(long_document(), token_budget)
            counts = [token_budget.count(c.text) for c in chunks]
            assert max(counts) <= token_budget.max_tokens, (size, max(counts))

    def test_content_is_covered(self, chunker_class, token_budget):
        chunks = chunker_class().split(long_document(), token_budget)
        joined = " ".join(c.text for c in chunks)
        for i in range(6):
            for j in (0, 17, 39):
                assert f"Sentence {i}.{j} " in joined

    def test_segments_are_not_crossed(self, chunker_class, token_budget):
        if not self.capped(chunker_class):
            pytest.skip("one chunk per document by design")
        doc = Document(doc_id="m.pdf", text="", title="Manual", segments=[
            Segment("Page one talks about installing the collector. " * 30, {"page": 1}),
            Segment("Page two talks about upgrading the server. " * 30, {"page": 2})])
        for c in chunker_class().split(doc, token_budget):
            assert c.metadata["page"] in (1, 2)
            other = "upgrading" if c.metadata["page"] == 1 else "installing"
            assert other not in c.text
