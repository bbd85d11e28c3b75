"""Cost of the statistics layer at the paper's sizes: bootstrap replicates, intervals, records, comparisons, rankings.

Four models, per-sample arrays *generated* (seeded) at the sizes of the paper's data; the step from logits to
per-sample arrays (top-1/top-5 correctness, max-softmax confidence, cue-conflict decisions) is excluded: it needs the
logits, and ImageNet-C's alone are 75 x 50,000 x 1000 float32 = 15 GB per model. Image sets and their statistics:

- ImageNet val, 1000 classes x 50, resampled within class; one plan shared with ImageNet-C's 75 sets (15
  corruptions x 5 severities, the val images): accuracy top-1/top-5 on val and on each C set (``mean_statistic``),
  calibration (``calibration_statistics``: ECE with 15 bins, top-1, mean confidence, overconfidence), ImageNet-X
  error ratios of 16 factors (``error_ratio_statistics``, annotated denominator = every val image here);
- ImageNet-V2 1000 x 10 (within class), -A 7,500, -R 30,000, -Sketch 50,000 (over images): top-1/top-5;
- cue-conflict 16 x 80 (within shape class): ``shape_bias_statistics`` (pooled and per class);
- the 19 VTAB tasks of the clipbench19 preset at their test sizes (711 .. 73,728; the CLEVR, dSprites and smallNORB
  pairs share their images, hence their plan): top-1 and mean per-class recall (``probe.estimates.recall_statistic``).

Phases (wall and CPU seconds, summed over image sets): ``plans`` (``image_plan`` / ``balanced_strata``),
``statistics`` (the builders), ``bootstrap`` (``bootstrap``, every statistic of an image set sharing the draws),
``intervals`` (Clopper-Pearson for accuracies, else the bootstrap interval), ``derived`` (ImageNet-C means and mCE,
VTAB group means and Overall: replicate-wise combinations), ``records`` (``ResultRecord`` + ``attach``), then
``comparisons_table``, ``rankings_table`` and ``results_table`` over every record. ``generate`` (synthetic data) and
the imports are timed but are not part of the target.

Bootstrap calls (``--grouping``): ``model`` (default) one call per model per image set; ``set`` one call per image
set for all models, as an analysis' ``EstimateBook`` does; ``pipeline`` as the code does today: ``set`` for the
ImageNet and cue-conflict sets, ``model`` for VTAB (``probe.estimates.model_estimates`` keeps one book per model).
The draws depend on the plan alone, so every grouping gives the same replicates.

Peak memory: ``getrusage`` ``ru_maxrss`` (the process's peak resident set, imports included, and after each image
set); ``--tracemalloc`` adds Python's traced peak (numpy arrays included) but slows the Python-heavy phases, so its
timings are not the target's.

Usage: ``.venv/bin/python benchmarks/intervals_speed.py [--scale 1.0] [--resamples 1000] [--grouping model|set|pipeline]
[--out benchmarks/intervals_speed.json]``. Targets: statistics total < 2 min and peak RSS < 4 GiB on a CPU machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
import tracemalloc
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

OUTPUT = Path(__file__).with_name("intervals_speed.json")
MODELS = ("vit_sup", "convnext_sup", "vit_clip", "convnext_clip")
VAL_ACCURACY = {"vit_sup": 0.815, "convnext_sup": 0.838, "vit_clip": 0.829, "convnext_clip": 0.852}
TARGETS = {"total_s": 120.0, "peak_rss_gib": 4.0}
STATISTICS_PHASES = ("plans", "statistics", "bootstrap", "intervals", "derived", "records", "comparisons",
                     "rankings", "results_table")  # fmt: skip
SHIFTS = {  # dataset: (images, classes, per class when resampled within class, top-1 relative to val)
    "imagenet_v2": (10_000, 1000, 10, 0.88),
    "imagenet_a": (7_500, 200, None, 0.45),
    "imagenet_r": (30_000, 200, None, 0.62),
    "imagenet_sketch": (50_000, 1000, None, 0.45),
}
MIN_IMAGES = 40  # smallest set at a tiny --scale (over images)
VTAB_PRESET = "clipbench19"
GROUPING = {
    "model": "one call per model per image set",
    "set": "one call per image set for all models",
    "pipeline": "as the pipeline: one call per image set for all models (ImageNet, cue-conflict), per model (VTAB)",
}
LOGITS_BYTES_C = 75 * 50_000 * 1000 * 4  # ImageNet-C logits of one model, float32


class Clock:
    """Wall and CPU seconds per phase (summed over calls; CPU = every thread of the process) and the peak RSS."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.cpu_seconds: dict[str, float] = defaultdict(float)
        self.steps: list[dict] = []

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        start, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - start
            self.cpu_seconds[name] += time.process_time() - cpu

    def mark(self, step: str) -> None:
        self.steps.append({"after": step, "peak_rss_mib": peak_rss_mib()})


