"""Stage ``report``: every model side by side (Markdown + CSV) with Tables 2 and 3, from the stages' records."""

from __future__ import annotations

import argparse
import json

from beyond_imagenet.base.errors import UserError
from beyond_imagenet.base.provenance import git_state
from beyond_imagenet.data.vtab.tasks import get_preset
from beyond_imagenet.records import load_model_records, load_records
from beyond_imagenet.report import vtab_section, write_report
from beyond_imagenet.stages.params import load_stage_params
from beyond_imagenet.stages.paths import StagePaths, stage_paths
from beyond_imagenet.tracking.mlflow_logger import log_report


def _not_run(paths: StagePaths) -> dict[str, str]:
    """The VTAB tasks the probe stage could not run, as it recorded them in its metrics file."""
    if not paths.vtab.metrics.exists():
        return {}
    return json.loads(paths.vtab.metrics.read_text()).get("not_run", {})


def run_report(args: argparse.Namespace) -> None:
    """``beyond-imagenet report``: write the report and log it to MLflow."""
    params = load_stage_params(args.params)
    paths = stage_paths(params)
    records = load_records(paths.analyze.records) + load_records(paths.cka.records)
    if not records:
        raise UserError(f"no result records under {paths.analyze.records}; run `dvc repro analyze` first")
    preset = get_preset(params.transfer.preset)
    vtab_records = [
        r for r in load_model_records(paths.vtab.records, params.models, preset.names) if r.analysis == "vtab_probe"
    ]
    vtab = vtab_section(vtab_records, preset.name, params.models, _not_run(paths))
    written = write_report(records, paths.reports, [vtab])
    print("\n".join(str(p) for p in written))
    if not args.no_mlflow:
        log_report(written, params.tracking, {"git_sha": str(git_state()["git_sha"]), "dvc_stage": "report"})
