"""The VTAB transfer stages (paper §6, Table 3, Fig. 6 bottom): plan, extract features, tune and probe, aggregate.

Order of work, so bad input fails before anything expensive (DESIGN.md principle 6):

1. ``plan_transfer``: for each task of the preset (or of ``transfer.tasks``) check the files are on disk, read the
   source splits (annotations only, no pixels), check their sizes, derive the task's labels and its
   train / val / test rows. A task whose files are missing or unreadable is *not run*: its message (expected
   layout, download instructions) is printed and recorded, the other tasks go on, and the aggregate names it as
   missing instead of averaging over fewer tasks.
2. ``extract_features``: one cache per (model, source split) through the shared inference engine
   (``transfer.features``); shared images are featurised once.
3. ``probe_model``: per task, seeded search on train -> val only, refit on train ∪ val, test once
   (``transfer.search.tune_and_evaluate``); the study is a SQLite file, resumable; each (model, task) is an
   MLflow run with one child run per trial. A task whose record matches the current protocol hash is reused.
4. ``aggregate``: Table 3 (group means, Overall = mean of the 19 tasks, missing tasks named), Fig. 6 bottom,
   ``metrics.json`` for DVC and one MLflow run per model.

Outputs under ``<results_dir>/vtab/``: ``splits/<preset>/<task>.npz`` (row indices of every split, model
independent: the carved val of the wds layout is saved, not re-derived), ``records/<model>/<task>.json``,
``predictions/<model>/<task>.npz`` (test targets and predictions, the probe's weights), ``studies/<model>/
<task>.sqlite``, ``metrics.json``, ``table3.md`` and ``figures/fig6_bottom.png``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from beyond_imagenet.config import Params, TransferConfig, section_as_dict
from beyond_imagenet.errors import UserError
from beyond_imagenet.inference.cache import config_hash, safe_name
from beyond_imagenet.io_utils import atomic_open, atomic_write_json, atomic_write_text
from beyond_imagenet.models.catalogue import resolve_model
from beyond_imagenet.provenance import environment_record
from beyond_imagenet.transfer import sources
from beyond_imagenet.transfer.features import (
    FeatureJob,
    load_features,
    plan_feature_jobs,
    run_feature_jobs,
)
from beyond_imagenet.transfer.tasks import Preset, TaskSpec, check_task_on_disk, get_preset

log = logging.getLogger(__name__)

PROBE_SPLITS = {"full": ("train", "val", "test"), "1k": ("train800", "val200", "test")}
RECORD_VERSION = 1


# ---------------------------------------------------------------------------------------------------------------
# 1. plan


@dataclass
class TaskPlan:
    """One task ready to probe: its source splits, labels and split rows (no features yet)."""

    task: TaskSpec
    source: str  # feature-cache source name (tfds source or wds mirror)
    splits: dict[str, sources.SourceSplit]  # source split name -> rows on disk
    labels: dict[str, np.ndarray]  # source split name -> this task's labels
    rows: dict[str, dict[str, np.ndarray]]  # probe split -> {source split: row indices}

    def rows_digest(self) -> str:
        digest = hashlib.sha256()
        for split in sorted(self.rows):
            for source_split in sorted(self.rows[split]):
                digest.update(f"{split}/{source_split}".encode())
                digest.update(np.ascontiguousarray(self.rows[split][source_split], dtype=np.int64).tobytes())
        return digest.hexdigest()


@dataclass
class TransferPlan:
    preset: Preset
    config: TransferConfig
    root: Path
    tasks: list[TaskPlan]
    not_run: dict[str, str] = field(default_factory=dict)  # task -> why (missing files, bad layout, bad labels)
    excluded: list[str] = field(default_factory=list)  # preset tasks left out by transfer.tasks

    @property
    def source_splits(self) -> list[sources.SourceSplit]:
        seen: dict[tuple[str, str], sources.SourceSplit] = {}
        for plan in self.tasks:
            for split in plan.splits.values():
                seen.setdefault((split.name, split.split), split)
        return list(seen.values())


def transfer_config(params: Params) -> TransferConfig:
    config = params.transfer
    if config.root is None:
        raise UserError(
            "params: transfer.root is not set. Point it at the folder holding the VTAB copies (layout "
            "transfer.layout, see `beyond-imagenet vtab-tasks`), or run `make demo` for the generated stand-ins."
        )
    return config


def _read_source_split(task: TaskSpec, config: TransferConfig, root: Path, split: str) -> sources.SourceSplit:
    if config.layout == "wds":
        found = sources.read_wds_split(task, root, split)
        expected = task.expected_sizes["train" if split == "train" else "test"]
    elif config.layout == "torchvision":
        from beyond_imagenet.transfer.torchvision_layout import read_torchvision_split, torchvision_expected_count

        found = read_torchvision_split(task.source, root, split)
        expected = torchvision_expected_count(task.source, split)
    else:
        found = sources.read_parquet_split(task.source, root, split)
        expected = task.source.split_sizes[split]
    sources.check_split_count(found, expected, config.check_size)
    return found


def _plan_task(task: TaskSpec, config: TransferConfig, root: Path, cache: dict) -> TaskPlan:
    check_task_on_disk(task, root, config.layout)
    split_names = ("train", "test") if config.layout == "wds" else task.source_splits()
    source = task.wds_name if config.layout == "wds" else task.source.name
    splits = {}
    for name in split_names:
        if (source, name) not in cache:
            cache[(source, name)] = _read_source_split(task, config, root, name)
        splits[name] = cache[(source, name)]
    labels = {name: sources.task_labels(task, split) for name, split in splits.items()}
    rows = sources.task_split_rows(
        task, config.layout, splits, protocol=config.protocol, seed=config.val_seed, labels=labels.get("train")
    )
    return TaskPlan(task, source, splits, labels, rows)


def plan_transfer(params: Params) -> TransferPlan:
    """Check and read every selected task; tasks that cannot run are recorded with the reason, never dropped."""
    config = transfer_config(params)
    preset = get_preset(config.preset)
    wanted = [t.removeprefix("vtab/") for t in config.tasks] if config.tasks else list(preset.names)
    root = Path(config.root)
    cache: dict = {}
    plans, not_run = [], {}
    for task in preset.tasks:
        if task.name not in wanted:
            continue
        try:
            plans.append(_plan_task(task, config, root, cache))
        except UserError as err:
            not_run[task.name] = str(err)
            log.warning("VTAB task %s will not run: %s", task.name, err)
    excluded = [n for n in preset.names if n not in wanted]
    return TransferPlan(preset, config, root, plans, not_run, excluded)


# ---------------------------------------------------------------------------------------------------------------
# 2. features


FeatureJobs = dict[str, dict[tuple[str, str], FeatureJob]]  # model id -> (source, split) -> job


def _by_model(jobs: Sequence[FeatureJob]) -> FeatureJobs:
    by_model: FeatureJobs = {}
    for job in jobs:
        by_model.setdefault(job.spec.id, {})[job.key] = job
    return by_model


def extract_features(
    params: Params, plan: TransferPlan, model_ids: Sequence[str], callbacks: Sequence = (), build=None
) -> FeatureJobs:
    """Fill the feature caches of every (model, source split) the planned tasks need."""
    jobs = plan_feature_jobs(params, model_ids, plan.source_splits)
    run_feature_jobs(jobs, params, callbacks, build)
    return _by_model(jobs)


def require_features(params: Params, plan: TransferPlan, model_ids: Sequence[str]) -> FeatureJobs:
    """The feature jobs, all complete; otherwise a UserError naming the stage to run (DVC order)."""
    jobs = plan_feature_jobs(params, model_ids, plan.source_splits)
    missing = [str(job.path) for job in jobs if not job.complete]
    if missing:
        raise UserError(
            f"{len(missing)} feature cache(s) are missing or outdated, e.g. {missing[0]}. Run `beyond-imagenet "
            "vtab-features` (DVC stage vtab_features) first, or `beyond-imagenet probe` without --require-features."
        )
    return _by_model(jobs)


# ---------------------------------------------------------------------------------------------------------------
# 3. probe


def vtab_dir(params: Params) -> Path:
    return Path(params.results_dir) / "vtab"


def _probe_config(config: TransferConfig):
    from beyond_imagenet.transfer.probe import ProbeConfig

    p = config.probe
    return ProbeConfig(
        lr=p.lr,
        epochs=p.epochs,
        batch_size=p.batch_size,
        seed=p.seed,
        precision=p.precision,
        normalize=p.normalize,
    )


def _search_space(config: TransferConfig):
    from beyond_imagenet.transfer.search import SearchSpace

    s = config.search
    return SearchSpace(lr=tuple(s.lr) if s.lr else None, epochs=tuple(s.epochs) if s.epochs else None)


def protocol_record(plan: TransferPlan, task_plan: TaskPlan, jobs: Mapping[tuple[str, str], FeatureJob]) -> dict:
    """Everything that determines one (model, task) result; its hash names the study and guards reuse."""
    task = task_plan.task
    return {
        "record_version": RECORD_VERSION,
        "task": {"name": task.name, "num_classes": task.num_classes, "label_rule": task.label_rule.description},
        "preset": plan.preset.name,
        "layout": plan.config.layout,
        "protocol": plan.config.protocol,
        "val_seed": plan.config.val_seed if plan.config.layout != "tfds_parquet" else None,  # carved val
        "rows_sha256": task_plan.rows_digest(),
        "features": {f"{s}/{p}": jobs[(task_plan.source, p)].hash for s, p in sorted(_task_keys(task_plan))},
        "probe": section_as_dict(plan.config.probe),
        "search": section_as_dict(plan.config.search),
    }


def _task_keys(task_plan: TaskPlan) -> list[tuple[str, str]]:
    return [(task_plan.source, name) for name in task_plan.splits]


def feature_splits(task_plan: TaskPlan, caches: Mapping[str, object], split_names: Sequence[str]) -> dict:
    """FeatureSplit per probe split: rows gathered from the source-split caches, with labels and sample ids."""
    import torch

    from beyond_imagenet.transfer.splits import FeatureSplit

    out = {}
    for name in split_names:
        parts = task_plan.rows[name]
        x = np.concatenate([caches[s].features[idx] for s, idx in parts.items()]).astype(np.float32)
        y = np.concatenate([task_plan.labels[s][idx] for s, idx in parts.items()]).astype(np.int64)
        ids = [task_plan.splits[s].samples[i].sample_id for s, idx in parts.items() for i in idx]
        out[name] = FeatureSplit(torch.from_numpy(x), torch.from_numpy(y), ids, name)
    return out


def save_split_rows(path: Path, task_plan: TaskPlan) -> Path:
    """The rows of every split (``<split>/<source split>`` -> indices): the DVC-tracked split definition (§4)."""
    arrays = {f"{split}/{source}": idx for split, parts in task_plan.rows.items() for source, idx in parts.items()}
    with atomic_open(path) as handle:
        np.savez(handle, **{k: np.asarray(v, dtype=np.int64) for k, v in arrays.items()})
    return path


def _read_record(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text()) if path.exists() else None
    except json.JSONDecodeError:
        return None


def probe_task(
    params: Params,
    plan: TransferPlan,
    task_plan: TaskPlan,
    model_id: str,
    jobs: Mapping[tuple[str, str], FeatureJob],
    tracker_factory: Callable[..., object] | None = None,
) -> dict:
    """Tune and probe one (model, task); reuse the record when the protocol hash matches."""
    from beyond_imagenet.transfer.search import tune_and_evaluate

    config = plan.config
    task = task_plan.task
    out = vtab_dir(params)
    record_path = out / "records" / safe_name(model_id) / f"{task.name}.json"
    protocol = protocol_record(plan, task_plan, jobs)
    digest = config_hash(protocol)
    previous = _read_record(record_path)
    if previous and previous.get("protocol_hash") == digest:
        log.info("up to date: %s", record_path)
        return previous

    caches = {
        name: load_features(jobs[(task_plan.source, name)].path, jobs[(task_plan.source, name)].hash)
        for name in task_plan.splits
    }
    train_name, val_name, test_name = PROBE_SPLITS[config.protocol]
    data = feature_splits(task_plan, caches, (train_name, val_name, test_name))
    spec = resolve_model(model_id)
    study_path = out / "studies" / safe_name(model_id) / f"{task.name}.sqlite"
    study_path.parent.mkdir(parents=True, exist_ok=True)
    tracker = (
        tracker_factory(model_id=model_id, task=task, preset=plan.preset.name, spec=spec) if tracker_factory else None
    )
    try:
        result = tune_and_evaluate(
            data[train_name],
            data[val_name],
            data[test_name],
            task.num_classes,
            config=_probe_config(config),
            method=config.search.method,
            n_trials=config.search.n_trials,
            space=_search_space(config),
            storage=study_path,
            study_name=f"{safe_name(model_id)}/{task.name}/{digest}",
            metric=config.search.metric,
            n_startup_trials=config.search.n_startup_trials,
            on_trial=tracker.log_trial if tracker else None,
            accelerator=_probe_accelerator(config),
            engine=config.probe.engine,
        )
    except BaseException:
        if tracker:
            tracker.fail()
        raise
    test = data[test_name]
    predictions = result.test_predictions.cpu().numpy()
    pred_path = out / "predictions" / safe_name(model_id) / f"{task.name}.npz"
    linear = result.probe.linear  # the final probe (<= 1024 x 397 floats): aggregates need no retraining (§6)
    with atomic_open(pred_path) as handle:
        np.savez(
            handle,
            sample_ids=np.array(list(test.ids)),
            targets=test.y.numpy(),
            predictions=predictions,
            weight=linear.weight.detach().cpu().numpy(),
            bias=linear.bias.detach().cpu().numpy(),
        )
    record = {
        "model": model_id,
        "task": task.name,
        "group": task.group,
        "preset": plan.preset.name,
        "top1": result.test_metrics["top1"],
        "mean_per_class_recall": result.test_metrics["mean_per_class_recall"],
        "weight_decay": result.best_params.get("weight_decay"),
        "protocol_hash": digest,
        "protocol": protocol,
        "search": {k: v for k, v in result.to_record().items() if k != "trials"},
        "n_trials_logged": len(result.trials),
        "model_record": spec.as_record(),
        "features": {name: caches[name].meta["source"] | {"cache": str(caches[name].path)} for name in caches},
        "preprocessing": caches[next(iter(caches))].meta["preprocessing"],
        "feature_precision": caches[next(iter(caches))].meta["precision"],
        "predictions": str(pred_path),
        "study": str(study_path),
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "environment": environment_record(),
    }
    atomic_write_json(record_path, record)
    if tracker:
        tracker.finish(record)
    log.info(
        "%s / %s: top-1 %.2f, mean per-class recall %.2f (wd %.3g)",
        model_id,
        task.name,
        record["top1"],
        record["mean_per_class_recall"],
        record["weight_decay"] or 0.0,
    )
    return record


def _probe_accelerator(config: TransferConfig) -> str:
    from beyond_imagenet.inference.engine import resolve_accelerator

    return resolve_accelerator(config.device, "params: transfer.device")


def probe_models(
    params: Params,
    plan: TransferPlan,
    features: Mapping[str, Mapping[tuple[str, str], FeatureJob]],
    model_ids: Sequence[str],
    tracker_factory: Callable[..., object] | None = None,
) -> list[dict]:
    """Every (model, planned task), in preset order; split definitions saved once per task."""
    out = vtab_dir(params)
    for task_plan in plan.tasks:
        save_split_rows(out / "splits" / plan.preset.name / f"{task_plan.task.name}.npz", task_plan)
    records = []
    for model_id in model_ids:
        spec_id = resolve_model(model_id).id
        for task_plan in plan.tasks:
            records.append(probe_task(params, plan, task_plan, spec_id, features[spec_id], tracker_factory))
    return records


# ---------------------------------------------------------------------------------------------------------------
# 4. aggregate


def collect_records(params: Params, plan: TransferPlan, model_ids: Sequence[str]) -> list[dict]:
    """Records on disk for ``model_ids`` and the planned tasks (written by earlier runs too, e.g. one
    `make probe MODEL=...` per model)."""
    out = vtab_dir(params) / "records"
    records = []
    for model_id in model_ids:
        spec_id = resolve_model(model_id).id
        for task_plan in plan.tasks:
            record = _read_record(out / safe_name(spec_id) / f"{task_plan.task.name}.json")
            if record and record.get("preset") == plan.preset.name:
                records.append(record)
    return records


def aggregate(params: Params, plan: TransferPlan, records: Sequence[dict], model_ids: Sequence[str]) -> dict:
    """Table 3 + Fig. 6 bottom + metrics.json; tasks not run are named, never averaged away."""
    from beyond_imagenet.transfer.aggregate import plot_fig6_bottom, table3, table3_markdown, table3_record

    out = vtab_dir(params)
    models = [resolve_model(m).id for m in model_ids]
    rows = [
        {
            "model": r["model"],
            "task": r["task"],
            "top1": r["top1"],
            "mean_per_class_recall": r["mean_per_class_recall"],
            "weight_decay": r.get("weight_decay"),
        }
        for r in records
    ]
    table = table3(rows, plan.preset.name, models)
    summary = table3_record(table)
    summary["not_run"] = dict(plan.not_run)
    summary["excluded_by_params"] = list(plan.excluded)
    summary["layout"] = plan.config.layout
    summary["protocol"] = plan.config.protocol
    atomic_write_json(out / "metrics.json", summary)
    markdown = table3_markdown(table)
    if plan.not_run:
        markdown += (
            "\n**Tasks not run** (their files are missing or unreadable):\n\n"
            + "\n".join(f"- `{name}`: {reason.splitlines()[0]}" for name, reason in plan.not_run.items())
            + "\n"
        )
    atomic_write_text(out / "table3.md", markdown)
    figure = plot_fig6_bottom(table, out / "figures" / "fig6_bottom.png")
    return {"table": table, "summary": summary, "markdown": out / "table3.md", "figure": figure}


SKIPPED_NOTE = "VTAB transfer skipped: params transfer.root is not set."


def write_skipped_outputs(params: Params) -> None:
    """Without ``transfer.root`` the stages still leave their (empty) outputs, so ``dvc repro`` goes on."""
    out = vtab_dir(params)
    Path(params.transfer.features_dir).mkdir(parents=True, exist_ok=True)
    for name in ("splits", "records", "predictions", "studies", "figures"):
        (out / name).mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "metrics.json", {"skipped": SKIPPED_NOTE})
    atomic_write_text(out / "table3.md", SKIPPED_NOTE + "\n")


def print_not_run(plan: TransferPlan) -> None:
    for name, reason in plan.not_run.items():
        print(f"VTAB task {name} NOT RUN: {reason}\n")


__all__ = [
    "PROBE_SPLITS",
    "TaskPlan",
    "TransferPlan",
    "aggregate",
    "collect_records",
    "extract_features",
    "feature_splits",
    "plan_transfer",
    "probe_models",
    "probe_task",
    "protocol_record",
    "require_features",
    "save_split_rows",
    "vtab_dir",
    "write_skipped_outputs",
]
