"""What the model-based rerankers share: score the top ``depth`` hits (optionally blended with the previous
stage's scores), reorder them, keep the rest behind."""

from __future__ import annotations

from collections.abc import Sequence

from ragkit.retrieve.scores import minmax
from ragkit.types import Hit


def apply_scores(stage: str, hits: list[Hit], scores: Sequence[float], top_n: int | None) -> list[Hit]:
    """Reorder the first ``len(scores)`` hits by ``scores`` (stable for ties) and record ``scores[stage]`` and
    ``ranks[stage]``. Hits beyond the scored head keep their order behind it (and are dropped when ``top_n`` is
    set: ``top_n`` keeps that many of the reranked head)."""
    head, tail = hits[:len(scores)], hits[len(scores):]
    for h, s in zip(head, scores):
        h.score = float(s)
        h.scores[stage] = float(s)
    order = sorted(range(len(head)), key=lambda i: -head[i].score)
    ranked = [head[i] for i in order]
    for rank, h in enumerate(ranked, 1):
        h.ranks[stage] = rank
    if top_n is not None:
        return ranked[:top_n]
    if tail:  # keep the unscored tail below every scored hit, in its previous order
        floor = min(h.score for h in ranked) if ranked else 0.0
        for i, h in enumerate(tail, 1):
            h.score = floor - i * 1e-6
    return ranked + tail


def blend_scores(model: Sequence[float], previous: Sequence[float], weight: float) -> list[float]:
    """Interpolate the model's scores with the previous stage's, each min-max scaled over the head (as the
    ``minmax`` fusion scales a branch): a weak or domain-shifted reranker then refines the first-stage order
    instead of replacing it."""
    if not model:
        return []
    return [float(x) for x in weight * minmax(list(model)) + (1 - weight) * minmax(list(previous))]


def blend_head(stage: str, head: list[Hit], scores: Sequence[float], weight: float | None) -> list[float]:
    """A reranker's final scores for ``head``: its own ``scores`` when ``weight`` is None, else
    :func:`blend_scores` with the hits' current scores, the model's own score kept as ``scores["<stage>:model"]``."""
    if weight is None:
        return list(scores)
    for h, s in zip(head, scores):
        h.scores[f"{stage}:model"] = s
    return blend_scores(scores, [h.score for h in head], weight)
