"""Runs of the ``analyze`` and ``cka`` stages: per analysis a parent run, per model a child run.

A parent (``run_role=analysis``) is named after the analysis and holds the all-model figures; each child
(``run_role=model``, tag ``mlflow.parentRunId``) is named with the model's display name, coloured with its figure
colour (tag ``mlflow.runColor``) and holds the model's metrics (sweeps as curves, :func:`sweep_metrics`), the
protocol knobs as params, provenance as tags and ``provenance.json``, the datasets as inputs and its figures under
names shared by every model (Compare -> Artifacts puts them side by side). An unchanged rerun finds the parent by
its ``content_key`` tag and logs nothing but the time it was found (``logged_at_ms``), so that the deep links follow
the parent whose content the pipeline holds now, also after a change was reverted.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
from collections import defaultdict
from pathlib import Path

from beyond_imagenet.base.config import TrackingConfig
from beyond_imagenet.base.provenance import git_state, library_versions
from beyond_imagenet.base.record import ResultRecord
from beyond_imagenet.models.display import display_map, display_name
from beyond_imagenet.tracking.store import (
    KEY_TAG,
    ROLE_TAG,
    SEEN_TAG,
    RunFiles,
    content_key,
    experiment_id,
    find_run,
    get_client,
    mark_seen,
    now_ms,
)

log = logging.getLogger(__name__)

MAX_PARAM_LENGTH = 500  # MLflow's limit on a param value (older servers); longer values are truncated
SWEEP = re.compile(r"^invariance/(?P<sweep>[a-z_]+)/(?P<value>-?[0-9.]+)/(?P<metric>[a-z0-9_]+)$")
STEP_SCALE = {"scale": 100}  # steps are integers: scale factor x100; shift and resolution are pixels already
INTERVAL_COLUMNS = ("metric", "value", "low", "high", "level", "n", "method", "plan", "dataset")


def sweep_metrics(metrics: dict[str, float]) -> list[tuple[str, float, int]]:
    """``(key, value, step)``: ``invariance/<sweep>/<x>/<m>`` -> key ``invariance/<sweep>/<m>`` at step x (scaled)."""
    out = []
    for name, value in metrics.items():
        match = SWEEP.match(name)
        if match:
            step = round(float(match["value"]) * STEP_SCALE.get(match["sweep"], 1))
            out.append((f"invariance/{match['sweep']}/{match['metric']}", float(value), step))
        else:
            out.append((name, float(value), 0))
    return out


def by_dataset(record: ResultRecord) -> str:
    """Sort key: a model's records in dataset order, so what is logged does not depend on who listed them."""
    return record.dataset


def _flatten(prefix: str, value, out: dict[str, str]) -> None:
    if isinstance(value, dict):
        for key, sub in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), sub, out)
    else:
        text = json.dumps(value) if isinstance(value, (list, tuple)) else str(value)
        out[prefix] = text[:MAX_PARAM_LENGTH]


def shared_params(records: list[ResultRecord]) -> dict:
    """The analysis params of a model's records: one value where all agree, else one per dataset (``<dataset>.k``)."""
    keys = sorted({key for r in records for key in r.params})
    out: dict = {}
    for key in keys:
        values = {r.dataset: r.params.get(key) for r in records}
        if len({json.dumps(v, sort_keys=True, default=str) for v in values.values()}) == 1:
            out[key] = next(iter(values.values()))
        else:
            out.update({f"{dataset}.{key}": value for dataset, value in sorted(values.items())})
    return out


def run_params(records: list[ResultRecord]) -> dict[str, str]:
    """The protocol knobs of one (model, analysis) run: analysis settings, preprocessing, precision, model, weights."""
    first = records[0].provenance
    model = first.get("model") or {}
    params: dict[str, str] = {"model_id": records[0].model_id, "weights_id": str(model.get("weights_id"))}
    _flatten("analysis", shared_params(records), params)
    preprocessing = {k: v for k, v in (first.get("preprocessing") or {}).items() if k != "key"}
    _flatten("preprocessing", preprocessing, params)
    params["precision"] = str(first.get("precision"))
    return params


