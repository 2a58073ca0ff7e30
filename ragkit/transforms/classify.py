"""Rule-based query classification: regex or keyword rules route a question to part of the corpus.

    [[transforms]]
    name = "classify"
    routes = [
      { pattern = "self[- ]?hosted|on[- ]prem|docker|helm", filter = "product in selfhosted,all" },
      { keywords = ["invoice", "refund"], filter = "product=all", mode = "boost" },
    ]

``mode = "filter"`` (default) retrieves only from the matching part (a pre-filter in both branches, on top of the
query's own filter); ``mode = "boost"`` keeps the unfiltered retrieval and adds a second, filtered one, so the
fusion gives the routed part an extra vote without hiding the rest. The first matching route wins unless
``all_matches = true``. A question no rule matches is left alone.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ragkit.filter_expr import FilterText
from ragkit.plugins import Plugin, QueryVariant


class Route(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pattern: str = Field("", description="regular expression searched in the question (case-insensitive)")
    keywords: list[str] = Field(default_factory=list, description="any of these words or phrases")
    filter: FilterText = Field(description="metadata filter expression for the routed part, e.g. product=cloud")
    mode: Literal["filter", "boost"] = "filter"
    name: str = ""

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, v: str) -> str:
        try:
            re.compile(v)
        except re.error as exc:
            raise ValueError(f"bad regular expression {v!r}: {exc}") from None
        return v

    @model_validator(mode="after")
    def _has_condition(self) -> "Route":
        if not self.pattern and not self.keywords:
            raise ValueError("a route needs a 'pattern' or 'keywords'")
        return self


class Classify(Plugin):
    stage, name = "transform", "classify"

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        routes: list[Route] = Field(default_factory=list)
        all_matches: bool = Field(False, description="apply every matching route, not only the first")

    def __init__(self, **params) -> None:
        super().__init__(**params)
        self._compiled = []
        for r in self.params.routes:
            parts = [r.pattern] if r.pattern else []
            parts += [r"\b" + re.escape(k) + r"\b" for k in r.keywords]
            self._compiled.append((re.compile("|".join(parts), re.IGNORECASE), r))

    def routes_for(self, query: str) -> list[Route]:
        hits = [r for rx, r in self._compiled if rx.search(query)]
        return hits if self.params.all_matches else hits[:1]

    def transform(self, query: str, scope=None) -> list[str | QueryVariant]:
        routes = self.routes_for(query)
        if not routes:
            return [query]
        hard = tuple(r.filter for r in routes if r.mode == "filter")
        soft = [r for r in routes if r.mode == "boost"]
        out: list[str | QueryVariant] = [QueryVariant(query, label="classify", filter=hard)]
        out += [QueryVariant(query, label=r.name or f"route{i}", filter=hard + (r.filter,))
                for i, r in enumerate(soft, 1)]
        return out
