"""Effective robustness per shift against a baseline line, with intervals (docs/transfer.md §5.2, JANuS).

ER = a shift's top-1 minus the baseline's fit of logit(shift top-1) on logit(ID top-1) at the model's ID top-1
(Taori et al. 2020). The baseline is ``analyses.robustness.baseline``: ``testbed`` (the 85 standard ImageNet models
of imagenet-testbed, shipped), ``file`` (a CSV of the same form) or ``models`` (models of this run). The ID axis of
ImageNet-A and -R is, as in the testbed, ImageNet val restricted to the shift's 200 classes (logits masked to them).

Intervals: each resample redraws the model's images and, for the line, the baseline models (a bootstrap over
models; for ``models`` also their images), and refits the line. With ``second_id`` the fit is a plane on two ID axes
(multi-ID effective robustness, Shi et al. 2023).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from beyond_imagenet.analyses.common import AnalysisContext
from beyond_imagenet.analyses.estimates import dataset_plan
from beyond_imagenet.base.config import RobustnessConfig
from beyond_imagenet.base.errors import UserError
from beyond_imagenet.base.record import ResultRecord
from beyond_imagenet.data.baselines import Baseline, load_baseline_file, on_classes_column, testbed_baseline
from beyond_imagenet.data.registry import dataset_kind
from beyond_imagenet.inference.cache import InferenceCache, label_space_logits
from beyond_imagenet.metrics.accuracy import topk_correct
from beyond_imagenet.metrics.effective_robustness import (
    fit_lines,
    fit_planes,
    line_prediction,
    plane_prediction,
)
from beyond_imagenet.metrics.estimates import EstimateBook, plan_signature
from beyond_imagenet.metrics.resampling import ResamplePlan, mean_statistic
from beyond_imagenet.metrics.robustness import ID_DATASET, JANUS_SHIFTS

ON_CLASSES_SHIFTS = ("imagenet_a", "imagenet_r")  # the testbed's ID axis for these: val on the shift's classes


def _imagenet_columns(cache: InferenceCache) -> np.ndarray | None:
    """ImageNet index of each class of the cache's label space (None: the label space is ImageNet-1k itself)."""
    label = cache.meta.get("label_space", {"kind": "imagenet1k"})
    if label.get("kind") == "imagenet1k":
        return None
    columns = label.get("imagenet_columns")
    return np.asarray(columns, dtype=np.int64) if columns else np.array([], dtype=np.int64)


def val_on_classes_correct(val: InferenceCache, shift: InferenceCache) -> tuple[np.ndarray, np.ndarray] | str:
    """(rows of val in the shift's classes, their top-1 correctness among those classes), or why not computable."""
    columns = _imagenet_columns(shift)
    if columns is None or columns.size == 0:
        return f"{shift.path} has no ImageNet subset label space"
    if val.logits.shape[1] != 1000 or val.meta.get("output_space", {}).get("kind", "imagenet1k") != "imagenet1k":
        return f"{val.path} has no 1000 ImageNet logits"
    val_columns = _imagenet_columns(val)
    imagenet_targets = val.targets if val_columns is None else val_columns[val.targets]
    rows = np.flatnonzero(np.isin(imagenet_targets, columns))
    covered = np.unique(imagenet_targets[rows]).size
    if covered < columns.size:  # the testbed's axis is val on all the shift's classes
        return f"{val.dataset} has images of {covered} of the {columns.size} classes of {shift.dataset}"
    position = {int(c): i for i, c in enumerate(columns)}
    targets = np.array([position[int(t)] for t in imagenet_targets[rows]])
    return rows, topk_correct(val.logits[rows][:, columns], targets, 1)