def peak_rss_mib() -> float:
    """The process's peak resident set so far (``ru_maxrss``: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


@dataclass(frozen=True)
class Stat:
    """One metric to bootstrap: its record (analysis, dataset), statistic and exact count (accuracies)."""

    analysis: str
    dataset: str
    statistic: object  # LinearStatistic
    exact: tuple[int, int] | None = None


@dataclass
class ImageSet:
    """A resampled image set: sample ids, classes (when resampled within class), per-model data and its statistics.

    ``simulate(rng, model)`` stands in for the logits -> per-sample step (timed as ``generate``); ``statistics`` turns
    the per-sample arrays into the metrics' statistics with the package's builders (timed as ``statistics``).
    """

    name: str
    ids: list[str]
    strata: np.ndarray | None
    simulate: Callable[[np.random.Generator, str], dict]
    statistics: Callable[[dict], dict[str, Stat]]
    info: dict = field(default_factory=dict)
    pooled_in_pipeline: bool = True  # the pipeline bootstraps all models together (an analysis' EstimateBook)


def scaled(n: int, scale: float, minimum: int) -> int:
    return max(minimum, round(n * scale))


def correct_flags(rng: np.random.Generator, latent: np.ndarray, accuracies: tuple[float, ...]) -> list[np.ndarray]:
    """Nested correctness (top-1 within top-5) at the given accuracies, correlated across models through ``latent``."""
    score = 0.7 * latent + 0.3 * rng.random(len(latent))
    order = np.argsort(score, kind="stable")
    flags = []
    for accuracy in accuracies:
        hit = np.zeros(len(score), dtype=bool)
        hit[order[: round(accuracy * len(score))]] = True
        flags.append(hit)
    return flags


def accuracy_stats(analysis: str, dataset: str, prefix: str, top1: np.ndarray, top5: np.ndarray) -> dict[str, Stat]:
    from beyond_imagenet.metrics.resampling import mean_statistic

    return {
        f"{prefix}{name}": Stat(analysis, dataset, mean_statistic(hit, 100.0), (int(hit.sum()), len(hit)))
        for name, hit in (("top1", top1), ("top5", top5))
    }


# ---------------------------------------------------------------------------------------------------------------
# image sets


def imagenet_val_set(scale: float) -> ImageSet:
    """ImageNet val with ImageNet-C (same images), calibration and ImageNet-X error ratios."""
    from beyond_imagenet.data.imagenet_x import FACTORS
    from beyond_imagenet.data.kinds import IMAGENET_C_CORRUPTIONS, IMAGENET_C_SEVERITIES
    from beyond_imagenet.metrics.calibration import calibration_statistics
    from beyond_imagenet.metrics.imagenet_x import error_ratio_statistics

    classes = scaled(1000, scale, 2)
    n = classes * 50
    ids = [f"ILSVRC2012_val_{i:08d}.JPEG" for i in range(1, n + 1)]
    shared = np.random.default_rng([1, 0])
    latent = shared.random(n)
    prevalence = 0.4 * 0.65 ** np.arange(len(FACTORS))
    flags = shared.random((n, len(FACTORS))) < prevalence  # the annotations: the same for every model
    c_sets = [(c, corruption, s) for c, corruption in enumerate(IMAGENET_C_CORRUPTIONS) for s in IMAGENET_C_SEVERITIES]

    def simulate(rng: np.random.Generator, model: str) -> dict:
        base = VAL_ACCURACY[model]
        top1, top5 = correct_flags(rng, latent, (base, min(0.99, base + 0.12)))
        data = {"top1": top1, "top5": top5, "confidence": np.where(top1, rng.beta(8.0, 1.5, n), rng.beta(3.0, 3.0, n))}
        for c, corruption, severity in c_sets:
            accuracy = base * (1.0 - 0.09 * severity) * (0.8 + 0.02 * c)
            data[f"{corruption}/{severity}"] = correct_flags(rng, latent, (accuracy, min(0.99, accuracy + 0.15)))
        return data

    def statistics(data: dict) -> dict[str, Stat]:
        top1 = data["top1"]
        stats = accuracy_stats("accuracy", "imagenet_val", "accuracy/imagenet_val/", top1, data["top5"])
        for name, statistic in calibration_statistics(data["confidence"], top1, 15).items():
            exact = (int(top1.sum()), n) if name == "top1" else None
            stats[f"calibration/imagenet_val/{name}"] = Stat("calibration", "imagenet_val", statistic, exact)
        hits, counts = (flags & top1[:, None]).sum(axis=0), flags.sum(axis=0)
        exact = {f"{f}/accuracy": (int(h), int(c)) for f, h, c in zip(FACTORS, hits, counts, strict=True) if c}
        exact["average"] = (int(top1.sum()), n)
        for name, statistic in error_ratio_statistics(flags, top1, np.ones(n, dtype=bool)).items():
            stats[f"imagenet_x/{name}"] = Stat("imagenet_x", "imagenet_val", statistic, exact.get(name))
        for _, corruption, severity in c_sets:
            prefix = f"accuracy/imagenet_c/{corruption}/{severity}/"
            stats.update(accuracy_stats("accuracy", "imagenet_c", prefix, *data[f"{corruption}/{severity}"]))
        return stats

    info = {"images": n, "classes": classes, "imagenet_c_sets": len(c_sets), "imagenet_x_factors": len(FACTORS),
            "calibration_bins": 15}  # fmt: skip
    targets = np.repeat(np.arange(classes), 50)
    return ImageSet("imagenet_val (+ imagenet_c, calibration, imagenet_x)", ids, targets, simulate, statistics, info)


def shift_set(dataset: str, scale: float) -> ImageSet:
    """An ImageNet distribution-shift set: top-1 and top-5."""
    images, classes, per_class, relative = SHIFTS[dataset]
    if per_class:
        classes = scaled(classes, scale, 2)
        n, targets = classes * per_class, np.repeat(np.arange(classes), per_class)
    else:
        n = scaled(images, scale, MIN_IMAGES)
        targets = np.random.default_rng([2, images]).integers(0, classes, n)
    latent = np.random.default_rng([3, images]).random(n)

    def simulate(rng: np.random.Generator, model: str) -> dict:
        accuracy = VAL_ACCURACY[model] * relative
        top1, top5 = correct_flags(rng, latent, (accuracy, min(0.99, accuracy + 0.2)))
        return {"top1": top1, "top5": top5}

    def statistics(data: dict) -> dict[str, Stat]:
        return accuracy_stats("accuracy", dataset, f"accuracy/{dataset}/", data["top1"], data["top5"])

    ids = [f"{dataset}/{i:06d}.JPEG" for i in range(n)]
    info = {"images": n, "classes": classes}
    return ImageSet(dataset, ids, targets if per_class else None, simulate, statistics, info)


def cue_conflict_set(scale: float) -> ImageSet:
    """The cue-conflict stimuli: shape bias pooled and per shape class, fractions, 16-class accuracy."""
    from beyond_imagenet.data.cue_conflict import CATEGORIES
    from beyond_imagenet.metrics.shape_bias import shape_bias_statistics

    per_class = scaled(80, scale, 10)
    names = np.array(CATEGORIES, dtype=object)
    targets = np.repeat(np.arange(len(CATEGORIES)), per_class)
    shapes = names[targets]
    textures = names[np.random.default_rng([4, 0]).integers(0, len(CATEGORIES), len(targets))]
    ids = [f"{s}/{s}{i % per_class}-{t}.png" for i, (s, t) in enumerate(zip(shapes, textures, strict=True))]

    def simulate(rng: np.random.Generator, model: str) -> dict:
        p_shape = 0.2 + 0.4 * ("clip" in model) + 0.05 * ("convnext" in model)
        u = rng.random(len(targets))
        other = names[rng.integers(0, len(CATEGORIES), len(targets))]
        return {"decisions": np.where(u < p_shape, shapes, np.where(u < 0.9, textures, other))}

    def statistics(data: dict) -> dict[str, Stat]:
        decisions = data["decisions"]
        exact = (int((decisions == shapes).sum()), len(targets))
        built = shape_bias_statistics(list(decisions), list(shapes), list(textures))
        return {
            f"shape_bias/{name}": Stat(
                "shape_bias", "cue_conflict", statistic, exact if name == "accuracy_16" else None
            )
            for name, statistic in built.items()
        }

    info = {"images": len(targets), "classes": len(CATEGORIES)}
    return ImageSet("cue_conflict", ids, targets, simulate, statistics, info)


def vtab_source_set(source: str, tasks: list, scale: float) -> ImageSet:
    """The test images of one VTAB image source and its tasks (the CLEVR, dSprites and smallNORB pairs share them)."""
    from beyond_imagenet.metrics.resampling import mean_statistic
    from beyond_imagenet.probe.estimates import recall_statistic

    n = scaled(tasks[0].expected_sizes["test"], scale, MIN_IMAGES)
    targets = {t.name: np.random.default_rng([5, t.num_classes]).integers(0, t.num_classes, n) for t in tasks}

    def simulate(rng: np.random.Generator, model: str) -> dict:
        return {t.name: rng.random(n) < 0.45 + 0.5 * rng.random() for t in tasks}

    def statistics(data: dict) -> dict[str, Stat]:
        stats = {}
        for task, correct in data.items():
            exact = (int(correct.sum()), n)
            stats[f"vtab/{task}/top1"] = Stat("vtab_probe", task, mean_statistic(correct, 100.0), exact)
            recall = recall_statistic(targets[task], correct)
            stats[f"vtab/{task}/mean_per_class_recall"] = Stat("vtab_probe", task, recall)
        return stats

    ids = [f"vtab/{source}/test/{i}" for i in range(n)]
    info = {"images": n, "tasks": {t.name: t.num_classes for t in tasks}}
    return ImageSet(f"vtab/{source}", ids, None, simulate, statistics, info, pooled_in_pipeline=False)


def image_sets(scale: float) -> list[ImageSet]:
    from beyond_imagenet.data.vtab.tasks import get_preset

    by_source: dict[str, list] = {}
    for task in get_preset(VTAB_PRESET).tasks:
        by_source.setdefault(task.source.name, []).append(task)
    vtab = [vtab_source_set(source, tasks, scale) for source, tasks in by_source.items()]
    return [imagenet_val_set(scale), *(shift_set(d, scale) for d in SHIFTS), cue_conflict_set(scale), *vtab]


# ---------------------------------------------------------------------------------------------------------------
# the statistics layer


@dataclass
class Run:
    """What the run collects: estimates per model and metric, where each metric belongs, counters."""

    args: argparse.Namespace
    clock: Clock
    estimates: dict[str, dict[str, object]] = field(default_factory=lambda: defaultdict(dict))
    owners: dict[str, tuple[str, str]] = field(default_factory=dict)
    bootstrap_calls: int = 0
    sets: list[dict] = field(default_factory=list)


def estimate_of(stat: Stat, replicates: np.ndarray, plan, args: argparse.Namespace):
    """The metric's Estimate: exact Clopper-Pearson for an accuracy, else the bootstrap interval."""
    from beyond_imagenet.metrics.estimates import EXACT_METHOD, Estimate
    from beyond_imagenet.metrics.intervals import bootstrap_interval, clopper_pearson

    value = stat.statistic.value()
    if stat.exact is not None:
        low, high = clopper_pearson(*stat.exact, args.level)
        return Estimate(value, 100 * float(low), 100 * float(high), stat.exact[1], EXACT_METHOD, plan.name,
                        replicates, args.level)  # fmt: skip
    low, high = bootstrap_interval(replicates, value, args.level, args.method)
    return Estimate(value, low, high, plan.n, f"bootstrap {args.method} ({plan.method})", plan.name, replicates,
                    args.level)  # fmt: skip


