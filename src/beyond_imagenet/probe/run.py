"""The VTAB probe steps after planning (paper §6, docs/transfer.md §2-§4): features, then one probe per (model, task).

1. features: ``probe.features`` (one cache per model and source split, shared images featurised once).
2. ``probe_task``: seeded search on train -> val only, refit on train ∪ val, test once
   (``search.tune_and_evaluate``); the study is a SQLite file, resumable. Each (model, task) is one result record
   (analysis ``vtab_probe``); a record whose protocol hash matches is reused without refitting.

Outputs (``ProbeOutputs``): ``splits/<preset>/<task>.npz`` (row indices of every split, model independent: a carved
val is saved, not re-derived), ``records/<model>/<task>.json`` (its intervals and ``<task>.replicates.npz`` are
added by ``aggregate``, ``probe.estimates``), ``predictions/<model>/<task>.npz`` (test targets and predictions, the
probe's weights) and ``studies/<model>/<task>.sqlite``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from beyond_imagenet.base.config import TransferConfig, section_as_dict
from beyond_imagenet.base.files import atomic_open
from beyond_imagenet.base.hashing import config_hash, safe_name
from beyond_imagenet.base.provenance import environment_record
from beyond_imagenet.base.record import ResultRecord, save_record
from beyond_imagenet.inference.engine import resolve_accelerator
from beyond_imagenet.inference.features import FeatureJob, load_features
from beyond_imagenet.models.catalogue import resolve_model
from beyond_imagenet.probe.linear import ProbeConfig
from beyond_imagenet.probe.outputs import ProbeOutputs
from beyond_imagenet.probe.search import ProbeSearchResult, SearchSpace, tune_and_evaluate
from beyond_imagenet.probe.splits import FeatureSplit
from beyond_imagenet.probe.tasks import PROBE_SPLITS, TaskPlan, TransferPlan

log = logging.getLogger(__name__)

RECORD_VERSION = 2  # 2: the probe result is a ResultRecord (analysis vtab_probe)
ANALYSIS = "vtab_probe"


# ---------------------------------------------------------------------------------------------------------------
# one (model, task)


def _probe_config(config: TransferConfig) -> ProbeConfig:
    p = config.probe
    return ProbeConfig(
        lr=p.lr, epochs=p.epochs, batch_size=p.batch_size, seed=p.seed, precision=p.precision, normalize=p.normalize
    )


def _search_space(config: TransferConfig) -> SearchSpace:
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
        "val_seed": plan.config.val_seed if plan.layout.uses_val_seed else None,  # carved val
        "rows_sha256": task_plan.rows_digest(),
        "features": {f"{task_plan.source}/{p}": jobs[(task_plan.source, p)].hash for p in sorted(task_plan.splits)},
        "probe": section_as_dict(plan.config.probe),
        "search": section_as_dict(plan.config.search),
    }


def feature_splits(task_plan: TaskPlan, caches: Mapping[str, object], split_names: Sequence[str]) -> dict:
    """FeatureSplit per probe split: rows gathered from the source-split caches, with labels and sample ids."""
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


def read_record(path: Path) -> ResultRecord | None:
    """A probe record written by this version, or None (missing, unreadable or of an older format)."""
    try:
        record = ResultRecord(**json.loads(path.read_text())) if path.exists() else None
    except (json.JSONDecodeError, TypeError):
        return None
    return record if record is not None and record.analysis == ANALYSIS else None


def _save_predictions(path: Path, test: FeatureSplit, result: ProbeSearchResult) -> Path:
    """Test targets and predictions and the final probe (<= 1024 x 397 floats): aggregates need no retraining."""
    linear = result.probe.linear
    with atomic_open(path) as handle:
        np.savez(
            handle,
            sample_ids=np.array(list(test.ids)),
            targets=test.y.numpy(),
            predictions=result.test_predictions.cpu().numpy(),
            weight=linear.weight.detach().cpu().numpy(),
            bias=linear.bias.detach().cpu().numpy(),
        )
    return path


def probe_record(task_plan: TaskPlan, plan: TransferPlan, model_id: str, result, caches, paths) -> ResultRecord:
    """The (model, task) result as a record: test metrics, the search's choice, provenance (docs/transfer.md)."""
    task, protocol, digest = task_plan.task, paths["protocol"], paths["digest"]
    first = caches[next(iter(caches))].meta
    return ResultRecord(
        analysis=ANALYSIS,
        model_id=model_id,
        dataset=task.name,
        metrics={f"vtab/{task.name}/{k}": float(result.test_metrics[k]) for k in ("top1", "mean_per_class_recall")},
        params=protocol,
        details={
            "group": task.group,
            "preset": plan.preset.name,
            "weight_decay": result.best_params.get("weight_decay"),
            "search": {k: v for k, v in result.to_record().items() if k != "trials"},
            "n_trials_logged": len(result.trials),
        },
        provenance={
            "protocol_hash": digest,
            "model": resolve_model(model_id).as_record(),
            "features": {name: caches[name].meta["source"] | {"cache": str(caches[name].path)} for name in caches},
            "preprocessing": first["preprocessing"],
            "precision": first["precision"],
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "environment": environment_record(),
        },
        artifacts=[str(paths["predictions"]), str(paths["study"])],
    )


