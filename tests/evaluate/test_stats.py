"""Paired randomization test and bootstrap CI on constructed cases with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ragkit.evaluate.stats import bootstrap_ci, compare, percentile, paired_randomization_test


def test_identical_runs_give_p_one_and_a_zero_interval():
    base = np.random.default_rng(1).random(50)
    c = compare(base.copy(), base)
    assert c.p_value == 1.0 and c.delta == 0.0
    assert (c.ci_low, c.ci_high) == (0.0, 0.0)
    assert not c.significant and c.direction == "tie"


def test_strictly_better_run_is_a_significant_win_and_worse_a_loss():
    base = np.random.default_rng(2).random(40) * 0.8
    better = base + 0.05 + np.random.default_rng(3).random(40) * 0.05  # better on every query
    win = compare(better, base)
    assert win.significant and win.direction == "win" and win.p_value < 0.001
    assert 0.05 <= win.ci_low < win.delta < win.ci_high <= 0.10
    loss = compare(base, better)
    assert loss.significant and loss.direction == "loss" and loss.ci_high < 0


def test_small_case_matches_the_exact_sign_flip_p_value():
    # 5 positive differences: of the 2^5 sign patterns only "all +" and "all -" are as extreme -> p = 2/32
    a, b = np.array([0.3, 0.5, 0.2, 0.4, 0.6]), np.zeros(5)
    p = paired_randomization_test(a, b, resamples=20000, seed=7)
    assert p == pytest.approx(2 / 32, abs=0.006)
    # noise around zero: far from significant
    d = np.array([0.1, -0.1, 0.2, -0.2, 0.05, -0.05])
    assert paired_randomization_test(d, np.zeros(6)) > 0.9


def test_seeded_and_deterministic():
    rng = np.random.default_rng(5)
    a, b = rng.random(30), rng.random(30)
    assert compare(a, b) == compare(a, b)
    assert bootstrap_ci(a, b, seed=3) == bootstrap_ci(a, b, seed=3)
    with pytest.raises(ValueError, match="same queries"):
        compare(a, b[:10])


def test_percentile_is_nearest_rank_and_returns_one_of_the_values():
    values = [5.0, 1.0, 4.0, 2.0, 3.0]
    assert percentile(values, 0.5) == 3.0
    assert percentile(values, 0.0) == 1.0 and percentile(values, 1.0) == 5.0
    assert percentile(values, 0.95) == 5.0  # index round(0.95 * 4) = 4: no interpolation between 4 and 5
    assert percentile([1.0, 2.0], 0.5) in (1.0, 2.0)


def test_percentile_of_nothing_is_the_given_empty_value():
    assert math.isnan(percentile([], 0.5))
    assert percentile([], 0.95, 0.0) == 0.0
