"""RM3-style pseudo-relevance feedback for the BM25 branch.

A first BM25 pass takes the top ``fb_docs`` chunks; each feedback chunk votes for its terms with its term
frequency (normalised by its length) times its share of the first-pass scores (the relevance model, RM1). The
``fb_terms`` strongest terms are interpolated with the original query (``original_weight`` = RM3's lambda) and the
result runs as the BM25 query. The dense branch keeps the original question. BM25 takes no weights, so the
weights become repetitions (the original terms 3 times each; a term with half their weight, once or twice);
bm25s and rank-bm25 both add a repeated query term's score once per repetition.

    [[transforms]]
    name = "prf"
    fb_docs = 5
    fb_terms = 10
    original_weight = 0.5
"""

from __future__ import annotations

import re
from collections import Counter

from pydantic import BaseModel, ConfigDict, Field

from ragkit.errors import ConfigError
from ragkit.plugins import Plugin, QueryVariant

_WORD = re.compile(r"[^\W_]+(?:[-'][^\W_]+)*", re.UNICODE)
ORIGINAL_REPEATS = 3  # how many times each original term is repeated: the resolution of the weights


class PseudoRelevanceFeedback(Plugin):
    stage, name = "transform", "prf"

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        fb_docs: int = Field(5, ge=1, le=100, description="feedback chunks from the first BM25 pass")
        fb_terms: int = Field(10, ge=1, le=100, description="expansion terms added to the query")
        original_weight: float = Field(0.5, gt=0, le=1, description="RM3 lambda: weight of the original query")
        min_term_length: int = Field(3, ge=1, description="shorter expansion terms are ignored")

    def __init__(self, **params) -> None:
        super().__init__(**params)
        self._search = self._analyze = None
        self._word_terms: dict[str, list[str]] = {}  # word -> its analyzed terms (words repeat across queries)

    def bind(self, resources) -> None:
        self._search = resources.sparse_search
        self._analyze = resources.analyze

    def transform(self, query: str, scope=None) -> list[str | QueryVariant]:
        expanded = self.expand(query, scope)
        if expanded == query:
            return [query]
        return [QueryVariant(expanded, ("bm25",), label="prf"), QueryVariant(query, ("dense",))]

    def expand(self, query: str, scope=None) -> str:
        """The BM25 query text after feedback (the query itself when the first pass finds nothing). The first
        pass searches ``scope`` (the query's read view inside its pre-filter) when given, else the whole index."""
        search = scope.sparse_search if scope is not None else self._search
        if search is None or self._analyze is None:
            raise ConfigError("transform 'prf' needs an engine's sparse index (it was not bound to one)")
        p = self.params
        q_terms = self._analyze(query)
        if not q_terms:
            return query
        feedback = [(c, s) for c, s in search(query, p.fb_docs) if s > 0]
        if not feedback:
            return query
        total = sum(s for _, s in feedback)
        relevance: Counter[str] = Counter()
        surface: dict[str, Counter[str]] = {}
        for chunk, score in feedback:
            terms = []
            for word in _WORD.findall(chunk.text):
                word = word.lower()
                if word not in self._word_terms:
                    if len(self._word_terms) > 200_000:
                        self._word_terms.clear()
                    self._word_terms[word] = self._analyze(word)
                for term in self._word_terms[word]:
                    terms.append(term)
                    surface.setdefault(term, Counter())[word] += 1
            if not terms:
                continue
            tf = Counter(terms)
            for term, n in tf.items():
                relevance[term] += (n / len(terms)) * (score / total)
        q_set = set(q_terms)
        expansion = [(t, w) for t, w in relevance.most_common()
                     if t not in q_set and len(t) >= p.min_term_length and not t.isdigit()][:p.fb_terms]
        if not expansion:
            return query
        norm = sum(w for _, w in expansion)
        lam = p.original_weight
        per_original = lam / len(q_terms)  # the original query model: uniform over its terms
        unit = per_original / ORIGINAL_REPEATS
        parts = [query] * ORIGINAL_REPEATS
        for term, w in expansion:
            reps = round((1 - lam) * w / norm / unit)
            if reps > 0:
                word = surface[term].most_common(1)[0][0]
                parts.extend([word] * reps)
        return " ".join(parts)
