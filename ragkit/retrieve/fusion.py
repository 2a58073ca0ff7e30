"""Fusion of per-branch rankings. Each method is a pure function over (rows, scores) arrays; the plugins
only carry parameters.

- rrf:    score(d) = sum_b w_b / (k + rank_b(d)), rank from 1 (Cormack et al., 2009). Ignores raw scores.
- minmax: each branch's scores scaled to [0, 1] over its candidates, then a weighted sum.
- zscore: each branch's scores standardised (mean 0, sd 1) over its candidates, then a weighted sum.
A document missing from a branch gets that branch's floor (0 for rrf/minmax, the branch minimum for zscore).
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ragkit.plugins import Plugin
from ragkit.retrieve.scores import minmax

Ranking = tuple[np.ndarray, np.ndarray]


def _union(rankings: dict[str, Ranking]) -> np.ndarray:
    rows = [r for r, _ in rankings.values() if len(r)]
    return np.unique(np.concatenate(rows)) if rows else np.zeros(0, np.int64)


def _sorted(rows: np.ndarray, scores: np.ndarray, k: int) -> Ranking:
    order = np.lexsort((rows, -scores))[:k]  # ties: lower row first, deterministic
    return rows[order], scores[order].astype(np.float32)


def rrf(rankings: dict[str, Ranking], k: int, rrf_k: float = 60.0, weights: dict[str, float] | None = None) -> Ranking:
    rows = _union(rankings)
    pos = {int(r): i for i, r in enumerate(rows)}
    total = np.zeros(len(rows), np.float64)
    for name, (r, _) in rankings.items():
        w = (weights or {}).get(name, 1.0)
        for rank, row in enumerate(r, start=1):
            total[pos[int(row)]] += w / (rrf_k + rank)
    return _sorted(rows, total, k)


def _normalized_sum(rankings: dict[str, Ranking], k: int, weights: dict[str, float] | None, how: str) -> Ranking:
    rows = _union(rankings)
    pos = {int(r): i for i, r in enumerate(rows)}
    total = np.zeros(len(rows), np.float64)
    for name, (r, s) in rankings.items():
        if not len(r):
            continue
        s = s.astype(np.float64)
        if how == "minmax":
            norm = minmax(s)
            floor = 0.0
        else:
            sd = s.std()
            norm = (s - s.mean()) / sd if sd > 0 else np.zeros_like(s)
            floor = float(norm.min())
        contrib = np.full(len(rows), floor)
        contrib[[pos[int(x)] for x in r]] = norm
        total += (weights or {}).get(name, 1.0) * contrib
    return _sorted(rows, total, k)


class _Weighted(BaseModel):
    model_config = ConfigDict(extra="forbid")
    weights: dict[str, float] = Field(default_factory=dict, description="per-branch weight, default 1")


class RRF(Plugin):
    stage, name = "fusion", "rrf"

    class Params(_Weighted):
        k: float = Field(60.0, gt=0, description="rank constant: larger flattens the contribution of top ranks")

    def fuse(self, rankings: dict[str, Ranking], k: int) -> Ranking:
        return rrf(rankings, k, self.params.k, self.params.weights)


class MinMaxFusion(Plugin):
    stage, name = "fusion", "minmax"

    Params = _Weighted

    def fuse(self, rankings: dict[str, Ranking], k: int) -> Ranking:
        return _normalized_sum(rankings, k, self.params.weights, "minmax")


class ZScoreFusion(Plugin):
    stage, name = "fusion", "zscore"

    Params = _Weighted

    def fuse(self, rankings: dict[str, Ranking], k: int) -> Ranking:
        return _normalized_sum(rankings, k, self.params.weights, "zscore")