def bootstrap_set(plan, stats: dict[str, dict[str, Stat]], run: Run, pooled: bool) -> dict[str, dict[str, np.ndarray]]:
    """Replicates per model and metric: one call per model, or one for all models (``pooled``)."""
    from beyond_imagenet.metrics.resampling import bootstrap

    if pooled:
        run.bootstrap_calls += 1
        pooled = bootstrap(plan, {f"{m}|{k}": s.statistic for m, mine in stats.items() for k, s in mine.items()})
        out: dict[str, dict[str, np.ndarray]] = defaultdict(dict)
        for key, replicates in pooled.items():
            model, name = key.split("|", 1)
            out[model][name] = replicates
        return out
    run.bootstrap_calls += len(stats)
    return {model: bootstrap(plan, {k: s.statistic for k, s in mine.items()}) for model, mine in stats.items()}


def process_set(image_set: ImageSet, run: Run, models: tuple[str, ...]) -> None:
    """Plan, statistics, replicates and intervals of one image set for every model; only the estimates are kept."""
    from beyond_imagenet.metrics.resampling import balanced_strata, image_plan

    args, clock = run.args, run.clock
    with clock.phase("plans"):
        strata = balanced_strata(image_set.strata) if image_set.strata is not None else None
        plan = image_plan(image_set.ids, args.resamples, args.seed, strata)
    stats: dict[str, dict[str, Stat]] = {}
    for m, model in enumerate(models):
        rng = np.random.default_rng([args.seed, m, len(run.sets)])
        with clock.phase("generate"):
            data = image_set.simulate(rng, model)
        with clock.phase("statistics"):
            stats[model] = image_set.statistics(data)
        del data
    start, cpu = time.perf_counter(), time.process_time()
    with clock.phase("bootstrap"):
        pooled = args.grouping == "set" or (args.grouping == "pipeline" and image_set.pooled_in_pipeline)
        replicates = bootstrap_set(plan, stats, run, pooled)
    spent = {"bootstrap_s": time.perf_counter() - start, "bootstrap_cpu_s": time.process_time() - cpu}
    with clock.phase("intervals"):
        for model, mine in stats.items():
            for name, stat in mine.items():
                run.estimates[model][name] = estimate_of(stat, replicates[model][name], plan, args)
                run.owners[name] = (stat.analysis, stat.dataset)
    mine = [s.statistic.columns for s in stats[models[0]].values()]
    run.sets.append({"name": image_set.name, **image_set.info, "plan": plan.method, "resamples": plan.resamples,
                     "statistics_per_model": len(mine), "columns_per_model": sum(c.shape[1] for c in mine),
                     "stacked_columns_mib_per_model": sum(c.nbytes for c in mine) / 2**20, **spent})  # fmt: skip
    clock.mark(image_set.name)


