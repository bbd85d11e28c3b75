"""The robustness analysis: paper Table 2 and Fig. 6 (top), ImageNet-C, ReaL, JANuS ratios (docs/protocol.md §7).

Each listed dataset's registered kind is its Table 2 column; ReaL is scored on the ImageNet val cache. The metric
functions are ``metrics.robustness`` and ``metrics.real``.
"""

from __future__ import annotations

from beyond_imagenet.analyses.common import AnalysisContext, figure_path, provenance_from_cache
from beyond_imagenet.analyses.store import CacheStore
from beyond_imagenet.base.config import RobustnessConfig
from beyond_imagenet.base.errors import UserError
from beyond_imagenet.base.record import ResultRecord
from beyond_imagenet.data.real_labels import load_real_labels
from beyond_imagenet.data.registry import dataset_kind
from beyond_imagenet.figures.common import save_figure
from beyond_imagenet.figures.robustness import robustness_figure
from beyond_imagenet.inference.cache import label_space_logits
from beyond_imagenet.metrics.accuracy import topk_accuracy
from beyond_imagenet.metrics.real import real_accuracy
from beyond_imagenet.metrics.robustness import (
    ID_DATASET,
    TABLE2_SHIFTS,
    average_robustness,
    effective_robustness_ratio,
    imagenet_c_summary,
    multilabel_top1_accuracy,
    table2_average,
)

ROBUSTNESS_COLUMNS = (ID_DATASET, *TABLE2_SHIFTS)  # Table 2 columns, in the paper's order
JANUS_SHIFTS = ("imagenet_v2", "imagenet_sketch", "imagenet_r", "imagenet_a")  # docs/transfer.md §5.2


def _needs_real(config: RobustnessConfig, ctx: AnalysisContext) -> bool:
    """Whether an ImageNet val dataset is listed (its cache is also scored against the ReaL labels)."""
    return any(dataset_kind(name, ctx.datasets[name]).name == ID_DATASET for name in config.datasets)


def _top1(cache) -> float:
    return topk_accuracy(label_space_logits(cache), cache.targets, 1)


def _imagenet_c_accuracies(store: CacheStore, dataset: str, model_id: str) -> dict:
    per_set, provenance = {}, {}
    for variant in store.variants(dataset, model_id):
        corruption, severity = variant.split("/")
        cache = store.get(dataset, model_id, variant)
        per_set[(corruption, int(severity))] = _top1(cache)
        provenance[f"{dataset}/{variant}"] = provenance_from_cache(cache)
    summary = imagenet_c_summary(per_set)
    summary["per_set_accuracy"] = {
        f"{c}/{s}": v for (c, s), v in sorted(per_set.items())
    }  # every corruption x severity
    return summary, provenance


def _robustness_for_model(config: RobustnessConfig, ctx: AnalysisContext, real: dict, model_id: str) -> tuple:
    """(top-1 per Table 2 column, extra metrics, provenance, extra details) for one model."""
    store = ctx.store
    accuracy, extra, provenance, extra_details = {}, {}, {}, {}
    for name in config.datasets:
        role = dataset_kind(name, ctx.datasets[name]).name
        if role not in ROBUSTNESS_COLUMNS:
            raise UserError(
                f"analyses.robustness: dataset {name!r} is of kind {role!r}; Table 2 takes "
                f"{', '.join(c for c in ROBUSTNESS_COLUMNS if c != 'imagenet_real')}"
            )
        if role == "imagenet_c":
            summary, variant_provenance = _imagenet_c_accuracies(store, name, model_id)
            provenance.update(variant_provenance)
            extra_details["imagenet_c_per_set"] = summary["per_set_accuracy"]
            accuracy[role] = summary["mean_accuracy"]
            extra["imagenet_c/mce"] = summary["mce"]
            extra.update({f"imagenet_c/{c}/top1": v for c, v in summary["per_corruption_accuracy"].items()})
            continue
        cache = store.get(name, model_id)
        provenance[name] = provenance_from_cache(cache)
        if role == "imagenet_hard":
            if cache.label_lists is None:
                raise UserError(f"{cache.path} has no label_lists.json; ImageNet-Hard is scored multi-label (§7.6)")
            accuracy[role] = multilabel_top1_accuracy(cache.logits.argmax(axis=1), cache.label_lists)["top1"]
            continue
        accuracy[role] = _top1(cache)
        if role == "imagenet_val":
            if cache.logits.shape[1] != 1000:
                raise UserError(f"ReaL needs the 1000 ImageNet logits; {cache.path} has {cache.logits.shape[1]}")
            predicted = cache.logits.argmax(axis=1)  # ReaL labels are ImageNet indices, whatever the label space
            scored = real_accuracy(predicted, cache.sample_ids, real)
            accuracy["imagenet_real"] = scored["accuracy"]
            extra["imagenet_real/n_unlabeled_skipped"] = float(scored["n_unlabeled_skipped"])
    return accuracy, extra, provenance, extra_details


def run_robustness(config: RobustnessConfig, ctx: AnalysisContext) -> list[ResultRecord]:
    """Table 2 per model; the average needs all 7 shifted sets and says which are missing otherwise."""
    real = load_real_labels(config.real_labels) if _needs_real(config, ctx) else {}
    records, table = [], {}
    for model_id in ctx.models:
        accuracy, extra, provenance, extra_details = _robustness_for_model(config, ctx, real, model_id)
        metrics = {f"robustness/{k}/top1": v for k, v in accuracy.items()}
        metrics.update({f"robustness/{k}": v for k, v in extra.items()})
        missing = [s for s in TABLE2_SHIFTS if s not in accuracy]
        if not missing:
            metrics["robustness/average"] = table2_average(accuracy)
            if "imagenet_val" in accuracy:
                ratio = effective_robustness_ratio(metrics["robustness/average"], accuracy["imagenet_val"])
                metrics["robustness/effective_robustness_ratio"] = ratio
        if all(s in accuracy for s in JANUS_SHIFTS):
            metrics["robustness/janus_average_robustness"] = average_robustness(accuracy, JANUS_SHIFTS)
        details = {"table2_row": accuracy, "average_missing": missing, **extra_details}
        record = ResultRecord("robustness", model_id, "table2", metrics, details=details, provenance=provenance)
        first = next(iter(provenance.values()), {})
        record.provenance = {**first, "datasets": provenance}
        records.append(record)
        table[model_id] = accuracy
    path = figure_path(ctx.figures_dir, "robustness", "table2", "all_models")
    save_figure(robustness_figure(table), path)
    for record in records:
        record.artifacts.append(str(path))
    return records
