"""Transformation invariance (docs/protocol.md §9, paper Fig. 7): accuracy against scale, shift and resolution.

Reads only the sweep caches that ``inference.sweeps`` writes (one cache variant per sweep point, e.g.
``scale/1.25``). Per model and sweep point:

* ``invariance/<kind>/<value>/top1``: top-1 accuracy (%) on the dataset's label space (Fig. 7);
* ``invariance/<kind>/<value>/correct_class_prob``: mean softmax probability of the true class, the official
  code's ``correct_class_prob`` (softmax over the label-space logits: all 1000 classes on ImageNet val);
* ``invariance/<kind>/<value>/consistency``: % of images whose top-1 prediction equals the prediction at the
  sweep's reference point (scale 1, shift 0, the model's native resolution); beyond the paper.
"""

from __future__ import annotations

from pathlib import Path

from beyond_imagenet.analyses.common import AnalysisContext, check_targets, figure_path, provenance_from_cache
from beyond_imagenet.analyses.contracts import foreign_model_spec
from beyond_imagenet.analyses.estimates import dataset_plan, new_book
from beyond_imagenet.analyses.store import CacheStore
from beyond_imagenet.base.config import InvarianceConfig
from beyond_imagenet.base.errors import CacheFormatError, UnknownNameError, UserError
from beyond_imagenet.base.record import ResultRecord
from beyond_imagenet.figures.common import save_figure
from beyond_imagenet.figures.invariance import invariance_figure
from beyond_imagenet.inference.cache import InferenceCache, cache_path, label_space_logits
from beyond_imagenet.inference.sweeps import (
    INFER_HINT,
    SWEEP_KINDS,
    SweepPoint,
    reference_value,
    subset_variant,
    sweep_points,
    sweep_variant,
)
from beyond_imagenet.metrics.accuracy import NO_PREDICTION, top1_predictions, topk_accuracy, topk_correct
from beyond_imagenet.metrics.estimates import EstimateBook, attach
from beyond_imagenet.metrics.invariance import (
    correct_class_probability,
    prediction_consistency,
    true_class_probabilities,
)
from beyond_imagenet.metrics.resampling import mean_statistic
from beyond_imagenet.models.catalogue import resolve_model
from beyond_imagenet.models.spec import ModelSpec

METRICS: tuple[str, ...] = ("top1", "correct_class_prob", "consistency")
POINT_PROVENANCE = ("cache_path", "cache_config_hash", "preprocessing", "n_samples", "n_skipped")


def model_spec(model_id: str, store: CacheStore) -> ModelSpec:
    """The catalogue spec; a model another tool's caches hold gets its input size from them (docs/cache.md)."""
    try:
        return resolve_model(model_id)
    except UnknownNameError:
        return foreign_model_spec(model_id, store.model_meta(model_id))


def _load_point(store: CacheStore, config: InvarianceConfig, model_id: str, point: SweepPoint) -> InferenceCache:
    """The cache of one sweep point, checked to be that point; a missing one says which command writes it."""
    variant = sweep_variant(config, point)
    path = cache_path(store.cache_dir, config.dataset, model_id, variant)
    if not store.has(config.dataset, model_id, variant):
        raise UserError(
            f"invariance: no sweep cache for {model_id} at {point.label} on {config.dataset!r} ({path}); {INFER_HINT} "
            "with the same models, scales, shifts, resolutions and images_per_class as this analysis."
        )
    cache = store.get(config.dataset, model_id, variant)
    recorded = (cache.meta.get("config") or {}).get("sweep")
    if recorded != point.as_record():
        raise CacheFormatError(f"{path}: its config records sweep {recorded!r}, expected {point.as_record()!r}")
    return cache


def _add_point(book: EstimateBook, ctx: AnalysisContext, label: str, cache: InferenceCache, reference) -> None:
    """One sweep point's three metrics into ``book`` (the points share their images, hence their resamples)."""
    logits = label_space_logits(cache)
    plan = dataset_plan(ctx.statistics, ctx.datasets, cache.dataset, cache.sample_ids, cache.targets)
    correct = topk_correct(logits, cache.targets, 1)
    predictions = top1_predictions(logits)
    same = (predictions == reference) & (predictions != NO_PREDICTION)  # as prediction_consistency
    prefix = f"invariance/{label}/"
    book.add(cache.model_id, prefix + "top1", plan, mean_statistic(correct, 100.0), (int(correct.sum()), len(correct)))
    book.add(
        cache.model_id,
        prefix + "correct_class_prob",
        plan,
        mean_statistic(true_class_probabilities(logits, cache.targets), 1.0),
    )
    book.add(cache.model_id, prefix + "consistency", plan, mean_statistic(same, 100.0), (int(same.sum()), len(same)))


