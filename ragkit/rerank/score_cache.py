"""Raw reranker scores memoised in memory, shared by the pipelines of one evaluation (an ablation or a tune search
runs the same questions through many rerank depths and blends): a (question, passage) pair is scored by the model
once per reranker identity, whatever depth, blend or first stage asked for it again.

A reranker takes part by having a ``score(pairs)`` method, a ``scorer`` hook that ``process`` calls instead of it
when set, and a ``score_identity()`` naming everything the model's raw score of a pair depends on (the model, its
maximum length, the device; not depth, blend or top_n: those are applied to the scores after this cache).

Latency stays honest the way :class:`ragkit.embedding.query_cache.QueryVectorCache` keeps it: when pairs are scored,
the model call's measured time is shared equally among them and stored with each score; a pair served from memory
*charges* that time, and ``take_charges()`` returns the seconds owed per stage since it was last called. A trial
whose pairs all come from memory is therefore timed as if it had scored its full depth itself.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Sequence

Pairs = list[tuple[str, str]]
Scorer = Callable[[Pairs], Sequence[float]]


def _key(identity: str, query: str, passage: str) -> bytes:
    h = hashlib.blake2b(digest_size=16)
    for part in (identity, query, passage):
        data = part.encode("utf-8", "surrogatepass")
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.digest()


class RerankScoreCache:
    def __init__(self) -> None:
        self._scores: dict[bytes, tuple[float, float]] = {}  # key -> (raw score, seconds it took to compute)
        self._lock = threading.Lock()
        self._charges: dict[str, float] = {}
        self.scored = 0  # pairs the model actually scored
        self.reused = 0  # pairs served from memory

    def scorer(self, identity: str, score: Scorer, stage: str) -> Scorer:
        """A drop-in for ``score``: pairs seen before under ``identity`` come from memory (their cost charged to
        ``stage``, the timing key of the reranker), the others go to ``score`` in one call, in their order."""

        def cached(pairs: Pairs) -> list[float]:
            keys = [_key(identity, q, p) for q, p in pairs]
            out: list[float | None] = [None] * len(pairs)
            todo: dict[bytes, tuple[str, str]] = {}  # unseen keys, first occurrence order (duplicates scored once)
            missing = 0
            with self._lock:
                charge = 0.0
                for i, k in enumerate(keys):
                    found = self._scores.get(k)
                    if found is not None:
                        out[i] = found[0]
                        charge += found[1]
                        self.reused += 1
                    else:
                        todo.setdefault(k, pairs[i])
                        missing += 1
                if charge:
                    self._charges[stage] = self._charges.get(stage, 0.0) + charge
            if todo:
                t = time.perf_counter()
                fresh = [float(x) for x in score(list(todo.values()))]
                if len(fresh) != len(todo):
                    raise ValueError(f"reranker scorer returned {len(fresh)} scores for {len(todo)} pairs")
                each = (time.perf_counter() - t) / len(todo)
                with self._lock:
                    for k, s in zip(todo, fresh):
                        self._scores[k] = (s, each)
                    self.scored += len(todo)
                    self.reused += missing - len(todo)
                    if missing > len(todo):  # a passage repeated in this head: scored once, charged each time
                        self._charges[stage] = self._charges.get(stage, 0.0) + (missing - len(todo)) * each
                got = dict(zip(todo, fresh))
                out = [got[k] if x is None else x for k, x in zip(keys, out)]
            return [float(x) for x in out]  # type: ignore[arg-type]

        return cached

    def attach(self, processors: Sequence[object]) -> int:
        """Route the scoring of every processor that takes part (see the module docstring) through this cache;
        returns how many did. The timing key charged is the one ``retrieve.pipeline.post_stage`` records."""
        n = 0
        for p in processors:
            ident = getattr(p, "score_identity", None)
            if callable(ident) and hasattr(p, "scorer") and callable(getattr(p, "score", None)):
                inner = p.scorer or p.score  # type: ignore[attr-defined]
                p.scorer = self.scorer(str(ident()), inner, f"{p.stage}:{p.name}")  # type: ignore[attr-defined]
                n += 1
        return n

    def take_charges(self) -> dict[str, float]:
        """Seconds of scoring served from memory since the last call, per stage timing key (and reset)."""
        with self._lock:
            charges, self._charges = self._charges, {}
        return charges

    def __len__(self) -> int:
        return len(self._scores)
