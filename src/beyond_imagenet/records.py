"""Where result records live on disk: one JSON file per record, its bootstrap replicates beside it, metrics files.

Records of the ImageNet-family analyses and of the CKA stage go to ``<records>/<analysis>/<dataset>/<model>.json``;
the probe stage keeps its own ``<records>/<model>/<task>.json`` (``probe.run``), which it also reads to reuse
results. A record's replicates (one row per metric with an interval) go to ``<same name>.replicates.npz``.
``metrics.json`` is ``{model_id: {namespaced metric: value}}``, every metric of a stage (a plain DVC output; the DVC
metrics are the headline file of ``results.headline``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from beyond_imagenet.base.files import atomic_write_json
from beyond_imagenet.base.hashing import safe_name
from beyond_imagenet.base.record import ResultRecord, read_record, save_record


def record_path(records_dir: str | Path, record: ResultRecord) -> Path:
    """``<records_dir>/<analysis>/<dataset>/<model>.json``."""
    return Path(records_dir) / record.analysis / record.dataset / f"{record.model_id.replace(':', '_')}.json"


def write_records(records: Sequence[ResultRecord], records_dir: str | Path) -> list[Path]:
    """Write each record (and its replicates) atomically; returns the JSON paths."""
    return [save_record(record, record_path(records_dir, record)) for record in records]


def load_records(records_dir: str | Path, with_replicates: bool = False) -> list[ResultRecord]:
    """Every record written by :func:`write_records` under ``records_dir`` (sorted by path)."""
    paths = sorted(Path(records_dir).glob("*/*/*.json"))
    return [read_record(p, with_replicates) for p in paths]


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
