"""Stage ``cka`` (docs/protocol.md §10, Fig. 8): minibatch CKA from the models -> records, matrices, figures, MLflow.

Activations are never cached: each layer's batch Gram matrix is formed in the forward hook (``inference.cka_pass``).
"""

from __future__ import annotations

import argparse
import logging
import shutil
import tempfile
from pathlib import Path

from beyond_imagenet.analyses.cka import CkaOutputs, cka_records
from beyond_imagenet.base.config import Params
from beyond_imagenet.base.errors import UserError
from beyond_imagenet.base.record import ResultRecord
from beyond_imagenet.inference.cka_pass import SUBSET_RULE, build_taps, plan_cka, run_cka_pass
from beyond_imagenet.records import relocated, replace_folder
from beyond_imagenet.stages.common import save_records, show_records
from beyond_imagenet.stages.params import dataset_variants, load_stage_params
from beyond_imagenet.stages.paths import rebased, stage_paths

log = logging.getLogger(__name__)


def cka(params: Params, model_ids: list[str] | None = None) -> list[ResultRecord]:
    """Plan (fail fast), build each model once, one streamed pass, then records, matrices and Fig. 8."""
    config = params.analyses.cka
    if not config.dataset:
        raise UserError("params: analyses.cka.dataset is not set; name an ImageNet val dataset of `datasets`")
    variants = dataset_variants(params, config.dataset)
    plan = plan_cka(config.dataset, variants, model_ids or params.models, config, params.inference.preprocessing)
    log.info("CKA on %d images of %s (%s)", len(plan.dataset), plan.dataset.name, SUBSET_RULE)
    built = build_taps(plan)
    module = run_cka_pass(plan, config, params.inference, built)
    paths = stage_paths(params)
    final = paths.cka.root
    final.parent.mkdir(parents=True, exist_ok=True)
    staged_root = Path(tempfile.mkdtemp(prefix=f".{final.name}.staging-", dir=final.parent))
    try:  # written aside, then swapped in: a failure leaves the previous CKA results as they were
        staged = rebased(paths.cka, staged_root)
        outputs = CkaOutputs(staged.figures, staged_root / paths.cka_matrices.relative_to(final))
        records = cka_records(plan, module, built[1], config, params.inference.precision, outputs, params.statistics)
        records = [relocated(record, staged_root, final) for record in records]
        save_records(records, staged)
        replace_folder(staged_root, final)
    finally:
        shutil.rmtree(staged_root, ignore_errors=True)
    return records


def run_cka(args: argparse.Namespace) -> None:
    """``beyond-imagenet cka``: one line per record, where the outputs are, then the MLflow runs."""
    params = load_stage_params(args.params)
    records = cka(params, args.models)
    show_records(records, params.tracking, "cka", not args.no_mlflow, stage_paths(params).manifests)
    print(f"records, CKA matrices (.npz) and Fig. 8 under {stage_paths(params).cka.root}")
