"""Dense retrieval with faiss over normalized embeddings (inner product = cosine).

``flat`` (exact, default) or ``hnsw`` (approximate, for large corpora). Filters are applied inside faiss
with an ID selector, so filtered-out chunks are never candidates. A filter that leaves few rows
(``filtered_exact_below``) is searched exactly over those rows: the HNSW graph walk, which must step over the
filtered-out nodes, loses recall when almost every neighbour is filtered out, while scoring a few thousand
vectors directly costs about a millisecond.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ragkit.plugins import Plugin, QueryBundle


class FaissIndex(Plugin):
    stage, name = "dense", "faiss"

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        index: Literal["flat", "hnsw"] = "flat"
        hnsw_m: int = Field(32, ge=4, description="HNSW graph degree")
        ef_construction: int = Field(200, ge=8)
        ef_search: int = Field(128, ge=8)
        filtered_exact_below: int = Field(50_000, ge=0, description="hnsw: a filter keeping fewer rows than "
                                          "this is searched exactly over the kept rows")

    # how a filtered search is carried out does not change what the index stores
    runtime_params = ("filtered_exact_below",)

    def __init__(self, **params) -> None:
        super().__init__(**params)
        self._index = None
        self._dim = 0

    def __len__(self) -> int:
        return 0 if self._index is None else int(self._index.ntotal)

    def build(self, texts: Sequence[str], vectors: np.ndarray | None) -> None:
        import faiss

        if vectors is None:
            raise ValueError("dense index needs vectors")
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self._dim = int(vectors.shape[1]) if vectors.ndim == 2 else 0
        if self.params.index == "hnsw":
            index = faiss.IndexHNSWFlat(self._dim, self.params.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = self.params.ef_construction
        else:
            index = faiss.IndexFlatIP(self._dim)
        if len(vectors):
            index.add(vectors)
        self._index = index

    def save(self, directory: Path) -> None:
        import faiss

        directory.mkdir(parents=True, exist_ok=True)
        faiss.write_index(self._index, str(directory / "faiss.index"))
        (directory / "ragkit-dense.json").write_text(json.dumps({"dim": self._dim, "n": len(self)}))

    def load(self, directory: Path) -> None:
        import faiss

        self._dim = json.loads((directory / "ragkit-dense.json").read_text())["dim"]
        self._index = faiss.read_index(str(directory / "faiss.index"))

    def vectors(self, rows: np.ndarray) -> np.ndarray:
        """Stored vectors for the given rows (for MMR, dedup and other later stages)."""
        return np.stack([self._index.reconstruct(int(r)) for r in rows]) if len(rows) else \
            np.zeros((0, self._dim), np.float32)

    def search(self, query: QueryBundle, k: int, allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        import faiss

        n = len(self)
        if n == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        params = None
        if allowed is not None:
            ids = np.flatnonzero(allowed).astype(np.int64)
            if ids.size == 0:
                return np.zeros(0, np.int64), np.zeros(0, np.float32)
            if self.params.index == "hnsw" and ids.size < self.params.filtered_exact_below:
                return self._exact(query.vector, k, ids)
            selector = faiss.IDSelectorBatch(ids)
            params = (faiss.SearchParametersHNSW(sel=selector, efSearch=self.params.ef_search)
                      if self.params.index == "hnsw" else faiss.SearchParameters(sel=selector))
        elif self.params.index == "hnsw":
            params = faiss.SearchParametersHNSW(efSearch=self.params.ef_search)
        q = np.ascontiguousarray(query.vector.reshape(1, -1), dtype=np.float32)
        scores, rows = self._index.search(q, min(k, n), params=params)
        keep = rows[0] >= 0
        return rows[0][keep].astype(np.int64), scores[0][keep].astype(np.float32)

    def _exact(self, vector: np.ndarray, k: int, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Exact inner-product top-k among the given rows (ties broken by row)."""
        scores = self._index.reconstruct_batch(ids) @ np.asarray(vector, dtype=np.float32).reshape(-1)
        if ids.size > k:
            part = np.argpartition(-scores, k - 1)[:k]
            ids, scores = ids[part], scores[part]
        order = np.lexsort((ids, -scores))
        return ids[order].astype(np.int64), scores[order].astype(np.float32)
