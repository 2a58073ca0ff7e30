"""Score normalisation shared by the fusion plugins and the rerankers that blend their scores."""

from __future__ import annotations

import numpy as np


def minmax(scores: np.ndarray) -> np.ndarray:
    """Scores scaled to [0, 1] over the list (all ones when they are all equal)."""
    s = np.asarray(scores, dtype=np.float64)
    lo, hi = s.min(), s.max()
    return (s - lo) / (hi - lo) if hi > lo else np.ones_like(s)
