"""The robustness analysis: paper Table 2 and Fig. 6 (top), ImageNet-C, ReaL, JANuS ratios (docs/protocol.md §7).

Each listed dataset's registered kind is its Table 2 column; ReaL is scored on the ImageNet val cache. The metric
functions are ``metrics.robustness`` and ``metrics.real``. Every top-1 has an exact interval; the ImageNet-C means,
mCE, the Table 2 average and the ratios combine the sets' bootstrap replicates (ImageNet-C's 75 sets share their
images, so they share resamples). Effective robustness against a baseline is ``analyses.effective_robustness``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from beyond_imagenet.analyses.common import AnalysisContext, figure_path, provenance_from_cache
from beyond_imagenet.analyses.effective_robustness import add_effective_robustness
from beyond_imagenet.analyses.estimates import dataset_plan, new_book
from beyond_imagenet.base.config import RobustnessConfig
from beyond_imagenet.base.errors import UserError
from beyond_imagenet.base.record import ResultRecord
from beyond_imagenet.data.kinds import IMAGENET_C_CORRUPTIONS, IMAGENET_C_SEVERITIES
from beyond_imagenet.data.real_labels import load_real_labels
from beyond_imagenet.data.registry import dataset_kind
from beyond_imagenet.figures.common import save_figure
from beyond_imagenet.figures.robustness import robustness_figure
from beyond_imagenet.inference.cache import InferenceCache, label_space_logits
from beyond_imagenet.metrics.accuracy import top1_predictions, topk_correct
from beyond_imagenet.metrics.estimates import EstimateBook, attach, mean_of
from beyond_imagenet.metrics.real import real_accuracy, real_hits
from beyond_imagenet.metrics.resampling import LinearStatistic, ratio
from beyond_imagenet.metrics.robustness import (
    ID_DATASET,
    JANUS_SHIFTS,
    TABLE2_SHIFTS,
    average_robustness,
    effective_robustness_ratio,
    imagenet_c_summary,
    mce_from_corruption_accuracies,
    multilabel_hits,
    multilabel_top1_accuracy,
    table2_average,
)

ROBUSTNESS_COLUMNS = (ID_DATASET, *TABLE2_SHIFTS)  # Table 2 columns, in the paper's order
REAL_PARTIAL_SETTING = "analyses.robustness.real_allow_partial: true in params.yaml"


@dataclass
class ModelRow:
    """One model's Table 2 row as the analysis builds it: top-1 per column, extra metrics, provenance, details."""

    accuracy: dict[str, float] = field(default_factory=dict)
    extra: dict[str, float] = field(default_factory=dict)
    provenance: dict[str, dict] = field(default_factory=dict)
    details: dict = field(default_factory=dict)


def _needs_real(config: RobustnessConfig, ctx: AnalysisContext) -> bool:
    """Whether an ImageNet val dataset is listed (its cache is also scored against the ReaL labels)."""
    return any(dataset_kind(name, ctx.datasets[name]).name == ID_DATASET for name in config.datasets)


def _hits_statistic(hit: np.ndarray, labelled: np.ndarray) -> LinearStatistic:
    """Top-1 (%) over the labelled images: columns [labelled and hit, labelled]."""
    return LinearStatistic(np.stack([hit & labelled, labelled], axis=1).astype(np.float64), ratio(0, 1, 100.0))


def add_top1(book: EstimateBook, ctx: AnalysisContext, metric: str, cache: InferenceCache) -> float:
    """Top-1 (%) of a cache on its label space, added to ``book`` with its exact count; returns it."""
    correct = topk_correct(label_space_logits(cache), cache.targets, 1)
    hits = np.ones_like(correct)
    return add_hits(book, ctx, metric, cache, correct, hits)


def add_hits(
    book: EstimateBook, ctx: AnalysisContext, metric: str, cache: InferenceCache, hit: np.ndarray, labelled: np.ndarray
) -> float:
    """Top-1 (%) from per-image hits over the labelled images of a cache, added to ``book``; returns it."""
    plan = dataset_plan(ctx.statistics, ctx.datasets, cache.dataset, cache.sample_ids, cache.targets)
    k, n = int((hit & labelled).sum()), int(labelled.sum())
    book.add(cache.model_id, metric, plan, _hits_statistic(hit, labelled), (k, n))
    return 100.0 * k / n


def _imagenet_c(book: EstimateBook, ctx: AnalysisContext, dataset: str, model_id: str, row: ModelRow) -> None:
    """The 75 sets' top-1, their means per corruption and overall, and mCE."""
    per_set = {}
    for variant in ctx.store.variants(dataset, model_id):
        corruption, severity = variant.split("/")
        cache = ctx.store.get(dataset, model_id, variant)
        per_set[(corruption, int(severity))] = add_top1(book, ctx, f"robustness/imagenet_c/{variant}/top1", cache)
        row.provenance[f"{dataset}/{variant}"] = provenance_from_cache(cache)
    summary = imagenet_c_summary(per_set)  # checks that all 75 sets are there
    for corruption in IMAGENET_C_CORRUPTIONS:
        inputs = [(model_id, f"robustness/imagenet_c/{corruption}/{s}/top1") for s in IMAGENET_C_SEVERITIES]
        book.derive(model_id, f"robustness/imagenet_c/{corruption}/top1", inputs, mean_of)
    corruptions = [(model_id, f"robustness/imagenet_c/{c}/top1") for c in IMAGENET_C_CORRUPTIONS]
    book.derive(model_id, "robustness/imagenet_c/top1", corruptions, mean_of)
    book.derive(model_id, "robustness/imagenet_c/mce", corruptions, mce_from_corruption_accuracies)
    row.details["imagenet_c_per_set"] = {f"{c}/{s}": v for (c, s), v in sorted(per_set.items())}
    row.accuracy["imagenet_c"] = summary["mean_accuracy"]
    row.extra["imagenet_c/mce"] = summary["mce"]
    row.extra.update({f"imagenet_c/{c}/top1": v for c, v in summary["per_corruption_accuracy"].items()})


