"""The accuracy analysis: top-1 and top-5 on each dataset's label space (docs/protocol.md §2.3, §7.1)."""

from __future__ import annotations

from beyond_imagenet.analyses.common import AnalysisContext, check_targets, provenance_from_cache
from beyond_imagenet.base.config import AccuracyConfig
from beyond_imagenet.base.record import ResultRecord
from beyond_imagenet.inference.cache import InferenceCache, label_space_logits
from beyond_imagenet.metrics.accuracy import topk_accuracy


def analyse_accuracy(cache: InferenceCache) -> ResultRecord:
    """Top-1, top-5 and the sample count of one cache."""
    logits = label_space_logits(cache)
    check_targets(cache, logits.shape[1])
    prefix = f"accuracy/{cache.dataset}"
    metrics = {
        f"{prefix}/top1": topk_accuracy(logits, cache.targets, 1),
        f"{prefix}/top5": topk_accuracy(logits, cache.targets, 5),
        f"{prefix}/n_samples": float(len(cache)),
    }
    return ResultRecord(
        "accuracy",
        cache.model_id,
        cache.dataset,
        metrics,
        params={"n_classes": logits.shape[1], "top5_k": min(5, logits.shape[1])},
        provenance=provenance_from_cache(cache),
    )


def run_accuracy(config: AccuracyConfig, ctx: AnalysisContext) -> list[ResultRecord]:
    """Every model on every listed dataset and each of its variants (ImageNet-C's 75 sets, PUG's 10)."""
    return [
        analyse_accuracy(cache)
        for dataset in config.datasets
        for variant in ctx.store.variants(dataset, ctx.models[0]) or [None]
        for cache in ctx.store.all_models(dataset, ctx.models, variant)
    ]
