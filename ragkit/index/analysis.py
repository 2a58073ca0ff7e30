"""Text analysis for lexical retrieval: lower-case word tokens, English stop words, Snowball stemming."""

from __future__ import annotations

import re
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field

_WORD = re.compile(r"\w+", re.UNICODE)


@lru_cache(maxsize=8)
def stop_words(lang: str | None) -> frozenset[str]:
    """The stop words of lexical retrieval: "en" (bm25s' English list) or none."""
    if not lang:
        return frozenset()
    from bm25s.stopwords import STOPWORDS_EN

    if lang != "en":
        raise ValueError(f"stopwords {lang!r}: only 'en' or none")
    return frozenset(STOPWORDS_EN)


@lru_cache(maxsize=8)
def _stemmer(lang: str | None):
    if not lang:
        return None
    import Stemmer

    return Stemmer.Stemmer(lang)


class Analyzer:
    def __init__(self, stemmer: str | None = "english", stopwords: str | None = "en") -> None:
        self._stop = stop_words(stopwords)
        self._stem = _stemmer(stemmer)

    def __call__(self, text: str) -> list[str]:
        toks = [t for t in _WORD.findall(text.lower()) if t not in self._stop]
        return self._stem.stemWords(toks) if self._stem else toks


class Bm25Params(BaseModel):
    """Parameters every BM25 plugin shares: the saturation/length constants and the analysis."""

    model_config = ConfigDict(extra="forbid")
    k1: float = Field(0.9, gt=0, description="term-frequency saturation")
    b: float = Field(0.4, ge=0, le=1, description="document-length normalisation")
    stemmer: str | None = Field("english", description="Snowball language, or empty for none")
    stopwords: str | None = Field("en", description="'en' or empty for none")

    def analyzer(self) -> Analyzer:
        return Analyzer(self.stemmer or None, self.stopwords or None)
