"""Section ``statistics`` of ``params.yaml``: how intervals and paired comparisons are computed (docs/statistics.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from beyond_imagenet.base.errors import ParamsError


@dataclass(frozen=True)
class StatisticsConfig:
    """Section ``statistics``: intervals and paired comparisons of every metric (seeded bootstrap over images).

    Accuracies get exact Clopper-Pearson intervals; every other metric a bootstrap interval from ``resamples``
    resamples of the images (within class where a dataset is class-balanced by design). Two models' metrics on the
    same images are compared on the same resamples; a difference is called real when its Holm-adjusted p-value is
    below ``significance`` and its interval excludes 0.
    """

    resamples: int = 1000
    level: float = 0.95
    seed: int = 0
    method: Literal["percentile", "basic"] = "percentile"
    within_class: bool = True  # resample within class on class-balanced-by-design sets (ImageNet val, V2, C, ...)
    significance: float = 0.05
    # Holm's family: section = one analysis on one dataset (one table or figure); metric = one metric's model pairs;
    # all = every comparison of the run
    holm_family: Literal["section", "metric", "all"] = "section"


def check_statistics(config: StatisticsConfig) -> None:
    """Raise :class:`ParamsError` for a resample count, level or significance outside its range."""
    where = "params: statistics"
    if config.resamples < 100:
        raise ParamsError(f"{where}.resamples must be >= 100 (1000 is the default), got {config.resamples}")
    if not 0.5 < config.level < 1:
        raise ParamsError(f"{where}.level must be in (0.5, 1), e.g. 0.95, got {config.level}")
    if not 0 < config.significance < 1:
        raise ParamsError(f"{where}.significance must be in (0, 1), e.g. 0.05, got {config.significance}")
