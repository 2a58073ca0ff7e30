"""Every chunker: ids, metadata, order, coverage, and the embedder's token cap on real tokenization."""

from __future__ import annotations

import pytest

from ragkit.plugins import registry
from ragkit.types import Document, Segment

CHUNKERS = registry.names("chunker")

LONG = "\n\n".join(
    f"## Section {i}\n\n" + " ".join(
        f"Sentence {i}.{j} explains how the Beacon agent ships logs, metrics and traces to region eu-{j}."
        for j in range(40))
    for i in range(6))


def _doc(**kw):
    return Document(doc_id="guide.md", text=LONG, title="Guide", metadata={"product": "cloud"}, **kw)


@pytest.mark.parametrize("name", CHUNKERS)
def test_chunk_shape(name, budget):
    chunks = registry.create("chunker", name).split(_doc(), budget)
    assert chunks
    assert [c.position for c in chunks] == list(range(len(chunks)))
    assert len({c.chunk_id for c in chunks}) == len(chunks)
    for c in chunks:
        assert c.doc_id == "guide.md" and c.chunk_id.startswith("guide.md#")
        assert c.metadata["product"] == "cloud" and c.metadata["title"] == "Guide"
        assert c.text.strip() == c.text and c.text


@pytest.mark.parametrize("name", CHUNKERS)
def test_token_cap_with_the_embedders_tokenizer(name, budget):
    cls = registry.get("chunker", name)
    if not getattr(cls, "capped", True):
        pytest.skip(f"{name} documents that it does not cap (one chunk per document)")
    for size in (32, 200, 100000):  # includes a size above the model's max: must still be capped
        params = {"chunk_size": size} if "chunk_size" in cls.Params.model_fields else {}
        chunks = cls(**params).split(_doc(), budget)
        counts = [budget.count(c.text) for c in chunks]
        assert max(counts) <= budget.max_tokens, (size, max(counts))
    # the cap is the model's: 256 positions minus [CLS] and [SEP]
    assert budget.max_tokens == 254


@pytest.mark.parametrize("name", CHUNKERS)
def test_content_is_covered(name, budget):
    chunks = registry.create("chunker", name).split(_doc(), budget)
    joined = " ".join(c.text for c in chunks)
    for i in range(6):
        for j in (0, 17, 39):
            assert f"Sentence {i}.{j} " in joined


@pytest.mark.parametrize("name", CHUNKERS)
def test_segments_are_not_crossed(name, budget):
    cls = registry.get("chunker", name)
    if not getattr(cls, "capped", True):
        pytest.skip("one chunk per document by design")
    doc = Document(doc_id="m.pdf", text="", title="Manual", segments=[
        Segment("Page one talks about installing the collector. " * 30, {"page": 1}),
        Segment("Page two talks about upgrading the server. " * 30, {"page": 2})])
    chunks = cls().split(doc, budget)
    for c in chunks:
        assert c.metadata["page"] in (1, 2)
        other = "upgrading" if c.metadata["page"] == 1 else "installing"
        assert other not in c.text
