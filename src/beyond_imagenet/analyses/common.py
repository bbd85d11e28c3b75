"""What every analysis shares: its context (models, caches, figure folder, datasets), target checks, provenance."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from beyond_imagenet.analyses.store import CacheStore
from beyond_imagenet.base.config import DatasetConfig, StatisticsConfig
from beyond_imagenet.base.errors import CacheFormatError
from beyond_imagenet.base.hashing import safe_name
from beyond_imagenet.inference.cache import InferenceCache


@dataclass(frozen=True)
class AnalysisContext:
    """What an analysis reads besides its own config section.

    Attributes:
        models: the model ids, in report order.
        store: the inference caches of the run.
        figures_dir: where figures go (``<figures_dir>/<analysis>/<dataset>/<name>.png``).
        datasets: the ``datasets`` section of params.yaml (kinds and folders of the named datasets).
        statistics: the ``statistics`` section: resamples, level, seed and method of every interval.
    """

    models: list[str]
    store: CacheStore
    figures_dir: Path
    datasets: Mapping[str, DatasetConfig]
    statistics: StatisticsConfig = field(default_factory=StatisticsConfig)


def check_targets(cache: InferenceCache, n_classes: int) -> None:
    """Single-label targets inside the label space; a multi-label cache is refused with the analysis to use."""
    if cache.label_lists is not None:
        raise CacheFormatError(
            f"{cache.path} is a multi-label set (label_lists.json); single-label accuracy and calibration would "
            "score only its first label. Use the robustness analysis, which scores top-1 against every valid label."
        )
    targets = cache.targets
    if targets.size and (targets.min() < 0 or targets.max() >= n_classes):
        raise CacheFormatError(
            f"{cache.path}: targets must lie in 0..{n_classes - 1} (the dataset's label space), found "
            f"{targets.min()}..{targets.max()}"
        )


def provenance_from_cache(cache: InferenceCache) -> dict:
    """The cache's provenance, trimmed to what a result record needs."""
    meta = cache.meta
    dataset = meta.get("dataset", {})
    return {
        "cache_path": str(cache.path),
        "cache_config_hash": meta.get("config_hash"),
        "model": meta.get("model"),
        "preprocessing": meta.get("preprocessing"),
        "dataset": {k: dataset.get(k) for k in ("name", "kind", "root", "n_images", "files_sha256")},
        "label_space": meta.get("label_space"),
        "output_space": meta.get("output_space"),
        "zeroshot_head": meta.get("zeroshot_head"),
        "precision": meta.get("precision"),
        "batch_size": meta.get("batch_size"),
        "n_samples": len(cache),
        "n_skipped": len(meta.get("skipped", []) or []),
        "inference_environment": meta.get("environment"),
    }


def figure_path(figures_dir: str | Path, analysis: str, dataset: str, name: str) -> Path:
    """``<figures_dir>/<analysis>/<dataset>/<name>.png`` (``name`` made file-safe: model ids may hold ``/``)."""
    return Path(figures_dir) / analysis / dataset / f"{safe_name(name)}.png"
