"""Duplicate removal: exact (normalised text) and near-duplicate (embedding cosine >= threshold).
The higher-ranked copy is kept. Embeddings come from the engine's cache (no re-embedding of indexed text)."""

from __future__ import annotations

import re

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ragkit.plugins import Plugin, Resources, warm_embedder
from ragkit.types import Hit


def _norm(text: str) -> str:
    return re.sub(r"\W+", " ", text.lower()).strip()


class Dedup(Plugin):
    stage, name = "filter", "dedup"

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        threshold: float = Field(0.95, gt=0, le=1, description="cosine at or above which two chunks are duplicates")
        near: bool = Field(True, description="also remove near-duplicates (needs embeddings), not only exact ones")

    def bind(self, resources: Resources) -> None:
        self._resources = resources
        self._embed = resources.embed_cached

    def warm_up(self) -> None:
        if self.params.near:
            warm_embedder(getattr(self, "_resources", None))

    def process(self, query: str, hits: list[Hit]) -> list[Hit]:
        seen, unique = set(), []
        for h in hits:
            key = _norm(h.chunk.text)
            if key not in seen:
                seen.add(key)
                unique.append(h)
        if not self.params.near or len(unique) < 2:
            return unique
        vecs = self._embed([h.chunk.text for h in unique])
        kept: list[int] = []
        for i in range(len(unique)):
            if not kept or float(np.max(vecs[kept] @ vecs[i])) < self.params.threshold:
                kept.append(i)
        return [unique[i] for i in kept]
