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

from pydantic import Field

from ragkit.plugins import QueryVariant
from ragkit.transforms._llm import LLMTransform, LLMTransformParams

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


class MultiQuery(LLMTransform):
    name = "multi-query"

    class Params(LLMTransformParams):
        n: int = Field(3, ge=1, le=10, description="reformulations the LLM writes")

    def prompt(self, query: str) -> str:
        return PROMPT.format(n=self.params.n, query=query)

    def reformulate(self, query: str) -> list[str]:
        return parse_lines(self.reply(query), query, self.params.n)

    def transform(self, query: str, scope=None) -> list[str | QueryVariant]:
        return [query] + [QueryVariant(q, label=f"mq{i}") for i, q in enumerate(self.reformulate(query), 1)]
