"""Point estimates with their intervals and bootstrap replicates, collected for many models and resolved at once.

An analysis adds, for every model, each metric as a :class:`~beyond_imagenet.metrics.resampling.LinearStatistic` on a
:class:`~beyond_imagenet.metrics.resampling.ResamplePlan` (accuracies with their exact count ``k of n`` as well), and
each metric that combines others (the Table 2 average, the ImageNet-C mean, an effective robustness, ...) as a
function of those. :meth:`EstimateBook.resolve` runs one bootstrap per image set for all models together, so the
models' replicates are drawn on the same resamples (paired), then evaluates the combinations replicate by replicate.

Intervals: exact Clopper-Pearson for accuracies (``k`` of ``n`` images), else the bootstrap interval of the
configured ``method`` and ``level``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from beyond_imagenet.base.errors import UserError
from beyond_imagenet.base.record import ResultRecord
from beyond_imagenet.metrics.intervals import bootstrap_interval, clopper_pearson
from beyond_imagenet.metrics.resampling import LinearStatistic, ResamplePlan, bootstrap

EXACT_METHOD = "clopper-pearson"
Key = tuple[str, str]  # (owner, metric): the owner is the model id (or whatever groups a record's metrics)


@dataclass(frozen=True)
class Estimate:
    """A metric's value, interval and bootstrap replicates.

    Attributes:
        value: the metric on the data itself.
        low: lower end of the interval.
        high: upper end of the interval.
        n: images (or minibatches, test examples) behind it; for a combination, the sum over its distinct sets.
        method: ``clopper-pearson`` or ``bootstrap <percentile|basic>``, with how the images were resampled.
        plan: names the resamples the replicates were drawn on; equal plans mean paired replicates.
        replicates: the metric on each resample.
        level: the interval's coverage (0.95).
    """

    value: float
    low: float
    high: float
    n: int
    method: str
    plan: str
    replicates: np.ndarray = field(repr=False)
    level: float = 0.95

    def interval_record(self) -> dict:
        """What a result record keeps of it (the replicates go beside the record)."""
        return {
            "low": _finite_or_none(self.low),
            "high": _finite_or_none(self.high),
            "n": int(self.n),
            "level": self.level,
            "method": self.method,
            "plan": self.plan,
        }


def _finite_or_none(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def plan_signature(plans: Sequence[str]) -> str:
    """The plan name of a combination: its inputs' distinct plans (one name when they share one)."""
    distinct = sorted(set(plans))
    if len(distinct) == 1:
        return distinct[0]
    return "combined:" + hashlib.sha256("|".join(distinct).encode()).hexdigest()[:12]


@dataclass
class _Base:
    plan: ResamplePlan
    statistic: LinearStatistic
    exact: tuple[int, int] | None
    scale: float


@dataclass
class _Derived:
    inputs: list[Key]
    combine: Callable[[np.ndarray], np.ndarray]
    plan: str | None
    combine_replicates: Callable[[np.ndarray], np.ndarray] | None


