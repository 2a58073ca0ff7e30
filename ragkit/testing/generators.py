"""``GeneratorConformance``: a generator answers with an :class:`Answer` whose citations point at the sources it
returns, answers an empty retrieval without a model call, and streams text deltas then one final Answer. When its
configuration needs what is missing (an API key, a model file), it raises one ``RagkitError`` line instead.

Provide ``generator``: an instance, bound to its resources (the ``resources`` fixture: ragkit's default embedder)
and configured as it should run in tests (a small model, few tokens).
"""

from __future__ import annotations

import re
from typing import get_args

import pytest

from ragkit.errors import RagkitError
from ragkit.plugins import Generator, Resources
from ragkit.testing.resources import default_resources
from ragkit.generate.replies import NOT_FOUND
from ragkit.types import Answer, Chunk, Event, Hit, Status

QUESTION = "How long are logs retained on the Enterprise plan?"


def sample_hits() -> list[Hit]:
    texts = [("retention.md", "Log retention on the cloud edition is 30 days on the Starter plan and 400 days on "
                              "the Enterprise plan. Metrics are kept for 13 months."),
             ("keys.md", "Open Settings and press Rotate next to the key. The previous key keeps working for 24 "
                         "hours so that running agents can switch over.")]
    return [Hit(Chunk(f"{d}#0", d, t, 0, {"title": d.split(".")[0].title(), "source": f"/docs/{d}"}),
                1.0 / (i + 1), {"rrf": 1.0 / (61 + i), "dense": 0.6 - 0.1 * i})
            for i, (d, t) in enumerate(texts)]


class GeneratorConformance:
    @pytest.fixture
    def resources(self) -> Resources:
        return default_resources()

    @pytest.fixture
    def generator(self, resources) -> Generator:
        raise NotImplementedError("subclass GeneratorConformance and define a `generator` fixture")

    @staticmethod
    def check(answer: Answer, query: str, hits: list[Hit]) -> None:
        """An answer's citations agree with its sources, and its sources are hits it was given."""
        assert isinstance(answer, Answer) and answer.query == query
        assert isinstance(answer.text, str) and answer.text.strip()
        given = {h.chunk_id for h in hits}
        assert all(s.chunk_id in given for s in answer.sources), "sources are hits the generator was given"
        for c in answer.citations:
            assert 1 <= c.n <= len(answer.sources), f"citation [{c.n}] has no source"
            assert (answer.sources[c.n - 1].chunk_id, answer.sources[c.n - 1].doc_id) == (c.chunk_id, c.doc_id)
        cited = {int(n) for n in re.findall(r"\[(\d+)\]", answer.text)}
        assert cited <= {c.n for c in answer.citations}, "every [n] in the text is a citation"
        assert answer.status in get_args(Status), f"unknown status {answer.status!r}"
        assert all(isinstance(e, Event) and e.kind and isinstance(e.text, str) for e in answer.events)
        assert set(answer.packed) <= set(range(1, len(hits) + 1)), "packed names [n] of the given hits"
        if answer.status == "answered":
            assert answer.text.strip() != NOT_FOUND
        if not hits:
            assert answer.status == "no_context"

    def test_no_hits_needs_no_model(self, generator):
        assert isinstance(generator, Generator)
        answer = generator.answer(QUESTION, [])
        self.check(answer, QUESTION, [])
        assert answer.citations == [] and answer.sources == []

    def test_answer_cites_its_sources(self, generator):
        hits = sample_hits()
        try:
            answer = generator.answer(QUESTION, hits)
        except RagkitError as exc:  # a configuration that needs what is not here (an API key, a model file)
            assert str(exc) and "\n" not in str(exc)
            return
        self.check(answer, QUESTION, hits)

    @pytest.mark.parametrize("with_hits", [False, True], ids=["no-hits", "hits"])
    def test_stream_yields_text_then_one_answer(self, generator, with_hits):
        hits = sample_hits() if with_hits else []
        try:
            items = list(generator.stream(QUESTION, hits))
        except RagkitError as exc:
            assert with_hits and str(exc) and "\n" not in str(exc)
            return
        assert items and isinstance(items[-1], Answer)
        assert all(isinstance(i, str) for i in items[:-1]), "text deltas, then the final Answer"
        self.check(items[-1], QUESTION, hits)
