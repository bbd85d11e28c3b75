"""Where a run's results go (params.yaml): output names, MLflow tracking and side studies (docs/architecture.md)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OutputsConfig:
    """Names of what the stages write under ``results_dir``: the one declaration of every output path.

    dvc.yaml builds its ``outs`` and ``metrics`` from the same keys (``${results_dir}/${outputs.records}``), and the
    stages join them to ``results_dir`` in ``stages.paths``. The ``cka`` and ``vtab`` folders hold their own
    ``records``, ``metrics`` and ``figures`` under these same names. ``headline`` alone is not under ``results_dir``
    (git-ignored): it is a path from the repository root, the pipeline's DVC metrics file, kept in git.
    """

    manifests: str = "manifests"  # stage data: one manifest per dataset
    records: str = "records"  # result records (JSON), one per (analysis, dataset, model)
    metrics: str = "metrics.json"  # every metric of a stage, {model: {name: value}} (a plain output)
    figures: str = "figures"  # the paper's figures (PNG)
    cka: str = "cka"  # stage cka: records, metrics, figures and the CKA matrices
    matrices: str = "matrices"
    vtab: str = "vtab"  # stage probe: records, metrics, figures, split rows, predictions, studies, Table 3
    splits: str = "splits"
    predictions: str = "predictions"
    studies: str = "studies"
    table3: str = "table3.md"
    results_table: str = "results"  # stage results: results.parquet and results.csv, one row per metric
    comparisons: str = "comparisons.csv"  # every pair of models on every metric: difference, interval, p, Holm
    rankings: str = "rankings.csv"  # per metric each model's rank and rank interval
    headline: str = "metrics/headline.json"  # stage results: the DVC metrics, ~15 per model (results/headline.py)
    side_studies: str = "side_studies"  # stage side_studies: one folder per side study (cache, records, figures)


@dataclass(frozen=True)
class TrackingConfig:
    """``tracking``: the MLflow experiment and store (docs/architecture.md, MLflow); ``enabled: false`` logs nothing."""

    experiment: str = "beyond-imagenet"
    tracking_uri: str = "sqlite:///mlruns/mlflow.db"
    artifact_location: str = "mlruns/artifacts"
    enabled: bool = True


@dataclass(frozen=True)
class SideStudyConfig:
    """``side_studies.<name>``: another params file run by ``beyond-imagenet side-study`` and shown in the report.

    Its models, datasets and analyses are its own; its outputs go under ``<results_dir>/side_studies/<name>`` of this
    params file (the demo's: a real pretrained model on the real images that exist offline, configs/demo_real.yaml).
    """

    title: str
    params: str
