"""The one result record: a (model, analysis, dataset) result with its metrics, settings and provenance.

Every analysis of the ImageNet family, the CKA stage and every VTAB probe returns these records; ``records``
stores them and ``tracking`` logs them (docs/architecture.md, principle 8). A record is one JSON file; its bootstrap
replicates (one row per metric with an interval) sit beside it in ``<same name>.replicates.npz``.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from beyond_imagenet.base.files import atomic_write_bytes, atomic_write_json

REPLICATES_SUFFIX = ".replicates.npz"


@dataclass
class ResultRecord:
    """One model x analysis x dataset result: namespaced metrics, the data behind figures, and provenance.

    Attributes:
        analysis: the registered analysis name (``calibration``, ``vtab_probe``, ...).
        model_id: the catalogue id of the model.
        dataset: the dataset (or VTAB task) the metrics are about.
        metrics: namespaced scalar metrics, e.g. ``calibration/imagenet_val/ece``.
        params: the analysis settings that produced the metrics.
        details: the data behind tables and figures (bins, curves, per-class values).
        provenance: where the result came from (model, weights, preprocessing, data manifest, versions, git sha).
        artifacts: files written with the record (figures, matrices, predictions).
        intervals: per metric its interval ``{"low", "high", "n", "method", "plan"}`` (``plan`` names the resampled
            image set: metrics of two models with the same plan can be compared pairwise).
        replicates: per metric its bootstrap replicates (kept beside the record file, not in its JSON).
    """

    analysis: str
    model_id: str
    dataset: str
    metrics: dict[str, float]
    params: dict = field(default_factory=dict)
    details: dict = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)
    artifacts: list[str] = field(default_factory=list)
    intervals: dict[str, dict] = field(default_factory=dict)
    replicates: dict[str, np.ndarray] = field(default_factory=dict, repr=False, compare=False)

    def as_dict(self) -> dict:
        """A JSON-serialisable copy (without the replicates)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "replicates"}


def replicates_path(json_path: str | Path) -> Path:
    """Where the replicates of the record at ``json_path`` are kept."""
    path = Path(json_path)
    return path.with_name(path.name.removesuffix(".json") + REPLICATES_SUFFIX)


def save_record(record: ResultRecord, path: str | Path) -> Path:
    """Write one record (JSON) and, if it has any, its replicates (``.replicates.npz``), each atomically.

    A record without replicates removes replicates left beside ``path`` by an earlier version of it.
    """
    if not record.replicates:
        replicates_path(path).unlink(missing_ok=True)
    else:
        names = list(record.replicates)
        buffer = io.BytesIO()
        np.savez(buffer, names=np.array(names), values=np.stack([record.replicates[n] for n in names]))
        atomic_write_bytes(replicates_path(path), buffer.getvalue())
    return atomic_write_json(path, record.as_dict())


def read_record(path: str | Path, with_replicates: bool = False) -> ResultRecord:
    """One record, with its replicates when asked for and present."""
    record = ResultRecord(**json.loads(Path(path).read_text()))
    stored = replicates_path(path)
    if with_replicates and stored.exists():
        with np.load(stored) as data:
            record.replicates = dict(zip(data["names"].tolist(), data["values"], strict=True))
    return record
