"""Analyses of caches given as folders (``beyond-imagenet analyze-cache``): every analysis whose contract they meet.

No params file: each analysis gets its defaults from base/config.py, its datasets from the caches (``dataset.name``,
kind from ``dataset.kind`` or the name) and the few options of the command line. Which analysis reads which cache
is each analysis's input contract (``AnalysisSpec.inputs``, ``analyses.inputs``); the plan says for every analysis
which caches it uses and why it skips any, and all checks run before the first analysis does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from beyond_imagenet.analyses.common import AnalysisContext
from beyond_imagenet.analyses.contracts import RULES_DOC, cache_kind
from beyond_imagenet.analyses.inputs import CacheEntry, ToolOptions
from beyond_imagenet.analyses.registry import ANALYSES, AnalysisSpec, resolve_analyses
from beyond_imagenet.analyses.store import CacheStore
from beyond_imagenet.base.config import AnalysesConfig, DatasetConfig
from beyond_imagenet.base.errors import UserError
from beyond_imagenet.base.record import ResultRecord
from beyond_imagenet.inference.cache import META_FILE, PARTIAL_DIR, InferenceCache, load_cache

SHOWN_PATHS = 6  # cache paths listed per run


@dataclass
class AnalysisRun:
    """One call of an analysis: its section, the models and the caches it reads."""

    spec: AnalysisSpec
    section: Any
    models: list[str]
    entries: list[CacheEntry]


@dataclass
class CachePlan:
    """The runs, and the lines saying what each analysis uses or why it skips."""

    runs: list[AnalysisRun] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)


def discover_caches(paths: Sequence[str | Path]) -> list[Path]:
    """Cache folders: each path holding ``meta.json``, else every folder below it that does (``partial/`` left out)."""
    found: list[Path] = []
    for path in map(Path, paths):
        if (path / META_FILE).is_file():
            found.append(path)
            continue
        below = sorted(m.parent for m in path.glob(f"**/{META_FILE}") if PARTIAL_DIR not in m.parts)
        if not below:
            raise UserError(
                f"{path} holds no cache: no {META_FILE} in it or below it. Give cache folders written as "
                "docs/cache.md describes (meta.json is written last and marks a complete cache)"
            )
        found += below
    return list(dict.fromkeys(p.resolve() for p in found))


def cache_entry(cache: InferenceCache) -> CacheEntry:
    """What the planner needs of a cache: its kind, variant and sweep point."""
    sweep = (cache.meta.get("config") or {}).get("sweep")
    return CacheEntry(cache, cache_kind(cache.meta), cache.meta["dataset"].get("variant") or None, sweep)


def load_store(paths: Sequence[str | Path]) -> tuple[CacheStore, list[CacheEntry]]:
    """Load every cache under ``paths`` and check it against the per-dataset rules (docs/cache.md)."""
    caches = [load_cache(path) for path in discover_caches(paths)]
    store = CacheStore.of_caches(caches, {})  # each checked by the rules of the kind its meta.json names
    return store, [cache_entry(cache) for cache in caches]


def _same_models(spec: AnalysisSpec, group: list[CacheEntry], lines: list[str]) -> list[CacheEntry]:
    """The entries of the models with a cache on every dataset of ``group``; the others are reported as unused."""
    datasets = list(dict.fromkeys(e.dataset for e in group))
    models = list(dict.fromkeys(e.cache.model_id for e in group))
    kept = [m for m in models if all(any(e.cache.model_id == m and e.dataset == d for e in group) for d in datasets)]
    for model in (m for m in models if m not in kept):
        lacking = [d for d in datasets if not any(e.cache.model_id == model and e.dataset == d for e in group)]
        lines.append(
            f"{spec.name}: not using the caches of {model!r}: it has none on {', '.join(lacking)} "
            f"({spec.name} compares every model on the same datasets)"
        )
    return [e for e in group if e.cache.model_id in kept]


def _check_variants(spec: AnalysisSpec, group: list[CacheEntry]) -> None:
    """Every model has the same variants of each dataset (the analyses compare models variant by variant)."""
    for dataset in dict.fromkeys(e.dataset for e in group):
        per_model: dict[str, set] = {}
        for e in group:
            if e.dataset == dataset:
                per_model.setdefault(e.cache.model_id, set()).add(e.variant or (e.sweep and str(e.sweep)))
        first, variants = next(iter(per_model.items()))
        for model, other in per_model.items():
            if other != variants:
                raise UserError(
                    f"{spec.name}: models {first!r} and {model!r} have caches of different variants of {dataset!r} "
                    f"(only {first!r}: {sorted(map(str, variants - other))[:5]}; only {model!r}: "
                    f"{sorted(map(str, other - variants))[:5]}). Rule: every model has the same variants. Fix: give "
                    "the missing caches or leave those out"
                )


def _run_line(run: AnalysisRun) -> list[str]:
    names = ", ".join(dict.fromkeys(e.dataset for e in run.entries))
    head = f"{run.spec.name}: uses {len(run.entries)} cache(s) of {names} for {', '.join(run.models)}"
    paths = [f"  {e.cache.path}" for e in run.entries[:SHOWN_PATHS]]
    more = [f"  ... and {len(run.entries) - SHOWN_PATHS} more"] if len(run.entries) > SHOWN_PATHS else []
    return [head, *paths, *more]


def _unused_lines(spec: AnalysisSpec, unused: dict[tuple[str, str], list[CacheEntry]]) -> list[str]:
    lines = []
    for (dataset, reason), entries in unused.items():
        example = f"{entries[0].cache.path}{', ...' if len(entries) > 1 else ''}"
        lines.append(f"{spec.name}: not using {len(entries)} cache(s) of {dataset!r} ({example}): {reason}")
    return lines


def _plan_one(spec: AnalysisSpec, entries: Sequence[CacheEntry], options: ToolOptions) -> CachePlan:
    """The runs of one analysis on the given caches, or why it is skipped."""
    contract = spec.inputs
    fitting, unused = [], {}
    for entry in entries:
        if (entry.sweep is not None) != contract.sweep or (contract.kinds and entry.kind not in contract.kinds):
            continue
        reason = contract.fit(entry, options)
        if reason:
            unused.setdefault((entry.dataset, reason), []).append(entry)
        else:
            fitting.append(entry)
    lines = _unused_lines(spec, unused)
    if not fitting:
        rule = f"({contract.rule}; {RULES_DOC})"
        what = f"no {contract.takes} fits (why below)" if lines else f"no {contract.takes} {rule}"
        return CachePlan([], [f"{spec.name}: skipped: {what}", *lines])
    missing = contract.side(fitting, options)
    if missing:
        return CachePlan([], [f"{spec.name}: skipped: {missing}", *lines])
    datasets = list(dict.fromkeys(e.dataset for e in fitting))
    groups = [fitting] if contract.together else [[e for e in fitting if e.dataset == d] for d in datasets]
    plan = CachePlan([], lines)
    for group in groups:
        group = _same_models(spec, group, plan.lines)
        _check_variants(spec, group)
        names = list(dict.fromkeys(e.dataset for e in group))
        section = contract.configure(getattr(AnalysesConfig(), spec.name), names, group, options)
        plan.runs.append(AnalysisRun(spec, section, list(dict.fromkeys(e.cache.model_id for e in group)), group))
    plan.lines += [line for run in plan.runs for line in _run_line(run)]
    return plan


def plan_analyses(entries: Sequence[CacheEntry], options: ToolOptions, names: Sequence[str] | None = None) -> CachePlan:
    """Every analysis (or the named ones) on the caches it can read; a named analysis that cannot run raises."""
    plan = CachePlan()
    for spec in resolve_analyses(list(names)) if names else list(ANALYSES.values()):
        one = _plan_one(spec, entries, options)
        if names and not one.runs:
            raise UserError(f"analysis {spec.name} cannot run on the given caches: {one.lines[0]}")
        plan.runs += one.runs
        plan.lines += one.lines
    if not plan.runs:
        raise UserError("no analysis can run on the given caches:\n" + "\n".join(plan.lines))
    return plan


def check_plan(plan: CachePlan, options: ToolOptions) -> list[str]:
    """Each run's up-front checks (ImageNet-X coverage, PUG's 10 subsets, the three sweeps); their report lines."""
    return [line for run in plan.runs for line in run.spec.inputs.check(run.section, run.entries, options)]


def dataset_configs(entries: Sequence[CacheEntry], options: ToolOptions) -> dict[str, DatasetConfig]:
    """A ``datasets`` entry per dataset name: its kind, and the folder side files are read from (PUG's class map)."""
    configs = {}
    for entry in entries:
        root = options.roots.get(entry.dataset) or entry.cache.meta["dataset"].get("root") or str(entry.cache.path)
        configs.setdefault(entry.dataset, DatasetConfig(path=root, kind=entry.kind or "image_folder"))
    return configs


def run_plan(
    plan: CachePlan, store: CacheStore, entries: Sequence[CacheEntry], options: ToolOptions, figures_dir: Path
) -> list[ResultRecord]:
    """Run every planned analysis; figures go to ``figures_dir``."""
    datasets = dataset_configs(entries, options)
    records: list[ResultRecord] = []
    for run in plan.runs:
        records += run.spec.run(run.section, AnalysisContext(run.models, store, figures_dir, datasets))
    return records