class EstimateBook:
    """Collects the metrics of one analysis (all models) and resolves their estimates with one bootstrap per plan."""

    def __init__(self, level: float = 0.95, method: str = "percentile"):
        self.level, self.method = level, method
        self._base: dict[Key, _Base] = {}
        self._derived: dict[Key, _Derived] = {}

    def add(
        self,
        owner: str,
        metric: str,
        plan: ResamplePlan,
        statistic: LinearStatistic,
        exact: tuple[int, int] | None = None,
        scale: float = 100.0,
    ) -> Key:
        """A metric computed from per-image columns; ``exact=(k, n)`` marks an accuracy ``scale * k / n``."""
        key = (owner, metric)
        self._check_new(key)
        self._base[key] = _Base(plan, statistic, exact, scale)
        return key

    def derive(
        self,
        owner: str,
        metric: str,
        inputs: Sequence[Key],
        combine: Callable[[np.ndarray], np.ndarray],
        plan: str | None = None,
        combine_replicates: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> Key:
        """A metric ``combine(values of inputs)``; ``combine`` maps [rows, len(inputs)] to [rows].

        The value is ``combine`` of the inputs' values (one row), the replicates ``combine`` of their replicates
        (one row per resample), or ``combine_replicates`` when the replicates need more than the inputs (e.g. an
        effective robustness whose baseline line is also refitted on each resample of the baseline models). ``plan``
        then names the combination's resamples, inputs and that extra resampling together.
        """
        key = (owner, metric)
        self._check_new(key)
        missing = [k for k in inputs if k not in self._base and k not in self._derived]
        if missing:
            raise KeyError(f"{key}: inputs {missing} were not added before")
        self._derived[key] = _Derived(list(inputs), combine, plan, combine_replicates)
        return key

    def plan_of(self, key: Key) -> str:
        """The plan name a metric's replicates will have (before resolving)."""
        if key in self._base:
            return self._base[key].plan.name
        derived = self._derived[key]
        return derived.plan or plan_signature([self.plan_of(k) for k in derived.inputs])

    def _check_new(self, key: Key) -> None:
        if key in self._base or key in self._derived:
            raise KeyError(f"metric {key} added twice")

    def resolve(self) -> dict[str, dict[str, Estimate]]:
        """Every metric's estimate, by owner then metric name (in the order they were added)."""
        estimates: dict[Key, Estimate] = {}
        by_plan: dict[ResamplePlan, list[Key]] = {}
        for key, base in self._base.items():
            by_plan.setdefault(base.plan, []).append(key)
        for plan, keys in by_plan.items():
            replicates = bootstrap(plan, {key: self._base[key].statistic for key in keys})
            for key in keys:
                estimates[key] = self._base_estimate(self._base[key], replicates[key])
        for key, derived in self._derived.items():
            estimates[key] = self._derived_estimate(derived, [estimates[k] for k in derived.inputs])
        grouped: dict[str, dict[str, Estimate]] = {}
        for owner, metric in [*self._base, *self._derived]:
            grouped.setdefault(owner, {})[metric] = estimates[(owner, metric)]
        return grouped

    def _base_estimate(self, base: _Base, replicates: np.ndarray) -> Estimate:
        value = base.statistic.value()
        plan = base.plan
        if base.exact is not None:
            k, n = base.exact
            low, high = clopper_pearson(k, n, self.level)
            return Estimate(
                value, base.scale * float(low), base.scale * float(high), n, EXACT_METHOD, plan.name, replicates,
                self.level,
            )  # fmt: skip
        low, high = bootstrap_interval(replicates, value, self.level, self.method)
        method = f"bootstrap {self.method} ({plan.method})"
        return Estimate(value, low, high, plan.n, method, plan.name, replicates, self.level)

    def _derived_estimate(self, derived: _Derived, inputs: list[Estimate]) -> Estimate:
        values = np.array([e.value for e in inputs], dtype=np.float64)
        value = float(derived.combine(values[None, :])[0])
        per_replicate = derived.combine_replicates or derived.combine
        replicates = np.asarray(per_replicate(np.stack([e.replicates for e in inputs], axis=1)), dtype=np.float64)
        low, high = bootstrap_interval(replicates, value, self.level, self.method)
        plans = {e.plan: e.n for e in inputs}
        plan = derived.plan or plan_signature([e.plan for e in inputs])
        return Estimate(value, low, high, sum(plans.values()), f"bootstrap {self.method}", plan, replicates, self.level)


def mean_of(values: np.ndarray) -> np.ndarray:
    """``combine`` of an unweighted mean of the inputs (NaN if any input is NaN)."""
    return np.mean(values, axis=-1)


def attach(record: ResultRecord, estimates: Mapping[str, Estimate], prefix: str = "") -> None:
    """Put each estimate's interval and replicates on ``record`` under ``prefix + name``.

    A metric the record already has keeps its value (computed by the metric function); the estimate must agree
    with it, which checks that the statistic behind the interval is the metric. A new metric takes the estimate's.
    """
    for name, estimate in estimates.items():
        metric = prefix + name
        value = record.metrics.get(metric)
        if value is None:
            record.metrics[metric] = estimate.value
        elif not np.isclose(value, estimate.value, rtol=1e-9, atol=1e-9, equal_nan=True):
            raise UserError(f"{record.analysis}/{record.model_id}: {metric} is {value} but its statistic gives "
                            f"{estimate.value}; please report this bug")  # fmt: skip
        record.intervals[metric] = estimate.interval_record()
        record.replicates[metric] = estimate.replicates