class _Axes:
    """The datasets of the robustness analysis by kind, and the ID axis of each shift for every model."""

    def __init__(self, config: RobustnessConfig, ctx: AnalysisContext, book: EstimateBook, baseline: Baseline | None):
        self.ctx, self.book, self.baseline = ctx, book, baseline
        self.by_kind = {dataset_kind(n, ctx.datasets[n]).name: n for n in config.datasets}
        self.skipped: dict[str, str] = {}

    def id_axis(self, shift: str) -> tuple[str, str] | None:
        """(metric of the models' ID top-1, baseline column) for ``shift``; None (reason in ``skipped``) if none."""
        column = on_classes_column(shift)
        wants_classes = shift in ON_CLASSES_SHIFTS and (self.baseline is None or column in self.baseline.columns)
        if not wants_classes:
            return f"robustness/{ID_DATASET}/top1", ID_DATASET
        metric = f"robustness/{column}/top1"
        for model_id in self.ctx.models:
            val = self.ctx.store.get(self.by_kind[ID_DATASET], model_id)
            found = val_on_classes_correct(val, self.ctx.store.get(self.by_kind[shift], model_id))
            if isinstance(found, str):
                self.skipped[shift] = f"the ID axis (ImageNet val on the shift's classes) cannot be computed: {found}"
                return None
            rows, correct = found
            ids, targets = [val.sample_ids[i] for i in rows], val.targets[rows]
            plan = dataset_plan(self.ctx.statistics, self.ctx.datasets, val.dataset, ids, targets)
            self.book.add(model_id, metric, plan, mean_statistic(correct, 100.0), (int(correct.sum()), len(correct)))
        return metric, column


def _load_baseline(config: RobustnessConfig) -> Baseline | None:
    if config.baseline == "testbed":
        return testbed_baseline()
    if config.baseline == "file":
        return load_baseline_file(config.baseline_file)
    return None


def _model_weights(plan: ResamplePlan) -> np.ndarray:
    """[resamples, n_models] counts of a bootstrap over the baseline models (weights of the refitted lines)."""
    return np.concatenate(list(plan.counts()), axis=0)


def _fixed_line_er(points: np.ndarray, weights: np.ndarray, plane: bool) -> tuple[Callable, Callable, np.ndarray]:
    """``combine`` functions of ER for a baseline of fixed points [axes, M] (x, [x2,] y), and its fitted line."""
    if plane:
        fit = fit_planes(points[0], points[1], points[2])
        refits = fit_planes(points[0][None], points[1][None], points[2][None], weights)

        def point(v):
            return v[:, 2] - plane_prediction(v[:, 0], v[:, 1], fit)

        def replicates(v):
            return v[:, 2] - plane_prediction(v[:, 0], v[:, 1], refits)

        return point, replicates, fit
    fit = fit_lines(points[0], points[1])
    refits = fit_lines(points[0][None], points[1][None], weights)
    return (
        (lambda v: v[:, 1] - line_prediction(v[:, 0], fit)),
        (lambda v: v[:, 1] - line_prediction(v[:, 0], refits)),
        fit,
    )


def _run_models_er(width: int, weights: np.ndarray) -> tuple[Callable, Callable]:
    """``combine`` functions of ER when the baseline is models of this run.

    The inputs are the model's ``width`` axes then each baseline model's, so every replicate refits the line on the
    baseline models' own replicates (and the bootstrap ``weights`` over them).
    """

    def er(v: np.ndarray, w: np.ndarray | None) -> np.ndarray:
        own, others = v[:, :width], v[:, width:].reshape(len(v), -1, width)
        if width == 3:
            fit = fit_planes(others[..., 0], others[..., 1], others[..., 2], w)
            return own[:, 2] - plane_prediction(own[:, 0], own[:, 1], fit)
        fit = fit_lines(others[..., 0], others[..., 1], w)
        return own[:, 1] - line_prediction(own[:, 0], fit)

    return (lambda v: er(v, None)), (lambda v: er(v, weights))


