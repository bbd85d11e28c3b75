"""MLflow runs of the VTAB probes (paper §6): one run per (model, task) with a child run per search trial, and one
summary run per model with the Table 3 numbers and Fig. 6 bottom.

The (model, task) run is opened before the search so each trial can be logged as it finishes (a nested run:
tag ``mlflow.parentRunId``); the test metrics are logged to the parent only after the study is closed
(TRANSFER.md §4). mlflow is imported only here and in ``mlflow_logger``.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

from beyond_imagenet.config import TrackingConfig
from beyond_imagenet.models.catalogue import ModelSpec
from beyond_imagenet.provenance import git_state, library_versions
from beyond_imagenet.tracking.mlflow_logger import MAX_PARAM_LENGTH, _client, _flatten, experiment_id
from beyond_imagenet.transfer.search import TrialRecord
from beyond_imagenet.transfer.tasks import TaskSpec

log = logging.getLogger(__name__)


def _model_tags(spec: ModelSpec) -> dict[str, str]:
    record = spec.as_record()
    git = git_state()
    return {
        "model": spec.id,
        "family": str(record.get("family")),
        "paradigm": str(record.get("paradigm")),
        "weights_id": str(record.get("weights_id")),
        "demo": str(record.get("demo")),
        "git_sha": str(git["git_sha"]),
        "git_dirty": str(git["git_dirty"]),
    }


class ProbeRunTracker:
    """The MLflow run of one (model, task) probe and its trial child runs."""

    def __init__(self, config: TrackingConfig, model_id: str, task: TaskSpec, preset: str, spec: ModelSpec):
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        self.client = _client(config)
        self.experiment = experiment_id(self.client, config)
        name = f"{model_id} / vtab / {task.name}"
        tags = {
            **_model_tags(spec),
            "analysis": "vtab_probe",
            "task": task.name,
            "task_group": task.group,
            "preset": preset,
            "dvc_stage": "probe",
            "mlflow.runName": name,
        }
        self.run_id = self.client.create_run(self.experiment, tags=tags, run_name=name).info.run_id
        self.model_id, self.task = model_id, task.name

    def log_trial(self, trial: TrialRecord) -> None:
        """One finished trial as a child run: its parameters, val metrics and fit time (train/val only)."""
        from mlflow.entities import Metric, Param

        name = f"{self.model_id} / {self.task} / trial {trial.number}"
        tags = {"mlflow.parentRunId": self.run_id, "analysis": "vtab_trial", "task": self.task, "model": self.model_id}
        child = self.client.create_run(self.experiment, tags=tags, run_name=name).info.run_id
        params = [Param(k, str(v)) for k, v in trial.params.items()] + [Param("method", trial.method)]
        if trial.grid_index is not None:
            params.append(Param("grid_index", str(trial.grid_index)))
        metrics = [Metric(f"val/{k}", float(v), 0, 0) for k, v in trial.val_metrics.items()]
        metrics.append(Metric("fit_seconds", float(trial.fit_seconds), 0, 0))
        self.client.log_batch(child, metrics=metrics, params=params)
        self.client.set_terminated(child, "FINISHED" if trial.score is not None else "FAILED")

    def finish(self, record: dict) -> None:
        """Test metrics (after the study), the chosen parameters and the provenance; the record as an artifact."""
        from mlflow.entities import Metric, Param

        search = record["search"]
        metrics = {
            "test/top1": record["top1"],
            "test/mean_per_class_recall": record["mean_per_class_recall"],
            "val/score": search["val_score"],
            "n_trials": search["n_trials"],
            "n_train": search["n_train"],
            "n_val": search["n_val"],
            "n_test": search["n_test"],
        }
        metrics.update({f"best/{k}": v for k, v in search["best_params"].items()})
        params: dict[str, str] = {}
        _flatten("probe", record["protocol"]["probe"], params)
        _flatten("search", record["protocol"]["search"], params)
        _flatten("model", record["model_record"], params)
        _flatten("preprocessing", record["preprocessing"], params)
        params["feature_precision"] = str(record["feature_precision"])
        params["protocol_hash"] = record["protocol_hash"]
        params["rows_sha256"] = record["protocol"]["rows_sha256"]
        for split, source in record["features"].items():
            params[f"features.{split}.files_sha256"] = str(source.get("files_sha256"))
            params[f"features.{split}.n_rows"] = str(source.get("n_rows"))
        params.update({f"version.{k}": v for k, v in library_versions().items()})
        self.client.log_batch(
            self.run_id,
            metrics=[Metric(k, float(v), 0, 0) for k, v in metrics.items() if v is not None and math.isfinite(v)],
            params=[Param(k, v[:MAX_PARAM_LENGTH]) for k, v in params.items()],
        )
        self.client.log_dict(self.run_id, record, "record.json")
        self.client.set_terminated(self.run_id)

    def fail(self) -> None:
        self.client.set_terminated(self.run_id, "FAILED")


def tracker_factory(config: TrackingConfig):
    """A ``ProbeRunTracker`` constructor bound to ``config``, or None when tracking is disabled."""
    if not config.enabled:
        return None

    def make(**kwargs) -> ProbeRunTracker:
        return ProbeRunTracker(config, **kwargs)

    return make


def log_vtab_summary(config: TrackingConfig, summary: dict, artifacts: list[Path], specs: list[ModelSpec]) -> list[str]:
    """One run per model (``analysis=vtab``): group means, Overall, per-task top-1 and recall, missing tasks."""
    if not config.enabled:
        return []
    from mlflow.entities import Metric

    client = _client(config)
    experiment = experiment_id(client, config)
    run_ids = []
    for spec in specs:
        entry = summary["models"].get(spec.id)
        if entry is None:
            continue
        name = f"{spec.id} / vtab"
        tags = {
            **_model_tags(spec),
            "analysis": "vtab",
            "preset": summary["preset"],
            "missing_tasks": ",".join(entry["missing"]) or "none",
            "dvc_stage": "probe",
            "mlflow.runName": name,
        }
        run_id = client.create_run(experiment, tags=tags, run_name=name).info.run_id
        values = {f"vtab/{group}": value for group, value in entry["groups"].items()}
        values["vtab/overall"] = entry["overall"]
        values["vtab/overall_mean_per_class_recall"] = entry.get("overall_mean_per_class_recall")
        for task, result in entry["tasks"].items():
            values[f"vtab/{task}/top1"] = result.get("top1")
            values[f"vtab/{task}/mean_per_class_recall"] = result.get("mean_per_class_recall")
        metrics = [Metric(k, float(v), 0, 0) for k, v in values.items() if v is not None]
        client.log_batch(run_id, metrics=metrics)
        for path in artifacts:
            client.log_artifact(run_id, str(path), "vtab")
        client.set_terminated(run_id)
        run_ids.append(run_id)
        log.info("MLflow run %s: %s / vtab", run_id, spec.id)
    return run_ids