def derive(run: Run, models: tuple[str, ...]) -> None:
    """Replicate-wise combinations: ImageNet-C means (accuracy and robustness), mCE, VTAB group means and Overall."""
    from beyond_imagenet.data.kinds import IMAGENET_C_CORRUPTIONS, IMAGENET_C_SEVERITIES
    from beyond_imagenet.data.vtab.tasks import GROUPS, get_preset
    from beyond_imagenet.metrics.estimates import mean_of
    from beyond_imagenet.metrics.robustness import mce_from_corruption_accuracies

    preset = get_preset(VTAB_PRESET)
    for model in models:
        for k in ("top1", "top5"):
            inputs = [f"accuracy/imagenet_c/{c}/{s}/{k}" for c in IMAGENET_C_CORRUPTIONS for s in IMAGENET_C_SEVERITIES]
            combined(run, model, ("accuracy", "imagenet_c"), f"accuracy/imagenet_c/{k}", inputs, mean_of)
        corruptions = []
        for c in IMAGENET_C_CORRUPTIONS:
            inputs = [f"accuracy/imagenet_c/{c}/{s}/top1" for s in IMAGENET_C_SEVERITIES]
            corruptions.append(f"robustness/imagenet_c/{c}/top1")
            combined(run, model, ("robustness", "table2"), corruptions[-1], inputs, mean_of)
        combined(run, model, ("robustness", "table2"), "robustness/imagenet_c/top1", corruptions, mean_of)
        combined(run, model, ("robustness", "table2"), "robustness/imagenet_c/mce", corruptions,
                 mce_from_corruption_accuracies)  # fmt: skip
        groups = {f"vtab/{g}": preset.groups[g] for g in GROUPS} | {"vtab/overall": preset.names}
        for metric, tasks in groups.items():
            combined(run, model, ("vtab", VTAB_PRESET), metric, [f"vtab/{t}/top1" for t in tasks], mean_of)