def add_effective_robustness(
    book: EstimateBook, config: RobustnessConfig, ctx: AnalysisContext, records: Mapping[str, ResultRecord]
) -> None:
    """ER (and multi-ID ER with ``second_id``) of every model on every JANuS shift present, into ``book``."""
    if config.baseline == "none":
        return
    baseline = _load_baseline(config)
    axes = _Axes(config, ctx, book, baseline)
    shifts = [s for s in JANUS_SHIFTS if s in axes.by_kind]
    if shifts and ID_DATASET not in axes.by_kind:
        raise UserError("analyses.robustness: effective robustness needs an imagenet_val dataset (or baseline: none)")
    second = _second_id_metric(config, ctx, book)
    lines = {}
    for shift in shifts:
        axis = axes.id_axis(shift)
        if axis is None:
            continue
        lines[shift] = _add_shift(book, config, ctx, baseline, shift, axis, None)
        if second is not None:
            lines[f"{shift}/multi_id"] = _add_shift(book, config, ctx, baseline, shift, axis, second)
    source = baseline.source if baseline else f"models of this run: {', '.join(config.baseline_models)}"
    for record in records.values():
        record.details["effective_robustness"] = {"baseline": source, "lines": lines, "skipped": dict(axes.skipped)}


def _second_id_metric(config: RobustnessConfig, ctx: AnalysisContext, book: EstimateBook) -> tuple[str, str] | None:
    """(metric, baseline column) of the second ID axis, its top-1 added for every model; None without one."""
    if config.second_id is None:
        return None
    metric = f"robustness/second_id/{config.second_id}/top1"
    for model_id in ctx.models:
        cache = ctx.store.get(config.second_id, model_id)
        correct = topk_correct(label_space_logits(cache), cache.targets, 1)
        plan = dataset_plan(ctx.statistics, ctx.datasets, config.second_id, cache.sample_ids, cache.targets)
        book.add(model_id, metric, plan, mean_statistic(correct, 100.0), (int(correct.sum()), len(correct)))
    return metric, config.second_id


def _baseline_points(baseline: Baseline, columns: list[str], shift: str) -> np.ndarray:
    """[axes, M] accuracies of the baseline models that have every column."""
    for column in columns:
        if column not in baseline.columns:
            raise UserError(f"baseline {baseline.source} has no column {column!r} (needed for ER on {shift})")
    return baseline.points(columns)


def _add_shift(book, config, ctx, baseline, shift, axis, second) -> dict:
    """ER of every model on one shift; returns the fitted line (or plane) for the records."""
    id_metric, id_column = axis
    metrics = [id_metric, *([second[0]] if second else []), f"robustness/{shift}/top1"]
    columns = [id_column, *([second[1]] if second else []), shift]
    name = f"robustness/{shift}/effective_robustness" + ("_multi_id" if second else "")
    stats = ctx.statistics
    if baseline is not None:
        points = _baseline_points(baseline, columns, shift)
        key = f"baseline:{baseline.digest}:{':'.join(columns)}"
        plan = ResamplePlan(key, points.shape[1], stats.resamples, stats.seed, unit="models")
        point, replicates, fit = _fixed_line_er(points, _model_weights(plan), second is not None)
        members = []
    else:
        members = list(config.baseline_models)
        key = f"baseline-models:{':'.join(members)}:{':'.join(columns)}"
        plan = ResamplePlan(key, len(members), stats.resamples, stats.seed, unit="models")
        point, replicates = _run_models_er(len(metrics), _model_weights(plan))
        fit = None
    for model_id in ctx.models:
        inputs = [(m, metric) for m in [model_id, *members] for metric in metrics]
        plans = [book.plan_of(k) for k in inputs] + [plan.name]
        book.derive(model_id, name, inputs, point, plan_signature(plans), replicates)
    return {"id_axis": columns[:-1], "n_models": int(points.shape[1]) if baseline else len(members),
            "fit": None if fit is None else [float(c) for c in fit]}  # fmt: skip
