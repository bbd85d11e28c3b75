"""CKA results (docs/protocol.md §10, paper Fig. 8): records, CKA matrices and figures from the CKA pass.

The pass itself (``inference.cka_pass``) streams minibatch Gram matrices through :class:`MinibatchCKA`
accumulators; this module summarises each model's matrix per layer type, compares models, writes the matrices as
``.npz`` and draws Fig. 8.

Intervals resample minibatches: one plan for the pass (its image ids and batch size fix the batches), so every
model's and every pair's summaries are drawn on the same resamples (paired). With a single minibatch there is
nothing to resample and no interval.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from beyond_imagenet.analyses.common import figure_path
from beyond_imagenet.analyses.estimates import new_book
from beyond_imagenet.base.config import CkaConfig, StatisticsConfig
from beyond_imagenet.base.files import atomic_write_bytes
from beyond_imagenet.base.provenance import environment_record
from beyond_imagenet.base.record import ResultRecord
from beyond_imagenet.figures.cka import save_cross_grid, save_fig8_grid
from beyond_imagenet.inference.cka_pass import SUBSET_RULE, CkaAccumulator, CkaPlan
from beyond_imagenet.metrics.cka import (
    cka_statistics,
    cross_summary,
    cross_summary_statistics,
    summarise,
    summary_statistics,
    type_matrices,
)
from beyond_imagenet.metrics.estimates import EstimateBook, attach
from beyond_imagenet.metrics.resampling import ResamplePlan, ids_digest
from beyond_imagenet.models.spec import ModelSpec
from beyond_imagenet.models.taps import CONVNEXT_CONV_CHOICE


@dataclass(frozen=True)
class CkaOutputs:
    """Where the CKA stage writes its figures and matrices."""

    figures: Path
    matrices: Path


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _base_provenance(plan: CkaPlan, module: CkaAccumulator, config: CkaConfig, precision: str) -> dict:
    return {
        "dataset": {**plan.dataset.manifest(), "subset_rule": SUBSET_RULE, "fraction": config.fraction},
        "batch_sizes": module.batch_sizes,
        "dropped_last_batch_images": module.dropped_images,
        "precision": precision,
        "accelerator": module.accelerator_used,
        "hsic": "unbiased HSIC_1 (Song et al. 2012), linear kernel, float64; CKA = ratio of minibatch means",
        "environment": environment_record(),
    }


def _model_record(
    plan: CkaPlan, spec: ModelSpec, module: CkaAccumulator, sets: dict[str, list[str]], config: CkaConfig, out
) -> tuple[ResultRecord, dict[str, np.ndarray]]:
    """One model's record (summaries per layer type) and its per-type matrices; the matrices file is written."""
    names, matrix = module.within[spec.id].result()
    matrices = type_matrices(names, matrix, sets)
    wanted = {k: matrices[k] for k in config.layer_types}
    metrics = {f"cka/{kind}/{stat}": v for kind, m in wanted.items() for stat, v in summarise(m).items()}
    matrix_path = out.matrices / plan.dataset.name / f"{spec.id.replace(':', '_')}.npz"
    atomic_write_bytes(matrix_path, _npz_bytes({"all": matrix, **{f"type_{k}": v for k, v in wanted.items()}}))
    record = ResultRecord(
        analysis="cka",
        model_id=spec.id,
        dataset=plan.dataset.name,
        metrics=metrics,
        params=plan.config,
        details={"layers": {kind: sets[kind] for kind in wanted}, "matrices_file": str(matrix_path)},
        provenance={
            "model": spec.as_record(),
            "preprocessing": plan.preprocessing[spec.id].as_record(),
            "layer_choice": CONVNEXT_CONV_CHOICE if spec.family == "convnet" else "attention output (element 0)",
        },
        artifacts=[str(matrix_path)],
    )
    return record, wanted


def _cross_models(module: CkaAccumulator, records: dict[str, ResultRecord]) -> dict[tuple[str, str], np.ndarray]:
    """Cross-model CKA matrices; each model's record gets its summaries against every other model."""
    cross = {}
    for (a, b), accumulator in module.cross.items():
        _, _, matrix = accumulator.result_cross()
        cross[(a, b)] = matrix
        for this, other, view in ((a, b, matrix), (b, a, matrix.T)):
            for stat, value in cross_summary(view).items():
                records[this].metrics[f"cka_cross/{other}/{stat}"] = value
    return cross


