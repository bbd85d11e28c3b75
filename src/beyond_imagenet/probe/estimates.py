"""Intervals on the VTAB linear-probe results (paper §6, Table 3; docs/transfer.md §0.4, §2.5).

Per (model, task), from the saved test targets and predictions (``predictions/<model>/<task>.npz``; also for a
record reused from an earlier run):

- ``vtab/<task>/top1``: exact Clopper-Pearson interval, plus bootstrap replicates for paired comparisons;
- ``vtab/<task>/mean_per_class_recall``: bootstrap interval. The metric is the mean recall over the classes present
  in the targets (``metrics.probe.evaluate``); a resample is scored the same way, so a class that a resample does
  not draw is left out of that resample's mean (it is not counted as recall 0 and the resample is not dropped).

The resamples are those of the task's test images (``resample_plan``): the key names the feature source and the test
sample ids, so every model's replicates on one task are drawn on the same resamples (paired), and two tasks that
score the same test images (the CLEVR, dSprites and smallNORB pairs) are resampled jointly, as the image is the unit
of sampling.

Per model a summary record (analysis ``vtab``, dataset = the preset): the Table 3 top-1 numbers ``vtab/natural``,
``vtab/specialized``, ``vtab/structured`` (group means) and ``vtab/overall`` (the mean of all the preset's tasks,
not of the group means, docs/transfer.md §0.4), each with the interval of the replicate-wise mean of its tasks'
top-1 replicates. A group or Overall with a missing task is left out, as in Table 3.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np

from beyond_imagenet.base.config import StatisticsConfig
from beyond_imagenet.base.errors import UserError
from beyond_imagenet.base.hashing import safe_name
from beyond_imagenet.base.record import ResultRecord, save_record
from beyond_imagenet.data.vtab.tasks import GROUPS, PRESETS
from beyond_imagenet.metrics.estimates import Estimate, EstimateBook, Key, attach, mean_of
from beyond_imagenet.metrics.resampling import LinearStatistic, ResamplePlan, ids_digest, mean_statistic
from beyond_imagenet.metrics.vtab import ModelScores, Table3

log = logging.getLogger(__name__)

SUMMARY_ANALYSIS = "vtab"
TASK_METRICS = ("top1", "mean_per_class_recall")


# ---------------------------------------------------------------------------------------------------------------
# per task


def load_test_predictions(record: ResultRecord) -> dict[str, np.ndarray] | None:
    """The record's saved test ``sample_ids``, ``targets`` and ``predictions``; None (logged) when unreadable."""
    found = [a for a in record.artifacts if a.endswith(".npz")]
    path = Path(found[0]) if found else None
    if path is None or not path.exists():
        log.warning("%s / %s: no test predictions (%s); no interval", record.model_id, record.dataset, path)
        return None
    with np.load(path) as saved:
        arrays = {k: saved[k] for k in ("sample_ids", "targets", "predictions") if k in saved.files}
    sizes = {len(v) for v in arrays.values()}
    if len(arrays) != 3 or len(sizes) != 1 or 0 in sizes:
        log.warning("%s / %s: unusable test predictions in %s; no interval", record.model_id, record.dataset, path)
        return None
    return arrays


def feature_source(record: ResultRecord) -> str:
    """The feature-cache source the task's images come from (params ``features``: ``<source>/<split>``)."""
    features = record.params.get("features") or {}
    sources = {name.rsplit("/", 1)[0] for name in features}
    return sources.pop() if len(sources) == 1 else record.dataset


def resample_plan(record: ResultRecord, sample_ids: Sequence[str], statistics: StatisticsConfig) -> ResamplePlan:
    """The resamples of the task's test images: the same for every model (and for tasks on the same images).

    Key ``vtab/<source>/<digest of the test sample ids>/images``; sample ids (``<split>/<index>``) only name an
    image within its source, hence the source in the key.
    """
    key = f"vtab/{feature_source(record)}/{ids_digest([str(i) for i in sample_ids])}/images"
    return ResamplePlan(key, len(sample_ids), statistics.resamples, statistics.seed)


def recall_statistic(targets: np.ndarray, correct: np.ndarray, scale: float = 100.0) -> LinearStatistic:
    """Mean per-class recall as a linear statistic: per class present in ``targets``, its count and its hits.

    On a resample, the recall of each class the resample draws, averaged with equal weight; a class it does not
    draw is left out of the mean (the metric's own rule: classes absent from the targets do not count).
    """
    classes, index = np.unique(np.asarray(targets), return_inverse=True)
    m = len(classes)
    support = np.zeros((len(index), m))
    support[np.arange(len(index)), index] = 1.0
    hits = support * np.asarray(correct, dtype=np.float64)[:, None]

    def reduce(sums: np.ndarray) -> np.ndarray:
        counts, hit = sums[:, :m], sums[:, m:]
        present = counts > 0
        recall = np.divide(hit, counts, out=np.zeros_like(hit), where=present)
        return scale * recall.sum(axis=1) / present.sum(axis=1)

    return LinearStatistic(np.concatenate([support, hits], axis=1), reduce)


