"""Stage ``analyze``: every configured analysis on the caches -> records, figures, DVC metrics, MLflow runs."""

from __future__ import annotations

import argparse
import shutil

from beyond_imagenet.analyses.common import AnalysisContext
from beyond_imagenet.analyses.registry import resolve_analyses, run_analyses
from beyond_imagenet.analyses.store import CacheStore
from beyond_imagenet.base.config import Params
from beyond_imagenet.base.record import ResultRecord
from beyond_imagenet.stages.common import save_records, show_records
from beyond_imagenet.stages.params import load_stage_params
from beyond_imagenet.stages.paths import stage_paths


def analyze(params: Params, names: list[str] | None = None) -> list[ResultRecord]:
    """Run the analyses (default: every configured one) and write records, figures and metrics.json."""
    if names:
        resolve_analyses(names)  # unknown names fail before any cache is read
    out = stage_paths(params).analyze
    for folder in (out.records, out.figures):
        shutil.rmtree(folder, ignore_errors=True)  # outputs of this stage only; rebuilt below
    store = CacheStore(params.inference.cache_dir)
    ctx = AnalysisContext(list(params.models), store, out.figures, params.datasets, params.statistics)
    records = run_analyses(params.analyses, ctx, names)
    save_records(records, out)
    return records


def run_analyze(args: argparse.Namespace) -> None:
    """``beyond-imagenet analyze``: one line per record, then the MLflow runs."""
    params = load_stage_params(args.params)
    records = analyze(params, args.analyses)
    show_records(records, params.tracking, "analyze", not args.no_mlflow, stage_paths(params).manifests)
