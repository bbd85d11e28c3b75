"""VTAB runs: the probe searches with their trials (own experiment), and the Table 3 numbers (main experiment).

The 19 tasks x models probe runs, each with its trials as child runs, go to ``<experiment>-probe-trials``: nested
in the main experiment they would still be paged through by its runs list (hundreds of runs ahead of the paper's
analyses). The main experiment gets the ``vtab`` parent with one child per model (Table 3: group means, Overall,
per-task top-1 and recall), like every other analysis. Test metrics are logged only after a study closes
(docs/transfer.md §4).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

from beyond_imagenet.base.config import TrackingConfig
from beyond_imagenet.base.provenance import git_state, library_versions
from beyond_imagenet.base.record import ResultRecord
from beyond_imagenet.data.vtab.tasks import TaskSpec
from beyond_imagenet.models.catalogue import resolve_model
from beyond_imagenet.models.display import display_map, display_name
from beyond_imagenet.models.spec import ModelSpec
from beyond_imagenet.probe.trial import TrialRecord
from beyond_imagenet.tracking.runs import MAX_PARAM_LENGTH
from beyond_imagenet.tracking.store import KEY_TAG, ROLE_TAG, RunFiles, content_key, experiment_id, find_run, get_client

log = logging.getLogger(__name__)
TRIALS_SUFFIX = "-probe-trials"
TRIALS_DESCRIPTION = "VTAB linear-probe searches: one run per (model, task), its search trials as child runs."


def model_tags(spec: ModelSpec) -> dict[str, str]:
    """Tags naming the model and the code version."""
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
    """The MLflow run of one (model, task) probe and its trial child runs, in the probe-trials experiment."""

    def __init__(self, config: TrackingConfig, model_id: str, task: TaskSpec, preset: str):
        spec = resolve_model(model_id)
        self.client = get_client(config)
        name = config.experiment + TRIALS_SUFFIX
        self.experiment = experiment_id(self.client, config, name, TRIALS_DESCRIPTION)
        tags = {
            **model_tags(spec),
            "analysis": "vtab_probe",
            "task": task.name,
            "task_group": task.group,
            "preset": preset,
            "dvc_stage": "probe",
            ROLE_TAG: "probe",
        }
        run_name = f"{display_name(model_id)} / {task.name}"
        self.run_id = self.client.create_run(self.experiment, tags=tags, run_name=run_name).info.run_id
        self.model_id, self.task, self.config = model_id, task.name, config

    def log_trial(self, trial: TrialRecord) -> None:
        """One finished trial as a child run: its parameters, val metrics and fit time (train/val only)."""
        from mlflow.entities import Metric, Param

        tags = {"mlflow.parentRunId": self.run_id, "analysis": "vtab_trial", "task": self.task, "model": self.model_id}
        tags[ROLE_TAG] = "trial"
        child = self.client.create_run(self.experiment, tags=tags, run_name=f"trial {trial.number}").info.run_id
        params = [Param(k, str(v)) for k, v in trial.params.items()] + [Param("method", trial.method)]
        if trial.grid_index is not None:
            params.append(Param("grid_index", str(trial.grid_index)))
        metrics = [Metric(f"val/{k}", float(v), 0, 0) for k, v in trial.val_metrics.items()]
        metrics.append(Metric("fit_seconds", float(trial.fit_seconds), 0, 0))
        self.client.log_batch(child, metrics=metrics, params=params)
        self.client.set_terminated(child, "FINISHED" if trial.score is not None else "FAILED")

    def finish(self, record: ResultRecord) -> None:
        """Test metrics (after the study), the protocol as params, provenance as tags; the record as an artifact."""
        from mlflow.entities import Metric, Param, RunTag

        search = record.details["search"]
        metrics = {
            "test/top1": record.metrics[f"vtab/{self.task}/top1"],
            "test/mean_per_class_recall": record.metrics[f"vtab/{self.task}/mean_per_class_recall"],
            "val/score": search["val_score"],
            **{k: search[k] for k in ("n_trials", "n_train", "n_val", "n_test")},
        }
        metrics.update({f"best/{k}": v for k, v in search["best_params"].items()})
        params: dict[str, str] = {"model_id": self.model_id, "feature_precision": str(record.provenance["precision"])}
        for section in ("probe", "search"):
            params.update({f"{section}.{k}": str(v) for k, v in record.params[section].items()})
        params.update({f"preprocessing.{k}": str(v) for k, v in record.provenance["preprocessing"].items()})
        tags = {"protocol_hash": record.provenance["protocol_hash"], "rows_sha256": record.params["rows_sha256"]}
        tags.update(
            {f"features.{s}.files_sha256": str(v.get("files_sha256")) for s, v in record.provenance["features"].items()}
        )
        self.client.log_batch(
            self.run_id,
            metrics=[Metric(k, float(v), 0, 0) for k, v in metrics.items() if v is not None and math.isfinite(v)],
            params=[Param(k, v[:MAX_PARAM_LENGTH]) for k, v in params.items()],
            tags=[RunTag(k, v) for k, v in tags.items()],
        )
        run = self.client.get_run(self.run_id)
        files = RunFiles(self.client, self.config, run)
        files.json(record.as_dict(), "record.json")
        files.json({"versions": library_versions(), "provenance": record.provenance}, "provenance.json")
        self.client.set_terminated(self.run_id)

    def fail(self) -> None:
        """Mark the run failed (the search raised)."""
        self.client.set_terminated(self.run_id, "FAILED")


def tracker_factory(config: TrackingConfig):
    """A ``ProbeRunTracker`` constructor bound to ``config``, or None when tracking is disabled."""
    if not config.enabled:
        return None

    def make(**kwargs) -> ProbeRunTracker:
        return ProbeRunTracker(config, **kwargs)

    return make


def _summary_metrics(entry: dict) -> dict[str, float]:
    values = {f"vtab/{group}": value for group, value in entry["groups"].items()}
    values["vtab/overall"] = entry["overall"]
    values["vtab/overall_mean_per_class_recall"] = entry.get("overall_mean_per_class_recall")
    for task, result in entry["tasks"].items():
        values[f"vtab/{task}/top1"] = result.get("top1")
        values[f"vtab/{task}/mean_per_class_recall"] = result.get("mean_per_class_recall")
    return {k: float(v) for k, v in values.items() if v is not None}


def log_vtab_summary(config: TrackingConfig, summary: dict, artifacts: list[Path], specs: list[ModelSpec]) -> list[str]:
    """The ``vtab`` parent (Table 3 and Fig. 6 bottom) and one child per model; nothing when unchanged."""
    if not config.enabled:
        return []
    from mlflow.entities import Metric

    entries = {s.id: (s, summary["models"][s.id]) for s in specs if s.id in summary["models"]}
    if not entries:
        return []
    client = get_client(config)
    experiment = experiment_id(client, config)
    keys = {m: content_key([m, summary["preset"], _summary_metrics(e)]) for m, (_, e) in entries.items()}
    key = content_key(["vtab", sorted(keys.values())])
    if find_run(client, experiment, key) is not None:
        return []
    tags = {"analysis": "vtab", "preset": summary["preset"], "dvc_stage": "probe", ROLE_TAG: "analysis", KEY_TAG: key}
    parent = client.create_run(experiment, tags={**tags, "models": ",".join(entries)}, run_name="vtab")
    for path in artifacts:
        RunFiles(client, config, parent).file(path, f"figures/{Path(path).name}")
    colours, run_ids = display_map(entries), [parent.info.run_id]
    for model_id, (spec, entry) in entries.items():
        tags = {**model_tags(spec), "analysis": "vtab", "preset": summary["preset"], ROLE_TAG: "model"}
        tags.update({"missing_tasks": ",".join(entry["missing"]) or "none", "dvc_stage": "probe"})
        tags.update({"mlflow.parentRunId": parent.info.run_id, "mlflow.runColor": colours[model_id].colour})
        run = client.create_run(experiment, tags={**tags, KEY_TAG: keys[model_id]}, run_name=display_name(model_id))
        metrics = [Metric(k, v, 0, 0) for k, v in _summary_metrics(entry).items()]
        client.log_batch(run.info.run_id, metrics=metrics)
        client.set_terminated(run.info.run_id)
        run_ids.append(run.info.run_id)
    client.set_terminated(parent.info.run_id)
    return run_ids
