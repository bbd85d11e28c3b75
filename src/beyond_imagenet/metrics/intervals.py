"""Intervals, paired comparisons, multiple-testing correction and rank intervals (pure functions).

- :func:`clopper_pearson`: the exact binomial interval of an accuracy (k correct of n), as
  ``scipy.stats.binomtest(k, n).proportion_ci(method="exact")``, vectorised through the beta quantiles.
- :func:`bootstrap_interval`: from bootstrap replicates, the ``percentile`` interval or the ``basic`` (reverse
  percentile) interval ``[2θ̂ - q_hi, 2θ̂ - q_lo]``.
- :func:`paired_difference`: two models' replicates on the *same* resamples give the bootstrap distribution of
  their difference; its interval, and the two-sided p-value of "no difference" from the bootstrap standard error
  (``2 Φ(-|d| / se*)``). A p-value read off the resample counts (:func:`two_sided_p`) cannot go below
  ``2 / (B + 1)``, which a multiple-testing correction over a report's comparisons would push above any level.
- :func:`holm`: Holm's step-down adjustment of a family of p-values.
- :func:`rank_intervals`: each model's rank per replicate (1 = best), its mean and interval.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

METHODS = ("percentile", "basic")


def clopper_pearson(k: np.ndarray | int, n: np.ndarray | int, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Exact binomial interval of the proportion ``k / n`` (fractions; 0 and 1 at the ends)."""
    k, n = np.asarray(k, dtype=np.float64), np.asarray(n, dtype=np.float64)
    if np.any(n < 1) or np.any(k < 0) or np.any(k > n):
        raise ValueError(f"need 0 <= k <= n and n >= 1, got k={k}, n={n}")
    tail = (1.0 - level) / 2.0
    with np.errstate(invalid="ignore"):
        low = np.where(k > 0, stats.beta.ppf(tail, k, n - k + 1), 0.0)
        high = np.where(k < n, stats.beta.ppf(1.0 - tail, k + 1, n - k), 1.0)
    return low, high


def bootstrap_interval(
    replicates: np.ndarray, estimate: float, level: float = 0.95, method: str = "percentile"
) -> tuple[float, float]:
    """The two-sided interval of a statistic from its bootstrap replicates (NaN replicates are dropped)."""
    if method not in METHODS:
        raise ValueError(f"bootstrap interval method must be one of {METHODS}, got {method!r}")
    finite = np.asarray(replicates, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return float("nan"), float("nan")
    tail = (1.0 - level) / 2.0
    q_lo, q_hi = np.quantile(finite, [tail, 1.0 - tail])
    if method == "basic":
        return float(2 * estimate - q_hi), float(2 * estimate - q_lo)
    return float(q_lo), float(q_hi)


@dataclass(frozen=True)
class Difference:
    """A paired comparison: estimate ``a - b``, its interval and the two-sided p-value of no difference."""

    difference: float
    low: float
    high: float
    p_value: float


def two_sided_p(differences: np.ndarray) -> float:
    """``2 min(P(d* <= 0), P(d* >= 0))`` with the +1 correction, capped at 1: the percentile interval's inversion."""
    d = np.asarray(differences, dtype=np.float64)
    d = d[np.isfinite(d)]
    if d.size == 0:
        return float("nan")
    below = (np.count_nonzero(d <= 0) + 1) / (d.size + 1)
    above = (np.count_nonzero(d >= 0) + 1) / (d.size + 1)
    return float(min(1.0, 2.0 * min(below, above)))


def standard_error_p(differences: np.ndarray, estimate: float) -> float:
    """Two-sided p-value of "no difference": ``2 Φ(-|estimate| / sd(differences))`` (NaN without variation)."""
    d = np.asarray(differences, dtype=np.float64)
    d = d[np.isfinite(d)]
    if d.size < 2 or not np.isfinite(estimate):
        return float("nan")
    spread = float(np.std(d, ddof=1))
    if spread <= 1e-12 * max(1.0, float(np.abs(d).max())):  # equal values up to rounding: std would be ~1e-17
        return float("nan")  # no sampling variation at all: the bootstrap cannot test this difference
    return float(2.0 * stats.norm.sf(abs(estimate) / spread))


def paired_difference(
    replicates_a: np.ndarray,
    replicates_b: np.ndarray,
    estimate_a: float,
    estimate_b: float,
    level: float = 0.95,
    method: str = "percentile",
) -> Difference:
    """Model a minus model b on the same resamples: the difference's interval and p-value."""
    diffs = np.asarray(replicates_a, dtype=np.float64) - np.asarray(replicates_b, dtype=np.float64)
    estimate = float(estimate_a - estimate_b)
    low, high = bootstrap_interval(diffs, estimate, level, method)
    return Difference(estimate, low, high, standard_error_p(diffs, estimate))


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (monotone, capped at 1; NaN stays NaN)."""
    p = np.asarray(p_values, dtype=np.float64)
    adjusted = np.full_like(p, np.nan)
    finite = np.flatnonzero(np.isfinite(p))
    order = finite[np.argsort(p[finite], kind="stable")]
    m = len(order)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[index]))
        adjusted[index] = running
    return adjusted


@dataclass(frozen=True)
class RankInterval:
    """A model's rank on one metric (1 = best): its rank on the data, mean rank over resamples and interval."""

    rank: int
    mean_rank: float
    low: int
    high: int


def _ranks(values: np.ndarray, higher_is_better: bool) -> np.ndarray:
    """Ranks (1 = best) along the last axis; ties share the better rank."""
    keyed = -values if higher_is_better else values
    keyed = np.where(np.isfinite(keyed), keyed, np.inf)
    return (keyed[..., :, None] > keyed[..., None, :]).sum(axis=-1) + 1


def rank_intervals(
    estimates: np.ndarray, replicates: np.ndarray, higher_is_better: bool, level: float = 0.95
) -> list[RankInterval]:
    """Rank of each of M models: ``estimates`` [M], ``replicates`` [B, M] drawn on the same resamples."""
    on_data = _ranks(np.asarray(estimates, dtype=np.float64), higher_is_better)
    per_resample = _ranks(np.asarray(replicates, dtype=np.float64), higher_is_better)
    tail = (1.0 - level) / 2.0
    low = np.floor(np.quantile(per_resample, tail, axis=0)).astype(int)
    high = np.ceil(np.quantile(per_resample, 1.0 - tail, axis=0)).astype(int)
    mean = per_resample.mean(axis=0)
    return [
        RankInterval(int(r), float(m), int(lo), int(hi)) for r, m, lo, hi in zip(on_data, mean, low, high, strict=True)
    ]
