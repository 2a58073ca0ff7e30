"""Extractive answers (default, no LLM): the sentences of the top chunks most similar to the question,
each followed by a ``[n]`` citation of the source it came from. Deterministic and offline."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ragkit.generate.citations import citation_for
from ragkit.generate.replies import NOT_FOUND
from ragkit.plugins import Plugin, Resources, warm_embedder
from ragkit.text import question_similarity, split_sentences
from ragkit.types import Answer, Hit


class ExtractiveAnswerer(Plugin):
    stage, name = "generator", "extractive"

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        max_sentences: int = Field(3, ge=1, le=20)
        sources: int = Field(5, ge=1, le=20, description="top hits whose sentences are candidates")
        min_similarity: float = Field(0.25, ge=-1, le=1, description="below this, answer 'not found'")
        min_words: int = Field(4, ge=1, description="shorter sentences (headings, labels) are not candidates")

    def bind(self, resources: Resources) -> None:
        self._resources = resources
        self._embed = resources.embed_cached

    def warm_up(self) -> None:
        warm_embedder(getattr(self, "_resources", None))

    def answer(self, query: str, hits: list[Hit]) -> Answer:
        """Status ``no_context`` without hits, ``abstained`` when no sentence reaches ``min_similarity``;
        ``packed`` holds the sources whose sentences were candidates."""
        read = list(range(1, min(len(hits), self.params.sources) + 1))
        picked = self._pick(query, hits)
        if not picked:
            return Answer(query=query, text=NOT_FOUND, citations=[], sources=hits, packed=read,
                          status="abstained" if hits else "no_context")
        parts, used = [], {}
        for hit_idx, sentence in picked:
            n = hit_idx + 1
            used.setdefault(n, citation_for(n, hits[hit_idx]))
            parts.append(f"{sentence} [{n}]")
        return Answer(query=query, text=" ".join(parts), citations=[used[n] for n in sorted(used)], sources=hits,
                      packed=read)

    def stream(self, query: str, hits: list[Hit]) -> Iterator[str | Answer]:
        answer = self.answer(query, hits)
        yield answer.text
        yield answer

    def _pick(self, query: str, hits: list[Hit]) -> list[tuple[int, str]]:
        groups = [[s for s in split_sentences(hit.chunk.text) if len(s.split()) >= self.params.min_words]
                  for hit in hits[: self.params.sources]]
        cands = [(hi, si, s) for hi, g in enumerate(groups) for si, s in enumerate(g)]
        if not cands:
            return []
        sims = np.concatenate(question_similarity(self._embed, query, groups))
        # a small prior for higher-ranked sources breaks near-ties toward what retrieval trusted most
        prior = np.array([0.02 * (self.params.sources - c[0]) / self.params.sources for c in cands])
        order = np.argsort(-(sims + prior), kind="stable")
        chosen, seen = [], set()
        for i in order:
            if sims[i] < self.params.min_similarity or len(chosen) >= self.params.max_sentences:
                break
            key = cands[i][2].lower()
            if key in seen:
                continue
            seen.add(key)
            chosen.append(i)
        chosen.sort(key=lambda i: (cands[i][0], cands[i][1]))  # read in source order
        return [(cands[i][0], cands[i][2]) for i in chosen]
