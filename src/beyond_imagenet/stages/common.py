"""Small helpers the stages share: a plain-text table, a record's one-line summary, MLflow logging of records."""

from __future__ import annotations

from beyond_imagenet.base.config import TrackingConfig
from beyond_imagenet.base.record import ResultRecord
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


def print_record(record: ResultRecord) -> None:
    """``analysis  dataset  model  metric=value, ...`` with the namespace prefixes dropped."""
    prefix = f"{record.analysis}/{record.dataset}/" if record.analysis in ("accuracy", "calibration") else ""
    shown = ", ".join(
        f"{k.removeprefix(prefix).removeprefix(record.analysis + '/')}={v:.4g}" for k, v in record.metrics.items()
    )
    print(f"{record.analysis:12s} {record.dataset:14s} {record.model_id:28s} {shown}")


def log_to_mlflow(records: list[ResultRecord], tracking: TrackingConfig, stage: str) -> None:
    """One MLflow run per (model, analysis), and a line saying where."""
    run_ids = log_records(records, tracking, stage=stage)
    print(f"logged {len(run_ids)} MLflow runs to {tracking.tracking_uri} (`make mlflow-ui` to browse)")
