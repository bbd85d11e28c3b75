"""Stage ``report``: the one-page report (``report.html``, ``report.md``) and the tidy ``summary.csv``.

Reads the ``results`` stage's tables (values, intervals, paired comparisons, rankings), the records (Table 2),
the probe records (Table 3) and every PNG under the results folder (docs/report.md).
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from beyond_imagenet.base.config import Params
from beyond_imagenet.base.errors import UserError
from beyond_imagenet.base.provenance import git_state
from beyond_imagenet.data.vtab.tasks import get_preset
from beyond_imagenet.records import load_model_records, load_records
from beyond_imagenet.report import ReportInputs, RunInfo, SideStudy, differences_section, vtab_section, write_report
from beyond_imagenet.results.headline import dataset_kinds
from beyond_imagenet.stages.params import load_stage_params
from beyond_imagenet.stages.paths import StagePaths, stage_paths
from beyond_imagenet.stages.side_study import side_study_params
from beyond_imagenet.tracking.mlflow_logger import log_files


def _not_run(paths: StagePaths) -> dict[str, str]:
    """The VTAB tasks the probe stage could not run, as it recorded them in its metrics file."""
    if not paths.vtab.metrics.exists():
        return {}
    return json.loads(paths.vtab.metrics.read_text()).get("not_run", {})


def load_side_studies(params: Params) -> list[SideStudy]:
    """Each side study of params: its title, models and records (a missing params file fails before any writing)."""
    studies = []
    for name, config in params.side_studies.items():
        side = side_study_params(params, name)
        side_paths = stage_paths(side)
        records = load_records(side_paths.analyze.records) + load_records(side_paths.cka.records)
        studies.append(SideStudy(config.title, config.params, list(side.models), records, Path(side.results_dir)))
    return studies


def run_report(args: argparse.Namespace) -> None:
    """``beyond-imagenet report``: write the report and log it to MLflow."""
    params = load_stage_params(args.params)
    paths = stage_paths(params)
    side_studies = load_side_studies(params)
    records = load_records(paths.analyze.records) + load_records(paths.cka.records)
    if not records:
        raise UserError(f"no result records under {paths.analyze.records}; run `dvc repro analyze` first")
    if not paths.results_parquet.exists():
        raise UserError(f"no {paths.results_parquet}; run `beyond-imagenet results` (or `dvc repro results`) first")
    results = pd.read_parquet(paths.results_parquet)
    comparisons = pd.read_csv(paths.comparisons) if paths.comparisons.exists() else pd.DataFrame()
    rankings = pd.read_csv(paths.rankings) if paths.rankings.exists() else pd.DataFrame()
    preset = get_preset(params.transfer.preset)
    vtab_records = [
        r for r in load_model_records(paths.vtab.records, params.models, preset.names) if r.analysis == "vtab_probe"
    ]
    vtab = vtab_section(vtab_records, preset.name, params.models, _not_run(paths), results)
    differences = differences_section(comparisons, params.statistics.significance, params.statistics.holm_family)
    state = git_state()
    date = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    run = RunInfo(state["git_sha"], state["git_dirty"], date, str(args.params))  # type: ignore[arg-type]
    inputs = ReportInputs(
        results, records, Path(params.results_dir), run, dataset_kinds(params.datasets), comparisons, rankings,
        paths.manifests, vtab, differences, side_studies,
    )  # fmt: skip
    written = write_report(inputs, paths.reports)
    print("\n".join(str(p) for p in written))
    if not args.no_mlflow:
        log_files(written, params.tracking, "report", {"git_sha": str(state["git_sha"]), "dvc_stage": "report"})
