"""BM25 with bm25s: a sparse-matrix index saved as plain .npy + JSON files and loaded with mmap.

Filtering is a pre-filter: the score vector is masked before top-k, so a filtered-out chunk can never
come back through this branch.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from ragkit.index.analysis import Bm25Params
from ragkit.index.topk import top_k
from ragkit.plugins import Plugin, QueryBundle


class Bm25sIndex(Plugin):
    stage, name = "sparse", "bm25s"

    class Params(Bm25Params):
        method: Literal["lucene", "robertson", "atire", "bm25l", "bm25+"] = "lucene"

    def __init__(self, **params) -> None:
        super().__init__(**params)
        self._bm25 = None
        self._n = 0
        self.analyzer = self.params.analyzer()

    def __len__(self) -> int:
        return self._n

    def build(self, texts: Sequence[str], vectors: np.ndarray | None = None) -> None:
        import bm25s
        from bm25s.tokenization import Tokenized

        vocab: dict[str, int] = {}
        ids = [[vocab.setdefault(t, len(vocab)) for t in self.analyzer(text)] for text in texts]
        vocab.setdefault("", len(vocab))  # bm25s' placeholder for empty documents
        self._bm25 = bm25s.BM25(k1=self.params.k1, b=self.params.b, method=self.params.method)
        if texts:
            self._bm25.index(Tokenized(ids=ids, vocab=vocab), show_progress=False)
        self._n = len(texts)

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        if self._n:
            self._bm25.save(str(directory), show_progress=False)
        (directory / "ragkit-bm25.json").write_text(json.dumps({"n": self._n}))

    def load(self, directory: Path) -> None:
        import bm25s

        self._n = json.loads((directory / "ragkit-bm25.json").read_text())["n"]
        if self._n:
            self._bm25 = bm25s.BM25.load(str(directory), mmap=True, show_progress=False)

    def search(self, query: QueryBundle, k: int, allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        if not self._n:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        vocab = self._bm25.vocab_dict
        tokens = [t for t in self.analyzer(query.text) if t in vocab]
        if not tokens:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        scores = np.asarray(self._bm25.get_scores(tokens), dtype=np.float32)
        return top_k(scores, k, allowed)
