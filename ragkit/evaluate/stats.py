"""Paired significance over queries (a randomization (sign-flip) test and a bootstrap confidence interval), and
the one percentile function reports and benchmarks use for latencies.

The test and the interval take two per-query score vectors of the same queries (a variant and the base) and are seeded, so the
same inputs always give the same p-value and interval.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass

import numpy as np

DEFAULT_SEED = 0
DEFAULT_RESAMPLES = 10_000


def percentile(values: Iterable[float], q: float, empty: float = float("nan")) -> float:
    """The ``q`` quantile (0..1) of ``values`` by nearest rank: the value at position ``round(q * (n - 1))`` of
    the sorted values (one of the values, no interpolation); ``empty`` when there are none. Every latency
    percentile in reports and benchmarks is this one."""
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))] if s else empty


@dataclass
class Comparison:
    delta: float  # mean(variant - base)
    ci_low: float  # 95% bootstrap CI of the mean difference (percentile method)
    ci_high: float
    p_value: float  # two-sided paired randomization test
    significant: bool  # p_value < alpha
    direction: str  # "win", "loss" or "tie" (significant wins and losses only; otherwise "tie")
    n: int

    def to_dict(self) -> dict:
        return asdict(self)


def paired_randomization_test(a: np.ndarray, b: np.ndarray, *, resamples: int = DEFAULT_RESAMPLES,
                              seed: int = DEFAULT_SEED) -> float:
    """Two-sided p-value of "a and b have the same mean" for paired samples.

    Under the null hypothesis each query's difference is as likely to have the opposite sign, so the test
    flips the sign of every difference at random ``resamples`` times and counts how often the mean difference
    is at least as far from zero as the observed one. ``(count + 1) / (resamples + 1)`` keeps p above zero.
    """
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    if d.size == 0:
        return 1.0
    observed = abs(d.mean())
    if observed == 0.0:
        return 1.0
    rng = np.random.default_rng(seed)
    count = 0
    # in blocks, so memory stays bounded for large query sets
    block = max(1, min(resamples, 2_000_000 // max(d.size, 1)))
    done = 0
    tol = 1e-12 * max(1.0, observed)
    while done < resamples:
        m = min(block, resamples - done)
        signs = rng.integers(0, 2, size=(m, d.size), dtype=np.int8) * 2 - 1
        means = np.abs((signs * d).mean(axis=1))
        count += int((means >= observed - tol).sum())
        done += m
    return (count + 1) / (resamples + 1)


def bootstrap_ci(a: np.ndarray, b: np.ndarray, *, level: float = 0.95, resamples: int = DEFAULT_RESAMPLES,
                 seed: int = DEFAULT_SEED) -> tuple[float, float]:
    """Percentile bootstrap interval of mean(a - b), resampling queries with replacement."""
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    if d.size == 0:
        return (0.0, 0.0)
    rng = np.random.default_rng(seed + 1)
    means = np.empty(resamples)
    block = max(1, min(resamples, 2_000_000 // max(d.size, 1)))
    for start in range(0, resamples, block):
        m = min(block, resamples - start)
        idx = rng.integers(0, d.size, size=(m, d.size))
        means[start:start + m] = d[idx].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


def compare(variant: np.ndarray, base: np.ndarray, *, alpha: float = 0.05, resamples: int = DEFAULT_RESAMPLES,
            seed: int = DEFAULT_SEED) -> Comparison:
    variant = np.asarray(variant, dtype=np.float64)
    base = np.asarray(base, dtype=np.float64)
    if variant.shape != base.shape:
        raise ValueError(f"paired comparison needs the same queries: {variant.shape} vs {base.shape}")
    delta = float((variant - base).mean()) if variant.size else 0.0
    p = paired_randomization_test(variant, base, resamples=resamples, seed=seed)
    lo, hi = bootstrap_ci(variant, base, resamples=resamples, seed=seed)
    significant = p < alpha
    direction = ("win" if delta > 0 else "loss") if significant and delta != 0 else "tie"
    return Comparison(delta=delta, ci_low=lo, ci_high=hi, p_value=float(p), significant=significant,
                      direction=direction, n=int(variant.size))


def mean_ci(x: np.ndarray, *, level: float = 0.95, resamples: int = 2000, seed: int = DEFAULT_SEED
            ) -> tuple[float, float]:
    """Bootstrap interval of a single mean (the error bars of the per-variant plot)."""
    x = np.asarray(x, dtype=np.float64)
    return bootstrap_ci(x, np.zeros_like(x), level=level, resamples=resamples, seed=seed)
