"""Multi-query: a language model writes ``n`` reformulations of the question; each runs through the retrieval
branches and every ranking is merged by the configured fusion (RRF by default), the original question included.

    [[transforms]]
    name = "multi-query"
    n = 3
    llm = "local:qwen0.5b"   # optional; default: the generator's LLM (an error names what to configure)

Off unless listed; the model is resolved and called only when a query is served.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ragkit.llm.resolve import LazyLLM
from ragkit.plugins import Plugin, QueryVariant

PROMPT = ("Rewrite the search question below as {n} different search queries that could find the answer in "
          "product documentation. Use other words and synonyms. Write one query per line, with no numbering "
          "and no other text.\n\nQuestion: {query}")
_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)]|query\s*\d*:)\s*", re.IGNORECASE)


def parse_lines(text: str, query: str, n: int) -> list[str]:
    """The distinct, non-empty reformulations in a reply (bullets and numbering stripped), at most ``n``."""
    seen = {query.strip().lower()}
    out = []
    for line in text.splitlines():
        line = _BULLET.sub("", line).strip().strip('"').strip()
        if len(line) < 3 or line.lower() in seen or line.endswith(":"):
            continue
        seen.add(line.lower())
        out.append(line)
        if len(out) == n:
            break
    return out


class MultiQuery(Plugin):
    stage, name = "transform", "multi-query"

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        n: int = Field(3, ge=1, le=10, description="reformulations the LLM writes")
        llm: str | dict[str, Any] | None = Field(None, description="LLM spec; default: the generator's LLM")
        max_tokens: int = Field(120, ge=16)
        temperature: float = Field(0.0, ge=0)
        cache_size: int = Field(256, ge=0, description="questions whose reformulations are kept in memory")

    def __init__(self, **params) -> None:
        super().__init__(**params)
        self._llm = LazyLLM("transform 'multi-query'", self.params.llm)
        self._cache: OrderedDict[str, list[str]] = OrderedDict()

    def bind(self, resources) -> None:
        self._llm.bind(resources)

    def reformulate(self, query: str) -> list[str]:
        if query in self._cache:
            return self._cache[query]
        p = self.params
        reply = self._llm.get().chat([{"role": "user", "content": PROMPT.format(n=p.n, query=query)}],
                                     max_tokens=p.max_tokens, temperature=p.temperature)
        out = parse_lines(reply.text, query, p.n)
        if p.cache_size:
            self._cache[query] = out
            while len(self._cache) > p.cache_size:
                self._cache.popitem(last=False)
        return out

    def transform(self, query: str) -> list[str | QueryVariant]:
        return [query] + [QueryVariant(q, label=f"mq{i}") for i, q in enumerate(self.reformulate(query), 1)]
