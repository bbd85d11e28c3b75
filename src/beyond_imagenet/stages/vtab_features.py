"""Stage ``vtab_features`` (paper §6; docs/vtab.md): the frozen features of every model on every VTAB source split.

Planning comes first (``probe.tasks``): every task is checked on disk and its labels and split rows derived; a task
that cannot run is named with the reason and the others go on. Without ``transfer.root`` the VTAB stages leave
their empty outputs, so ``dvc repro`` goes on. Nothing here imports Optuna or MLflow (the GPU path).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from beyond_imagenet.base.config import Params
from beyond_imagenet.base.errors import UserError
from beyond_imagenet.base.files import atomic_write_json, atomic_write_text
from beyond_imagenet.probe.aggregate import SKIPPED_NOTE, print_not_run
from beyond_imagenet.probe.features import extract_features
from beyond_imagenet.probe.tasks import TransferPlan, plan_transfer
from beyond_imagenet.stages.params import load_stage_params
from beyond_imagenet.stages.paths import stage_paths


def write_skipped_outputs(params: Params) -> None:
    """Without ``transfer.root`` the stages still leave their (empty) outputs, so ``dvc repro`` goes on."""
    paths = stage_paths(params)
    Path(params.transfer.features_dir).mkdir(parents=True, exist_ok=True)
    for folder in (paths.vtab_splits, paths.vtab.records, paths.vtab_predictions, paths.vtab_studies):
        folder.mkdir(parents=True, exist_ok=True)
    paths.vtab.figures.mkdir(parents=True, exist_ok=True)
    atomic_write_json(paths.vtab.metrics, {"skipped": SKIPPED_NOTE})
    atomic_write_text(paths.vtab_table3, SKIPPED_NOTE + "\n")


def transfer_plan(params: Params) -> TransferPlan | None:
    """The checked plan, or None (outputs written empty) when ``transfer.root`` is unset."""
    if params.transfer.root is None:
        write_skipped_outputs(params)
        print(SKIPPED_NOTE + " Set it to the folder of your VTAB copies (`beyond-imagenet vtab-tasks`).")
        return None
    plan = plan_transfer(params.transfer)
    print_not_run(plan)
    if not plan.tasks:
        raise UserError(f"no VTAB task of {plan.preset.name} can run: every one is missing (listed above)")
    return plan


def run_vtab_features(args: argparse.Namespace) -> None:
    """``beyond-imagenet vtab-features``: features of every model on every source split the tasks need."""
    params = load_stage_params(args.params)
    plan = transfer_plan(params)
    if plan is None:
        return
    jobs = extract_features(plan, args.models or params.models, params.inference)
    for model_id, by_split in jobs.items():
        for (source, split), job in by_split.items():
            print(f"{model_id} / {source}/{split}: {job.path}")