def _tune(plan: TransferPlan, task_plan: TaskPlan, data: dict, study: Path, name: str, tracker) -> ProbeSearchResult:
    config = plan.config
    train, val, test = (data[s] for s in PROBE_SPLITS[config.protocol])
    return tune_and_evaluate(
        train,
        val,
        test,
        task_plan.task.num_classes,
        config=_probe_config(config),
        accelerator=resolve_accelerator(config.device, "params: transfer.device"),
        engine=config.probe.engine,
        method=config.search.method,
        n_trials=config.search.n_trials,
        space=_search_space(config),
        storage=study,
        study_name=name,
        metric=config.search.metric,
        n_startup_trials=config.search.n_startup_trials,
        on_trial=tracker.log_trial if tracker else None,
    )


def probe_task(
    plan: TransferPlan,
    task_plan: TaskPlan,
    model_id: str,
    jobs: Mapping[tuple[str, str], FeatureJob],
    out: ProbeOutputs,
    tracker_factory: Callable[..., object] | None = None,
) -> ResultRecord:
    """Tune and probe one (model, task); reuse the record when the protocol hash matches."""
    task = task_plan.task
    record_path = out.records / safe_name(model_id) / f"{task.name}.json"
    protocol = protocol_record(plan, task_plan, jobs)
    digest = config_hash(protocol)
    previous = read_record(record_path)
    if previous and previous.provenance.get("protocol_hash") == digest:
        log.info("up to date: %s", record_path)
        return previous
    caches = {name: load_features(jobs[(task_plan.source, name)].path, jobs[(task_plan.source, name)].hash)
              for name in task_plan.splits}  # fmt: skip
    data = feature_splits(task_plan, caches, PROBE_SPLITS[plan.config.protocol])
    study = out.studies / safe_name(model_id) / f"{task.name}.sqlite"
    study.parent.mkdir(parents=True, exist_ok=True)
    tracker = tracker_factory(model_id=model_id, task=task, preset=plan.preset.name) if tracker_factory else None
    try:
        result = _tune(plan, task_plan, data, study, f"{safe_name(model_id)}/{task.name}/{digest}", tracker)
    except BaseException:
        if tracker:
            tracker.fail()
        raise
    predictions = _save_predictions(out.predictions / safe_name(model_id) / f"{task.name}.npz", data["test"], result)
    paths = {"protocol": protocol, "digest": digest, "predictions": predictions, "study": study}
    record = probe_record(task_plan, plan, model_id, result, caches, paths)
    save_record(record, record_path)  # intervals come with the aggregate (probe.estimates)
    if tracker:
        tracker.finish(record)
    top1, recall = (record.metrics[f"vtab/{task.name}/{k}"] for k in ("top1", "mean_per_class_recall"))
    log.info("%s / %s: top-1 %.2f, mean per-class recall %.2f", model_id, task.name, top1, recall)
    return record


def probe_models(
    plan: TransferPlan,
    features: Mapping[str, Mapping[tuple[str, str], FeatureJob]],
    model_ids: Sequence[str],
    out: ProbeOutputs,
    tracker_factory: Callable[..., object] | None = None,
) -> list[ResultRecord]:
    """Every (model, planned task), in preset order; split definitions saved once per task."""
    for task_plan in plan.tasks:
        save_split_rows(out.splits / plan.preset.name / f"{task_plan.task.name}.npz", task_plan)
    records = []
    for model_id in model_ids:
        spec_id = resolve_model(model_id).id
        for task_plan in plan.tasks:
            records.append(probe_task(plan, task_plan, spec_id, features[spec_id], out, tracker_factory))
    return records


def collect_records(plan: TransferPlan, model_ids: Sequence[str], records_dir: Path) -> list[ResultRecord]:
    """Read the result records on disk of ``model_ids`` on the planned tasks of the plan's preset.

    Records written by earlier runs count too, e.g. one `make probe MODEL=...` per model.
    """
    records = []
    for model_id in model_ids:
        spec_id = resolve_model(model_id).id
        for task_plan in plan.tasks:
            record = read_record(records_dir / safe_name(spec_id) / f"{task_plan.task.name}.json")
            if record and record.details.get("preset") == plan.preset.name:
                records.append(record)
    return records
