"""Where result records live on disk: one JSON file per record, and the DVC metrics file of a stage.

Records of the ImageNet-family analyses and of the CKA stage go to ``<records>/<analysis>/<dataset>/<model>.json``;
the probe stage keeps its own ``<records>/<model>/<task>.json`` (``probe.run``), which it also reads to reuse
results. ``metrics.json`` is ``{model_id: {namespaced metric: value}}`` for ``dvc metrics show``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from beyond_imagenet.base.files import atomic_write_json
from beyond_imagenet.base.hashing import safe_name
from beyond_imagenet.base.record import ResultRecord


def record_path(records_dir: str | Path, record: ResultRecord) -> Path:
    """``<records_dir>/<analysis>/<dataset>/<model>.json``."""
    return Path(records_dir) / record.analysis / record.dataset / f"{record.model_id.replace(':', '_')}.json"


def write_records(records: Sequence[ResultRecord], records_dir: str | Path) -> list[Path]:
    """Write each record atomically; returns the paths."""
    return [atomic_write_json(record_path(records_dir, record), record.as_dict()) for record in records]


def load_records(records_dir: str | Path) -> list[ResultRecord]:
    """Every record written by :func:`write_records` under ``records_dir`` (sorted by path)."""
    paths = sorted(Path(records_dir).glob("*/*/*.json"))
    return [ResultRecord(**json.loads(p.read_text())) for p in paths]


def load_model_records(records_dir: str | Path, model_ids: Sequence[str], names: Sequence[str]) -> list[ResultRecord]:
    """Records stored as ``<records_dir>/<model>/<name>.json`` (the probe stage's), in model then name order."""
    records = []
    for model_id in model_ids:
        for name in names:
            path = Path(records_dir) / safe_name(model_id) / f"{name}.json"
            if path.exists():
                records.append(ResultRecord(**json.loads(path.read_text())))
    return records


def metrics_by_model(records: Sequence[ResultRecord]) -> dict[str, dict[str, float]]:
    """``{model_id: {namespaced metric: value}}`` over all records (later records win on a repeated key)."""
    metrics: dict[str, dict[str, float]] = {}
    for record in records:
        metrics.setdefault(record.model_id, {}).update(record.metrics)
    return metrics


def write_metrics_file(records: Sequence[ResultRecord], path: str | Path) -> Path:
    """DVC metrics: ``{model_id: {namespaced metric: value}}``, shown by ``dvc metrics show``."""
    return atomic_write_json(path, metrics_by_model(records))
