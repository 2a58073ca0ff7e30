"""Each post-retrieval filter: a case it must remove and one it must keep (real embeddings for dedup/MMR)."""

from __future__ import annotations

import pytest

from ragkit.plugins import Resources, registry
from ragkit.types import Chunk, Hit


def hit(doc_id, text, score, pos=0, **scores):
    return Hit(Chunk(f"{doc_id}#{pos}", doc_id, text, pos, {}), score, dict(scores))


@pytest.fixture(scope="module")
def resources(embedder):
    return Resources(embedder=embedder, embed_cached=embedder.embed, neighbours=lambda doc_id, positions: {})


def make(name, resources, **params):
    f = registry.create("filter", {"name": name, **params})
    f.bind(resources)
    return f


def test_threshold(resources):
    hits = [hit("a", "x", 0.9, bm25=7.0), hit("b", "y", 0.2, bm25=1.0)]
    assert [h.doc_id for h in make("threshold", resources, min_score=0.5).process("q", hits)] == ["a"]
    assert [h.doc_id for h in make("threshold", resources, min_score=2, at="bm25").process("q", hits)] == ["a"]
    assert len(make("threshold", resources, min_score=0.1).process("q", hits)) == 2


def test_max_per_doc(resources):
    hits = [hit("a", "1", 3, 0), hit("a", "2", 2, 1), hit("b", "3", 1.5), hit("a", "4", 1, 2)]
    out = make("max-per-doc", resources, max_chunks=2).process("q", hits)
    assert [(h.doc_id, h.chunk.position) for h in out] == [("a", 0), ("a", 1), ("b", 0)]


def test_keywords(resources):
    hits = [hit("a", "Rotate the API key now.", 2), hit("b", "Rotate the log file.", 1),
            hit("c", "API keys and the license key.", 0.5)]
    f = make("keywords", resources, must_include=["api key"], must_exclude=["license"])
    assert [h.doc_id for h in f.process("q", hits)] == ["a"]  # "api keys" is not the phrase "api key"


def test_dedup_exact_and_near(resources):
    hits = [hit("a", "Press Rotate in Settings to rotate an API key.", 3),
            hit("b", "press rotate in settings, to rotate an api key", 2),  # same words: exact after normalising
            hit("c", "To rotate an API key, press Rotate in the Settings page.", 1.5),  # near duplicate
            hit("d", "Logs are retained for thirty days on the starter plan.", 1)]
    out = make("dedup", resources, threshold=0.9).process("q", hits)
    assert [h.doc_id for h in out] == ["a", "d"]
    exact_only = make("dedup", resources, near=False).process("q", hits)
    assert [h.doc_id for h in exact_only] == ["a", "c", "d"]


def test_mmr_promotes_novelty(resources):
    hits = [hit("a", "Rotate an API key from the Settings page.", 3),
            hit("b", "From the Settings page you can rotate an API key.", 2.9),
            hit("c", "A rotated API key keeps working for 24 hours.", 2.5)]
    diverse = make("mmr", resources, lambda_=0.5).process("how do I rotate an API key", hits)
    assert [h.doc_id for h in diverse][:2] in (["a", "c"], ["b", "c"])
    relevance_only = make("mmr", resources, lambda_=1.0).process("how do I rotate an API key", hits)
    assert {h.doc_id for h in relevance_only[:2]} == {"a", "b"}


def test_context_window_expands_merges_and_respects_the_budget(tmp_path):
    from ragkit import Engine

    docs = tmp_path / "docs"
    docs.mkdir()
    words = ["amber", "basalt", "cobalt", "dune", "ember", "fjord", "garnet", "harbor", "indigo", "jasper",
             "kelp", "lagoon"]
    (docs / "steps.md").write_text(" ".join(f"Then run the {w} procedure." for w in words))
    (docs / "other.md").write_text("Backups run nightly and keep seven snapshots.")
    base = {"chunker": {"name": "token", "chunk_size": 12, "chunk_overlap": 0}}
    eng = Engine.open(tmp_path / "idx", base)
    eng.ingest([docs])
    chunks = [c for c in eng.reader().iter_chunks() if c.doc_id == "steps.md"]
    assert len(chunks) >= 5
    target = next(c for c in chunks if "fjord" in c.text)
    assert 0 < target.position < len(chunks) - 1

    wide = Engine.open(tmp_path / "idx", {**base, "filters": [{"name": "window", "size": 1, "max_tokens": 200}]})
    hits = wide.retrieve("fjord", k=3, mode="bm25").hits
    top = hits[0]
    assert top.chunk.position == target.position
    assert top.chunk.metadata["window"] == [target.position - 1, target.position + 1]
    for p in (target.position - 1, target.position, target.position + 1):
        assert chunks[p].text in top.chunk.text
    # a lower-ranked hit inside that window is merged away, not returned twice
    both = wide.retrieve("fjord ember", k=5, mode="bm25").hits
    steps = [h for h in both if h.doc_id == "steps.md"]
    windows = [tuple(h.chunk.metadata.get("window", (h.chunk.position, h.chunk.position))) for h in steps]
    covered = [p for lo, hi in windows for p in range(lo, hi + 1)]
    assert len(covered) == len(set(covered))

    tight = Engine.open(tmp_path / "idx", {**base, "filters": [{"name": "window", "size": 2, "max_tokens": 16}]})
    top = tight.retrieve("fjord", k=1, mode="bm25").hits[0]
    assert top.chunk.text == target.text and "window" not in top.chunk.metadata  # no neighbour fits 16 tokens