def combined(run: Run, model: str, owner: tuple[str, str], name: str, inputs: list[str], how: Callable) -> None:
    """``how`` ([rows, inputs] -> [rows]) of the inputs' values and of their replicates, with its interval."""
    from beyond_imagenet.metrics.estimates import Estimate, plan_signature
    from beyond_imagenet.metrics.intervals import bootstrap_interval

    args, parts = run.args, [run.estimates[model][i] for i in inputs]
    value = float(how(np.array([[p.value for p in parts]]))[0])
    replicates = np.asarray(how(np.stack([p.replicates for p in parts], axis=1)), dtype=np.float64)
    low, high = bootstrap_interval(replicates, value, args.level, args.method)
    n = sum({p.plan: p.n for p in parts}.values())
    plan = plan_signature([p.plan for p in parts])
    run.estimates[model][name] = Estimate(value, low, high, n, f"bootstrap {args.method}", plan, replicates, args.level)
    run.owners[name] = owner


def build_records(run: Run) -> list:
    """One ResultRecord per (model, analysis, dataset), its intervals and replicates attached."""
    from beyond_imagenet.base.record import ResultRecord
    from beyond_imagenet.metrics.estimates import attach

    records = []
    for model, estimates in run.estimates.items():
        grouped: dict[tuple[str, str], dict] = defaultdict(dict)
        for name, estimate in estimates.items():
            grouped[run.owners[name]][name] = estimate
        for (analysis, dataset), mine in grouped.items():
            record = ResultRecord(analysis, model, dataset, {})
            attach(record, mine)
            records.append(record)
    return records


