"""Registered analyses and the analysis stage: caches in, result records, figures and metrics files out.

Each analysis is a function ``(caches of all models on one dataset, params) -> records``; adding an analysis
means registering one more entry, not another branch (DESIGN.md principle 1).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from beyond_imagenet.analyses.common import ResultRecord
from beyond_imagenet.config import Params
from beyond_imagenet.errors import UnknownNameError
from beyond_imagenet.inference.cache import InferenceCache, cache_path, load_cache
from beyond_imagenet.io_utils import atomic_write_json

AnalysisFn = Callable[[list[InferenceCache], Params], list[ResultRecord]]


@dataclass(frozen=True)
class AnalysisSpec:
    name: str
    description: str
    paper_section: str
    run: AnalysisFn


def _run_accuracy(caches: list[InferenceCache], params: Params) -> list[ResultRecord]:
    from beyond_imagenet.analyses.accuracy import analyse_accuracy

    return [analyse_accuracy(cache) for cache in caches]


def _run_calibration(caches: list[InferenceCache], params: Params) -> list[ResultRecord]:
    from beyond_imagenet.analyses.calibration import analyse_calibration, save_calibration_figures

    results = [analyse_calibration(cache, params.analyses.calibration.n_bins) for cache in caches]
    records = [record for record, _ in results]
    save_calibration_figures([panel for _, panel in results], records, caches[0].dataset, params.results_dir)
    return records


ANALYSES: dict[str, AnalysisSpec] = {
    spec.name: spec
    for spec in (
        AnalysisSpec("accuracy", "top-1 and top-5 accuracy on the dataset's label space", "§7.1", _run_accuracy),
        AnalysisSpec(
            "calibration",
            "ECE (15 bins), reliability diagrams, confidence histograms",
            "§5, Fig. 4",
            _run_calibration,
        ),
    )
}


def resolve_analyses(names: Sequence[str]) -> list[AnalysisSpec]:
    return [ANALYSES[n] if n in ANALYSES else _unknown(n) for n in names]


def _unknown(name: str) -> AnalysisSpec:
    raise UnknownNameError("analysis", name, ANALYSES)


def record_path(results_dir: str | Path, record: ResultRecord) -> Path:
    return (
        Path(results_dir) / "records" / record.analysis / record.dataset / f"{record.model_id.replace(':', '_')}.json"
    )


def load_caches(params: Params, dataset: str, model_ids: Sequence[str]) -> list[InferenceCache]:
    """All models' caches on ``dataset``; a missing one names the stage that makes it."""
    return [load_cache(cache_path(params.inference.cache_dir, dataset, m)) for m in model_ids]


def run_analyses(params: Params, names: Sequence[str] | None = None) -> list[ResultRecord]:
    """Run each named analysis (default: all configured) on every configured dataset and model."""
    specs = resolve_analyses(list(names) if names is not None else list(ANALYSES))
    work = [(spec, dataset) for spec in specs for dataset in getattr(params.analyses, spec.name).datasets]
    caches = {dataset: load_caches(params, dataset, params.models) for dataset in {d for _, d in work}}
    results_dir = Path(params.results_dir)
    for sub in ("records", "figures"):
        shutil.rmtree(results_dir / sub, ignore_errors=True)  # outputs of this stage only; rebuilt below
    records: list[ResultRecord] = []
    for spec, dataset in work:
        records.extend(spec.run(caches[dataset], params))
    for record in records:
        atomic_write_json(record_path(results_dir, record), record.as_dict())
    write_metrics_file(records, results_dir / "metrics.json")
    return records


def write_metrics_file(records: list[ResultRecord], path: Path) -> Path:
    """DVC metrics: ``{model_id: {namespaced metric: value}}``, shown by ``dvc metrics show``."""
    metrics: dict[str, dict[str, float]] = {}
    for record in records:
        metrics.setdefault(record.model_id, {}).update(record.metrics)
    return atomic_write_json(path, metrics)


def load_records(results_dir: str | Path) -> list[ResultRecord]:
    paths = sorted((Path(results_dir) / "records").glob("*/*/*.json"))
    return [ResultRecord(**json.loads(p.read_text())) for p in paths]