def minibatch_plan(
    sample_ids: list[str], batch_size: int, batches: int, statistics: StatisticsConfig
) -> ResamplePlan | None:
    """The plan of the CKA pass: ``batches`` minibatches of ``batch_size`` of these images, in this order (§10).

    None for a single minibatch: a bootstrap over one unit would only repeat it.
    """
    if batches < 2:
        return None
    key = f"cka:{ids_digest(sample_ids)}:batch{batch_size}/minibatches"
    return ResamplePlan(key, batches, statistics.resamples, statistics.seed, unit="minibatches")


def interval_details(plan: ResamplePlan | None, batches: int) -> dict:
    """What a record says of its intervals: minibatches resampled and how many, or why there are none."""
    if plan is None:
        return {"resampling": "none", "minibatches": batches, "reason": "a single minibatch: no interval"}
    return {"resampling": "bootstrap over the CKA minibatches", "minibatches": batches, "plan": plan.name}


def _add_estimates(
    book: EstimateBook,
    plan: ResamplePlan,
    module: CkaAccumulator,
    layer_types: dict[str, dict[str, list[str]]],
    kinds: list[str],
) -> None:
    """Every summary of every model's layer-type matrices and of every pair's cross matrix (both ways)."""
    for model_id, accumulator in module.within.items():
        terms = accumulator.batch_terms()
        position = {name: i for i, name in enumerate(accumulator.row_layers)}
        for kind in kinds:
            index = [position[name] for name in layer_types[model_id][kind]]
            for stat, statistic in cka_statistics(terms.select(index, index), summary_statistics).items():
                book.add(model_id, f"cka/{kind}/{stat}", plan, statistic)
    for (a, b), accumulator in module.cross.items():
        terms = accumulator.batch_terms()
        for this, other, view in ((a, b, terms), (b, a, terms.transposed())):
            for stat, statistic in cka_statistics(view, cross_summary_statistics).items():
                book.add(this, f"cka_cross/{other}/{stat}", plan, statistic)


def attach_intervals(
    records: dict[str, ResultRecord],
    sample_ids: list[str],
    module: CkaAccumulator,
    layer_types: dict[str, dict[str, list[str]]],
    config: CkaConfig,
    statistics: StatisticsConfig,
) -> None:
    """Intervals and replicates of every summary metric of ``records`` (by model), resampling the minibatches (§10).

    ``sample_ids`` are the images of the pass in loader order; every record's details say how it was resampled.
    """
    batches = len(module.batch_sizes)
    resample_plan = minibatch_plan(sample_ids, config.batch_size, batches, statistics)
    for record in records.values():
        record.details["intervals"] = interval_details(resample_plan, batches)
    if resample_plan is None:
        return
    book = new_book(statistics)
    _add_estimates(book, resample_plan, module, layer_types, list(config.layer_types))
    estimates = book.resolve()
    for model_id, record in records.items():
        attach(record, estimates.get(model_id, {}))


def cka_records(
    plan: CkaPlan,
    module: CkaAccumulator,
    layer_types: dict[str, dict[str, list[str]]],
    config: CkaConfig,
    precision: str,
    out: CkaOutputs,
    statistics: StatisticsConfig,
) -> list[ResultRecord]:
    """One record per model (within-model summaries, cross-model ones, their intervals), the matrices and Fig. 8."""
    base = _base_provenance(plan, module, config, precision)
    records, per_model = {}, {}
    for spec in plan.specs:
        record, per_model[spec.id] = _model_record(plan, spec, module, layer_types[spec.id], config, out)
        record.provenance = {**base, **record.provenance}
        records[spec.id] = record
    figures = [save_fig8_grid(per_model, figure_path(out.figures, "cka", plan.dataset.name, "all_models"))]
    cross = _cross_models(module, records)
    attach_intervals(records, plan.dataset.sample_ids, module, layer_types, config, statistics)
    if cross:
        figures.append(save_cross_grid(cross, figure_path(out.figures, "cka", plan.dataset.name, "cross_models")))
        cross_path = out.matrices / plan.dataset.name / "cross_models.npz"
        atomic_write_bytes(cross_path, _npz_bytes({f"{a}__vs__{b}": m for (a, b), m in cross.items()}))
        figures.append(cross_path)
    for record in records.values():
        record.artifacts += [str(f) for f in figures]
    return list(records.values())
