"""The MLflow logger's entry points (docs/architecture.md, MLflow): the stages import them from here.

- :func:`log_records` (``tracking.runs``): per analysis a parent run, per model a child run;
- :class:`ProbeRunTracker`, :func:`tracker_factory`, :func:`log_vtab_summary` (``tracking.probe``);
- :func:`log_files`: a run holding files (the results tables, the report with ``report.html``);
- :func:`deep_links` (``tracking.links``): URLs that open one analysis' model runs in the UI.

mlflow is imported only inside functions, so the GPU inference path never needs it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from beyond_imagenet.base.config import TrackingConfig
from beyond_imagenet.tracking.links import deep_links
from beyond_imagenet.tracking.probe import ProbeRunTracker, log_vtab_summary, tracker_factory
from beyond_imagenet.tracking.runs import intervals_csv, log_records, run_params, run_tags
from beyond_imagenet.tracking.store import KEY_TAG, ROLE_TAG, RunFiles, content_key, experiment_id, find_run, get_client

__all__ = [
    "ProbeRunTracker",
    "deep_links",
    "intervals_csv",
    "log_files",
    "log_records",
    "log_vtab_summary",
    "run_params",
    "run_tags",
    "tracker_factory",
]


def _file_digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest() if Path(path).is_file() else "missing"


def log_files(paths: list[Path], config: TrackingConfig, name: str, tags: dict[str, str]) -> str | None:
    """A run named ``name`` (tag ``analysis=<name>``) holding the files under ``<name>/``; reused when unchanged.

    ``report`` runs hold ``report/report.html`` (MLflow's artifact viewer renders it), ``results`` runs the tables.
    """
    if not config.enabled:
        return None
    client = get_client(config)
    experiment = experiment_id(client, config)
    key = content_key([name, sorted((Path(p).name, _file_digest(p)) for p in paths)])
    existing = find_run(client, experiment, key)
    if existing is not None:
        return existing.info.run_id
    all_tags = {"analysis": name, **tags, ROLE_TAG: "files", KEY_TAG: key}
    run = client.create_run(experiment, tags=all_tags, run_name=name)
    files = RunFiles(client, config, run)
    for path in paths:
        if Path(path).is_file():
            files.file(path, f"{name}/{Path(path).name}")
    client.set_terminated(run.info.run_id)
    return run.info.run_id
