"""BM25 with rank-bm25 (Okapi), the reference pure-Python implementation. Slower than bm25s; kept for
comparison. Persists the analysed corpus as JSON and rebuilds its statistics on load."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from pydantic import Field

from ragkit.index.analysis import Bm25Params
from ragkit.index.topk import top_k
from ragkit.plugins import Plugin, QueryBundle


class RankBm25Index(Plugin):
    stage, name = "sparse", "rank-bm25"

    class Params(Bm25Params):
        epsilon: float = Field(0.25, ge=0, description="floor for negative IDF, as a fraction of mean IDF")

    def __init__(self, **params) -> None:
        super().__init__(**params)
        self._tokens: list[list[str]] = []
        self._bm25 = None
        self.analyzer = self.params.analyzer()

    def __len__(self) -> int:
        return len(self._tokens)

    def _fit(self) -> None:
        from rank_bm25 import BM25Okapi

        p = self.params
        self._bm25 = BM25Okapi([t or [""] for t in self._tokens], k1=p.k1, b=p.b, epsilon=p.epsilon) \
            if self._tokens else None

    def build(self, texts: Sequence[str], vectors: np.ndarray | None = None) -> None:
        self._tokens = [self.analyzer(t) for t in texts]
        self._fit()

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "tokens.json").write_text(json.dumps(self._tokens))

    def load(self, directory: Path) -> None:
        self._tokens = json.loads((directory / "tokens.json").read_text())
        self._fit()

    def search(self, query: QueryBundle, k: int, allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        tokens = self.analyzer(query.text)
        if self._bm25 is None or not tokens:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        return top_k(np.asarray(self._bm25.get_scores(tokens), dtype=np.float32), k, allowed)
