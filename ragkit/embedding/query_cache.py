"""Query vectors memoised in memory, shared by engines that ask the same questions (an ablation runs each query
through many pipelines). A memoised vector still *charges* the time computing it took, so latencies measured
through the cache stay honest: ``take_charge()`` returns the seconds owed since it was last called."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np


class QueryVectorCache:
    def __init__(self) -> None:
        self._vectors: dict[tuple[str, str], tuple[np.ndarray, float]] = {}
        self._lock = threading.Lock()
        self._charge = 0.0
        self.computed = 0  # vectors actually computed (not served from memory)

    def get(self, model_id: str, text: str, compute: Callable[[str], np.ndarray]) -> np.ndarray:
        key = (model_id, text)
        with self._lock:
            found = self._vectors.get(key)
            if found is not None:
                self._charge += found[1]
                return found[0]
        t = time.perf_counter()
        vec = compute(text)
        with self._lock:
            self._vectors[key] = (vec, time.perf_counter() - t)
            self.computed += 1
        return vec

    def take_charge(self) -> float:
        """Seconds of embedding time served from memory since the last call (and reset)."""
        with self._lock:
            charge, self._charge = self._charge, 0.0
        return charge

    def __len__(self) -> int:
        return len(self._vectors)
