"""The shape-bias analysis on the cue-conflict stimuli (docs/protocol.md §6, paper Fig. 5).

Intervals resample the stimuli (within shape class: the set has the same number of stimuli per class by design).
"""

from __future__ import annotations

import numpy as np

from beyond_imagenet.analyses.common import AnalysisContext, figure_path, provenance_from_cache
from beyond_imagenet.analyses.contracts import check_cache
from beyond_imagenet.analyses.estimates import dataset_plan, new_book
from beyond_imagenet.base.config import ShapeBiasConfig
from beyond_imagenet.base.errors import UserError
from beyond_imagenet.base.record import ResultRecord
from beyond_imagenet.data.cue_conflict import CATEGORIES, parse_cue_conflict_name
from beyond_imagenet.figures.shape_bias import save_shape_bias_figure
from beyond_imagenet.metrics.estimates import attach
from beyond_imagenet.metrics.shape_bias import decision_names, decisions_from_logits, shape_bias, shape_bias_statistics


def _metrics(result: dict) -> dict[str, float]:
    """The record's metrics; NaN (no shape or texture decision) is not logged."""
    metrics = {
        "shape_bias/overall": result["shape_bias"],
        "shape_bias/fraction_correct_shape": result["fraction_correct_shape"],
        "shape_bias/fraction_correct_texture": result["fraction_correct_texture"],
        "shape_bias/accuracy_16": 100 * result["accuracy_16"],
    }
    metrics.update({f"shape_bias/{c}/shape_bias": v["shape_bias"] for c, v in result["per_class"].items()})
    return {k: v for k, v in metrics.items() if v == v}


def run_shape_bias(config: ShapeBiasConfig, ctx: AnalysisContext) -> list[ResultRecord]:
    """Shape bias on the cue-conflict set: 16-class decision by mean probability over 207 indices (§6)."""
    dataset = config.dataset
    records, results, book = [], {}, new_book(ctx.statistics)
    for model_id in ctx.models:
        cache = ctx.store.get(dataset, model_id)
        check_cache(cache, "cue_conflict")  # target = the file name's shape category (docs/cache.md)
        if cache.logits.shape[1] != 1000:
            raise UserError(f"shape bias needs 1000 ImageNet logits; {cache.path} has {cache.logits.shape[1]}")
        shapes = [CATEGORIES[t] for t in cache.targets]
        textures = [parse_cue_conflict_name(s, i)[1] for s, i in zip(shapes, cache.sample_ids, strict=True)]
        decisions = decision_names(decisions_from_logits(cache.logits))
        result = shape_bias(decisions, shapes, textures)
        metrics = _metrics(result)
        plan = dataset_plan(ctx.statistics, ctx.datasets, dataset, cache.sample_ids, cache.targets)
        hits = int(np.sum(np.asarray(decisions, dtype=object) == np.asarray(shapes, dtype=object)))
        for name, statistic in shape_bias_statistics(decisions, shapes, textures).items():
            if f"shape_bias/{name}" in metrics:
                exact = (hits, len(shapes)) if name == "accuracy_16" else None
                book.add(model_id, f"shape_bias/{name}", plan, statistic, exact)
        details = {k: result[k] for k in ("n_images", "n_conflict", "n_excluded", "shape_bias_defined")}
        records.append(
            ResultRecord("shape_bias", model_id, dataset, metrics, {}, details, provenance_from_cache(cache))
        )
        results[model_id] = result
    estimates = book.resolve()
    for record in records:
        attach(record, estimates[record.model_id])
    path = save_shape_bias_figure(results, figure_path(ctx.figures_dir, "shape_bias", dataset, "all_models"))
    for record in records:
        record.artifacts.append(str(path))
    return records
