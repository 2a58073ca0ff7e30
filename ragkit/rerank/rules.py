"""Rule-based reranking, declared in TOML: metadata boosts, "prefer the newest version", source priority.

    [[rerankers]]
    name = "rules"
    prefer_newest = true                       # among versions of one page, demote the older ones
    newest_query_not = "\\b20\\d\\d\\b"        # ... but not for a question that names a year
    rules = [{ when = "status=deprecated", boost = 0.5 }, { when = "product in cloud,all", boost = 1.2 }]
    source_priority = ["admin/**", "guides/**"]  # doc_id globs, earlier = more trusted

A rule may also depend on the question (a rule-based query classifier): ``query`` is a regular expression
(case-insensitive) the question must match and ``query_not`` one it must not, e.g. demote the pages of the other
edition when a question names only one::

    { query = "self-hosted|on-prem", query_not = "cloud", when = "product=cloud", boost = 0.5 }

Scores are multiplied, so the reranker keeps the fused order wherever no rule applies. Each hit records
``scores["rules"]`` and ``ranks["rules"]`` for ``--explain``.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from ragkit.filter_expr import Filter, FilterText
from ragkit.ingest.walk import matches
from ragkit.plugins import Plugin
from ragkit.types import Hit


def _regex(value: str | None) -> str | None:
    if value is not None:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a regular expression ({exc})") from None
    return value


Regex = Annotated[str | None, AfterValidator(_regex)]


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    when: FilterText = Field(description="filter expression on chunk metadata, e.g. status=deprecated")
    boost: float = Field(gt=0, description="score multiplier when the expression holds")
    query: Regex = Field(None, description="the rule applies only to questions matching this regular expression "
                                           "(case-insensitive)")
    query_not: Regex = Field(None, description="... and not matching this one")

    def applies_to(self, question: str) -> bool:
        return ((self.query is None or re.search(self.query, question, re.I) is not None)
                and (self.query_not is None or re.search(self.query_not, question, re.I) is None))


class RulesReranker(Plugin):
    stage, name = "reranker", "rules"

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        rules: list[Rule] = Field(default_factory=list)
        prefer_newest: bool = Field(False, description="demote older versions of the same page")
        version_key: str = Field("title", description="metadata field shared by the versions of one page")
        date_field: str = Field("date", description="metadata field holding the version date (ISO text or number)")
        older_factor: float = Field(0.5, ge=0, le=1, description="multiplier for every version but the newest")
        newest_query_not: Regex = Field(None, description="questions matching this regular expression "
                                                          "(case-insensitive) keep older versions where they rank, "
                                                          "e.g. a question that names a year")
        source_priority: list[str] = Field(default_factory=list, description="doc_id globs, most trusted first")
        priority_step: float = Field(0.2, ge=0, description="boost of the first pattern; later ones get less")

    def __init__(self, **params) -> None:
        super().__init__(**params)
        self._rules = [(Filter.parse(r.when), r) for r in self.params.rules]

    def process(self, query: str, hits: list[Hit]) -> list[Hit]:
        factors = [1.0] * len(hits)
        rules = [(flt, rule.boost) for flt, rule in self._rules if rule.applies_to(query)]
        for i, h in enumerate(hits):
            meta = h.chunk.metadata
            for flt, boost in rules:
                if flt.test(meta):
                    factors[i] *= boost
            factors[i] *= self._priority(h.doc_id)
        if self.params.prefer_newest and not self._asks_about_older(query):
            for i in self._older_versions(hits):
                factors[i] *= self.params.older_factor
        for h, f in zip(hits, factors):
            h.score = h.score * f
            h.scores["rules"] = h.score
        ranked = sorted(hits, key=lambda h: -h.score)  # stable: ties keep the fused order
        for rank, h in enumerate(ranked, 1):
            h.ranks["rules"] = rank
        return ranked

    def _asks_about_older(self, query: str) -> bool:
        pattern = self.params.newest_query_not
        return pattern is not None and re.search(pattern, query, re.I) is not None

    def _priority(self, doc_id: str) -> float:
        pats = self.params.source_priority
        for i, pat in enumerate(pats):
            if matches(doc_id, [pat]):
                return 1.0 + self.params.priority_step * (len(pats) - i) / len(pats)
        return 1.0

    def _older_versions(self, hits: list[Hit]) -> set[int]:
        """Indexes of hits whose document is an older version of another document among the hits."""
        key, field = self.params.version_key, self.params.date_field
        newest: dict[str, tuple[tuple, str]] = {}  # version key -> (date, doc_id)
        for h in hits:
            meta = h.chunk.metadata
            if meta.get(key) is None or meta.get(field) is None:
                continue
            group, date = str(meta[key]).strip().lower(), _date_key(meta[field])
            if group not in newest or date > newest[group][0]:
                newest[group] = (date, h.doc_id)
        older = set()
        for i, h in enumerate(hits):
            meta = h.chunk.metadata
            if meta.get(key) is None or meta.get(field) is None:
                continue
            date, doc = newest[str(meta[key]).strip().lower()]
            if h.doc_id != doc and _date_key(meta[field]) < date:
                older.add(i)
        return older


def _date_key(value) -> tuple:
    """Numbers compare as numbers, everything else as text (ISO dates order correctly as text)."""
    try:
        return (0, float(value), "")
    except (TypeError, ValueError):
        return (1, 0.0, str(value))
