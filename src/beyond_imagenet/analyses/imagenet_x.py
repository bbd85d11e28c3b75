"""The ImageNet-X analysis: error ratios of 16 factors of variation per model (docs/protocol.md §3, paper Fig. 2).

Intervals resample the annotated images (the error ratio's numerator and denominator together); with the paper's
denominator, every val image, so the full-val accuracy varies with each resample too.
"""

from __future__ import annotations

import logging

import numpy as np

from beyond_imagenet.analyses.common import AnalysisContext, figure_path, provenance_from_cache
from beyond_imagenet.analyses.contracts import check_imagenet_x_join, imagenet_x_join
from beyond_imagenet.analyses.estimates import dataset_plan, new_book
from beyond_imagenet.base.config import ImageNetXConfig
from beyond_imagenet.base.record import ResultRecord
from beyond_imagenet.data.imagenet_x import FACTORS, load_annotations, load_val_labels
from beyond_imagenet.figures.common import save_figure
from beyond_imagenet.figures.imagenet_x import imagenet_x_figure
from beyond_imagenet.metrics.estimates import EstimateBook, attach
from beyond_imagenet.metrics.imagenet_x import (
    error_ratio_statistics,
    factor_accuracies,
    factor_rows,
    predictions_from_logits,
)

PREFIX = "imagenet_x/"
PARTIAL_SETTING = "analyses.imagenet_x.allow_partial: true in params.yaml"
ANNOTATIONS_KEY = "analyses.imagenet_x.annotations_dir"
log = logging.getLogger(__name__)


def _add_statistics(book: EstimateBook, ctx: AnalysisContext, config: ImageNetXConfig, model_id: str, rows) -> None:
    """The model's error ratios, factor accuracies, average and mean error ratio into ``book``."""
    names, flags, correct, true = rows
    plan = dataset_plan(ctx.statistics, ctx.datasets, config.dataset, names, true)
    counts, hits = flags.sum(axis=0), (flags & correct[:, None]).sum(axis=0)
    exact = {f"{f}/accuracy": (int(h), int(n)) for f, h, n in zip(FACTORS, hits, counts, strict=True) if n}
    exact["average"] = (int(correct.sum()), len(correct))
    for name, statistic in error_ratio_statistics(flags, correct, np.ones(len(correct), dtype=bool)).items():
        book.add(model_id, PREFIX + name, plan, statistic, exact.get(name))


def run_imagenet_x(config: ImageNetXConfig, ctx: AnalysisContext) -> list[ResultRecord]:
    """16 error ratios per model (Fig. 2); denominator as the imagenet-x package unless configured otherwise."""
    annotations = load_annotations(directory=config.annotations_dir, setting=ANNOTATIONS_KEY)
    val_labels = load_val_labels(config.annotations_dir, ANNOTATIONS_KEY) if config.denominator == "paper" else None
    records, series, book = [], {}, new_book(ctx.statistics)
    for model_id in ctx.models:
        cache = ctx.store.get(config.dataset, model_id)
        join = imagenet_x_join(cache, annotations)  # coverage and labels, before any score (docs/cache.md)
        check_imagenet_x_join(cache, join, config.allow_partial)
        log.debug("imagenet_x: %s: %s", cache.path, join.describe())  # analyze-cache prints it up front
        predictions = predictions_from_logits(cache.logits, cache.sample_ids)
        result = factor_accuracies(
            predictions,
            annotations,
            denominator=config.denominator,
            allow_partial=config.allow_partial,
            val_labels=val_labels,
            partial_setting=PARTIAL_SETTING,
        )
        rows = factor_rows(
            predictions, annotations, config.denominator, val_labels, config.allow_partial, PARTIAL_SETTING
        )
        _add_statistics(book, ctx, config, model_id, rows)
        metrics = {f"{PREFIX}{f}/error_ratio": v for f, v in result["error_ratio"].items()}
        metrics.update({f"{PREFIX}{f}/accuracy": 100 * v for f, v in result["accuracy"].items()})
        metrics[f"{PREFIX}average"] = 100 * result["average"]
        details = {k: result[k] for k in ("count", "n_joined", "n_annotated", "coverage", "denominator")}
        details["sample_id_fraction"] = join.id_fraction
        params_used = {"denominator": config.denominator, "annotations": config.annotations_dir or "imagenet-x 0.0.7"}
        records.append(
            ResultRecord(
                "imagenet_x", model_id, config.dataset, metrics, params_used, details, provenance_from_cache(cache)
            )
        )
        series[model_id] = [result["error_ratio"].get(f) for f in FACTORS]
    estimates = book.resolve()
    for record in records:
        attach(record, estimates[record.model_id])
    path = figure_path(ctx.figures_dir, "imagenet_x", config.dataset, "all_models")
    save_figure(imagenet_x_figure(FACTORS, series), path)
    for record in records:
        record.artifacts.append(str(path))
    return records
