"""Maximal marginal relevance (Carbonell & Goldstein, 1998): re-order hits to trade relevance to the query
for novelty against what is already selected. ``lambda_`` = 1 is pure relevance, 0 pure diversity."""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ragkit.plugins import Plugin, Resources, warm_embedder
from ragkit.types import Hit


class MMR(Plugin):
    stage, name = "filter", "mmr"

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        lambda_: float = Field(0.7, ge=0, le=1, description="weight of relevance against novelty")
        top_n: int | None = Field(None, ge=1, description="how many to select (default: all, re-ordered)")

    def bind(self, resources: Resources) -> None:
        self._resources = resources
        self._embed = resources.embed_cached

    def warm_up(self) -> None:
        warm_embedder(getattr(self, "_resources", None))

    def process(self, query: str, hits: list[Hit]) -> list[Hit]:
        if len(hits) < 2:
            return hits
        vecs = self._embed([query] + [h.chunk.text for h in hits])
        q, docs = vecs[0], vecs[1:]
        relevance = docs @ q
        sim = docs @ docs.T
        lam, n = self.params.lambda_, min(self.params.top_n or len(hits), len(hits))
        chosen: list[int] = []
        rest = list(range(len(hits)))
        while rest and len(chosen) < n:
            if chosen:
                redundancy = sim[np.ix_(rest, chosen)].max(axis=1)
            else:
                redundancy = np.zeros(len(rest))
            scores = lam * relevance[rest] - (1 - lam) * redundancy
            best = rest[int(np.argmax(scores))]
            chosen.append(best)
            rest.remove(best)
        out = [hits[i] for i in chosen]
        for rank, h in enumerate(out, 1):
            h.ranks["mmr"] = rank
        return out
