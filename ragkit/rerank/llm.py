"""Pointwise LLM reranking: score = P("yes") to "does this passage answer the question?".

    [[rerankers]]
    name = "llm"
    model = "qwen0.5b"       # a local GGUF (offline name or path); or use_generator = true for the generator's LLM
    depth = 10
    blend = 0.3              # optional: 0.3 * P(yes) + 0.7 * fused score (min-max scaled), as the cross-encoder

Each candidate is one prompt whose beginning — instruction, then the question — is identical for every passage
of a query, so llama.cpp keeps that prefix's KV cache and evaluates only the passage and the closing line. The
score is the probability of "yes" against "no" as the reply's first token (``LLM.yes_probability``); a reply that
is neither (NaN) scores 0 and the hit records ``scores["llm_unparsed"] = 1``. With ``blend`` the final score
interpolates P(yes) with the previous stage's score (both min-max scaled over the head; P(yes) kept as
``scores["llm:model"]``), so a weak judge refines the fused order instead of replacing it. Meant for small
depths (5-20): a 0.5B model scores a few pairs per second on 2 cores.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ragkit.errors import ConfigError
from ragkit.llm.resolve import LazyLLM
from ragkit.plugins import Plugin
from ragkit.rerank._common import apply_scores, blend_head
from ragkit.types import Hit

SYSTEM = ("You judge search results. Answer with one word, yes or no: does the passage contain the answer "
          "to the question?")
USER = "Question: {query}\n\nPassage: {passage}\n\nDoes the passage answer the question? Answer yes or no."


class LLMReranker(Plugin):
    stage, name = "reranker", "llm"

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        model: str = Field("qwen0.5b", description="local GGUF: offline name (smollm2, qwen0.5b, qwen1.5b) or path")
        use_generator: bool = Field(False, description="score with the generator's LLM instead of its own model")
        llm: str | dict[str, Any] | None = Field(None, description="any LLM spec (make_llm); overrides 'model'")
        depth: int = Field(10, ge=1, le=200, description="fused candidates that are rescored")
        top_n: int | None = Field(None, ge=1, description="keep only this many after reranking (default: all)")
        blend: float | None = Field(None, ge=0.0, le=1.0,
                                    description="final = blend * P(yes) + (1 - blend) * previous score, both min-max "
                                                "scaled over the rescored head (None: P(yes) alone)")
        max_passage_chars: int = Field(1500, ge=100, description="passages are cut to this many characters")
        n_ctx: int = Field(2048, ge=256, description="context of the reranker's own model")
        n_threads: int = Field(2, ge=1)

    def __init__(self, **params) -> None:
        super().__init__(**params)
        p = self.params
        if p.use_generator and p.llm:
            raise ConfigError("reranker 'llm': set either 'use_generator' or 'llm', not both")
        spec: Any = None if p.use_generator else (p.llm or {"backend": "llama-cpp", "model": p.model,
                                                             "n_ctx": p.n_ctx, "n_threads": p.n_threads})
        self._llm = LazyLLM("reranker 'llm'", spec)

    def bind(self, resources) -> None:
        self._llm.bind(resources)

    def warm_up(self) -> None:
        llm = self._llm.get()
        if hasattr(llm, "warm_up"):
            llm.warm_up()

    def messages(self, query: str, passage: str) -> list[dict[str, str]]:
        return [{"role": "system", "content": SYSTEM},
                {"role": "user", "content": USER.format(query=query.strip(),
                                                        passage=passage[:self.params.max_passage_chars].strip())}]

    def score(self, query: str, passages: list[str]) -> list[float]:
        llm = self._llm.get()
        return [llm.yes_probability(self.messages(query, p)) for p in passages]

    def process(self, query: str, hits: list[Hit]) -> list[Hit]:
        if not hits:
            return hits
        head = hits[:self.params.depth]
        raw = self.score(query, [h.chunk.text for h in head])
        scores = []
        for h, s in zip(head, raw):
            if math.isnan(s):
                h.scores["llm_unparsed"] = 1.0
                s = 0.0
            scores.append(s)
        return apply_scores(self.name, hits, blend_head(self.name, head, scores, self.params.blend), self.params.top_n)
