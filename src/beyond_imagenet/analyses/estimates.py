"""How the analyses put intervals on their metrics: one resampling plan per image set, estimates into records.

Every analysis collects its metrics (all models) in an :class:`~beyond_imagenet.metrics.estimates.EstimateBook`,
resolves it once, and attaches each model's estimates to its record (``metrics.estimates.attach``): the interval
in ``record.intervals``, the bootstrap replicates in ``record.replicates`` (kept beside the record, for pairs).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from beyond_imagenet.base.config import DatasetConfig, StatisticsConfig
from beyond_imagenet.data.registry import dataset_kind
from beyond_imagenet.metrics.estimates import EstimateBook
from beyond_imagenet.metrics.resampling import ResamplePlan, balanced_strata, image_plan


def new_book(statistics: StatisticsConfig) -> EstimateBook:
    """An empty book with the configured interval level and bootstrap method."""
    return EstimateBook(statistics.level, statistics.method)


def dataset_plan(
    statistics: StatisticsConfig,
    datasets: Mapping[str, DatasetConfig],
    dataset: str,
    sample_ids: Sequence[str],
    targets: np.ndarray,
) -> ResamplePlan:
    """The resampling plan of images of ``dataset``: within class or over images.

    Within class when the dataset's kind is class-balanced by design and these images are too (the same count per
    class, at least ``MIN_PER_CLASS``); else over images.
    """
    kind = dataset_kind(dataset, datasets[dataset]) if dataset in datasets else None
    balanced = statistics.within_class and kind is not None and kind.balanced
    strata = balanced_strata(targets) if balanced else None
    return image_plan(list(sample_ids), statistics.resamples, statistics.seed, strata)
