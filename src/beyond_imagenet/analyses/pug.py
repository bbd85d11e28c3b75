"""The PUG-ImageNet analysis: top-1 per factor subset and their mean (docs/protocol.md §4, paper Fig. 3).

Each factor subset is its own image set (its own resamples); the mean over the 10 subsets combines their
replicates, so its interval carries the sampling error of all 10.
"""

from __future__ import annotations

from pathlib import Path

from beyond_imagenet.analyses.common import AnalysisContext, figure_path, provenance_from_cache
from beyond_imagenet.analyses.estimates import dataset_plan, new_book
from beyond_imagenet.base.config import PugConfig
from beyond_imagenet.base.record import ResultRecord
from beyond_imagenet.data.pug import CLASS_MAP_FILE, PUG_FACTORS, load_class_map
from beyond_imagenet.figures.common import grouped_bars, save_figure
from beyond_imagenet.metrics.accuracy import top1_predictions
from beyond_imagenet.metrics.estimates import attach, mean_of
from beyond_imagenet.metrics.pug import pug_accuracies, pug_correct
from beyond_imagenet.metrics.resampling import mean_statistic


def run_pug(config: PugConfig, ctx: AnalysisContext) -> list[ResultRecord]:
    """Top-1 per PUG factor subset and their unweighted mean (Fig. 3), top-1 over all 1000 classes (§4, §2.3)."""
    class_map = load_class_map(Path(ctx.datasets[config.dataset].path) / CLASS_MAP_FILE)
    records, series, book = [], {}, new_book(ctx.statistics)
    for model_id in ctx.models:
        subsets, first = {}, None
        for factor in ctx.store.variants(config.dataset, model_id):
            cache = ctx.store.get(config.dataset, model_id, factor)
            first = first or cache
            subsets[factor] = (top1_predictions(cache.logits), cache.targets)
            correct = pug_correct(*subsets[factor], class_map, config.label_map)
            plan = dataset_plan(ctx.statistics, ctx.datasets, config.dataset, cache.sample_ids, cache.targets)
            exact = (int(correct.sum()), len(correct))
            book.add(model_id, f"pug/{factor}/top1", plan, mean_statistic(correct, 100.0), exact)
        result = pug_accuracies(subsets, class_map, config.label_map)
        book.derive(model_id, "pug/average", [(model_id, f"pug/{f}/top1") for f in PUG_FACTORS], mean_of)
        metrics = {f"pug/{k}/top1" if k != "average" else "pug/average": v for k, v in result.items()}
        records.append(
            ResultRecord(
                "pug", model_id, config.dataset, metrics, {"label_map": config.label_map}, {},
                provenance_from_cache(first),
            )
        )  # fmt: skip
        series[model_id] = [result.get(f) for f in PUG_FACTORS] + [result["average"]]
    estimates = book.resolve()
    for record in records:
        attach(record, estimates[record.model_id])
    path = figure_path(ctx.figures_dir, "pug", config.dataset, "all_models")
    groups = [*PUG_FACTORS, "average"]
    save_figure(grouped_bars(groups, series, "Top-1 accuracy (%)", "PUG-ImageNet (Fig. 3)", (0, 100)), path)
    for record in records:
        record.artifacts.append(str(path))
    return records
