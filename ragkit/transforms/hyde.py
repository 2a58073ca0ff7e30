"""HyDE (hypothetical document embeddings): a language model writes a short passage that would answer the
question, and the dense branch embeds that passage; BM25 keeps the question. With ``keep_query = true`` (the
default) the dense branch also runs the question and the fusion merges both rankings.

    [[transforms]]
    name = "hyde"
    llm = "local:qwen0.5b"   # optional; default: the generator's LLM

Off unless listed; the model is resolved and called only when a query is served. Measure before keeping it:
the DevDay talk reports it did not help its case (see the README's numbers for the bundled eval set).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ragkit.llm.resolve import LazyLLM
from ragkit.plugins import Plugin, QueryVariant

PROMPT = ("Write a short passage from a product documentation page that answers the question below. "
          "Three sentences at most; state the answer directly, no preamble.\n\nQuestion: {query}")


class HyDE(Plugin):
    stage, name = "transform", "hyde"

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        llm: str | dict[str, Any] | None = Field(None, description="LLM spec; default: the generator's LLM")
        keep_query: bool = Field(True, description="the dense branch also runs the question itself")
        prepend_query: bool = Field(True, description="embed 'question + passage' rather than the passage alone")
        max_tokens: int = Field(120, ge=16)
        temperature: float = Field(0.0, ge=0)
        cache_size: int = Field(256, ge=0)

    def __init__(self, **params) -> None:
        super().__init__(**params)
        self._llm = LazyLLM("transform 'hyde'", self.params.llm)
        self._cache: OrderedDict[str, str] = OrderedDict()

    def bind(self, resources) -> None:
        self._llm.bind(resources)

    def passage(self, query: str) -> str:
        if query in self._cache:
            return self._cache[query]
        p = self.params
        reply = self._llm.get().chat([{"role": "user", "content": PROMPT.format(query=query)}],
                                     max_tokens=p.max_tokens, temperature=p.temperature)
        text = reply.text.strip()
        if p.cache_size:
            self._cache[query] = text
            while len(self._cache) > p.cache_size:
                self._cache.popitem(last=False)
        return text

    def transform(self, query: str) -> list[str | QueryVariant]:
        passage = self.passage(query)
        if not passage:
            return [query]
        doc = f"{query}\n{passage}" if self.params.prepend_query else passage
        first = QueryVariant(query) if self.params.keep_query else QueryVariant(query, ("bm25",))
        return [first, QueryVariant(doc, ("dense",), label="hyde")]
