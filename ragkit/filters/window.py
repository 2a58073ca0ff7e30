"""Context-window expansion: replace each hit's chunk by the chunk plus its neighbours in the document
(``size`` on each side, nearest first) as long as the merged text fits ``max_tokens`` of the embedder's
tokenizer. Hits of the same document whose windows overlap are merged into the higher-ranked one."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from ragkit.plugins import Plugin, Resources, warm_embedder
from ragkit.types import Chunk, Hit


class ContextWindow(Plugin):
    stage, name = "filter", "window"

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        size: int = Field(1, ge=1, le=10, description="neighbouring chunks to add on each side")
        max_tokens: int = Field(512, ge=16, description="token budget of the merged text")

    def bind(self, resources: Resources) -> None:
        self._resources = resources  # looked up per call: the engine may switch to the index's own embedder

    def warm_up(self) -> None:
        warm_embedder(getattr(self, "_resources", None))  # its token budget is the embedder's tokenizer

    def process(self, query: str, hits: list[Hit]) -> list[Hit]:
        if not hits:
            return hits
        budget = self._resources.embedder.token_budget()
        out: list[Hit] = []
        covered: dict[str, set[int]] = {}
        for h in hits:
            pos = h.chunk.position
            if pos in covered.get(h.doc_id, set()):
                continue  # already inside the window of a higher-ranked hit
            size = self.params.size
            found = self._resources.neighbours(h.doc_id, range(max(0, pos - size), pos + size + 1))
            found[pos] = h.chunk
            window = [pos]
            used = budget.count(h.chunk.text)
            for step in range(1, size + 1):  # nearest neighbours first, alternating sides
                for p in (pos - step, pos + step):
                    if p in found and p not in covered.get(h.doc_id, set()):
                        cost = budget.count(found[p].text)
                        if used + cost <= self.params.max_tokens:
                            window.append(p)
                            used += cost
            window.sort()
            covered.setdefault(h.doc_id, set()).update(window)
            if len(window) > 1:
                text = "\n".join(found[p].text for p in window)
                meta = {**h.chunk.metadata, "window": [window[0], window[-1]]}
                h.chunk = Chunk(h.chunk.chunk_id, h.doc_id, text, pos, meta)
            out.append(h)
        return out
