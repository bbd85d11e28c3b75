"""The one MLflow logger: result records, the report, and the VTAB probes with their search trials.

docs/architecture.md conventions: tracking URI ``sqlite:///mlruns/mlflow.db``, artifacts under ``mlruns/``,
explicit run ids (``MlflowClient``, no global run stack), runs tagged ``model``, ``family``, ``paradigm``,
``analysis``, git sha, DVC stage and config hash so the UI can group and compare them side by side:

- ``log_records``: one run per (model, analysis) of the ``analyze`` and ``cka`` stages, its metrics' intervals in one
  ``intervals.csv`` artifact (the metric list stays one entry per metric, as in the paper's tables);
- ``ProbeRunTracker``: one run per (model, VTAB task), opened before the search so each trial is logged as it
  finishes (a child run, tag ``mlflow.parentRunId``); test metrics are logged only after the study closes
  (docs/transfer.md §4);
- ``log_vtab_summary``: one run per model with the Table 3 numbers; ``log_files``: the report files, the tidy results
  table, the paired comparisons and the rankings.

mlflow is imported only here (inside the functions), so the GPU inference path never needs it.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import math
import os
from collections import defaultdict
from pathlib import Path

from beyond_imagenet.base.config import TrackingConfig
from beyond_imagenet.base.provenance import git_state, library_versions
from beyond_imagenet.base.record import ResultRecord
from beyond_imagenet.data.vtab.tasks import TaskSpec
from beyond_imagenet.models.catalogue import resolve_model
from beyond_imagenet.models.spec import ModelSpec
from beyond_imagenet.probe.trial import TrialRecord

log = logging.getLogger(__name__)

MAX_PARAM_LENGTH = 500  # MLflow's limit on a param value (older servers); longer values are truncated


def _client(config: TrackingConfig):
    """An ``MlflowClient`` on the configured store (the SQLite file's folder created first)."""
    from mlflow.tracking import MlflowClient

    if config.tracking_uri.startswith("sqlite:///"):
        Path(config.tracking_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return MlflowClient(tracking_uri=config.tracking_uri)


def experiment_id(client, config: TrackingConfig) -> str:
    """The suite's experiment, created with its artifact location on first use."""
    experiment = client.get_experiment_by_name(config.experiment)
    if experiment is not None:
        return experiment.experiment_id
    location = Path(config.artifact_location).resolve()
    location.mkdir(parents=True, exist_ok=True)
    return client.create_experiment(config.experiment, artifact_location=location.as_uri())


def _flatten(prefix: str, value, out: dict[str, str]) -> None:
    if isinstance(value, dict):
        for key, sub in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), sub, out)
    else:
        text = json.dumps(value) if isinstance(value, (list, tuple)) else str(value)
        out[prefix] = text[:MAX_PARAM_LENGTH]


def run_params(records: list[ResultRecord]) -> dict[str, str]:
    """Params of one (model, analysis) run: analysis settings, model and preprocessing, per-dataset provenance."""
    first = records[0].provenance
    params: dict[str, str] = {}
    _flatten("analysis", records[0].params, params)
    _flatten("model", first.get("model") or {}, params)
    _flatten("preprocessing", first.get("preprocessing") or {}, params)
    params["precision"] = str(first.get("precision"))
    for record in records:
        dataset = record.provenance.get("dataset") or {}
        params[f"dataset.{record.dataset}.files_sha256"] = str(dataset.get("files_sha256"))
        params[f"dataset.{record.dataset}.n_samples"] = str(record.provenance.get("n_samples"))
        params[f"dataset.{record.dataset}.cache_config_hash"] = str(record.provenance.get("cache_config_hash"))
    return params


def run_tags(records: list[ResultRecord], stage: str) -> dict[str, str]:
    """Tags of one (model, analysis) run: model facts, analysis, datasets, git state, stage, config hash."""
    model = records[0].provenance.get("model") or {}
    config = json.dumps([r.provenance.get("cache_config_hash") for r in records] + [records[0].params], sort_keys=True)
    return {
        "model": records[0].model_id,
        "family": str(model.get("family")),
        "paradigm": str(model.get("paradigm")),
        "weights_id": str(model.get("weights_id")),
        "demo": str(model.get("demo")),
        "analysis": records[0].analysis,
        "datasets": ",".join(sorted({r.dataset for r in records})),
        "git_sha": str(git_state()["git_sha"]),
        "git_dirty": str(git_state()["git_dirty"]),
        "dvc_stage": stage,
        "config_hash": hashlib.sha256(config.encode()).hexdigest()[:16],
        "mlflow.runName": f"{records[0].model_id} / {records[0].analysis}",
    }


INTERVAL_COLUMNS = ("metric", "value", "low", "high", "level", "n", "method", "plan", "dataset")


def _short(value) -> str:
    """6 significant digits for MLflow's artifact preview (records and results.csv keep full precision)."""
    return "" if value is None or value == "" else format(value, ".6g") if isinstance(value, float) else str(value)