def run_tags(records: list[ResultRecord], stage: str) -> dict[str, str]:
    """Tags of one model run: model facts, analysis, datasets, provenance (git, stage, config hash)."""
    model = records[0].provenance.get("model") or {}
    git = git_state()
    config = [[r.dataset, r.provenance.get("cache_config_hash"), r.params] for r in sorted(records, key=by_dataset)]
    return {
        "model": records[0].model_id,
        "family": str(model.get("family")),
        "paradigm": str(model.get("paradigm")),
        "demo": str(model.get("demo")),
        "analysis": records[0].analysis,
        "datasets": ",".join(sorted({r.dataset for r in records})),
        "git_sha": str(git["git_sha"]),
        "git_dirty": str(git["git_dirty"]),
        "dvc_stage": stage,
        "config_hash": content_key(config)[:16],
        ROLE_TAG: "model",
    }


def provenance(records: list[ResultRecord]) -> dict:
    """What ``provenance.json`` holds: each record's provenance by dataset, and the library versions."""
    return {"records": {r.dataset: r.provenance for r in records}, "versions": library_versions()}


def _short(value) -> str:
    """6 significant digits for MLflow's artifact preview (records and results.csv keep full precision)."""
    return "" if value is None or value == "" else format(value, ".6g") if isinstance(value, float) else str(value)


def intervals_csv(records: list[ResultRecord]) -> str:
    """The records' metric intervals as CSV, one row per metric (empty bounds where a metric has none)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(INTERVAL_COLUMNS)
    for record in records:
        for name, value in record.metrics.items():
            interval = record.intervals.get(name, {})
            row = [interval.get(k) for k in ("low", "high", "level", "n", "method", "plan")]
            writer.writerow([name, _short(float(value)), *(_short(v) for v in row), record.dataset])
    return buffer.getvalue()


def dataset_inputs(records: list[ResultRecord], manifests: Path | None = None) -> list:
    """One MLflow dataset input per record dataset: digest = the manifest's ``files_sha256``."""
    from mlflow.entities import Dataset, DatasetInput, InputTag

    inputs = {}
    for record in records:
        data = record.provenance.get("dataset")
        if not isinstance(data, dict) or not data.get("files_sha256"):
            continue
        name = str(data.get("name") or record.dataset)
        manifest = manifests / f"{name}.json" if manifests else None
        source = str(manifest) if manifest and manifest.exists() else str(data.get("root", name))
        profile = {"n_images": data.get("n_images"), "kind": data.get("kind"), "files_sha256": data["files_sha256"]}
        dataset = Dataset(
            name, data["files_sha256"][:32], "local", json.dumps({"uri": source}), None, json.dumps(profile)
        )
        inputs[name] = DatasetInput(dataset, [InputTag("mlflow.data.context", "eval")])
    return list(inputs.values())


def artifact_name(record: ResultRecord, path: str) -> str:
    """A model's own file under a name every model shares: ``figures/<dataset>/<stem, model id -> analysis>``."""
    file = Path(path)
    folder = "figures" if file.suffix.lower() in (".png", ".jpg", ".svg", ".pdf") else "data"
    return f"{folder}/{record.dataset}/{file.stem.replace(record.model_id, record.analysis)}{file.suffix}"


def split_artifacts(records: list[ResultRecord]) -> tuple[dict[str, str], dict[tuple[str, str], str]]:
    """Files naming no model (all-model figures: on the parent) and each model's own files, by artifact name."""
    shared, own = {}, {}
    for record in records:
        for path in dict.fromkeys(record.artifacts):
            file = Path(path)
            if record.model_id in file.stem:
                own[(record.model_id, artifact_name(record, path))] = path
            else:
                folder = "figures" if file.suffix.lower() in (".png", ".jpg", ".svg", ".pdf") else "data"
                shared[f"{folder}/{file.parent.name}/{file.name}"] = path
    return shared, own


