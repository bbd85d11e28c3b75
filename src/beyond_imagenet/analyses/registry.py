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
from beyond_imagenet.analyses.store import CacheStore
from beyond_imagenet.config import Params
from beyond_imagenet.errors import UnknownNameError
from beyond_imagenet.io_utils import atomic_write_json

AnalysisFn = Callable[[Params, CacheStore], list[ResultRecord]]


@dataclass(frozen=True)
class AnalysisSpec:
    name: str
    description: str
    paper_section: str
    run: AnalysisFn

    def configured(self, params: Params) -> bool:
        """Whether params.yaml gives this analysis any dataset to run on."""
        section = getattr(params.analyses, self.name)
        return bool(getattr(section, "datasets", None) or getattr(section, "dataset", None))


def _run_accuracy(params: Params, store: CacheStore) -> list[ResultRecord]:
    from beyond_imagenet.analyses.accuracy import analyse_accuracy

    return [
        analyse_accuracy(cache)
        for dataset in params.analyses.accuracy.datasets
        for variant in _variants_or_none(store, dataset, params.models[0])
        for cache in store.all_models(dataset, params.models, variant)
    ]


def _run_calibration(params: Params, store: CacheStore) -> list[ResultRecord]:
    from beyond_imagenet.analyses.calibration import analyse_calibration, save_calibration_figures
    from beyond_imagenet.analyses.calibration_plots import save_calibration_grid
    from beyond_imagenet.analyses.common import figure_path

    records, grid = [], []
    for dataset in params.analyses.calibration.datasets:
        results = [
            analyse_calibration(cache, params.analyses.calibration.n_bins)
            for cache in store.all_models(dataset, params.models)
        ]
        batch = [record for record, _ in results]
        save_calibration_figures([panel for _, panel in results], batch, dataset, params.results_dir)
        records += batch
        grid.append((dataset, [panel for _, panel in results]))
    if len(grid) > 1:  # paper Fig. 4: ImageNet val and ImageNet-R, every model
        path = save_calibration_grid(grid, figure_path(params.results_dir, "calibration", "all", "fig4"), "Fig. 4")
        for record in records:
            record.artifacts.append(str(path))
    return records


def _run_invariance(params: Params, store: CacheStore) -> list[ResultRecord]:
    from beyond_imagenet.analyses.invariance import run_invariance

    return run_invariance(params, store)


def _variants_or_none(store: CacheStore, dataset: str, model_id: str) -> list[str | None]:
    return store.variants(dataset, model_id) or [None]


def _paper(name: str) -> AnalysisFn:
    def run(params: Params, store: CacheStore) -> list[ResultRecord]:
        from beyond_imagenet.analyses import paper_suite

        return getattr(paper_suite, f"run_{name}")(params, store)

    return run


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
        AnalysisSpec(
            "robustness", "Table 2 top-1, average, ImageNet-C, ReaL, JANuS ratios", "§7, Fig. 6", _paper("robustness")
        ),
        AnalysisSpec("imagenet_x", "ImageNet-X error ratios of 16 factors", "§3, Fig. 2", _paper("imagenet_x")),
        AnalysisSpec("pug", "PUG-ImageNet accuracy per factor subset and mean", "§4, Fig. 3", _paper("pug")),
        AnalysisSpec("shape_bias", "shape vs texture bias on cue-conflict images", "§6, Fig. 5", _paper("shape_bias")),
        AnalysisSpec(
            "invariance",
            "top-1, true-class probability and prediction consistency vs scale, shift and resolution",
            "§9, Fig. 7",
            _run_invariance,
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


def run_analyses(params: Params, names: Sequence[str] | None = None) -> list[ResultRecord]:
    """Run each named analysis (default: every configured one) on the caches of all models."""
    specs = resolve_analyses(list(names) if names is not None else list(ANALYSES))
    specs = [spec for spec in specs if spec.configured(params)]
    results_dir = Path(params.results_dir)
    for sub in ("records", "figures"):
        shutil.rmtree(results_dir / sub, ignore_errors=True)  # outputs of this stage only; rebuilt below
    store = CacheStore(params.inference.cache_dir)
    records: list[ResultRecord] = []
    for spec in specs:
        records.extend(spec.run(params, store))
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
