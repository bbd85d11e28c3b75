"""Stage ``results``: the records of every stage -> the tidy results table, paired comparisons and rankings.

Writes ``results.parquet`` and ``results.csv`` (one row per model, analysis, dataset, variant and metric, with its
interval), ``comparisons.csv`` (every pair of models on every metric they share resamples on), ``rankings.csv``
(rank intervals) and the headline file (the pipeline's DVC metrics, ``results.headline``), each atomically; then
logs them to MLflow as one ``results`` run.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import pandas as pd

from beyond_imagenet.base.config import Params
from beyond_imagenet.base.errors import UserError
from beyond_imagenet.base.files import atomic_write_bytes, atomic_write_json, atomic_write_text
from beyond_imagenet.base.provenance import git_state
from beyond_imagenet.base.record import ResultRecord
from beyond_imagenet.data.vtab.tasks import get_preset
from beyond_imagenet.records import load_model_records, load_records
from beyond_imagenet.results.comparisons import comparisons_table, rankings_table
from beyond_imagenet.results.headline import dataset_kinds, headline_metrics
from beyond_imagenet.results.tidy import results_table
from beyond_imagenet.stages.params import load_stage_params
from beyond_imagenet.stages.paths import StagePaths, stage_paths
from beyond_imagenet.tracking.mlflow_logger import log_files


def all_records(params: Params, paths: StagePaths) -> list[ResultRecord]:
    """The records of the analyze, cka and probe stages, with their replicates (VTAB: tasks and preset summary)."""
    records = load_records(paths.analyze.records, True) + load_records(paths.cka.records, True)
    if params.transfer.root:
        preset = get_preset(params.transfer.preset)
        names = [*preset.names, preset.name]
        records += load_model_records(paths.vtab.records, params.models, names, with_replicates=True)
    return [r for r in records if r.model_id in params.models]


def build_tables(params: Params) -> dict[str, pd.DataFrame]:
    """The three tables of the run's records; raises naming the stage to run when there are none."""
    paths = stage_paths(params)
    records = all_records(params, paths)
    if not records:
        raise UserError(f"no result records under {paths.analyze.records}; run `dvc repro analyze` first")
    return {
        "results": results_table(records),
        "comparisons": comparisons_table(records, params.statistics),
        "rankings": rankings_table(records, params.statistics),
    }


def write_tables(tables: dict[str, pd.DataFrame], paths: StagePaths) -> list:
    """results.parquet/.csv, comparisons.csv and rankings.csv, each written atomically."""
    buffer = io.BytesIO()
    tables["results"].to_parquet(buffer, index=False)
    return [
        atomic_write_bytes(paths.results_parquet, buffer.getvalue()),
        atomic_write_text(paths.results_csv, tables["results"].to_csv(index=False)),
        atomic_write_text(paths.comparisons, tables["comparisons"].to_csv(index=False)),
        atomic_write_text(paths.rankings, tables["rankings"].to_csv(index=False)),
    ]


def write_headline(results: pd.DataFrame, params: Params, paths: StagePaths) -> Path:
    """The headline metrics of the tidy ``results`` table, written atomically as flat JSON to ``paths.headline``."""
    return atomic_write_json(paths.headline, headline_metrics(results, dataset_kinds(params.datasets)))


def summary_lines(tables: dict[str, pd.DataFrame], significance: float) -> list[str]:
    """What a person reads first: how many metrics and comparisons, and the differences that are real."""
    results, comparisons = tables["results"], tables["comparisons"]
    real = comparisons[comparisons["real"]]
    lines = [
        f"{len(results)} metric values ({results['ci_low'].notna().sum()} with an interval), "
        f"{len(comparisons)} paired comparisons, "
        f"{len(real)} real (Holm-adjusted p < {significance}, interval without 0)"
    ]
    for row in real.sort_values("p_holm").head(10).to_dict("records"):
        lines.append(
            f"  {row['analysis']}/{row['dataset']} {row['name']}: {row['model_a']} - {row['model_b']} = "
            f"{row['difference']:.4g} [{row['ci_low']:.4g}, {row['ci_high']:.4g}], p_holm={row['p_holm']:.2g}"
        )
    return lines


def run_results(args: argparse.Namespace) -> None:
    """``beyond-imagenet results``: write the tables, print what is real, log them to MLflow."""
    params = load_stage_params(args.params)
    tables = build_tables(params)
    paths = stage_paths(params)
    written = [*write_tables(tables, paths), write_headline(tables["results"], params, paths)]
    print("\n".join(summary_lines(tables, params.statistics.significance)))
    print("\n".join(str(p) for p in written))
    if not args.no_mlflow:
        log_files(written, params.tracking, "results", {"git_sha": str(git_state()["git_sha"]), "dvc_stage": "results"})
