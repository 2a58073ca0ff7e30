"""HyDE (hypothetical document embeddings): a language model writes a short passage that would answer the
question, and the dense branch embeds that passage; BM25 keeps the question. With ``keep_query = true`` (the
default) the dense branch also runs the question and the fusion merges both rankings.

    [[transforms]]
    name = "hyde"
    llm = "local:qwen0.5b"   # optional; default: the generator's LLM

Off unless listed; the model is resolved and called only when a query is served. Measure before keeping it:
the DevDay talk reports it did not help its case (see benchmarks/RESULTS.md for the bundled eval set).
"""

from __future__ import annotations

from pydantic import Field

from ragkit.plugins import QueryVariant
from ragkit.transforms._llm import LLMTransform, LLMTransformParams

PROMPT = ("Write a short passage from a product documentation page that answers the question below. "
          "Three sentences at most; state the answer directly, no preamble.\n\nQuestion: {query}")


class HyDE(LLMTransform):
    name = "hyde"

    class Params(LLMTransformParams):
        keep_query: bool = Field(True, description="the dense branch also runs the question itself")
        prepend_query: bool = Field(True, description="embed 'question + passage' rather than the passage alone")

    def prompt(self, query: str) -> str:
        return PROMPT.format(query=query)

    def passage(self, query: str) -> str:
        return self.reply(query)

    def transform(self, query: str, scope=None) -> list[str | QueryVariant]:
        passage = self.passage(query)
        if not passage:
            return [query]
        doc = f"{query}\n{passage}" if self.params.prepend_query else passage
        first = QueryVariant(query) if self.params.keep_query else QueryVariant(query, ("bm25",))
        return [first, QueryVariant(doc, ("dense",), label="hyde")]
