"""Features for the VTAB probes (docs/transfer.md §2.1): one cache per (model, source split) the planned tasks read.

The caches are the shared inference engine's (``inference.features``); shared images are featurised once. This
module imports no search code, so the GPU feature pass needs neither Optuna nor MLflow.
"""

from __future__ import annotations

from collections.abc import Sequence

from beyond_imagenet.base.config import InferenceConfig
from beyond_imagenet.base.errors import UserError
from beyond_imagenet.inference.features import FeatureJob, plan_feature_jobs, run_feature_jobs
from beyond_imagenet.probe.tasks import TransferPlan

FeatureJobs = dict[str, dict[tuple[str, str], FeatureJob]]  # model id -> (source, split) -> job


def _by_model(jobs: Sequence[FeatureJob]) -> FeatureJobs:
    by_model: FeatureJobs = {}
    for job in jobs:
        by_model.setdefault(job.spec.id, {})[job.key] = job
    return by_model


def extract_features(
    plan: TransferPlan, model_ids: Sequence[str], inference: InferenceConfig, callbacks: Sequence = (), build=None
) -> FeatureJobs:
    """Fill the feature caches of every (model, source split) the planned tasks need."""
    jobs = plan_feature_jobs(inference, plan.config.features_dir, model_ids, plan.source_splits)
    run_feature_jobs(jobs, inference, callbacks, build)
    return _by_model(jobs)


def require_features(plan: TransferPlan, model_ids: Sequence[str], inference: InferenceConfig) -> FeatureJobs:
    """The feature jobs, all complete; otherwise a UserError naming the stage to run (DVC order)."""
    jobs = plan_feature_jobs(inference, plan.config.features_dir, model_ids, plan.source_splits)
    missing = [str(job.path) for job in jobs if not job.complete]
    if missing:
        raise UserError(
            f"{len(missing)} feature cache(s) are missing or outdated, e.g. {missing[0]}. Run `beyond-imagenet "
            "vtab-features` (DVC stage vtab_features) first, or `beyond-imagenet probe` without --require-features."
        )
    return _by_model(jobs)
