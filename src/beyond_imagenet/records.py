"""Where result records live on disk: one JSON file per record, its bootstrap replicates beside it, metrics files.

Records of the ImageNet-family analyses and of the CKA stage go to ``<records>/<analysis>/<dataset>/<model>.json``;
the probe stage keeps its own ``<records>/<model>/<task>.json`` (``probe.run``), which it also reads to reuse
results. A record's replicates (one row per metric with an interval) go to ``<same name>.replicates.npz``.
``metrics.json`` is ``{model_id: {namespaced metric: value}}``, every metric of a stage (a plain DVC output; the DVC
metrics are the headline file of ``results.headline``).

Folders whose name starts with a dot are work in progress (:func:`replace_folder` moves an old folder aside under
such a name) and are never read as records.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path

from beyond_imagenet.base.files import atomic_write_json
from beyond_imagenet.base.hashing import safe_name
from beyond_imagenet.base.record import ResultRecord, read_record, save_record


def record_path(records_dir: str | Path, record: ResultRecord) -> Path:
    """``<records_dir>/<analysis>/<dataset>/<model>.json``."""
    return Path(records_dir) / record.analysis / record.dataset / f"{safe_name(record.model_id)}.json"


def write_records(records: Sequence[ResultRecord], records_dir: str | Path) -> list[Path]:
    """Write each record (and its replicates) atomically; returns the JSON paths."""
    return [save_record(record, record_path(records_dir, record)) for record in records]


def load_records(records_dir: str | Path, with_replicates: bool = False) -> list[ResultRecord]:
    """Every record written by :func:`write_records` under ``records_dir`` (sorted by path; hidden folders skipped)."""
    root = Path(records_dir)
    paths = sorted(p for p in root.glob("*/*/*.json") if not p.relative_to(root).parts[0].startswith("."))
    return [read_record(p, with_replicates) for p in paths]


def relocated(record: ResultRecord, staged: Path, final: Path) -> ResultRecord:
    """``record`` with its artifacts and path-valued details under ``staged`` moved to the same names in ``final``."""

    def moved(value):
        if isinstance(value, str) and Path(value).is_relative_to(staged):
            return str(final / Path(value).relative_to(staged))
        return value

    details = {key: moved(value) for key, value in record.details.items()}
    return dataclasses.replace(record, artifacts=[moved(a) for a in record.artifacts], details=details)


def replace_folder(staged: Path | None, target: Path) -> None:
    """Put the folder ``staged`` in place of ``target`` (None or a missing folder: ``target`` is removed).

    Both renames stay in ``target``'s parent folder (``staged`` must be on the same file system); the old folder is
    moved aside under a hidden name and deleted only once the new one is in place, and put back if that failed.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    aside = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
    if target.exists():
        os.replace(target, aside)
    try:
        if staged is not None and staged.exists():
            os.replace(staged, target)
    except BaseException:
        if aside.exists():
            os.replace(aside, target)
        raise
    shutil.rmtree(aside, ignore_errors=True)


def load_model_records(
    records_dir: str | Path, model_ids: Sequence[str], names: Sequence[str], with_replicates: bool = False
) -> list[ResultRecord]:
    """Records stored as ``<records_dir>/<model>/<name>.json`` (the probe stage's), in model then name order."""
    records = []
    for model_id in model_ids:
        for name in names:
            path = Path(records_dir) / safe_name(model_id) / f"{name}.json"
            if path.exists():
                records.append(read_record(path, with_replicates))
    return records


def metrics_by_model(records: Sequence[ResultRecord]) -> dict[str, dict[str, float]]:
    """``{model_id: {namespaced metric: value}}`` over all records (later records win on a repeated key)."""
    metrics: dict[str, dict[str, float]] = {}
    for record in records:
        metrics.setdefault(record.model_id, {}).update(record.metrics)
    return metrics


def write_metrics_file(records: Sequence[ResultRecord], path: str | Path) -> Path:
    """A stage's metrics file: ``{model_id: {namespaced metric: value}}``, every metric of its records."""
    return atomic_write_json(path, metrics_by_model(records))
