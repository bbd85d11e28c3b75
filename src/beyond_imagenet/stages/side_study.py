"""Stage ``side_studies`` (``side-study``): each side study of params.yaml, inference then analyses, in its own folder.

A side study is another params file (``side_studies.<name>.params``) with its own models, datasets and analyses;
its cache, records and figures go under ``<results_dir>/side_studies/<name>`` of the main params, whatever the side
file says, so moving ``results_dir`` moves them too and no side study can overwrite the main run's records. The
report shows each in its own section (``report/side_study.py``). The demo's: a real pretrained EfficientNet-Lite0
on the real images that exist offline (configs/demo_real.yaml).
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from beyond_imagenet.base.config import Params
from beyond_imagenet.base.errors import UnknownNameError, UserError
from beyond_imagenet.stages.analyze import analyze
from beyond_imagenet.stages.common import show_records
from beyond_imagenet.stages.infer import infer
from beyond_imagenet.stages.params import load_stage_params
from beyond_imagenet.stages.paths import stage_paths


def side_study_dir(params: Params, name: str) -> Path:
    """``<results_dir>/<outputs.side_studies>/<name>``: where the side study ``name`` writes everything."""
    return stage_paths(params).side_studies / name


def side_study_params(params: Params, name: str) -> Params:
    """The side study's own params, with its results and cache moved under :func:`side_study_dir`.

    Raises:
        UserError: ``name`` is not a side study of ``params``, or its params file is missing (before any work).
    """
    if name not in params.side_studies:
        raise UnknownNameError("side study", name, params.side_studies)
    path = Path(params.side_studies[name].params)
    if not path.is_file():
        raise UserError(
            f"params side_studies.{name}.params: {path} not found (a path from the repository root); "
            "fix the path or remove the entry"
        )
    side = load_stage_params(path)
    folder = side_study_dir(params, name)
    inference = dataclasses.replace(side.inference, cache_dir=str(folder / "cache"))
    return dataclasses.replace(side, results_dir=str(folder), inference=inference, side_studies={})


def run_side_study(args: argparse.Namespace) -> None:
    """``beyond-imagenet side-study [NAME ...]``: inference and analyses of each (default: every) side study."""
    params = load_stage_params(args.params)
    names = args.names or list(params.side_studies)
    studies = {name: side_study_params(params, name) for name in names}  # every file checked before any work
    stage_paths(params).side_studies.mkdir(parents=True, exist_ok=True)  # the DVC out, even with no side study
    for name, side in studies.items():
        print(f"side study {name!r} ({params.side_studies[name].params}) -> {side.results_dir}")
        infer(side)
        records = analyze(side)
        show_records(records, side.tracking, "side_study", not args.no_mlflow, stage_paths(side).manifests)
