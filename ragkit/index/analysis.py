"""Text analysis for lexical retrieval: lower-case word tokens, English stop words, Snowball stemming."""

from __future__ import annotations

import re
from functools import lru_cache

_WORD = re.compile(r"\w+", re.UNICODE)


@lru_cache(maxsize=8)
def _stopwords(lang: str | None) -> frozenset[str]:
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
        self._stop = _stopwords(stopwords)
        self._stem = _stemmer(stemmer)

    def __call__(self, text: str) -> list[str]:
        toks = [t for t in _WORD.findall(text.lower()) if t not in self._stop]
        return self._stem.stemWords(toks) if self._stem else toks
