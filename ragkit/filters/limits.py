"""Score threshold and max chunks per document."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from ragkit.plugins import Plugin
from ragkit.types import Hit


class ScoreThreshold(Plugin):
    """Drop hits whose score at a named stage is below a threshold (the final score by default)."""

    stage, name = "filter", "threshold"

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        min_score: float = Field(0.0, description="hits scoring below this are dropped")
        at: str = Field("final", description="stage whose score is compared: final, bm25, dense, rrf, rules, ...")

    def process(self, query: str, hits: list[Hit]) -> list[Hit]:
        at, floor = self.params.at, self.params.min_score
        return [h for h in hits if (h.score if at == "final" else h.scores.get(at, float("-inf"))) >= floor]


class MaxPerDocument(Plugin):
    """Keep at most N chunks of any one document (the best ones), so one long document cannot crowd out
    the others."""

    stage, name = "filter", "max-per-doc"

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        max_chunks: int = Field(2, ge=1)

    def process(self, query: str, hits: list[Hit]) -> list[Hit]:
        seen: dict[str, int] = {}
        out = []
        for h in hits:
            seen[h.doc_id] = seen.get(h.doc_id, 0) + 1
            if seen[h.doc_id] <= self.params.max_chunks:
                out.append(h)
        return out
