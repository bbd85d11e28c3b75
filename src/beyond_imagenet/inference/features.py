"""Frozen features for the VTAB probes, cached once per (model, image source, split) (docs/transfer.md §2.1, §6).

What is extracted: ``Backbone.features`` (timm: the pooled pre-logits feature; OpenCLIP: the projected
``encode_image`` embedding), raw (the probe L2-normalises on load), with the model's *eval* transform
(``inference.preprocessing``) and no augmentation, under ``inference.precision``.

How: the shared inference engine (docs/architecture.md, data flow): each image is decoded once for all models,
every model runs on its own preprocessed view in one Lightning predict pass, finished chunks are saved atomically
and an interrupted pass resumes from them. Tasks sharing images (CLEVR count/distance, dSprites location/orientation,
smallNORB azimuth/elevation) read one source, so their images are featurised once (§0.5).

Layout: ``<features_dir>/<model>/<source>/<split>/`` holds ``features.npy`` [N, d] float16, ``sample_ids.json``
and ``meta.json`` (written last: its presence marks a complete cache; its ``config_hash`` covers the model and
weights, the preprocessing, the precision, the layout and the source files, so any change re-extracts).
``<source>`` is the tfds image source (layout ``tfds_parquet``), the WebDataset mirror (layout ``wds``) or
``<tfds source>@torchvision`` (layout ``torchvision``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from beyond_imagenet.base.config import InferenceConfig
from beyond_imagenet.base.errors import CacheFormatError, NonFiniteLogitsError, UserError
from beyond_imagenet.base.files import atomic_save_npy, atomic_write_json, sha256_file
from beyond_imagenet.base.hashing import config_hash, safe_name
from beyond_imagenet.data.vtab.samples import SourceSplit
from beyond_imagenet.inference.cache import (
    CHECKSUMS_KEY,
    IDS_FILE,
    META_FILE,
    PARTIAL_DIR,
    PartialChunks,
    checksum_problems,
    is_complete,
    read_meta,
)
from beyond_imagenet.inference.chunked_pass import PassCache, non_finite_message, pass_provenance, run_chunked_pass
from beyond_imagenet.inference.engine import resolve_accelerator
from beyond_imagenet.models.backends import backend_for
from beyond_imagenet.models.build import build_image_towers
from beyond_imagenet.models.catalogue import resolve_model
from beyond_imagenet.models.preprocessing import PreprocessSpec, resolve_preprocessing
from beyond_imagenet.models.spec import ModelSpec

log = logging.getLogger(__name__)

FEATURE_FORMAT_VERSION = 1
FEATURES_FILE = "features.npy"
FP16_MAX = float(np.finfo(np.float16).max)


def files_sha256(split: SourceSplit) -> str:
    """Hash of the files a source split was read from (names and sizes) and its row count."""
    payload = json.dumps({"files": list(split.files), "rows": len(split)}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def split_manifest(split: SourceSplit) -> dict:
    """What identifies a source split: name, layout, split, row count, files and their hash (for meta.json)."""
    return {
        "source": split.name,
        "layout": split.layout,
        "split": split.split,
        "n_rows": len(split),
        "files": list(split.files),
        "files_sha256": files_sha256(split),
    }


def features_path(features_dir: str | Path, model_id: str, source: str, split: str) -> Path:
    """``<features_dir>/<model>/<source>/<split>``, each part made file-system safe."""
    return Path(features_dir) / safe_name(model_id) / safe_name(source) / safe_name(split)


@dataclass
class FeatureJob:
    """One (model, source split) feature cache: where, what determines it, whether it is complete."""

    spec: ModelSpec
    split: SourceSplit
    preprocessing: PreprocessSpec
    path: Path
    config: dict
    hash: str
    complete: bool
    run_stats: dict = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str]:
        """The (source, split) this job reads; all jobs with the same key share one pass."""
        return (self.split.name, self.split.split)


def make_feature_job(
    inference: InferenceConfig, features_dir: str | Path, spec: ModelSpec, split: SourceSplit
) -> FeatureJob:
    """The feature cache of ``spec`` on one source split: its configuration, hash and path."""
    prep = resolve_preprocessing(spec, inference.preprocessing)
    config = {
        "format": FEATURE_FORMAT_VERSION,
        "model": {**spec.as_record(), "custom_config": spec.custom_config},
        "feature": backend_for(spec).feature_description,
        "preprocessing": prep.as_record(),
        "precision": inference.precision,
        "source": {k: v for k, v in split_manifest(split).items() if k != "files"},
    }
    digest = config_hash(config)
    path = features_path(features_dir, spec.id, split.cache_name, split.split)
    return FeatureJob(spec, split, prep, path, config, digest, is_complete(path, digest, feature_cache_problems))


def feature_cache_problems(path: Path, meta: dict) -> list[str]:
    """Why a feature cache with a complete ``meta.json`` cannot be trusted (missing files, checksums); empty if fine."""
    missing = [name for name in (FEATURES_FILE, IDS_FILE) if not (path / name).is_file()]
    return [f"it lacks {', '.join(missing)}"] if missing else checksum_problems(path, meta)


def plan_feature_jobs(
    inference: InferenceConfig, features_dir: str | Path, model_ids: Sequence[str], splits: Sequence[SourceSplit]
) -> list[FeatureJob]:
    """Every (model, source split) cache; models are resolved here, none is built."""
    specs = [resolve_model(m) for m in model_ids]
    return [make_feature_job(inference, features_dir, spec, split) for split in splits for spec in specs]


def _run_split_pass(
    jobs: list[FeatureJob], backbones: dict, inference: InferenceConfig, accelerator: str, callbacks
) -> None:
    """The shared chunked pass (features only) over one source split, then each cache written."""
    split = jobs[0].split
    partials, stats, non_finite = run_chunked_pass(
        split.samples,
        f"{split.name}/{split.split}",
        {job.spec.id: PassCache(job.path, job.hash, job.preprocessing) for job in jobs},
        backbones,
        inference,
        accelerator,
        callbacks,
        features_only=True,
        activity="features",
    )
    for job in jobs:
        if stats is not None:
            job.run_stats = stats
        if job.spec.id not in non_finite:
            _finalise(job, partials[job.spec.id], inference, accelerator)
    if non_finite:
        written = [job.spec.id for job in jobs if job.spec.id not in non_finite]
        raise NonFiniteLogitsError(non_finite_message(f"{split.name}/{split.split}", non_finite, written))


def _finalise(job: FeatureJob, partial: PartialChunks, inference: InferenceConfig, accelerator: str) -> None:
    """Every row must have a feature (a probe cannot skip images silently); write float16 atomically."""
    split = job.split
    indices, _, features, failed = partial.read_all()
    if failed:
        listing = "\n".join(f"  {split.samples[i].path}#{split.samples[i].sample_id}: {r}" for i, r in failed[:20])
        raise UserError(
            f"{len(failed)} image(s) of {split.name}/{split.split} could not be decoded:\n{listing}\n"
            "A probe split must keep every image: repair or re-export these rows, then rerun (finished chunks of "
            f"the other images are kept in {job.path / PARTIAL_DIR})."
        )
    if not np.array_equal(np.sort(indices), np.arange(len(split))):
        raise RuntimeError(f"{job.path}: {len(indices)} feature rows for {len(split)} images; delete it and rerun")
    order = np.argsort(indices)
    too_big = np.flatnonzero(np.abs(features).max(axis=1) > FP16_MAX)
    if too_big.size:
        raise NonFiniteLogitsError(
            f"{job.spec.id} on {split.name}/{split.split}: {too_big.size} feature row(s) exceed the float16 range "
            "of the feature cache; check the model weights"
        )
    meta = {
        "format_version": FEATURE_FORMAT_VERSION,
        **pass_provenance(job.hash, job.config, job.run_stats, inference, accelerator),
        "source": split_manifest(split),
        "n_rows": len(split),
        "dim": int(features.shape[1]),
        "dtype": "float16",
    }
    (job.path / META_FILE).unlink(missing_ok=True)
    files = [
        atomic_save_npy(job.path / FEATURES_FILE, np.ascontiguousarray(features[order], dtype=np.float16)),
        atomic_write_json(job.path / IDS_FILE, [s.sample_id for s in split.samples]),
    ]
    meta[CHECKSUMS_KEY] = {file.name: sha256_file(file) for file in files}
    atomic_write_json(job.path / META_FILE, meta)
    shutil.rmtree(job.path / PARTIAL_DIR, ignore_errors=True)
    log.info("wrote %s (%d x %d)", job.path, *features.shape)


def run_feature_jobs(
    jobs: Sequence[FeatureJob], inference: InferenceConfig, callbacks: Sequence = (), build=None
) -> list[FeatureJob]:
    """Fill every incomplete cache of ``jobs``: each model built once, one pass per source split."""
    todo = [job for job in jobs if not job.complete]
    for job in jobs:
        if job.complete:
            log.info("up to date: %s", job.path)
    if not todo:
        return list(jobs)
    accelerator = resolve_accelerator(inference.device)
    specs = list({job.spec.id: job.spec for job in todo}.values())
    backbones = (build or build_image_towers)(specs)
    for key in dict.fromkeys(job.key for job in todo):
        _run_split_pass([job for job in todo if job.key == key], backbones, inference, accelerator, list(callbacks))
        for job in todo:
            if job.key == key:
                job.complete = True
    return list(jobs)


@dataclass(frozen=True)
class FeatureCache:
    """A loaded feature cache: raw float16 features by row of the source split, and its provenance."""

    path: Path
    features: np.ndarray
    sample_ids: list[str]
    meta: dict


def load_features(path: str | Path, expected_hash: str | None = None) -> FeatureCache:
    """Read a complete cache; ``expected_hash`` guards against stale caches (docs/transfer.md §2.1 pitfall)."""
    path = Path(path)
    meta = read_meta(path)
    if meta is None:
        raise CacheFormatError(f"no complete feature cache at {path}: run `beyond-imagenet vtab-features`")
    if expected_hash is not None and meta.get("config_hash") != expected_hash:
        raise CacheFormatError(
            f"feature cache {path} was made with another configuration ({meta.get('config_hash')} != "
            f"{expected_hash}); run `beyond-imagenet vtab-features` to re-extract"
        )
    problems = feature_cache_problems(path, meta)
    if problems:
        raise CacheFormatError(
            f"feature cache {path} is damaged: {'; '.join(problems)}; run `beyond-imagenet vtab-features` (or "
            f"`dvc repro vtab_features`) to re-extract it, or delete {path}"
        )
    features = np.load(path / FEATURES_FILE, allow_pickle=False)
    sample_ids = json.loads((path / IDS_FILE).read_text())
    if features.ndim != 2 or len(features) != len(sample_ids) or len(features) != meta.get("n_rows"):
        raise CacheFormatError(f"feature cache {path}: {features.shape} rows do not match {len(sample_ids)} ids")
    return FeatureCache(path, features, sample_ids, meta)


__all__ = [
    "FeatureCache",
    "FeatureJob",
    "features_path",
    "load_features",
    "make_feature_job",
    "plan_feature_jobs",
    "run_feature_jobs",
    "split_manifest",
]
