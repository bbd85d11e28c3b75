"""Small helpers the stages share: a plain-text table, a record's one-line summary, MLflow logging of records."""

from __future__ import annotations

from pathlib import Path

from beyond_imagenet.base.config import TrackingConfig
from beyond_imagenet.base.record import ResultRecord
from beyond_imagenet.records import write_metrics_file, write_records
from beyond_imagenet.stages.paths import StageFolder
from beyond_imagenet.tracking.mlflow_logger import log_records


def print_table(rows: list[dict[str, str]]) -> None:
    """Left-aligned columns with a header line."""
    if not rows:
        return
    keys = list(rows[0])
    widths = {k: max(len(k), *(len(str(r[k])) for r in rows)) for k in keys}
    print("  ".join(k.ljust(widths[k]) for k in keys))
    for row in rows:
        print("  ".join(str(row[k]).ljust(widths[k]) for k in keys))


SHOWN_METRICS = 8  # a record line shows this many metrics; the rest are in the record file and results.csv


def _shown_metric(record: ResultRecord, name: str, prefix: str) -> str:
    """``name=value`` or ``name=value [low, high]`` when the record carries the metric's interval."""
    short = name.removeprefix(prefix).removeprefix(record.analysis + "/")
    interval = record.intervals.get(name, {})
    low, high = interval.get("low"), interval.get("high")
    bounds = f" [{low:.4g}, {high:.4g}]" if low is not None and high is not None else ""
    return f"{short}={record.metrics[name]:.4g}{bounds}"


def print_record(record: ResultRecord) -> None:
    """``analysis  dataset  model  metric=value [interval], ...``: the first metrics, namespace prefixes dropped."""
    prefix = f"{record.analysis}/{record.dataset}/" if record.analysis in ("accuracy", "calibration") else ""
    names = list(record.metrics)
    shown = ", ".join(_shown_metric(record, name, prefix) for name in names[:SHOWN_METRICS])
    more = f", ... (+{len(names) - SHOWN_METRICS} more)" if len(names) > SHOWN_METRICS else ""
    print(f"{record.analysis:12s} {record.dataset:14s} {record.model_id:28s} {shown}{more}")


def log_to_mlflow(
    records: list[ResultRecord], tracking: TrackingConfig, stage: str, manifests: Path | None = None
) -> None:
    """Per analysis a parent run and per model a child run (none when unchanged), and a line saying where."""
    run_ids = log_records(records, tracking, stage=stage, manifests=manifests)
    print(f"logged {len(run_ids)} new MLflow runs to {tracking.tracking_uri} (`make mlflow-ui` to browse)")


def save_records(records: list[ResultRecord], folder: StageFolder) -> None:
    """A stage's records (one JSON file each) and its DVC metrics file."""
    write_records(records, folder.records)
    write_metrics_file(records, folder.metrics)


def show_records(
    records: list[ResultRecord], tracking: TrackingConfig, stage: str, mlflow: bool, manifests: Path | None = None
) -> None:
    """One line per record, then (unless ``mlflow`` is False) the MLflow runs (inputs from the ``manifests``)."""
    for record in records:
        print_record(record)
    if mlflow:
        log_to_mlflow(records, tracking, stage, manifests)
