"""Log result records to MLflow: one run per (model, analysis), explicit run ids, no global run stack.

DESIGN.md conventions: tracking URI ``sqlite:///mlruns/mlflow.db``, artifacts under ``mlruns/``, runs tagged
``model``, ``family``, ``paradigm``, ``analysis``, git sha, DVC stage and config hash so the UI can group and
compare them side by side. mlflow is imported only here, so the GPU inference path never needs it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections import defaultdict
from pathlib import Path

from beyond_imagenet.analyses.common import ResultRecord
from beyond_imagenet.config import TrackingConfig
from beyond_imagenet.provenance import git_state, library_versions

log = logging.getLogger(__name__)

MAX_PARAM_LENGTH = 500  # MLflow's limit on a param value (older servers); longer values are truncated


def _client(config: TrackingConfig):
    from mlflow.tracking import MlflowClient

    if config.tracking_uri.startswith("sqlite:///"):
        Path(config.tracking_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return MlflowClient(tracking_uri=config.tracking_uri)


def experiment_id(client, config: TrackingConfig) -> str:
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
        for record in group:
            client.log_dict(run_id, record.as_dict(), f"records/{record.dataset}.json")
            for artifact in dict.fromkeys(record.artifacts):
                client.log_artifact(run_id, artifact, f"figures/{record.dataset}")
        client.set_terminated(run_id)
        run_ids.append(run_id)
        log.info("MLflow run %s: %s / %s", run_id, model_id, analysis)
    return run_ids


def log_report(paths: list[Path], config: TrackingConfig, tags: dict[str, str]) -> str | None:
    """A run holding the side-by-side report tables, tagged ``analysis=report``."""
    if not config.enabled:
        return None
    client = _client(config)
    run = client.create_run(experiment_id(client, config), tags={"analysis": "report", **tags}, run_name="report")
    for path in paths:
        client.log_artifact(run.info.run_id, str(path), "report")
    client.set_terminated(run.info.run_id)
    return run.info.run_id
