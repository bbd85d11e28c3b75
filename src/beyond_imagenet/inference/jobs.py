"""Plan the cached inference pass: one :class:`CacheJob` per (dataset, model), fully resolved before any model is built.

A job records where its cache goes, everything that determines the cache's contents (model, preprocessing,
dataset manifest, label and output space, precision, decode, zero-shot head) and its hash, and whether a complete
cache with that hash already exists and is intact (docs/cache.md). The bad-image policy is not hashed: it matters
only for a cache that left images out, which ``inference.bad_images: error`` does not reuse. Planning validates
everything first (docs/architecture.md, principle 6): model ids, label spaces, decode settings.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from beyond_imagenet.base.config import InferenceConfig
from beyond_imagenet.base.errors import UserError
from beyond_imagenet.base.hashing import config_hash
from beyond_imagenet.data.label_space import IMAGENET1K, LabelSpace
from beyond_imagenet.data.registry import ImageDataset
from beyond_imagenet.inference.cache import cache_path, is_complete, read_meta, tidy_finished_cache
from beyond_imagenet.inference.tensor_decode import TENSOR_RESIZE_MODES, supports_tensor_decode
from beyond_imagenet.models.catalogue import resolve_model
from beyond_imagenet.models.preprocessing import PreprocessSpec, resolve_preprocessing, without_geometry
from beyond_imagenet.models.spec import ModelSpec
from beyond_imagenet.models.zeroshot import head_key, openai_imagenet_classnames

log = logging.getLogger(__name__)


@dataclass
class CacheJob:
    """One (dataset, model) cache: where it goes, what determines it, whether it is already complete."""

    dataset: ImageDataset
    spec: ModelSpec
    preprocessing: PreprocessSpec
    output_space: dict
    path: Path
    config: dict
    hash: str
    complete: bool
    head_info: dict = field(default_factory=dict)
    run_stats: dict = field(default_factory=dict)


def output_space(spec: ModelSpec, label_space: LabelSpace) -> dict:
    """The classes a model's logits range over on a dataset (docs/protocol.md §1.4, §2.2).

    ImageNet-1k whenever the dataset maps into it (the paper's default: CLIP uses the 1000-class head, then the
    analysis keeps the dataset's columns); otherwise CLIP gets a zero-shot head over the dataset's own class names.
    A supervised ImageNet model cannot classify an unmapped label space. A model with its own classes
    (``ModelSpec.class_names``) classifies any dataset whose class names are among them: ``columns`` picks, for
    each dataset class, the model's logit of the same name.
    """
    if spec.head == "native" and spec.class_names is not None:
        columns = model_columns(spec, label_space)
        return {"kind": "model_classes", "n_classes": len(spec.class_names), "columns": columns}
    if label_space.maps_to_imagenet:
        return {"kind": IMAGENET1K, "n_classes": 1000}
    if spec.head == "zeroshot":
        return {"kind": "label_space", "n_classes": label_space.n_classes, "digest": label_space.digest()}
    raise UserError(
        f"model {spec.id} predicts ImageNet-1k classes, but this dataset's label space ({label_space.kind}) has "
        "no mapping into ImageNet-1k. Give the dataset an imagenet_map_file, or use CLIP models on it."
    )


def model_columns(spec: ModelSpec, label_space: LabelSpace) -> list[int]:
    """For each class of the dataset, the index of the model's class of that name (all must be there)."""
    position = {name: i for i, name in enumerate(spec.class_names or ())}
    missing = [name for name in label_space.class_names if name not in position]
    if missing:
        raise UserError(
            f"model {spec.id} predicts {len(position)} classes of its own ({', '.join(list(position)[:8])}, ...), "
            f"but the dataset's classes {missing[:5]} are not among them; name the dataset's class folders as the "
            "model's classes"
        )
    return [position[name] for name in label_space.class_names]


def zeroshot_classnames(space: dict, label_space: LabelSpace) -> list[str]:
    """The class names a CLIP model's zero-shot head is built over for this output space."""
    if space["kind"] == IMAGENET1K:
        return openai_imagenet_classnames()
    return list(label_space.class_names)


def label_space_record(label_space: LabelSpace) -> dict:
    """The label space as recorded in a cache: kind, size, digest, class ids and ImageNet columns (docs/cache.md)."""
    columns = label_space.one_to_one_imagenet_columns()
    return {
        **label_space.as_record(),
        "class_ids": list(label_space.class_ids) if label_space.kind != IMAGENET1K else None,
        "imagenet_columns": columns.tolist() if columns is not None and label_space.kind != IMAGENET1K else None,
    }


def _decode_setting(inference: InferenceConfig, dataset: ImageDataset, prep: PreprocessSpec) -> dict:
    """``{"decode": "tensor"}`` when batched tensor decoding will change this cache's pixels, else nothing."""
    if inference.decode == "pillow":
        return {}
    if prep.resize_mode not in TENSOR_RESIZE_MODES:  # fail at planning, before any model is built
        raise UserError(
            f"inference.decode: tensor does not support resize_mode {prep.resize_mode!r} (the shift sweep of "
            f"{dataset.key}); use inference.decode: pillow"
        )
    # datasets whose images are not plain files decode with Pillow after all; pillow caches keep their hash
    return {"decode": inference.decode} if supports_tensor_decode(dataset.samples) else {}


def job_config(
    inference: InferenceConfig, dataset: ImageDataset, spec: ModelSpec, prep: PreprocessSpec, space: dict, files: str
) -> dict:
    """Everything that determines one cache's contents; its hash decides whether a cache is reused."""
    config = {
        "model": {**spec.as_record(), "custom_config": spec.custom_config},
        "preprocessing": prep.as_record(),
        "dataset_files_sha256": files,
        "label_space": label_space_record(dataset.label_space),
        "output_space": space,
        "precision": inference.precision,
        **_decode_setting(inference, dataset, prep),
    }
    if spec.head == "zeroshot":
        config["zeroshot_head"] = head_key(spec, zeroshot_classnames(space, dataset.label_space))
    return config


def make_job(
    inference: InferenceConfig,
    dataset: ImageDataset,
    spec: ModelSpec,
    prep: PreprocessSpec,
    files_sha256: str,
    extra_config: dict | None = None,
) -> CacheJob:
    """The cache job of ``spec`` on ``dataset`` (path from its name and variant) with preprocessing ``prep``.

    ``files_sha256`` is ``dataset.manifest_sha256()``, computed once per dataset by the caller (it reads every
    file's size). ``extra_config`` adds keys to the hashed configuration (the invariance sweeps' sweep point).
    """
    space = output_space(spec, dataset.label_space)
    config = {**job_config(inference, dataset, spec, prep, space, files_sha256), **(extra_config or {})}
    path = cache_path(inference.cache_dir, dataset.name, spec.id, dataset.variant)
    digest = config_hash(config)
    return CacheJob(dataset, spec, prep, space, path, config, digest, up_to_date(path, digest, inference.bad_images))


def up_to_date(path: Path, digest: str, bad_images: str, report: bool = True) -> bool:
    """Whether the cache at ``path`` is intact, made with ``digest``, and acceptable under the bad-image policy.

    A cache that skipped undecodable images is reused only under ``inference.bad_images: skip``; one that skipped
    nothing is valid under either policy. ``report``: log why a cache with the right hash is not reused.
    """
    if not is_complete(path, digest, report=report):
        return False
    skipped = (read_meta(path) or {}).get("skipped") or []
    if skipped and bad_images == "error" and report:
        log.warning(
            "cache %s left out %d undecodable image(s) under inference.bad_images: skip; not reused under error",
            path,
            len(skipped),
        )
    return not (skipped and bad_images == "error")


def model_preprocessing(mode: str, dataset: ImageDataset, spec: ModelSpec) -> PreprocessSpec:
    """The model's resolved preprocessing (``paper`` or ``native``), without resize and crop on pre-sized datasets."""
    prep = resolve_preprocessing(spec, mode)
    return without_geometry(prep) if dataset.geometry == "none" else prep


def plan_jobs(datasets: Sequence[ImageDataset], model_ids: Sequence[str], inference: InferenceConfig) -> list[CacheJob]:
    """Every (dataset, model) job, validated; no model is built here."""
    specs = [resolve_model(m) for m in model_ids]
    jobs = []
    for dataset in datasets:
        files_sha256 = dataset.manifest_sha256()
        for spec in specs:
            prep = model_preprocessing(inference.preprocessing, dataset, spec)
            jobs.append(make_job(inference, dataset, spec, prep, files_sha256))
    return jobs


def log_up_to_date(jobs: list[CacheJob]) -> list[CacheJob]:
    """Log the complete caches and return the jobs still to run."""
    for job in jobs:
        if job.complete:
            tidy_finished_cache(job.path)
            log.info("up to date: %s", job.path)
    return [job for job in jobs if not job.complete]