def add_task(book: EstimateBook, record: ResultRecord, saved: Mapping[str, np.ndarray], stats: StatisticsConfig) -> Key:
    """Add the task's top-1 (exact) and mean per-class recall to ``book``; returns the top-1 key."""
    targets = np.asarray(saved["targets"]).astype(np.int64)
    correct = (np.asarray(saved["predictions"]).astype(np.int64) == targets).astype(np.float64)
    plan = resample_plan(record, saved["sample_ids"].tolist(), stats)
    owner, task = record.model_id, record.dataset
    exact = (int(correct.sum()), len(correct))
    top1 = book.add(owner, f"vtab/{task}/top1", plan, mean_statistic(correct, 100.0), exact)
    book.add(owner, f"vtab/{task}/mean_per_class_recall", plan, recall_statistic(targets, correct))
    return top1


# ---------------------------------------------------------------------------------------------------------------
# per model: the Table 3 summary


def summary_inputs(table: Table3) -> dict[str, tuple[str, ...]]:
    """Summary metric -> the tasks it averages: each group's tasks, and every task of the preset for Overall."""
    inputs = {f"vtab/{group}": tuple(table.task_groups[group]) for group in GROUPS}
    inputs["vtab/overall"] = table.tasks
    return inputs


def summary_metrics(row: ModelScores) -> dict[str, float]:
    """The model's Table 3 top-1 numbers that exist (a group or Overall with a missing task is left out)."""
    values: dict[str, float | None] = {f"vtab/{g}": row.groups[g] for g in GROUPS}
    values["vtab/overall"] = row.overall
    return {name: float(v) for name, v in values.items() if v is not None}


def model_estimates(
    table: Table3, model: str, records: Sequence[ResultRecord], statistics: StatisticsConfig
) -> dict[str, Estimate]:
    """Estimates of one model's task metrics and of its summary metrics (replicate-wise means of task top-1)."""
    book = EstimateBook(statistics.level, statistics.method)
    top1: dict[str, Key] = {}
    for record in records:
        saved = load_test_predictions(record)
        if saved is not None:
            top1[record.dataset] = add_task(book, record, saved, statistics)
    present = summary_metrics(table.rows[model])
    for metric, tasks in summary_inputs(table).items():
        if metric in present and all(t in top1 for t in tasks):
            book.derive(model, metric, [top1[t] for t in tasks], mean_of)
    return book.resolve().get(model, {})


def summary_path(records_dir: Path, model: str, preset: str) -> Path:
    """``<records>/<model>/<preset>.json``, beside the task records (a preset never names a task)."""
    if any(preset in spec.names for spec in PRESETS.values()):
        raise UserError(f"preset {preset!r} is also a task name: its summary would overwrite that task's record")
    return records_dir / safe_name(model) / f"{preset}.json"


def summary_record(table: Table3, model: str, records: Sequence[ResultRecord], statistics: StatisticsConfig):
    """The model's Table 3 record (analysis ``vtab``); the intervals are attached by the caller."""
    row = table.rows[model]
    return ResultRecord(
        analysis=SUMMARY_ANALYSIS,
        model_id=model,
        dataset=table.preset,
        metrics=summary_metrics(row),
        params={"metric": "top1", "overall": "mean of the preset's tasks", "statistics": asdict(statistics)},
        details={"task_groups": {g: list(table.task_groups[g]) for g in GROUPS}, "missing": list(row.missing)},
        provenance={
            "model": next((r.provenance["model"] for r in records if "model" in r.provenance), {"id": model}),
            "preset": table.preset,
            "tasks": list(row.tasks),
            "protocol_hashes": {r.dataset: r.provenance.get("protocol_hash") for r in records},
        },
    )


def _split(estimates: Mapping[str, Estimate], names: Sequence[str]) -> dict[str, Estimate]:
    return {name: estimates[name] for name in names if name in estimates}


def attach_vtab_intervals(
    table: Table3, records: Sequence[ResultRecord], statistics: StatisticsConfig, records_dir: Path | None = None
) -> list[ResultRecord]:
    """Intervals on every task record of the table's models, and their summary records (returned).

    With ``records_dir`` each task record is rewritten in place (``<records>/<model>/<task>.json`` and its
    replicates) and each summary is written to ``<records>/<model>/<preset>.json``.
    """
    summaries = []
    for model, row in table.rows.items():
        mine = [r for r in records if r.model_id == model and r.dataset in row.tasks]
        if not mine:
            continue
        estimates = model_estimates(table, model, mine, statistics)
        for record in mine:
            attach(record, _split(estimates, [f"vtab/{record.dataset}/{m}" for m in TASK_METRICS]))
            if records_dir is not None:
                save_record(record, records_dir / safe_name(model) / f"{record.dataset}.json")
        summary = summary_record(table, model, mine, statistics)
        attach(summary, _split(estimates, list(summary.metrics)))
        if records_dir is not None:
            save_record(summary, summary_path(records_dir, model, table.preset))
        summaries.append(summary)
    return summaries
