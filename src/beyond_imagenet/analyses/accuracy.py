"""The accuracy analysis: top-1 and top-5 on each dataset's label space (docs/protocol.md §2.3, §7.1), with intervals.

A dataset with variants (ImageNet-C's 75 sets, PUG's factor subsets) gives one record per model with every
variant's top-1 and top-5 (``accuracy/<dataset>/<variant>/top1``) and their unweighted mean
(``accuracy/<dataset>/top1``). Accuracies get exact Clopper-Pearson intervals; the means bootstrap intervals.
"""

from __future__ import annotations

from beyond_imagenet.analyses.common import AnalysisContext, check_targets, provenance_from_cache
from beyond_imagenet.analyses.estimates import dataset_plan, new_book
from beyond_imagenet.base.config import AccuracyConfig
from beyond_imagenet.base.record import ResultRecord
from beyond_imagenet.inference.cache import InferenceCache, label_space_logits
from beyond_imagenet.metrics.accuracy import topk_correct
from beyond_imagenet.metrics.estimates import EstimateBook, attach, mean_of
from beyond_imagenet.metrics.resampling import mean_statistic

TOPK = {"top1": 1, "top5": 5}
IMPORTED_TOPK = {"top1": 1}  # an imported prediction file holds the top-1 class only (docs/interchange.md)


def reported_topk(cache: InferenceCache) -> dict[str, int]:
    """Which top-k a cache can tell: top-1 and top-5, or top-1 alone for predictions imported from a CSV."""
    return IMPORTED_TOPK if cache.meta.get("interchange") else TOPK


def _cache_metrics(
    cache: InferenceCache, prefix: str, book: EstimateBook | None = None, ctx: AnalysisContext | None = None
) -> dict[str, float]:
    """Top-1 and top-5 (%) of one cache; with a ``book`` (and ``ctx``) also added to it for intervals."""
    logits = label_space_logits(cache)
    check_targets(cache, logits.shape[1])
    values = {}
    for name, k in reported_topk(cache).items():
        correct = topk_correct(logits, cache.targets, k)
        values[prefix + name] = 100.0 * int(correct.sum()) / len(correct)
        if book is not None and ctx is not None:
            plan = dataset_plan(ctx.statistics, ctx.datasets, cache.dataset, cache.sample_ids, cache.targets)
            exact = (int(correct.sum()), len(correct))
            book.add(cache.model_id, prefix + name, plan, mean_statistic(correct, 100.0), exact)
    return values


def analyse_accuracy(
    cache: InferenceCache, book: EstimateBook | None = None, ctx: AnalysisContext | None = None
) -> ResultRecord:
    """Top-1, top-5 and the sample count of one cache (intervals are attached when its ``book`` is resolved)."""
    n_classes = label_space_logits(cache).shape[1]
    metrics = _cache_metrics(cache, f"accuracy/{cache.dataset}/", book, ctx)
    metrics[f"accuracy/{cache.dataset}/n_samples"] = float(len(cache))
    params = {"n_classes": n_classes, "top5_k": min(5, n_classes)}
    return ResultRecord("accuracy", cache.model_id, cache.dataset, metrics, params, {}, provenance_from_cache(cache))


def _variants_record(
    ctx: AnalysisContext, book: EstimateBook, dataset: str, model_id: str, variants: list[str]
) -> ResultRecord:
    """One model's record on a dataset with variants: every variant's top-1/top-5 and their unweighted means."""
    metrics, provenance = {}, {}
    for variant in variants:
        cache = ctx.store.get(dataset, model_id, variant)
        metrics.update(_cache_metrics(cache, f"accuracy/{dataset}/{variant}/", book, ctx))
        provenance[variant] = provenance_from_cache(cache)
    for name in reported_topk(cache):
        inputs = [(model_id, f"accuracy/{dataset}/{v}/{name}") for v in variants]
        book.derive(model_id, f"accuracy/{dataset}/{name}", inputs, mean_of)
    metrics[f"accuracy/{dataset}/n_samples"] = float(sum(p["n_samples"] for p in provenance.values()))
    n_classes = label_space_logits(cache).shape[1]
    params = {"n_classes": n_classes, "top5_k": min(5, n_classes), "variants": variants}
    first = {**next(iter(provenance.values())), "variants": provenance}
    return ResultRecord("accuracy", model_id, dataset, metrics, params, {}, first)


def _dataset_records(ctx: AnalysisContext, dataset: str) -> list[ResultRecord]:
    """One record per model on ``dataset``: top-1/top-5 per variant and their means, or of the plain set."""
    variants = ctx.store.variants(dataset, ctx.models[0])
    book = new_book(ctx.statistics)
    records = {
        model_id: _variants_record(ctx, book, dataset, model_id, variants)
        if variants
        else analyse_accuracy(ctx.store.get(dataset, model_id), book, ctx)
        for model_id in ctx.models
    }
    for model_id, estimates in book.resolve().items():
        attach(records[model_id], estimates)
    return list(records.values())


def run_accuracy(config: AccuracyConfig, ctx: AnalysisContext) -> list[ResultRecord]:
    """Every model on every listed dataset (all of a dataset's variants in one record per model)."""
    return [record for dataset in config.datasets for record in _dataset_records(ctx, dataset)]