def model_key(records: list[ResultRecord], stage: str) -> str:
    """What identifies a model run's content: model, analysis, stage, config hashes, params and metrics.

    Independent of the records' order (a stage's order and ``load_records``' file order differ).
    """
    ordered = sorted(records, key=by_dataset)
    per_dataset = [[r.dataset, r.provenance.get("cache_config_hash"), r.params, r.metrics] for r in ordered]
    return content_key([stage, records[0].model_id, records[0].analysis, *per_dataset])


def _log_model_run(client, experiment: str, parent: str, group: list[ResultRecord], stage: str, extra: dict) -> str:
    """One child run: name, colour, params, tags, metrics (sweeps as curves), inputs and its own files."""
    from mlflow.entities import Metric, Param, RunTag

    tags = {**run_tags(group, stage), "mlflow.parentRunId": parent, "mlflow.runColor": extra["colour"]}
    tags[KEY_TAG] = model_key(group, stage)
    run = client.create_run(experiment, tags=tags, run_name=display_name(group[0].model_id))
    metrics = [Metric(k, v, 0, step) for r in group for k, v, step in sweep_metrics(r.metrics)]
    params = [Param(k, v) for k, v in run_params(group).items()]
    client.log_batch(run.info.run_id, metrics=metrics, params=params, tags=[RunTag("records", str(len(group)))])
    inputs = dataset_inputs(group, extra["manifests"])
    if inputs:
        client.log_inputs(run.info.run_id, datasets=inputs)
    files = RunFiles(client, extra["config"], run)
    files.text(intervals_csv(group), "intervals.csv")
    files.json(provenance(group), "provenance.json")
    for record in group:
        files.json(record.as_dict(), f"records/{record.dataset}.json")
    for name, path in extra["own"].items():
        files.file(path, name)
    client.set_terminated(run.info.run_id)
    return run.info.run_id


def _log_analysis(client, config: TrackingConfig, experiment: str, records: list[ResultRecord], stage: str, manifests):
    """The parent run of one analysis and its model runs, unless a run with the same content exists."""
    analysis = records[0].analysis
    groups: dict[str, list[ResultRecord]] = defaultdict(list)
    for record in sorted(records, key=by_dataset):  # one order whatever the caller's (the stage's, load_records')
        groups[record.model_id].append(record)
    key = content_key([analysis, stage, sorted(model_key(g, stage) for g in groups.values())])
    existing = find_run(client, experiment, key)
    if existing is not None:
        mark_seen(client, existing.info.run_id)  # current again: the deep links follow it
        log.info("MLflow: %s unchanged, run %s kept", analysis, existing.info.run_id)
        return []
    git = git_state()
    tags = {"analysis": analysis, "dvc_stage": stage, ROLE_TAG: "analysis", KEY_TAG: key, "models": ",".join(groups)}
    tags[SEEN_TAG] = now_ms()
    tags.update({"git_sha": str(git["git_sha"]), "git_dirty": str(git["git_dirty"])})
    parent = client.create_run(experiment, tags=tags, run_name=analysis)
    shared, own = split_artifacts(records)
    files = RunFiles(client, config, parent)
    for name, path in shared.items():
        files.file(path, name)
    colours = display_map(groups)
    run_ids = [parent.info.run_id]
    for model_id, group in groups.items():
        mine = {name: path for (model, name), path in own.items() if model == model_id}
        extra = {"colour": colours[model_id].colour, "manifests": manifests, "config": config, "own": mine}
        run_ids.append(_log_model_run(client, experiment, parent.info.run_id, group, stage, extra))
    client.set_terminated(parent.info.run_id)
    log.info("MLflow run %s: %s (%d models)", parent.info.run_id, analysis, len(groups))
    return run_ids


def log_records(
    records: list[ResultRecord], config: TrackingConfig, stage: str = "analyze", manifests: Path | None = None
) -> list[str]:
    """Per analysis a parent run and per model a child run (see the module docstring); the new run ids."""
    if not config.enabled or not records:
        return []
    client = get_client(config)
    experiment = experiment_id(client, config)
    by_analysis: dict[str, list[ResultRecord]] = defaultdict(list)
    for record in records:
        by_analysis[record.analysis].append(record)
    run_ids = []
    for group in by_analysis.values():
        run_ids += _log_analysis(client, config, experiment, group, stage, manifests)
    return run_ids
