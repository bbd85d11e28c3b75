"""The tidy results table: one row per (model, analysis, dataset, variant, metric) with its interval and provenance.

A record's namespaced metric ``<namespace>/<...>/<metric>`` becomes ``variant`` (the middle parts, e.g.
``imagenet_c/fog`` or ``scale/1.25``) and ``metric`` (the last part); the dataset's own name is dropped from the
middle when it repeats the record's dataset (``accuracy/<dataset>/top1``). ``name`` keeps the full metric name, the
key shared with the records, the DVC metrics and MLflow.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence

import numpy as np
import pandas as pd

from beyond_imagenet.base.errors import UnknownNameError
from beyond_imagenet.base.record import ResultRecord
from beyond_imagenet.models.catalogue import resolve_model
from beyond_imagenet.models.display import display_name

COLUMNS = (
    "model", "display_name", "family", "paradigm", "weights_id", "analysis", "dataset", "variant", "metric", "name",
    "value", "ci_low", "ci_high", "level", "n", "method", "plan", "direction", "config_hash",
)  # fmt: skip

LOWER_IS_BETTER = ("ece", "mce", "error_ratio", "mean_error_ratio")
NO_DIRECTION = ("mean_confidence", "overconfidence", "n_samples", "n_unlabeled_skipped")


def direction(analysis: str, metric: str) -> str:
    """``higher`` or ``lower`` is better, or ``none``: a property (shape bias, CKA similarity, confidence)."""
    if metric in LOWER_IS_BETTER:
        return "lower"
    if (analysis in ("shape_bias", "cka") and metric != "accuracy_16") or metric in NO_DIRECTION:
        return "none"
    return "higher"


def split_name(record: ResultRecord, name: str) -> tuple[str, str]:
    """(variant, metric) of a record's namespaced metric name."""
    parts = name.split("/")[1:]
    if parts and parts[0] == record.dataset:
        parts = parts[1:]
    return "/".join(parts[:-1]), parts[-1] if parts else name


def _cache_hashes(provenance: dict) -> Iterator[str]:
    """Every cache configuration hash in a (nested) provenance."""
    for key, value in provenance.items():
        if key == "cache_config_hash" and value:
            yield str(value)
        elif isinstance(value, dict):
            yield from _cache_hashes(value)


def config_hash(record: ResultRecord) -> str:
    """Short hash of what produced a record: its analysis and settings, its caches' or probe protocol's hashes."""
    basis = {
        "analysis": record.analysis,
        "params": record.params,
        "caches": sorted(set(_cache_hashes(record.provenance))),
        "protocol": record.provenance.get("protocol_hash"),
    }
    return hashlib.sha256(json.dumps(basis, sort_keys=True, default=str).encode()).hexdigest()[:16]


def model_facts(record: ResultRecord) -> dict[str, str]:
    """Display name, family, paradigm and weights id: from the catalogue, else from the record's provenance."""
    model = record.provenance.get("model")
    model = model if isinstance(model, dict) else {}
    try:
        spec = resolve_model(record.model_id)
    except UnknownNameError:
        spec = None
    return {
        "display_name": display_name(record.model_id),
        "family": str(model.get("family") or (spec.family if spec else "")),
        "paradigm": str(model.get("paradigm") or (spec.paradigm if spec else "")),
        "weights_id": str(model.get("weights_id") or (spec.weights_id if spec else "")),
    }


def record_rows(record: ResultRecord) -> list[dict]:
    """The tidy rows of one record (a metric without interval has empty ci columns)."""
    facts, digest, rows = model_facts(record), config_hash(record), []
    for name, value in record.metrics.items():
        variant, metric = split_name(record, name)
        interval = record.intervals.get(name, {})
        rows.append(
            {
                "model": record.model_id, **facts, "analysis": record.analysis, "dataset": record.dataset,
                "variant": variant, "metric": metric, "name": name, "value": float(value),
                "ci_low": _number(interval.get("low")), "ci_high": _number(interval.get("high")),
                "level": _number(interval.get("level")), "n": _number(interval.get("n")),
                "method": interval.get("method", ""), "plan": interval.get("plan", ""),
                "direction": direction(record.analysis, metric), "config_hash": digest,
            }
        )  # fmt: skip
    return rows


def _number(value) -> float:
    return float(value) if value is not None else np.nan


def results_table(records: Sequence[ResultRecord]) -> pd.DataFrame:
    """Every record's rows, in record order, with the columns of ``COLUMNS``."""
    rows = [row for record in records for row in record_rows(record)]
    return pd.DataFrame(rows, columns=list(COLUMNS))
