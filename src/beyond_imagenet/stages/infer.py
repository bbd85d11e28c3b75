"""Stage ``inference`` (``infer``): one cached pass per dataset over all models, plus the invariance sweeps.

Every invariance sweep point (docs/protocol.md §9) is cached as a variant of its dataset, unless ``--datasets``
restricts the pass.
"""

from __future__ import annotations

import argparse

from beyond_imagenet.base.config import Params
from beyond_imagenet.inference.jobs import CacheJob
from beyond_imagenet.inference.run import run_inference
from beyond_imagenet.inference.sweeps import run_invariance_sweeps, sweep_dataset
from beyond_imagenet.models.catalogue import resolve_model
from beyond_imagenet.stages.params import dataset_variants, load_stage_params


def infer(params: Params, dataset_names: list[str] | None = None, model_ids: list[str] | None = None) -> list:
    """Fill every missing or outdated cache; with no dataset subset, the invariance sweep caches too."""
    models = list(model_ids or params.models)
    for model_id in models:
        resolve_model(model_id)  # an unknown id fails before any dataset is scanned
    names = list(dataset_names or params.datasets)
    datasets = [d for name in names for d in dataset_variants(params, name)]  # validates before any model
    jobs: list[CacheJob] = run_inference(datasets, models, params.inference)
    config = params.analyses.invariance
    if config.dataset and not dataset_names:
        sweep = sweep_dataset(config.dataset, dataset_variants(params, config.dataset), config)
        jobs += run_invariance_sweeps(sweep, models, config, params.inference)
    return jobs


def run_infer(args: argparse.Namespace) -> None:
    """``beyond-imagenet infer``: print each cache's path."""
    params = load_stage_params(args.params)
    for job in infer(params, args.datasets, args.models):
        print(f"{job.dataset.key} / {job.spec.id}: {job.path}")
