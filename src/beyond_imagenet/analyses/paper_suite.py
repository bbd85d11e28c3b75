"""The paper's ImageNet-family analyses over cached predictions: robustness (Table 2, Fig. 6 top), ImageNet-X
error ratios (Fig. 2), PUG-ImageNet (Fig. 3) and shape/texture bias (Fig. 5). Each reads caches only and returns
one result record per model; the metric functions live in their own modules and are tested there.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from beyond_imagenet.analyses.accuracy import topk_accuracy
from beyond_imagenet.analyses.common import ResultRecord, figure_path, label_space_logits, provenance_from_cache
from beyond_imagenet.analyses.figures import grouped_bars, save_figure
from beyond_imagenet.analyses.robustness_metrics import ID_DATASET, TABLE2_SHIFTS
from beyond_imagenet.analyses.store import CacheStore
from beyond_imagenet.config import Params
from beyond_imagenet.data.registry import dataset_kind
from beyond_imagenet.errors import UserError

ROBUSTNESS_COLUMNS = (ID_DATASET, *TABLE2_SHIFTS)  # Table 2 columns, in the paper's order
JANUS_SHIFTS = ("imagenet_v2", "imagenet_sketch", "imagenet_r", "imagenet_a")  # TRANSFER.md §5.2


def _top1(cache) -> float:
    return topk_accuracy(label_space_logits(cache), cache.targets, 1)


def _imagenet_c_accuracies(store: CacheStore, dataset: str, model_id: str) -> dict:
    from beyond_imagenet.analyses.robustness_metrics import imagenet_c_summary

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


def _robustness_for_model(params: Params, store: CacheStore, model_id: str) -> tuple[dict, dict, dict]:
    """(top-1 per Table 2 column, extra metrics, provenance) for one model."""
    from beyond_imagenet.analyses.real import load_real_labels, real_accuracy

    config = params.analyses.robustness
    accuracy, extra, provenance, extra_details = {}, {}, {}, {}
    for name in config.datasets:
        role = dataset_kind(name, params.datasets[name]).name
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
            from beyond_imagenet.analyses.robustness_metrics import multilabel_top1_accuracy

            if cache.label_lists is None:
                raise UserError(f"{cache.path} has no label_lists.json; ImageNet-Hard is scored multi-label (§7.6)")
            accuracy[role] = multilabel_top1_accuracy(cache.logits.argmax(axis=1), cache.label_lists)["top1"]
            continue
        accuracy[role] = _top1(cache)
        if role == "imagenet_val":
            if cache.logits.shape[1] != 1000:
                raise UserError(f"ReaL needs the 1000 ImageNet logits; {cache.path} has {cache.logits.shape[1]}")
            predicted = cache.logits.argmax(axis=1)  # ReaL labels are ImageNet indices, whatever the label space
            real = real_accuracy(predicted, cache.sample_ids, load_real_labels(config.real_labels))
            accuracy["imagenet_real"] = real["accuracy"]
            extra["imagenet_real/n_unlabeled_skipped"] = float(real["n_unlabeled_skipped"])
    return accuracy, extra, provenance, extra_details


def run_robustness(params: Params, store: CacheStore) -> list[ResultRecord]:
    """Table 2 per model; the average needs all 7 shifted sets and says which are missing otherwise."""
    from beyond_imagenet.analyses.robustness_metrics import (
        average_robustness,
        effective_robustness_ratio,
        robustness_figure,
        table2_average,
    )

    records, table = [], {}
    for model_id in params.models:
        accuracy, extra, provenance, extra_details = _robustness_for_model(params, store, model_id)
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
    path = figure_path(params.results_dir, "robustness", "table2", "all_models")
    save_figure(robustness_figure(table), path)
    for record in records:
        record.artifacts.append(str(path))
    return records


def run_imagenet_x(params: Params, store: CacheStore) -> list[ResultRecord]:
    """16 error ratios per model (Fig. 2); denominator as the imagenet-x package unless configured otherwise."""
    from beyond_imagenet.analyses.imagenet_x import (
        FACTORS,
        factor_accuracies,
        load_annotations,
        predictions_from_logits,
    )

    config = params.analyses.imagenet_x
    annotations = load_annotations(directory=config.annotations_dir)
    records, series = [], {}
    for model_id in params.models:
        cache = store.get(config.dataset, model_id)
        predictions = predictions_from_logits(cache.logits, cache.sample_ids)
        result = factor_accuracies(
            predictions,
            annotations,
            denominator=config.denominator,
            allow_partial=config.allow_partial,
            directory=config.annotations_dir,
        )
        metrics = {f"imagenet_x/{f}/error_ratio": v for f, v in result["error_ratio"].items()}
        metrics.update({f"imagenet_x/{f}/accuracy": 100 * v for f, v in result["accuracy"].items()})
        metrics["imagenet_x/average"] = 100 * result["average"]
        details = {k: result[k] for k in ("count", "n_joined", "n_annotated", "coverage", "denominator")}
        params_used = {"denominator": config.denominator, "annotations": config.annotations_dir or "imagenet-x 0.0.7"}
        records.append(
            ResultRecord(
                "imagenet_x", model_id, config.dataset, metrics, params_used, details, provenance_from_cache(cache)
            )
        )
        series[model_id] = [result["error_ratio"].get(f) for f in FACTORS]
    path = figure_path(params.results_dir, "imagenet_x", config.dataset, "all_models")
    save_figure(grouped_bars(FACTORS, series, "Error ratio", "ImageNet-X error ratios (Fig. 2)", reference=1.0), path)
    for record in records:
        record.artifacts.append(str(path))
    return records


def run_pug(params: Params, store: CacheStore) -> list[ResultRecord]:
    """Top-1 per PUG factor subset and their unweighted mean (Fig. 3), argmax over all 1000 classes (§4)."""
    from beyond_imagenet.analyses.pug import CLASS_MAP_FILE, PUG_FACTORS, load_class_map, pug_accuracies

    config = params.analyses.pug
    class_map = load_class_map(Path(params.datasets[config.dataset].path) / CLASS_MAP_FILE)
    records, series = [], {}
    for model_id in params.models:
        subsets, first = {}, None
        for factor in store.variants(config.dataset, model_id):
            cache = store.get(config.dataset, model_id, factor)
            first = first or cache
            subsets[factor] = (cache.logits.argmax(axis=1), cache.targets)
        result = pug_accuracies(subsets, class_map, config.label_map)
        metrics = {f"pug/{k}/top1" if k != "average" else "pug/average": v for k, v in result.items()}
        records.append(
            ResultRecord(
                "pug", model_id, config.dataset, metrics, {"label_map": config.label_map}, {},
                provenance_from_cache(first),
            )
        )  # fmt: skip
        series[model_id] = [result.get(f) for f in PUG_FACTORS] + [result["average"]]
    path = figure_path(params.results_dir, "pug", config.dataset, "all_models")
    groups = [*PUG_FACTORS, "average"]
    save_figure(grouped_bars(groups, series, "Top-1 accuracy (%)", "PUG-ImageNet (Fig. 3)", (0, 100)), path)
    for record in records:
        record.artifacts.append(str(path))
    return records


def _shape_bias_figure(results: dict[str, dict], path: Path) -> Path:
    """Fig. 5: per shape class (rows) the fraction of texture decisions; dashed line = pooled, per model."""
    from beyond_imagenet.analyses.shape_bias import CATEGORIES

    fig = Figure(figsize=(6.0, 6.0), layout="constrained")
    ax = fig.add_subplot()
    rows = np.arange(len(CATEGORIES))
    for i, (model_id, result) in enumerate(results.items()):
        colour = f"C{i}"
        per_class = [result["per_class"].get(c, {}).get("shape_bias", np.nan) for c in CATEGORIES]
        ax.plot(1 - np.asarray(per_class, dtype=float), rows, "o", color=colour, label=model_id)
        if result["shape_bias_defined"]:
            ax.axvline(1 - result["shape_bias"], color=colour, linestyle="--", linewidth=1)
    ax.set_yticks(rows, CATEGORIES)
    ax.set_xlim(0, 1)
    ax.set_xlabel("Fraction of texture decisions (1 - shape bias)")
    ax.set_title("Shape vs texture bias (Fig. 5)")
    ax.legend(fontsize="small")
    return save_figure(fig, path)


def run_shape_bias(params: Params, store: CacheStore) -> list[ResultRecord]:
    """Shape bias on the cue-conflict set: 16-class decision by mean probability over 207 indices (§6)."""
    from beyond_imagenet.analyses.shape_bias import (
        CATEGORIES,
        decision_names,
        decisions_from_logits,
        parse_cue_conflict_name,
        shape_bias,
    )

    dataset = params.analyses.shape_bias.dataset
    records, results = [], {}
    for model_id in params.models:
        cache = store.get(dataset, model_id)
        if cache.logits.shape[1] != 1000:
            raise UserError(f"shape bias needs 1000 ImageNet logits; {cache.path} has {cache.logits.shape[1]}")
        shapes = [CATEGORIES[t] for t in cache.targets]
        textures = [parse_cue_conflict_name(s, i)[1] for s, i in zip(shapes, cache.sample_ids, strict=True)]
        result = shape_bias(decision_names(decisions_from_logits(cache.logits)), shapes, textures)
        metrics = {
            "shape_bias/overall": result["shape_bias"],
            "shape_bias/fraction_correct_shape": result["fraction_correct_shape"],
            "shape_bias/fraction_correct_texture": result["fraction_correct_texture"],
            "shape_bias/accuracy_16": 100 * result["accuracy_16"],
        }
        metrics.update({f"shape_bias/{c}": v["shape_bias"] for c, v in result["per_class"].items()})
        metrics = {k: v for k, v in metrics.items() if v == v}  # NaN (no shape or texture decision) is not logged
        details = {k: result[k] for k in ("n_images", "n_conflict", "n_excluded", "shape_bias_defined")}
        records.append(
            ResultRecord("shape_bias", model_id, dataset, metrics, {}, details, provenance_from_cache(cache))
        )
        results[model_id] = result
    path = _shape_bias_figure(results, figure_path(params.results_dir, "shape_bias", dataset, "all_models"))
    for record in records:
        record.artifacts.append(str(path))
    return records
