"""Calibration analysis: ECE (15 bins), reliability diagram and confidence histogram (docs/protocol.md §5, Fig. 4).

The softmax runs over the dataset's own classes (for IN-R: the 200 masked columns), so confidence and
accuracy live in the same label space.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from beyond_imagenet.analyses.common import AnalysisContext, check_targets, figure_path, provenance_from_cache
from beyond_imagenet.analyses.estimates import dataset_plan, new_book
from beyond_imagenet.base.config import CalibrationConfig
from beyond_imagenet.base.record import ResultRecord
from beyond_imagenet.figures.calibration import CalibrationPanel, save_calibration_figure, save_calibration_grid
from beyond_imagenet.inference.cache import InferenceCache, label_space_logits
from beyond_imagenet.metrics.calibration import (
    calibration_bins,
    calibration_statistics,
    ece_from_bins,
    softmax_confidence,
    top1_accuracy,
)
from beyond_imagenet.metrics.estimates import EstimateBook, attach
from beyond_imagenet.models.display import display_name


def analyse_calibration(
    cache: InferenceCache, n_bins: int, book: EstimateBook | None = None, ctx: AnalysisContext | None = None
) -> tuple[ResultRecord, CalibrationPanel]:
    """ECE, top-1, mean confidence and over-confidence of one cache, and its Fig. 4 panel.

    With a ``book`` (and the ``ctx`` giving the statistics settings) the four metrics are added to it for intervals.
    """
    logits = label_space_logits(cache)
    check_targets(cache, logits.shape[1])
    confidence, prediction = softmax_confidence(logits)
    correct = prediction == cache.targets
    prefix = f"calibration/{cache.dataset}"
    if book is not None and ctx is not None:
        plan = dataset_plan(ctx.statistics, ctx.datasets, cache.dataset, cache.sample_ids, cache.targets)
        for name, statistic in calibration_statistics(confidence, correct, n_bins).items():
            exact = (int(correct.sum()), len(correct)) if name == "top1" else None
            book.add(cache.model_id, f"{prefix}/{name}", plan, statistic, exact)
    bins = calibration_bins(confidence, correct, n_bins)
    ece = ece_from_bins(bins)
    accuracy = top1_accuracy(prediction, cache.targets)
    mean_confidence = float(np.mean(confidence))
    metrics = {
        f"{prefix}/ece": ece,
        f"{prefix}/top1": 100.0 * accuracy,
        f"{prefix}/mean_confidence": mean_confidence,
        f"{prefix}/overconfidence": mean_confidence - accuracy,
    }
    record = ResultRecord(
        "calibration",
        cache.model_id,
        cache.dataset,
        metrics,
        params={"n_bins": n_bins, "binning": "left-open right-closed, linspace(0, 1, n_bins + 1)"},
        details={"bins": bins.to_dict()},
        provenance=provenance_from_cache(cache),
    )
    return record, CalibrationPanel(cache.model_id, bins, ece, accuracy, mean_confidence)


def save_calibration_figures(
    panels: list[CalibrationPanel], records: list[ResultRecord], dataset: str, figures_dir: str | Path
) -> list[Path]:
    """One figure with every model side by side, and one per model; paths are added to the records."""
    combined = save_calibration_figure(
        panels, figure_path(figures_dir, "calibration", dataset, "all_models"), f"Calibration on {dataset}"
    )
    paths = [combined]
    for panel, record in zip(panels, records, strict=True):
        single = save_calibration_figure(
            [panel],
            figure_path(figures_dir, "calibration", dataset, panel.model),
            f"{display_name(panel.model)} on {dataset}",
        )
        record.artifacts.extend([str(single), str(combined)])
        paths.append(single)
    return paths


def run_calibration(config: CalibrationConfig, ctx: AnalysisContext) -> list[ResultRecord]:
    """Every model on every listed dataset; with two or more datasets also the Fig. 4 grid (val and R)."""
    records, grid = [], []
    for dataset in config.datasets:
        book = new_book(ctx.statistics)
        caches = ctx.store.all_models(dataset, ctx.models)
        results = [analyse_calibration(cache, config.n_bins, book, ctx) for cache in caches]
        batch = [record for record, _ in results]
        estimates = book.resolve()
        for record in batch:
            attach(record, estimates[record.model_id])
        save_calibration_figures([panel for _, panel in results], batch, dataset, ctx.figures_dir)
        records += batch
        grid.append((dataset, [panel for _, panel in results]))
    if len(grid) > 1:  # paper Fig. 4: ImageNet val and ImageNet-R, every model
        path = save_calibration_grid(grid, figure_path(ctx.figures_dir, "calibration", "all", "fig4"), "Fig. 4")
        for record in records:
            record.artifacts.append(str(path))
    return records
