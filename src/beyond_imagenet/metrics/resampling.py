"""The seeded, vectorised bootstrap over images behind every interval and paired comparison.

A :class:`ResamplePlan` fixes which images each of ``resamples`` bootstrap resamples draws: all ``n`` images with
replacement, or, for a dataset that is class-balanced by design (ImageNet val: 50 per class), the same number of
images within each class. The draws depend only on the seed and the plan's ``key`` (the image set), so two models
evaluated on the same images see the same resamples: their differences are paired.

A metric that is a function of weighted per-image sums (accuracy, ECE, an error ratio, shape bias, ...) is a
:class:`LinearStatistic`: per-image ``columns`` [n, k] and a ``reduce`` from the k sums to the metric. All the
statistics of one image set are bootstrapped together: each chunk of resamples is one count matrix ``W`` [b, n]
and one product ``W @ columns``, so the cost is a few matrix products whatever the number of metrics.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

CHUNK = 128  # resamples per count matrix: bounds memory (CHUNK x n float64) and fixes the random stream


@dataclass(frozen=True)
class ResamplePlan:
    """Which images each bootstrap resample draws.

    Attributes:
        key: names the image set and how it is drawn (``image_plan``); plans with equal keys, sizes and seeds draw
            identical resamples, so equality and hashing ignore ``strata`` (the key encodes it).
        n: number of images.
        resamples: number of bootstrap resamples.
        seed: the statistics seed (params ``statistics.seed``).
        strata: the class of each image when resampling within class, else None.
        unit: what is resampled, for records (``images``; ``minibatches`` for CKA, ``models`` for a baseline).
    """

    key: str
    n: int
    resamples: int
    seed: int
    strata: np.ndarray | None = field(default=None, compare=False, repr=False)
    unit: str = field(default="images", compare=False)

    @property
    def name(self) -> str:
        """The plan's name in records: its key, resample count and seed."""
        return f"{self.key}/B{self.resamples}/s{self.seed}"

    @property
    def method(self) -> str:
        """How the units are drawn, for records: ``within class`` or ``over images`` (``over minibatches``, ...)."""
        return "within class" if self.strata is not None else f"over {self.unit}"

    def _rng(self) -> np.random.Generator:
        digest = int.from_bytes(hashlib.sha256(self.key.encode()).digest()[:8], "little")
        return np.random.default_rng([self.seed, digest])

    def _strata_layout(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """(image order sorted by class, start of each sorted image's class, that class's size); None over images."""
        if self.strata is None:
            return None
        order = np.argsort(self.strata, kind="stable")
        _, starts, sizes = np.unique(self.strata[order], return_index=True, return_counts=True)
        return order, np.repeat(starts, sizes), np.repeat(sizes, sizes)

    def _draw(self, rng: np.random.Generator, b: int, layout: tuple | None) -> np.ndarray:
        """[b, n] image indices of ``b`` resamples."""
        if layout is None:
            return rng.integers(0, self.n, size=(b, self.n))
        order, first, size = layout
        offsets = np.floor(rng.random((b, self.n)) * size).astype(np.int64)
        return order[first + offsets]

    def counts(self) -> Iterator[np.ndarray]:
        """Count matrices [b, n] (float64) of successive chunks of resamples: how often each image is drawn."""
        rng, layout = self._rng(), self._strata_layout()
        for start in range(0, self.resamples, CHUNK):
            b = min(CHUNK, self.resamples - start)
            flat = self._draw(rng, b, layout) + (np.arange(b) * self.n)[:, None]
            yield np.bincount(flat.ravel(), minlength=b * self.n).reshape(b, self.n).astype(np.float64)


MIN_PER_CLASS = 10  # within-class resampling needs classes this large (its variance is (m - 1) / m of the truth)


def ids_digest(sample_ids: Sequence[str]) -> str:
    """Short hash of an ordered list of image ids: the same images in the same order share resamples."""
    return hashlib.sha256("\n".join(sample_ids).encode()).hexdigest()[:12]


def balanced_strata(targets: np.ndarray) -> np.ndarray | None:
    """``targets`` when every class has the same number of images, at least ``MIN_PER_CLASS``; else None."""
    _, counts = np.unique(np.asarray(targets), return_counts=True)
    if counts.size and counts.min() == counts.max() and counts.min() >= MIN_PER_CLASS:
        return np.asarray(targets)
    return None


def image_plan(sample_ids: Sequence[str], resamples: int, seed: int, strata: np.ndarray | None = None) -> ResamplePlan:
    """The plan of an image set: over images, or within class when ``strata`` (from ``balanced_strata``) is given."""
    key = f"{ids_digest(sample_ids)}/{'within-class' if strata is not None else 'images'}"
    return ResamplePlan(key, len(sample_ids), resamples, seed, strata)


@dataclass(frozen=True)
class LinearStatistic:
    """A metric computed from weighted sums of per-image columns.

    ``value = reduce(weights @ columns)``: with every weight 1 this is the metric on the data; with bootstrap
    counts it is the metric on a resample. ``reduce`` maps sums [B, k] to values [B].
    """

    columns: np.ndarray
    reduce: Callable[[np.ndarray], np.ndarray]

    def value(self) -> float:
        """The metric on the data itself (every image once)."""
        return float(self.reduce(self.columns.sum(axis=0, keepdims=True))[0])


def _distinct_columns(statistics: Mapping[str, LinearStatistic]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The statistics' columns without repeats ([k, n], float64) and, per statistic, the rows of its columns.

    Statistics of one image set share many columns (every mean's column of ones, ImageNet-X's denominators), so
    the product is taken once per distinct column.
    """
    rows: dict[bytes, int] = {}
    distinct: list[np.ndarray] = []
    where: dict[str, np.ndarray] = {}
    for name, statistic in statistics.items():
        columns = np.asarray(statistic.columns, dtype=np.float64)
        picks = []
        for j in range(columns.shape[1]):
            column = np.ascontiguousarray(columns[:, j])
            picks.append(rows.setdefault(column.tobytes(), len(distinct)))
            if picks[-1] == len(distinct):
                distinct.append(column)
        where[name] = np.array(picks, dtype=np.int64)
    return np.stack(distinct), where


def bootstrap(plan: ResamplePlan, statistics: Mapping[str, LinearStatistic]) -> dict[str, np.ndarray]:
    """Replicates [resamples] of every statistic on the plan's resamples (the statistics share the draws)."""
    if not statistics:
        return {}
    for name, statistic in statistics.items():
        if statistic.columns.shape[0] != plan.n:
            raise ValueError(f"statistic {name!r} has {statistic.columns.shape[0]} rows, the plan {plan.n}")
    distinct, where = _distinct_columns(statistics)
    parts: dict[str, list[np.ndarray]] = {name: [] for name in statistics}
    for counts in plan.counts():
        sums = (distinct @ counts.T).T  # [b, k]; this operand order keeps BLAS fast on a loaded machine
        for name, statistic in statistics.items():
            parts[name].append(np.asarray(statistic.reduce(sums[:, where[name]]), dtype=np.float64))
    return {name: np.concatenate(chunks) for name, chunks in parts.items()}


def ratio(numerator: int, denominator: int, scale: float = 1.0) -> Callable[[np.ndarray], np.ndarray]:
    """``reduce`` of ``scale * sums[:, numerator] / sums[:, denominator]`` (NaN where the denominator is 0)."""

    def reduce(sums: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return scale * sums[:, numerator] / sums[:, denominator]

    return reduce


def mean_statistic(values: np.ndarray, scale: float = 1.0) -> LinearStatistic:
    """The (scaled) mean of one per-image value: accuracy from correctness, mean confidence, ..."""
    columns = np.stack([np.asarray(values, dtype=np.float64), np.ones(len(values))], axis=1)
    return LinearStatistic(columns, ratio(0, 1, scale))


def combine(replicates: list[np.ndarray], how: Callable[[np.ndarray], np.ndarray] = np.mean) -> np.ndarray:
    """Replicate-wise combination of statistics from independent plans (e.g. the mean over Table 2's shifts)."""
    return how(np.stack(replicates, axis=0), axis=0)