def tables(records: list, run: Run) -> dict:
    """comparisons_table, rankings_table and results_table over every record, each timed."""
    from beyond_imagenet.base.config import StatisticsConfig
    from beyond_imagenet.results.comparisons import comparisons_table, rankings_table
    from beyond_imagenet.results.tidy import results_table

    config = StatisticsConfig(resamples=run.args.resamples, level=run.args.level, seed=run.args.seed,
                              method=run.args.method)  # fmt: skip
    with run.clock.phase("comparisons"):
        comparisons = comparisons_table(records, config)
    run.clock.mark("comparisons")
    with run.clock.phase("rankings"):
        rankings = rankings_table(records, config)
    with run.clock.phase("results_table"):
        results = results_table(records)
    run.clock.mark("tables")
    return {"comparisons": comparisons, "rankings": rankings, "results": results}


# ---------------------------------------------------------------------------------------------------------------
# report


def machine() -> dict:
    import scipy

    info = {
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "load_average_at_start": list(os.getloadavg()),
    }
    try:
        import pandas
        from threadpoolctl import threadpool_info

        info["pandas"] = pandas.__version__
        info["blas"] = [{k: p.get(k) for k in ("internal_api", "version", "num_threads")} for p in threadpool_info()]
    except ImportError:
        pass
    return info