def _imagenet_val(
    book: EstimateBook, ctx: AnalysisContext, cache: InferenceCache, real: dict, row: ModelRow, allow_partial: bool
) -> None:
    """Top-1 on ImageNet val and on its ReaL labels (the 1000 ImageNet logits, whatever the label space)."""
    row.accuracy[ID_DATASET] = add_top1(book, ctx, f"robustness/{ID_DATASET}/top1", cache)
    if cache.logits.shape[1] != 1000:
        raise UserError(f"ReaL needs the 1000 ImageNet logits; {cache.path} has {cache.logits.shape[1]}")
    predicted = top1_predictions(cache.logits)
    scored = real_accuracy(predicted, cache.sample_ids, real, allow_partial, REAL_PARTIAL_SETTING)  # checks coverage
    hit, labelled = real_hits(predicted, cache.sample_ids, real)
    add_hits(book, ctx, "robustness/imagenet_real/top1", cache, hit, labelled)
    row.accuracy["imagenet_real"] = scored["accuracy"]
    row.extra["imagenet_real/n_unlabeled_skipped"] = float(scored["n_unlabeled_skipped"])


def _role(name: str, ctx: AnalysisContext) -> str:
    role = dataset_kind(name, ctx.datasets[name]).name
    if role not in ROBUSTNESS_COLUMNS:
        raise UserError(
            f"analyses.robustness: dataset {name!r} is of kind {role!r}; Table 2 takes "
            f"{', '.join(c for c in ROBUSTNESS_COLUMNS if c != 'imagenet_real')}"
        )
    return role


def _model_row(config: RobustnessConfig, ctx: AnalysisContext, real: dict, book: EstimateBook, model_id: str):
    """One model's Table 2 row; its metrics go into ``book``."""
    row = ModelRow()
    for name in config.datasets:
        role = _role(name, ctx)
        if role == "imagenet_c":
            _imagenet_c(book, ctx, name, model_id, row)
            continue
        cache = ctx.store.get(name, model_id)
        row.provenance[name] = provenance_from_cache(cache)
        if role == "imagenet_hard":
            if cache.label_lists is None:
                raise UserError(f"{cache.path} has no label_lists.json; ImageNet-Hard is scored multi-label (§7.6)")
            predicted = top1_predictions(cache.logits)
            row.accuracy[role] = multilabel_top1_accuracy(predicted, cache.label_lists)["top1"]
            add_hits(book, ctx, f"robustness/{role}/top1", cache, *multilabel_hits(predicted, cache.label_lists))
        elif role == ID_DATASET:
            _imagenet_val(book, ctx, cache, real, row, config.real_allow_partial)
        else:
            row.accuracy[role] = add_top1(book, ctx, f"robustness/{role}/top1", cache)
    return row


def _summary_metrics(book: EstimateBook, model_id: str, row: ModelRow) -> dict[str, float]:
    """The row's metrics with the Table 2 average, the effective robustness ratio and JANuS's average robustness."""
    metrics = {f"robustness/{k}/top1": v for k, v in row.accuracy.items()}
    metrics.update({f"robustness/{k}": v for k, v in row.extra.items()})
    missing = [s for s in TABLE2_SHIFTS if s not in row.accuracy]
    if not missing:
        metrics["robustness/average"] = table2_average(row.accuracy)
        book.derive(
            model_id, "robustness/average", [(model_id, f"robustness/{s}/top1") for s in TABLE2_SHIFTS], mean_of
        )
        if ID_DATASET in row.accuracy:
            ratio_value = effective_robustness_ratio(metrics["robustness/average"], row.accuracy[ID_DATASET])
            metrics["robustness/effective_robustness_ratio"] = ratio_value
            inputs = [(model_id, "robustness/average"), (model_id, f"robustness/{ID_DATASET}/top1")]
            book.derive(model_id, "robustness/effective_robustness_ratio", inputs, lambda v: v[:, 0] / v[:, 1])
    if all(s in row.accuracy for s in JANUS_SHIFTS):
        metrics["robustness/janus_average_robustness"] = average_robustness(row.accuracy, JANUS_SHIFTS)
        inputs = [(model_id, f"robustness/{s}/top1") for s in JANUS_SHIFTS]
        book.derive(model_id, "robustness/janus_average_robustness", inputs, mean_of)
    row.details.update({"table2_row": row.accuracy, "average_missing": missing})
    return metrics


def run_robustness(config: RobustnessConfig, ctx: AnalysisContext) -> list[ResultRecord]:
    """Table 2 per model; the average needs all 7 shifted sets and says which are missing otherwise."""
    real = load_real_labels(config.real_labels) if _needs_real(config, ctx) else {}
    book, records, table = new_book(ctx.statistics), {}, {}
    for model_id in ctx.models:
        row = _model_row(config, ctx, real, book, model_id)
        metrics = _summary_metrics(book, model_id, row)
        record = ResultRecord("robustness", model_id, "table2", metrics, details=row.details)
        first = next(iter(row.provenance.values()), {})
        record.provenance = {**first, "datasets": row.provenance}
        records[model_id] = record
        table[model_id] = row.accuracy
    add_effective_robustness(book, config, ctx, records)
    for model_id, estimates in book.resolve().items():
        attach(records[model_id], estimates)
    path = figure_path(ctx.figures_dir, "robustness", "table2", "all_models")
    save_figure(robustness_figure(table), path)
    for record in records.values():
        record.artifacts.append(str(path))
    return list(records.values())
