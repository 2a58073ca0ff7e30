"""Top-k selection over a dense score vector, shared by the sparse index parts."""

from __future__ import annotations

import numpy as np


def top_k(scores: np.ndarray, k: int, allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Rows with the k highest scores (> 0), restricted to ``allowed``; ties broken by row for determinism."""
    if allowed is not None:
        scores = np.where(allowed, scores, -np.inf)
    candidates = np.flatnonzero(scores > 0)
    if candidates.size > k:
        part = np.argpartition(-scores[candidates], k - 1)[:k]
        candidates = candidates[part]
    order = np.lexsort((candidates, -scores[candidates]))
    rows = candidates[order]
    return rows.astype(np.int64), scores[rows].astype(np.float32)
