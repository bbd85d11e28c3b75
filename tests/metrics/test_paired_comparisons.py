"""Paired comparisons, p-values, Holm's adjustment and rank intervals (metrics.intervals) on simulated models.

Two models evaluated on the same images are correlated: an image that is hard for one tends to be hard for the
other. The paired bootstrap (both models' replicates on the same resamples, ``image_plan`` + ``bootstrap``) must then
reject a true null at its nominal rate, detect a planted difference with high power, and give a narrower interval
than treating the two accuracies as independent.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from threadpoolctl import threadpool_limits

from beyond_imagenet.metrics.intervals import (
    bootstrap_interval,
    holm,
    paired_difference,
    rank_intervals,
    standard_error_p,
    two_sided_p,
)
from beyond_imagenet.metrics.resampling import bootstrap, image_plan, mean_statistic
from helpers import sample_ids


def _correlated_pair(
    rng: np.random.Generator, n: int, accuracy_a: float, accuracy_b: float, shared: float
) -> tuple[np.ndarray, np.ndarray]:
    """Correctness of two models on the same n images: each image's difficulty u is shared by both models with
    probability ``shared`` (else model b sees its own); a model is correct when the difficulty is below its accuracy.
    Marginal accuracies are exactly ``accuracy_a`` and ``accuracy_b``; the correlation grows with ``shared``."""
    u = rng.random(n)
    v = np.where(rng.random(n) < shared, u, rng.random(n))
    return u < accuracy_a, v < accuracy_b


def _paired(plan, correct_a: np.ndarray, correct_b: np.ndarray):
    statistics = {"a": mean_statistic(correct_a, 100.0), "b": mean_statistic(correct_b, 100.0)}
    replicates = bootstrap(plan, statistics)
    return paired_difference(replicates["a"], replicates["b"], statistics["a"].value(), statistics["b"].value())


@pytest.mark.slow
def test_null_rejection_rate_is_nominal():
    """Equal true accuracy (76%), strongly correlated correctness: the paired test rejects 5% ± 1.5% of the time."""
    sims, n, b = 1000, 1000, 300
    rng = np.random.default_rng(13)
    ids = sample_ids(n)
    rejections = covered = 0
    with threadpool_limits(1):
        for sim in range(sims):
            a, c = _correlated_pair(rng, n, 0.76, 0.76, shared=0.7)
            difference = _paired(image_plan(ids, b, seed=sim), a, c)
            rejections += difference.p_value < 0.05
            covered += difference.low <= 0.0 <= difference.high
    rate, coverage = rejections / sims, covered / sims
    print(f"null rejection rate {rate:.3f}, difference interval covers 0: {coverage:.3f}")
    assert 0.035 <= rate <= 0.065
    assert 0.93 <= coverage <= 0.97


@pytest.mark.slow
def test_power_for_a_two_point_difference_on_10000_images():
    """80% vs 78% on 10,000 images with paired correctness: the paired test finds the difference almost always.

    With shared difficulty 0.8 the per-image difference has variance ~0.08, so d / se ~ 7 (power ~100%). Two
    independent image sets of this size would give se twice as large (d / se ~ 3.5, power ~93%).
    """
    sims, n, b = 100, 10_000, 150
    rng = np.random.default_rng(17)
    ids = sample_ids(n)
    rejections = 0
    with threadpool_limits(1):
        for sim in range(sims):
            a, c = _correlated_pair(rng, n, 0.80, 0.78, shared=0.8)
            difference = _paired(image_plan(ids, b, seed=sim), a, c)
            assert difference.difference == pytest.approx(100 * (a.mean() - c.mean()), rel=1e-12)
            rejections += difference.p_value < 0.05
    power = rejections / sims
    print(f"power of the paired test: {power:.3f}")
    assert power > 0.95


def test_paired_interval_is_narrower_than_independent_resamples():
    """Paired replicates (same resamples) against replicates of b on independent resamples (another plan): the
    paired interval is narrower, and each bootstrap sd matches its analytic value."""
    n, b = 3000, 1000
    rng = np.random.default_rng(19)
    a, c = _correlated_pair(rng, n, 0.7, 0.68, shared=0.85)
    plan = image_plan(sample_ids(n), b, seed=1)
    other = image_plan(sample_ids(n, "elsewhere"), b, seed=1)  # another key: independent resamples
    reps_a = bootstrap(plan, {"a": mean_statistic(a)})["a"]
    reps_b_paired = bootstrap(plan, {"b": mean_statistic(c)})["b"]
    reps_b_independent = bootstrap(other, {"b": mean_statistic(c)})["b"]
    estimate = a.mean() - c.mean()
    paired = bootstrap_interval(reps_a - reps_b_paired, estimate)
    independent = bootstrap_interval(reps_a - reps_b_independent, estimate)
    assert paired[1] - paired[0] < 0.7 * (independent[1] - independent[0])
    d = a.astype(float) - c.astype(float)
    assert np.std(reps_a - reps_b_paired, ddof=1) == pytest.approx(np.sqrt(d.var() / n), rel=0.1)
    assert np.std(reps_a - reps_b_independent, ddof=1) == pytest.approx(np.sqrt((a.var() + c.var()) / n), rel=0.1)


# ---------------------------------------------------------------------------------------------------------------
# p-values and intervals from replicates


def test_standard_error_p_is_the_normal_tail_of_d_over_sd():
    d = np.random.default_rng(3).normal(0.5, 0.25, 500)
    sd = np.std(d, ddof=1)
    assert standard_error_p(d, 0.5) == pytest.approx(2 * stats.norm.sf(0.5 / sd), rel=1e-12)
    assert standard_error_p(d, -0.5) == standard_error_p(d, 0.5)
    assert standard_error_p(d, 0.0) == pytest.approx(1.0)
    assert np.isnan(standard_error_p(np.full(10, 0.3), 0.3))  # no variation
    assert np.isnan(standard_error_p(np.array([0.1]), 0.1))
    assert np.isnan(standard_error_p(d, float("nan")))
    # NaN replicates are dropped
    with_nan = np.concatenate([d, [np.nan, np.inf]])
    assert standard_error_p(with_nan, 0.5) == standard_error_p(d, 0.5)


def test_paired_difference_fields():
    rng = np.random.default_rng(4)
    reps_a, reps_b = rng.normal(80, 1, 400), rng.normal(78, 1, 400)
    result = paired_difference(reps_a, reps_b, 80.2, 77.9)
    diffs = reps_a - reps_b
    assert result.difference == pytest.approx(2.3)
    assert (result.low, result.high) == pytest.approx(tuple(np.quantile(diffs, [0.025, 0.975])), rel=1e-12)
    assert result.p_value == pytest.approx(2 * stats.norm.sf(2.3 / np.std(diffs, ddof=1)), rel=1e-12)
    basic = paired_difference(reps_a, reps_b, 80.2, 77.9, method="basic")
    q_lo, q_hi = np.quantile(diffs, [0.025, 0.975])
    assert (basic.low, basic.high) == pytest.approx((2 * 2.3 - q_hi, 2 * 2.3 - q_lo), rel=1e-12)


def test_bootstrap_interval_methods():
    replicates = np.arange(1001, dtype=float) / 10  # quantiles are exact: 2.5% -> 2.5, 97.5% -> 97.5
    assert bootstrap_interval(replicates, 50.0) == pytest.approx((2.5, 97.5))
    assert bootstrap_interval(replicates, 60.0, method="basic") == pytest.approx((120 - 97.5, 120 - 2.5))
    assert bootstrap_interval(replicates, 50.0, level=0.9) == pytest.approx((5.0, 95.0))
    with_nan = np.concatenate([replicates, [np.nan] * 50])
    assert bootstrap_interval(with_nan, 50.0) == bootstrap_interval(replicates, 50.0)
    assert all(np.isnan(bootstrap_interval(np.full(5, np.nan), 1.0)))
    with pytest.raises(ValueError, match="percentile"):
        bootstrap_interval(replicates, 50.0, method="bca")


def test_two_sided_p_by_hand():
    assert two_sided_p(np.ones(99)) == pytest.approx(2 * 1 / 100)  # no replicate at or below 0
    assert two_sided_p(-np.ones(99)) == pytest.approx(2 * 1 / 100)
    assert two_sided_p(np.array([-1.0, 1.0] * 50)) == 1.0  # capped
    # 10 of 99 at or below 0: 2 * (10 + 1) / 100
    assert two_sided_p(np.array([-1.0] * 10 + [1.0] * 89)) == pytest.approx(0.22)
    assert np.isnan(two_sided_p(np.array([np.nan])))


# ---------------------------------------------------------------------------------------------------------------
# Holm


def _holm_reference(p: np.ndarray) -> np.ndarray:
    """Holm's step-down, written out: sort ascending, multiply the i-th smallest (0-based) by m - i, carry the
    running maximum forward, cap at 1, and put the values back in the original order."""
    m = len(p)
    order = sorted(range(m), key=lambda i: (p[i], i))
    adjusted = [0.0] * m
    previous = 0.0
    for step, i in enumerate(order):
        value = min(1.0, max(previous, (m - step) * p[i]))
        adjusted[i] = value
        previous = value
    return np.array(adjusted)


def test_holm_hand_computed_example():
    # sorted: 0.005 x 4 = 0.02; 0.01 x 3 = 0.03; 0.03 x 2 = 0.06; 0.04 x 1 = 0.04 -> running max 0.06
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02], rtol=1e-12)
    np.testing.assert_allclose(holm([0.2, 0.5]), [0.4, 0.5])
    np.testing.assert_allclose(holm([0.6, 0.9]), [1.0, 1.0])  # capped at 1
    assert holm([]).shape == (0,)
    # NaN stays NaN and does not count towards m
    np.testing.assert_allclose(holm([0.01, np.nan, 0.02]), [0.02, np.nan, 0.02])


def test_holm_equals_the_reference_on_random_vectors():
    rng = np.random.default_rng(23)
    for size in (1, 2, 7, 30):
        p = rng.random(size) ** 3  # many small p-values
        p[rng.random(size) < 0.2] = p[0]  # ties
        adjusted = holm(p)
        np.testing.assert_allclose(adjusted, _holm_reference(p), rtol=1e-12)
        assert np.all(adjusted >= p) and np.all(adjusted <= 1.0)
        order = np.argsort(p, kind="stable")
        assert np.all(np.diff(adjusted[order]) >= 0)  # monotone in the raw p-values


# ---------------------------------------------------------------------------------------------------------------
# Rank intervals


def test_rank_intervals_on_bootstrapped_models():
    """A clearly best model ranks 1 on every resample; two close models share ranks 2-3."""
    rng = np.random.default_rng(29)
    n = 2000
    u = rng.random(n)
    correct = [u < 0.9, rng.random(n) < 0.70, rng.random(n) < 0.705, u < 0.3]
    statistics = {f"m{i}": mean_statistic(c, 100.0) for i, c in enumerate(correct)}
    replicates = bootstrap(image_plan(sample_ids(n), 500, seed=0), statistics)
    estimates = np.array([s.value() for s in statistics.values()])
    matrix = np.stack([replicates[name] for name in statistics], axis=1)
    ranks = rank_intervals(estimates, matrix, higher_is_better=True)
    best, mid_a, mid_b, worst = ranks
    assert (best.rank, best.low, best.high, best.mean_rank) == (1, 1, 1, 1.0)
    assert (worst.rank, worst.low, worst.high, worst.mean_rank) == (4, 4, 4, 4.0)
    assert {mid_a.rank, mid_b.rank} == {2, 3}
    for mid in (mid_a, mid_b):
        assert (mid.low, mid.high) == (2, 3)
        assert 2.0 < mid.mean_rank < 3.0
    # ranks 2 + 3 on each resample, except the few where the two tie (both rank 2)
    assert 4.9 < mid_a.mean_rank + mid_b.mean_rank <= 5.0
    # lower is better: the order flips
    flipped = rank_intervals(-estimates, -matrix, higher_is_better=False)
    assert [r.rank for r in flipped] == [r.rank for r in ranks]
    reversed_ranks = rank_intervals(estimates, matrix, higher_is_better=False)
    assert (reversed_ranks[0].rank, reversed_ranks[0].low, reversed_ranks[0].high) == (4, 4, 4)


def test_rank_intervals_ties_and_nan():
    estimates = np.array([0.5, 0.5, 0.2, np.nan])
    replicates = np.array([[0.5, 0.5, 0.2, np.nan]] * 10)
    ranks = rank_intervals(estimates, replicates, higher_is_better=True)
    assert [r.rank for r in ranks] == [1, 1, 3, 4]  # ties share the better rank; NaN is last
    assert [(r.low, r.high) for r in ranks] == [(1, 1), (1, 1), (3, 3), (4, 4)]