def counts(run: Run, records: list, out: dict) -> dict:
    per_model = {m: sum(len(r.replicates) for r in records if r.model_id == m) for m in run.estimates}
    comparisons, rankings = out["comparisons"], out["rankings"]
    return {
        "models": len(run.estimates),
        "image_sets": len(run.sets),
        "bootstrap_calls": run.bootstrap_calls,
        "records": len(records),
        "metrics_with_replicates_per_model": per_model,
        "comparisons": len(comparisons),
        "comparisons_real": int(comparisons["real"].sum()),
        "holm_families": int(comparisons["holm_family"].nunique()),
        "ranking_rows": len(rankings),
        "results_rows": len(out["results"]),
    }


def summary(run: Run, records: list, out: dict, host: dict, imports_s: float, wall_s: float) -> dict:
    args = run.args
    seconds = {p: run.clock.seconds.get(p, 0.0) for p in ("generate", *STATISTICS_PHASES)}
    cpu = {p: run.clock.cpu_seconds.get(p, 0.0) for p in ("generate", *STATISTICS_PHASES)}
    total = sum(seconds[p] for p in STATISTICS_PHASES)
    peak = peak_rss_mib()
    result = {
        "what": "statistics layer at the paper's sizes: replicates, intervals, records, comparisons, rankings",
        "excluded": "the logits -> per-sample step (generated seeded per-sample arrays stand in for it): ImageNet-C "
        f"logits alone are {LOGITS_BYTES_C / 1e9:.1f} GB per model (75 x 50,000 x 1000 float32)",
        "scale": args.scale,
        "resamples": args.resamples,
        "seed": args.seed,
        "level": args.level,
        "method": args.method,
        "bootstrap_grouping": GROUPING[args.grouping],
        "models": list(MODELS),
        "image_sets": run.sets,
        "counts": counts(run, records, out),
        "seconds": {**seconds, "statistics_total": total, "imports": imports_s, "wall_after_imports": wall_s},
        "cpu_seconds": {**cpu, "statistics_total": sum(cpu[p] for p in STATISTICS_PHASES)},
        "memory": {
            "measure": "resource.getrusage(RUSAGE_SELF).ru_maxrss: peak resident set of the whole process "
            "(imports included)" + ("; tracemalloc peak from after the imports" if args.tracemalloc else ""),
            "peak_rss_mib": peak,
            "rss_after_imports_mib": run.clock.steps[0]["peak_rss_mib"],
            "peak_by_step": run.clock.steps,
        },
        "machine": {**host, "load_average_at_end": list(os.getloadavg())},
        "targets": {
            "total_s": TARGETS["total_s"],
            "peak_rss_gib": TARGETS["peak_rss_gib"],
            "total_pass": total < TARGETS["total_s"],
            "peak_pass": peak / 1024 < TARGETS["peak_rss_gib"],
        },
    }
    if args.tracemalloc:
        result["memory"]["tracemalloc_peak_mib"] = tracemalloc.get_traced_memory()[1] / 2**20
    result["targets"]["pass"] = result["targets"]["total_pass"] and result["targets"]["peak_pass"]
    return result


