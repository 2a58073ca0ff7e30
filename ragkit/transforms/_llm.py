"""What the LLM-backed query transforms (``hyde``, ``multi-query``) share: the model is resolved lazily (the
transform's own ``llm`` spec, else the generator's; an error names what to configure), called only when a
query is served, and each question's reply is kept in a bounded in-memory cache, so retrieving the same question
again (an ablation, a retried request) makes no second call."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ragkit.llm.resolve import LazyLLM
from ragkit.lru import LRU
from ragkit.plugins import Plugin


class LLMTransformParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    llm: str | dict[str, Any] | None = Field(None, description="LLM spec; default: the generator's LLM")
    max_tokens: int = Field(120, ge=16)
    temperature: float = Field(0.0, ge=0)
    cache_size: int = Field(256, ge=0, description="questions whose model reply is kept in memory")


class LLMTransform(Plugin):
    """Subclasses set ``name``, a ``Params`` deriving from :class:`LLMTransformParams`, and ``prompt(query)``."""

    stage = "transform"
    Params = LLMTransformParams

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._llm = LazyLLM(f"transform {self.name!r}", self.params.llm)
        self._cache: LRU[str, str] = LRU(self.params.cache_size)

    def bind(self, resources: Any) -> None:
        self._llm.bind(resources)

    def prompt(self, query: str) -> str:
        raise NotImplementedError

    def reply(self, query: str) -> str:
        """The model's (stripped) reply to ``prompt(query)``, from the cache when this question was seen."""
        cached = self._cache.get(query)
        if cached is not None:
            return cached
        p = self.params
        text = self._llm.get().chat([{"role": "user", "content": self.prompt(query)}],
                                    max_tokens=p.max_tokens, temperature=p.temperature).text.strip()
        self._cache.put(query, text)
        return text
