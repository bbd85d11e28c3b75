"""What every analysis shares: result records, and logits mapped into a dataset's label space (PROTOCOL §2.2)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from beyond_imagenet.errors import CacheFormatError
from beyond_imagenet.inference.cache import InferenceCache


@dataclass
class ResultRecord:
    """One model x analysis x dataset result: namespaced metrics, the data behind figures, and provenance."""

    analysis: str
    model_id: str
    dataset: str
    metrics: dict[str, float]
    params: dict = field(default_factory=dict)
    details: dict = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)
    artifacts: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def label_space_logits(cache: InferenceCache) -> np.ndarray:
    """The cache's logits restricted to the dataset's classes, column ``k`` = dataset class ``k``.

    * output space ``label_space``: already per dataset class (CLIP head over the dataset's own names);
    * output space ``imagenet1k`` on an ImageNet-1k dataset: unchanged;
    * output space ``imagenet1k`` on a subset (IN-A/R style): keep the subset's columns in sorted-wnid order,
      before any softmax, exactly as the 200-class masks of §2.2.
    """
    output = cache.meta.get("output_space", {"kind": "imagenet1k"})
    label = cache.meta.get("label_space", {"kind": "imagenet1k"})
    logits = cache.logits
    if output.get("kind") == "label_space":
        return logits
    if output.get("kind") != "imagenet1k":
        raise CacheFormatError(f"{cache.path}: unknown output_space kind {output.get('kind')!r} (docs/cache.md)")
    if logits.shape[1] != 1000:
        raise CacheFormatError(f"{cache.path}: output_space imagenet1k needs 1000 logit columns, has {logits.shape[1]}")
    if label.get("kind") == "imagenet1k":
        return logits
    columns = label.get("imagenet_columns")
    if not columns:
        raise CacheFormatError(
            f"{cache.path}: label space {label.get('kind')!r} has no one-to-one imagenet_columns, so ImageNet "
            "logits cannot be restricted to its classes (docs/cache.md)"
        )
    columns = np.asarray(columns)
    if not np.issubdtype(columns.dtype, np.integer) or columns.min() < 0 or columns.max() >= 1000:
        raise CacheFormatError(f"{cache.path}: label_space.imagenet_columns must be integers in 0..999")
    return logits[:, columns.astype(np.int64)]


def check_targets(cache: InferenceCache, n_classes: int) -> None:
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


def figure_path(results_dir: str | Path, analysis: str, dataset: str, name: str) -> Path:
    return Path(results_dir) / "figures" / analysis / dataset / f"{name}.png"