def report(result: dict, out: Path) -> None:
    c, s, m = result["counts"], result["seconds"], result["memory"]
    print(f"scale {result['scale']}, {result['resamples']} resamples, {c['models']} models, {c['image_sets']} image "
          f"sets, {c['bootstrap_calls']} bootstrap calls ({result['bootstrap_grouping']})")  # fmt: skip
    metrics = sum(c["metrics_with_replicates_per_model"].values())
    print(f"{c['records']} records, {metrics} metrics with replicates, {c['comparisons']} comparisons "
          f"({c['comparisons_real']} real), {c['ranking_rows']} ranking rows")  # fmt: skip
    cpu = result["cpu_seconds"]
    print(f"  {'phase':<14} {'wall s':>8} {'cpu s':>8}")
    for phase in ("imports", "generate", *STATISTICS_PHASES):
        tag = "" if phase in STATISTICS_PHASES else "   (not in the total)"
        used = f"{cpu[phase]:8.2f}" if phase in cpu else f"{'-':>8}"
        print(f"  {phase:<14} {s[phase]:8.2f} {used}{tag}")
    t, total = result["targets"], "total"
    print(f"  {total:<14} {s['statistics_total']:8.2f} {cpu['statistics_total']:8.2f}   target < {t['total_s']:.0f} s"
          f" wall: {'pass' if t['total_pass'] else 'FAIL'}")  # fmt: skip
    print(f"peak RSS {m['peak_rss_mib']:.0f} MiB (after imports {m['rss_after_imports_mib']:.0f} MiB); target < "
          f"{t['peak_rss_gib']:.0f} GiB: {'pass' if t['peak_pass'] else 'FAIL'}")  # fmt: skip
    if "tracemalloc_peak_mib" in m:
        print(f"tracemalloc peak {m['tracemalloc_peak_mib']:.0f} MiB")
    print(f"wrote {out}")


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the paper's sizes (classes for the "
                        "class-balanced sets, images otherwise)")  # fmt: skip
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--level", type=float, default=0.95)
    parser.add_argument("--method", choices=["percentile", "basic"], default="percentile")
    parser.add_argument("--grouping", choices=list(GROUPING), default="model", help="bootstrap calls: per model per "
                        "image set, per image set for all models, or as the pipeline does")  # fmt: skip
    parser.add_argument("--tracemalloc", action="store_true", help="also trace Python allocations (slower)")
    parser.add_argument("--out", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    if not 0 < args.scale <= 1:
        parser.error("--scale must be in (0, 1]")
    if args.resamples < 100:
        parser.error("--resamples must be >= 100 (statistics.resamples' floor)")
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse(argv)
    start = time.perf_counter()
    import beyond_imagenet.results.comparisons  # noqa: F401  (the package imports torch: timed apart)
    from beyond_imagenet.base.files import atomic_write_json

    imports_s = time.perf_counter() - start
    host = machine()
    clock = Clock()
    clock.mark("imports")
    if args.tracemalloc:
        tracemalloc.start()
    run = Run(args, clock)
    start = time.perf_counter()
    with clock.phase("generate"):
        sets = image_sets(args.scale)
    for image_set in sets:
        process_set(image_set, run, MODELS)
    with clock.phase("derived"):
        derive(run, MODELS)
    with clock.phase("records"):
        records = build_records(run)
    out = tables(records, run)
    result = summary(run, records, out, host, imports_s, time.perf_counter() - start)
    if args.tracemalloc:
        tracemalloc.stop()
    atomic_write_json(args.out, json.loads(json.dumps(result, default=float)))
    report(result, args.out)
    return result


if __name__ == "__main__":
    main()
