"""Plan and run the cached inference pass for every (dataset, model) of params.yaml.

Order of work, so bad input fails before anything expensive (DESIGN.md principle 6): resolve model ids,
scan and validate datasets, check label spaces, compute each cache's configuration hash, skip complete
caches, check that missing weights are available, then build each model once and run one pass per dataset.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from beyond_imagenet.config import Params
from beyond_imagenet.data.label_space import IMAGENET1K, LabelSpace
from beyond_imagenet.data.registry import ImageDataset, resolve_datasets
from beyond_imagenet.data.samples import sample_label
from beyond_imagenet.errors import UnknownNameError, UserError
from beyond_imagenet.inference.cache import PartialChunks, cache_path, config_hash, is_complete, write_cache
from beyond_imagenet.models.catalogue import ModelSpec, resolve_model
from beyond_imagenet.models.preprocessing import PreprocessSpec, resolve_preprocessing, without_geometry
from beyond_imagenet.provenance import environment_record

log = logging.getLogger(__name__)

Builder = Callable[[ModelSpec], tuple]  # spec -> (Backbone, clip model or None), like build_backbone


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
    """The classes a model's logits range over on a dataset (PROTOCOL §1.4, §2.2).

    ImageNet-1k whenever the dataset maps into it (the paper's default: CLIP uses the 1000-class head, then
    the analysis keeps the dataset's columns); otherwise CLIP gets a zero-shot head over the dataset's own
    class names. A supervised ImageNet model cannot classify an unmapped label space.
    """
    if label_space.maps_to_imagenet:
        return {"kind": IMAGENET1K, "n_classes": 1000}
    if spec.paradigm == "clip":
        return {"kind": "label_space", "n_classes": label_space.n_classes, "digest": label_space.digest()}
    raise UserError(
        f"model {spec.id} predicts ImageNet-1k classes, but this dataset's label space ({label_space.kind}) has "
        "no mapping into ImageNet-1k. Give the dataset an imagenet_map_file, or use CLIP models on it."
    )


def zeroshot_classnames(space: dict, label_space: LabelSpace) -> list[str]:
    if space["kind"] == IMAGENET1K:
        from beyond_imagenet.models.zeroshot import openai_imagenet_classnames

        return openai_imagenet_classnames()
    return list(label_space.class_names)


def label_space_record(label_space: LabelSpace) -> dict:
    columns = label_space.one_to_one_imagenet_columns()
    return {
        **label_space.as_record(),
        "class_ids": list(label_space.class_ids) if label_space.kind != IMAGENET1K else None,
        "imagenet_columns": columns.tolist() if columns is not None and label_space.kind != IMAGENET1K else None,
    }


def job_config(
    params: Params, dataset: ImageDataset, spec: ModelSpec, prep: PreprocessSpec, space: dict, files_sha256: str
) -> dict:
    """Everything that determines one cache's contents; its hash decides whether a cache is reused."""
    config = {
        "model": {**spec.as_record(), "custom_config": spec.custom_config},
        "preprocessing": prep.as_record(),
        "dataset_files_sha256": files_sha256,
        "label_space": label_space_record(dataset.label_space),
        "output_space": space,
        "precision": params.inference.precision,
        "bad_images": params.inference.bad_images,
    }
    if params.inference.decode != "pillow":
        from beyond_imagenet.inference.tensor_decode import TENSOR_RESIZE_MODES, supports_tensor_decode

        if prep.resize_mode not in TENSOR_RESIZE_MODES:  # fail at planning, before any model is built
            raise UserError(
                f"inference.decode: tensor does not support resize_mode {prep.resize_mode!r} (the shift sweep of "
                f"{dataset.key}); use inference.decode: pillow"
            )
        if supports_tensor_decode(dataset.samples):  # else the pass decodes with Pillow after all
            config["decode"] = params.inference.decode  # changes pixels; pillow caches keep their hash
    if spec.paradigm == "clip":
        from beyond_imagenet.models.zeroshot import head_key

        config["zeroshot_head"] = head_key(spec, zeroshot_classnames(space, dataset.label_space))
    return config


def make_job(
    params: Params,
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
    config = {**job_config(params, dataset, spec, prep, space, files_sha256), **(extra_config or {})}
    path = cache_path(params.inference.cache_dir, dataset.name, spec.id, dataset.variant)
    digest = config_hash(config)
    return CacheJob(dataset, spec, prep, space, path, config, digest, is_complete(path, digest))


def model_preprocessing(params: Params, dataset: ImageDataset, spec: ModelSpec) -> PreprocessSpec:
    """The model's resolved preprocessing (params mode), without resize and crop on pre-sized datasets."""
    prep = resolve_preprocessing(spec, params.inference.preprocessing)
    return without_geometry(prep) if dataset.geometry == "none" else prep


def plan_jobs(params: Params, dataset_names: Sequence[str], model_ids: Sequence[str]) -> list[CacheJob]:
    """Resolve and validate everything; no model is built here."""
    specs = [resolve_model(m) for m in model_ids]
    for name in dataset_names:
        if name not in params.datasets:
            raise UnknownNameError("dataset", name, params.datasets)
    datasets = [d for name in dataset_names for d in resolve_datasets(name, params.datasets[name])]
    jobs = []
    for dataset in datasets:
        files_sha256 = dataset.manifest_sha256()
        for spec in specs:
            jobs.append(make_job(params, dataset, spec, model_preprocessing(params, dataset, spec), files_sha256))
    return jobs


def _build_backbones(jobs: list[CacheJob], params: Params, device, build: Builder | None = None) -> dict[str, object]:
    """Build each needed model once; attach one zero-shot head per output space needed (CLIP).

    ``build`` maps a job's spec to ``(backbone, clip_model or None)``; default :func:`build_backbone`.
    """
    from beyond_imagenet.models.weights import ensure_weights_available

    if build is None:
        from beyond_imagenet.models.backbone import build_backbone as build

    specs = {job.spec.id: job.spec for job in jobs}
    ensure_weights_available(list(specs.values()))
    backbones, heads = {}, {}
    for model_id, spec in specs.items():
        backbone, clip_model = build(spec)
        if spec.paradigm == "supervised" and backbone.output_dim != 1000:
            raise UserError(f"model {model_id} has a {backbone.output_dim}-class head; ImageNet-1k needs 1000")
        if clip_model is not None:
            from beyond_imagenet.models.zeroshot import load_or_build_zeroshot_weights

            for job in (j for j in jobs if j.spec.id == model_id):
                names = zeroshot_classnames(job.output_space, job.dataset.label_space)
                weights, info = load_or_build_zeroshot_weights(
                    spec, clip_model, names, Path(params.inference.cache_dir), device
                )
                heads[(model_id, job.dataset.key)] = weights
                job.head_info = info
            del clip_model  # the text tower is no longer needed
        backbones[model_id] = backbone
    return {"backbones": backbones, "heads": heads}


@dataclass(frozen=True)
class PassCache:
    """Where one model's results of a pass go: its cache folder, configuration hash and preprocessing."""

    path: Path
    hash: str
    preprocessing: PreprocessSpec


def run_chunked_pass(
    samples: Sequence,
    sample_ids: Sequence[str],
    name: str,
    caches: dict[str, PassCache],
    backbones: dict[str, object],
    params: Params,
    accelerator: str,
    callbacks: Sequence = (),
    features_only: bool = False,
    activity: str = "infer",
) -> tuple[dict[str, PartialChunks], dict | None]:
    """One pass over the chunks that any model of ``caches`` still lacks; each image decoded once for all models.

    Shared by the inference caches and the VTAB feature caches (``features_only``). Finished chunks are saved
    per model (resumable); ``name`` labels errors, ``activity`` the progress line. Returns the finished chunks
    and the pass statistics (None when every chunk was already done).
    """
    import torch

    from beyond_imagenet.inference.engine import (
        ChunkWriter,
        MultiModelPredictor,
        ProgressReporter,
        make_trainer,
        speed_options,
    )
    from beyond_imagenet.inference.loader import DecodeOnceDataset, auto_num_workers, make_loader

    chunk_size = params.inference.chunk_size
    n_chunks = -(-len(samples) // chunk_size)
    chunk_sizes = {c: min(chunk_size, len(samples) - c * chunk_size) for c in range(n_chunks)}
    partials = {model_id: PartialChunks(cache.path, cache.hash) for model_id, cache in caches.items()}
    needed = {model_id: set(range(n_chunks)) - partial.done() for model_id, partial in partials.items()}
    pending = sorted(set().union(*needed.values()))
    if not pending:
        return partials, None
    indices = np.concatenate([np.arange(c * chunk_size, c * chunk_size + chunk_sizes[c]) for c in pending])
    specs = {cache.preprocessing.key(): cache.preprocessing for cache in caches.values()}
    tensor_decode = params.inference.decode == "tensor"
    if tensor_decode:
        from beyond_imagenet.inference.tensor_decode import (
            RawBytesDataset,
            check_tensor_specs,
            collate_raw,
            supports_tensor_decode,
        )

        tensor_decode = supports_tensor_decode(samples)
        if tensor_decode:
            check_tensor_specs(specs)
        else:
            log.warning("%s: inference.decode tensor needs plain image files; decoding with Pillow", name)
    module = MultiModelPredictor(
        {model_id: backbones[model_id] for model_id in caches},
        {model_id: cache.preprocessing.key() for model_id, cache in caches.items()},
        features_only=features_only,
        **speed_options(params.inference, accelerator),
        tensor_decode_specs=specs if tensor_decode else None,
    )
    workers = params.inference.num_workers
    loader = make_loader(
        RawBytesDataset(samples, indices) if tensor_decode else DecodeOnceDataset(samples, indices, specs),
        params.inference.batch_size,
        auto_num_workers() if workers == "auto" else workers,
        pin_memory=accelerator == "gpu",
        collate_fn=collate_raw if tensor_decode else None,
    )
    progress = ProgressReporter(len(indices), f"{activity} {name}: {', '.join(caches)}")
    writer = ChunkWriter(partials, needed, chunk_sizes, chunk_size, sample_ids, name)
    trainer = make_trainer(accelerator, params.inference.precision, [writer, progress, *callbacks])
    started = time.perf_counter()
    with torch.inference_mode():
        trainer.predict(module, loader, return_predictions=False)
    stats = {
        "seconds": round(time.perf_counter() - started, 3),
        "images": len(indices),
        "images_per_s": round(progress.images_per_second, 2),
        "models_in_pass": list(caches),
    }
    return partials, stats


def pass_provenance(config_hash: str, config: dict, run_stats: dict | None, params: Params, accelerator: str) -> dict:
    """The meta.json fields every cache written by :func:`run_chunked_pass` shares (inference and VTAB features):
    its configuration and hash, precision, speed options, batch size, accelerator, the pass's statistics, when it
    was written, and the code and machine (:func:`~beyond_imagenet.provenance.environment_record`)."""
    from beyond_imagenet.inference.engine import speed_options

    return {
        "config_hash": config_hash,
        "config": config,
        "model": config["model"],
        "preprocessing": config["preprocessing"],
        "precision": params.inference.precision,
        "speed_options": speed_options(params.inference, accelerator),
        "batch_size": params.inference.batch_size,
        "accelerator": accelerator,
        "last_pass": run_stats or None,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "environment": environment_record(),
    }


def _run_dataset_pass(
    dataset: ImageDataset,
    jobs: list[CacheJob],
    built: dict,
    params: Params,
    accelerator: str,
    callbacks: list,
) -> None:
    """The cached pass of every job on ``dataset`` (zero-shot heads attached), then each cache written."""
    for job in jobs:
        if job.spec.paradigm == "clip":
            built["backbones"][job.spec.id].set_zeroshot_weights(built["heads"][(job.spec.id, dataset.key)])
    caches = {job.spec.id: PassCache(job.path, job.hash, job.preprocessing) for job in jobs}
    partials, stats = run_chunked_pass(
        dataset.samples,
        dataset.sample_ids,
        dataset.key,
        caches,
        built["backbones"],
        params,
        accelerator,
        callbacks,
    )
    for job in jobs:
        if stats is not None:
            job.run_stats = stats
        _finalise(job, partials[job.spec.id], params, accelerator)


def _finalise(job: CacheJob, partial: PartialChunks, params: Params, accelerator: str) -> None:
    """Check every sample is accounted for, apply the bad-image policy, write the cache."""
    dataset = job.dataset
    indices, logits, features, failed = partial.read_all()
    accounted = np.sort(np.concatenate([indices, np.array([i for i, _ in failed], dtype=np.int64)]))
    if not np.array_equal(accounted, np.arange(len(dataset))):
        raise RuntimeError(
            f"{job.spec.id} on {dataset.key}: {len(accounted)} results for {len(dataset)} images; "
            f"delete {job.path} and rerun"
        )
    failures = [
        {"sample_id": dataset.samples[i].sample_id, "path": sample_label(dataset.samples[i]), "reason": reason}
        for i, reason in failed
    ]
    if failures and params.inference.bad_images == "error":
        listing = "\n".join(f"  {f['path']}: {f['reason']}" for f in failures[:50])
        more = f"\n  ... and {len(failures) - 50} more" if len(failures) > 50 else ""
        raise UserError(
            f"{len(failures)} image(s) of dataset {dataset.key!r} could not be decoded:\n{listing}{more}\n"
            "Replace or remove them (then the dataset manifest changes and caches are recomputed), or set "
            "inference.bad_images: skip to leave them out; skipped images are listed in meta.json."
        )
    order = np.argsort(indices)
    indices = indices[order]
    meta = {
        **pass_provenance(job.hash, job.config, job.run_stats, params, accelerator),
        "dataset": dataset.manifest(),
        "label_space": job.config["label_space"],
        "output_space": job.output_space,
        "zeroshot_head": job.head_info or None,
        "n_samples": len(indices),
        "skipped": failures,
    }
    write_cache(
        job.path,
        logits[order],
        features[order],
        dataset.targets[indices],
        [dataset.samples[i].sample_id for i in indices],
        meta,
        [list(dataset.label_lists[i]) for i in indices] if dataset.label_lists else None,
    )
    log.info("wrote %s (%d samples)", job.path, len(indices))


def run_jobs(todo: list[CacheJob], params: Params, callbacks: Sequence = (), build: Builder | None = None) -> None:
    """Build each model of ``todo`` once (``build``, default :func:`build_backbone`), then one pass per dataset."""
    from beyond_imagenet.inference.engine import resolve_accelerator

    if not todo:
        return
    accelerator = resolve_accelerator(params.inference.device)
    import torch

    device = torch.device("cuda" if accelerator == "gpu" else "cpu")
    built = _build_backbones(todo, params, device, build)
    for key in dict.fromkeys(job.dataset.key for job in todo):
        dataset_jobs = [job for job in todo if job.dataset.key == key]
        _run_dataset_pass(dataset_jobs[0].dataset, dataset_jobs, built, params, accelerator, list(callbacks))


def log_up_to_date(jobs: list[CacheJob]) -> list[CacheJob]:
    """Log the complete caches and return the jobs still to run."""
    for job in jobs:
        if job.complete:
            log.info("up to date: %s", job.path)
    return [job for job in jobs if not job.complete]


def run_inference(
    params: Params,
    dataset_names: Sequence[str] | None = None,
    model_ids: Sequence[str] | None = None,
    callbacks: Sequence = (),
) -> list[CacheJob]:
    """Fill every missing or outdated cache; return all jobs (complete ones untouched)."""
    dataset_names = list(dataset_names or params.datasets)
    jobs = plan_jobs(params, dataset_names, list(model_ids or params.models))
    run_jobs(log_up_to_date(jobs), params, callbacks)
    return jobs