def _sweep_curves(
    ctx: AnalysisContext, config: InvarianceConfig, model_id: str, book: EstimateBook
) -> tuple[dict, dict, InferenceCache]:
    """The curves of every sweep kind for one model, with each point's provenance; its metrics go into ``book``.

    Returns ({kind: {"values", "top1", "correct_class_prob", "consistency"}}, {point label: its provenance}, the
    scale-1 cache, whose provenance heads the record).
    """
    store = ctx.store
    spec = model_spec(model_id, store)
    curves, provenance, references = {}, {}, {}
    for kind in SWEEP_KINDS:
        points = [p for p in sweep_points(config, spec) if p.kind == kind]
        caches = {p: _load_point(store, config, model_id, p) for p in points}
        reference = references[kind] = caches[SweepPoint(kind, reference_value(kind, spec))]
        reference_predictions = top1_predictions(label_space_logits(reference))
        curve = {"values": [], **{m: [] for m in METRICS}}
        for point, cache in caches.items():
            if cache.sample_ids != reference.sample_ids:
                raise CacheFormatError(
                    f"{cache.path} and {reference.path} hold different images; rerun the sweeps ({INFER_HINT})"
                )
            logits = label_space_logits(cache)
            check_targets(cache, logits.shape[1])
            curve["values"].append(point.as_record()["value"])
            curve["top1"].append(topk_accuracy(logits, cache.targets, 1))
            curve["correct_class_prob"].append(correct_class_probability(logits, cache.targets))
            curve["consistency"].append(prediction_consistency(top1_predictions(logits), reference_predictions))
            _add_point(book, ctx, point.label, cache, reference_predictions)
            point_provenance = provenance_from_cache(cache)
            provenance[point.label] = {
                "sweep": point.as_record(),
                **{k: point_provenance[k] for k in POINT_PROVENANCE},
            }
        curves[kind] = curve
    return curves, provenance, references["scale"]


def _metrics(curves: dict) -> dict[str, float]:
    metrics = {}
    for kind, curve in curves.items():
        for i, value in enumerate(curve["values"]):
            label = SweepPoint(kind, value).label
            metrics.update({f"invariance/{label}/{m}": float(curve[m][i]) for m in METRICS})
    return metrics


def _save_figures(curves: dict[str, dict], figures_dir: Path, dataset: str) -> list[Path]:
    accuracy = invariance_figure(
        curves, "top1", "Top-1 accuracy (%)", f"Transformation invariance on {dataset} (Fig. 7)"
    )
    consistency = invariance_figure(
        curves, "consistency", "Same top-1 as the reference (%)", f"Prediction consistency on {dataset}"
    )
    return [
        save_figure(accuracy, figure_path(figures_dir, "invariance", dataset, "all_models")),
        save_figure(consistency, figure_path(figures_dir, "invariance", dataset, "consistency_all_models")),
    ]


def run_invariance(config: InvarianceConfig, ctx: AnalysisContext) -> list[ResultRecord]:
    """One record per model with every sweep point's top-1, true-class probability and consistency; Fig. 7."""
    if config.dataset is None:
        raise UserError("analyses.invariance.dataset is not set")
    records, curves, book = [], {}, new_book(ctx.statistics)
    for model_id in ctx.models:
        model_curves, points, reference = _sweep_curves(ctx, config, model_id, book)
        spec = model_spec(model_id, ctx.store)
        params_used = {
            "images_per_class": config.images_per_class,
            "subset": subset_variant(config) or "all images",
            "points": {kind: model_curves[kind]["values"] for kind in SWEEP_KINDS},
            "reference": {
                kind: SweepPoint(kind, reference_value(kind, spec)).as_record()["value"] for kind in SWEEP_KINDS
            },
        }
        details = {"curves": model_curves, "n_images": len(reference)}
        provenance = {**provenance_from_cache(reference), "points": points}
        record = ResultRecord("invariance", model_id, config.dataset, _metrics(model_curves), params_used, details)
        record.provenance = provenance
        records.append(record)
        curves[model_id] = model_curves
    estimates = book.resolve()
    for record in records:
        attach(record, estimates[record.model_id])
    figures = _save_figures(curves, ctx.figures_dir, config.dataset)
    for record in records:
        record.artifacts.extend(str(path) for path in figures)
    return records