def intervals_csv(records: list[ResultRecord]) -> str:
    """The intervals of the records' metrics as CSV, one row per metric (empty bounds where a metric has none).

    Metric, value and bounds come first so MLflow's preview shows them without scrolling.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(INTERVAL_COLUMNS)
    for record in records:
        for name, value in record.metrics.items():
            interval = record.intervals.get(name, {})
            row = [interval.get(k) for k in ("low", "high", "level", "n", "method", "plan")]
            writer.writerow([name, _short(float(value)), *(_short(v) for v in row), record.dataset])
    return buffer.getvalue()


def log_records(records: list[ResultRecord], config: TrackingConfig, stage: str = "analyze") -> list[str]:
    """Create one finished MLflow run per (model, analysis) with metrics, params, tags and PNG artifacts."""
    if not config.enabled or not records:
        return []
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    from mlflow.entities import Metric, Param, RunTag

    client = _client(config)
    exp_id = experiment_id(client, config)
    groups: dict[tuple[str, str], list[ResultRecord]] = defaultdict(list)
    for record in records:
        groups[(record.model_id, record.analysis)].append(record)
    run_ids = []
    versions = library_versions()
    for (model_id, analysis), group in groups.items():
        tags = run_tags(group, stage)
        run = client.create_run(exp_id, tags=tags, run_name=tags["mlflow.runName"])
        run_id = run.info.run_id
        metrics = [Metric(name, float(value), 0, 0) for r in group for name, value in r.metrics.items()]
        params = [Param(k, v) for k, v in run_params(group).items()]
        params += [Param(f"version.{k}", v) for k, v in versions.items()]
        client.log_batch(run_id, metrics=metrics, params=params, tags=[RunTag("records", str(len(group)))])
        client.log_text(run_id, intervals_csv(group), "intervals.csv")
        for record in group:
            client.log_dict(run_id, record.as_dict(), f"records/{record.dataset}.json")
            for artifact in dict.fromkeys(record.artifacts):
                client.log_artifact(run_id, artifact, f"figures/{record.dataset}")
        client.set_terminated(run_id)
        run_ids.append(run_id)
        log.info("MLflow run %s: %s / %s", run_id, model_id, analysis)
    return run_ids


def log_files(paths: list[Path], config: TrackingConfig, name: str, tags: dict[str, str]) -> str | None:
    """A run named and tagged ``analysis=<name>`` holding files under ``<name>/`` (the report, the results tables)."""
    if not config.enabled:
        return None
    client = _client(config)
    run = client.create_run(experiment_id(client, config), tags={"analysis": name, **tags}, run_name=name)
    for path in paths:
        client.log_artifact(run.info.run_id, str(path), name)
    client.set_terminated(run.info.run_id)
    return run.info.run_id


def _model_tags(spec: ModelSpec) -> dict[str, str]:
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
    """The MLflow run of one (model, task) probe and its trial child runs."""

    def __init__(self, config: TrackingConfig, model_id: str, task: TaskSpec, preset: str):
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        spec = resolve_model(model_id)
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

    def finish(self, record: ResultRecord) -> None:
        """Test metrics (after the study), the chosen parameters and the provenance; the record as an artifact."""
        from mlflow.entities import Metric, Param

        search = record.details["search"]
        metrics = {
            "test/top1": record.metrics[f"vtab/{self.task}/top1"],
            "test/mean_per_class_recall": record.metrics[f"vtab/{self.task}/mean_per_class_recall"],
            "val/score": search["val_score"],
            "n_trials": search["n_trials"],
            "n_train": search["n_train"],
            "n_val": search["n_val"],
            "n_test": search["n_test"],
        }
        metrics.update({f"best/{k}": v for k, v in search["best_params"].items()})
        params: dict[str, str] = {}
        _flatten("probe", record.params["probe"], params)
        _flatten("search", record.params["search"], params)
        _flatten("model", record.provenance["model"], params)
        _flatten("preprocessing", record.provenance["preprocessing"], params)
        params["feature_precision"] = str(record.provenance["precision"])
        params["protocol_hash"] = record.provenance["protocol_hash"]
        params["rows_sha256"] = record.params["rows_sha256"]
        for split, source in record.provenance["features"].items():
            params[f"features.{split}.files_sha256"] = str(source.get("files_sha256"))
            params[f"features.{split}.n_rows"] = str(source.get("n_rows"))
        params.update({f"version.{k}": v for k, v in library_versions().items()})
        self.client.log_batch(
            self.run_id,
            metrics=[Metric(k, float(v), 0, 0) for k, v in metrics.items() if v is not None and math.isfinite(v)],
            params=[Param(k, v[:MAX_PARAM_LENGTH]) for k, v in params.items()],
        )
        self.client.log_dict(self.run_id, record.as_dict(), "record.json")
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
