"""Keyword rules: every hit must contain all of ``must_include`` and none of ``must_exclude``
(case-insensitive whole words or phrases)."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field

from ragkit.plugins import Plugin
from ragkit.types import Hit


def _pattern(term: str) -> re.Pattern[str]:
    return re.compile(r"(?<!\w)" + re.escape(term.lower()) + r"(?!\w)")


class KeywordFilter(Plugin):
    stage, name = "filter", "keywords"

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        must_include: list[str] = Field(default_factory=list)
        must_exclude: list[str] = Field(default_factory=list)

    def __init__(self, **params) -> None:
        super().__init__(**params)
        self._inc = [_pattern(t) for t in self.params.must_include]
        self._exc = [_pattern(t) for t in self.params.must_exclude]

    def process(self, query: str, hits: list[Hit]) -> list[Hit]:
        out = []
        for h in hits:
            text = h.chunk.text.lower()
            if all(p.search(text) for p in self._inc) and not any(p.search(text) for p in self._exc):
                out.append(h)
        return out
