"""Run the cached inference pass: build each model once, one pass per dataset, write each (dataset, model) cache.

Order of work, so bad input fails before anything expensive (docs/architecture.md, principle 6): the jobs are
planned and validated (``jobs.plan_jobs``), complete caches are skipped, each remaining cache folder is locked (a
second run waits, then reuses what the first finished), undecodable images are looked for under
``inference.bad_images: error``, missing weights are checked, then each model is built once (with one zero-shot head
per output space for CLIP models) and every dataset gets one pass. A model whose outputs hold NaN does not stop the
other models' caches from being written; the run fails after them, naming it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from contextlib import ExitStack

import numpy as np
import torch

from beyond_imagenet.base.config import InferenceConfig
from beyond_imagenet.base.errors import NonFiniteLogitsError, UserError
from beyond_imagenet.data.registry import ImageDataset
from beyond_imagenet.data.verify import find_undecodable
from beyond_imagenet.inference.cache import META_FILE, PartialChunks, cache_lock, write_cache
from beyond_imagenet.inference.chunked_pass import (
    PassCache,
    non_finite_message,
    non_finite_rows,
    pass_provenance,
    run_chunked_pass,
)
from beyond_imagenet.inference.engine import resolve_accelerator
from beyond_imagenet.inference.jobs import CacheJob, log_up_to_date, plan_jobs, up_to_date, zeroshot_classnames
from beyond_imagenet.inference.loader import auto_num_workers
from beyond_imagenet.models.build import build_backbone
from beyond_imagenet.models.spec import ModelSpec
from beyond_imagenet.models.weights import ensure_weights_available
from beyond_imagenet.models.zeroshot import load_or_build_zeroshot_weights

log = logging.getLogger(__name__)

Builder = Callable[[ModelSpec], tuple]  # spec -> (Backbone, clip model or None), like build_backbone


def _attach_heads(model_id: str, clip_model, jobs: list[CacheJob], inference: InferenceConfig, device, heads) -> None:
    """Build (or load) one zero-shot head per (CLIP model, dataset) of ``jobs``; record each head in its job."""
    for job in (j for j in jobs if j.spec.id == model_id):
        names = zeroshot_classnames(job.output_space, job.dataset.label_space)
        weights, info = load_or_build_zeroshot_weights(job.spec, clip_model, names, inference.cache_dir, device)
        heads[(model_id, job.dataset.key)] = weights
        job.head_info = info


def build_backbones(jobs: list[CacheJob], inference: InferenceConfig, device, build: Builder | None = None) -> dict:
    """Build each needed model once; attach one zero-shot head per output space needed (CLIP).

    ``build`` maps a job's spec to ``(backbone, clip_model or None)``; default :func:`build_backbone`. Returns
    ``{"backbones": {model id: backbone}, "heads": {(model id, dataset key): weights}}``.
    """
    build = build or build_backbone
    specs = {job.spec.id: job.spec for job in jobs}
    ensure_weights_available(list(specs.values()))
    backbones, heads = {}, {}
    for model_id, spec in specs.items():
        backbone, clip_model = build(spec)
        classes = 1000 if spec.class_names is None else len(spec.class_names)
        if spec.head == "native" and backbone.output_dim != classes:
            raise UserError(f"model {model_id} has a {backbone.output_dim}-class head; its classes need {classes}")
        if clip_model is not None:
            _attach_heads(model_id, clip_model, jobs, inference, device, heads)
            del clip_model  # the text tower is no longer needed
        backbones[model_id] = backbone
    return {"backbones": backbones, "heads": heads}


def _failures(dataset: ImageDataset, failed: list) -> list[dict]:
    return [
        {"sample_id": dataset.samples[i].sample_id, "path": dataset.samples[i].name, "reason": reason}
        for i, reason in failed
    ]


def _refuse_bad_images(dataset: ImageDataset, failures: list[dict]) -> None:
    listing = "\n".join(f"  {f['path']}: {f['reason']}" for f in failures[:50])
    more = f"\n  ... and {len(failures) - 50} more" if len(failures) > 50 else ""
    raise UserError(
        f"{len(failures)} image(s) of dataset {dataset.key!r} could not be decoded:\n{listing}{more}\n"
        "Replace or remove them (then the dataset manifest changes and caches are recomputed), or set "
        "inference.bad_images: skip to leave them out; skipped images are listed in meta.json."
    )


def check_images_first(jobs: list[CacheJob], inference: InferenceConfig) -> None:
    """Under ``inference.bad_images: error``, refuse undecodable images before any model is built.

    Each dataset's files are checked once (sweep points share them); the check is cheap (JPEGs at 1/8 scale).
    """
    if inference.bad_images != "error":
        return
    checked = set()
    workers = auto_num_workers() if inference.num_workers == "auto" else inference.num_workers
    for job in jobs:
        if job.config["dataset_files_sha256"] in checked:
            continue
        checked.add(job.config["dataset_files_sha256"])
        failed = find_undecodable(job.dataset.samples, workers)
        if failed:
            _refuse_bad_images(job.dataset, _failures(job.dataset, failed))


def _report_skipped(job: CacheJob, failures: list[dict]) -> None:
    if failures:
        log.warning(
            '%s on %s: %d undecodable image(s) skipped (inference.bad_images: skip); listed under "skipped" in %s',
            job.spec.id,
            job.dataset.key,
            len(failures),
            job.path / META_FILE,
        )


def _drop_non_finite(job: CacheJob, partial: PartialChunks, indices, logits, features) -> list[str]:
    """Sample ids of saved rows with NaN or infinity; their chunks are deleted so a rerun recomputes them."""
    bad = indices[non_finite_rows(logits, features)]
    if bad.size:
        partial.drop_rows(bad)
    return [job.dataset.samples[i].sample_id for i in bad]


def finalise(job: CacheJob, partial: PartialChunks, inference: InferenceConfig, accelerator: str) -> list[str]:
    """Check every sample is accounted for, apply the bad-image policy, write the cache.

    Returns the sample ids whose saved outputs are not finite (then nothing is written); empty on success.
    """
    dataset = job.dataset
    indices, logits, features, failed = partial.read_all()
    accounted = np.sort(np.concatenate([indices, np.array([i for i, _ in failed], dtype=np.int64)]))
    if not np.array_equal(accounted, np.arange(len(dataset))):
        raise RuntimeError(
            f"{job.spec.id} on {dataset.key}: {len(accounted)} results for {len(dataset)} images; "
            f"delete {job.path} and rerun"
        )
    failures = _failures(dataset, failed)
    if failures and inference.bad_images == "error":
        _refuse_bad_images(dataset, failures)
    non_finite = _drop_non_finite(job, partial, indices, logits, features)
    if non_finite:
        return non_finite
    order = np.argsort(indices)
    indices = indices[order]
    meta = {
        **pass_provenance(job.hash, job.config, job.run_stats, inference, accelerator),
        "dataset": dataset.manifest(),
        "label_space": job.config["label_space"],
        "output_space": job.output_space,
        "zeroshot_head": job.head_info or None,
        "n_samples": len(indices),
        "skipped": failures,
    }
    label_lists = [list(dataset.label_lists[i]) for i in indices] if dataset.label_lists else None
    ids = [dataset.samples[i].sample_id for i in indices]
    write_cache(job.path, logits[order], features[order], dataset.targets[indices], ids, meta, label_lists)
    log.info("wrote %s (%d samples)", job.path, len(indices))
    _report_skipped(job, failures)
    return []


def _run_dataset_pass(
    jobs: list[CacheJob], built: dict, inference: InferenceConfig, accelerator, callbacks
) -> str | None:
    """The cached pass of every job on one dataset (zero-shot heads attached), then each cache written.

    Returns the message naming the models with NaN or infinite outputs (their caches are not written), or None.
    """
    dataset = jobs[0].dataset
    for job in jobs:
        if job.spec.head == "zeroshot":
            built["backbones"][job.spec.id].set_zeroshot_weights(built["heads"][(job.spec.id, dataset.key)])
    caches = {job.spec.id: PassCache(job.path, job.hash, job.preprocessing) for job in jobs}
    partials, stats, non_finite = run_chunked_pass(
        dataset.samples, dataset.key, caches, built["backbones"], inference, accelerator, callbacks
    )
    for job in jobs:
        if stats is not None:
            job.run_stats = stats
        if job.spec.id not in non_finite:
            bad = finalise(job, partials[job.spec.id], inference, accelerator)
            non_finite.update({job.spec.id: bad} if bad else {})
    written = [job.spec.id for job in jobs if job.spec.id not in non_finite]
    return non_finite_message(dataset.key, non_finite, written) if non_finite else None


def _still_to_do(todo: list[CacheJob], inference: InferenceConfig) -> list[CacheJob]:
    """The jobs whose cache another run has not finished meanwhile (checked while their locks are held)."""
    remaining = []
    for job in todo:
        if up_to_date(job.path, job.hash, inference.bad_images, report=False):  # reported while planning
            log.info("finished by another run meanwhile, reused: %s", job.path)
            job.complete = True
        else:
            remaining.append(job)
    return remaining


def run_jobs(
    todo: list[CacheJob], inference: InferenceConfig, callbacks: Sequence = (), build: Builder | None = None
) -> None:
    """Build each model of ``todo`` once (``build``, default :func:`build_backbone`), then one pass per dataset.

    The cache folders of ``todo`` are locked throughout; jobs another run finished while this one waited are reused.
    NaN or infinite outputs of a model fail the run after every other cache has been written.
    """
    if not todo:
        return
    accelerator = resolve_accelerator(inference.device)
    device = torch.device("cuda" if accelerator == "gpu" else "cpu")
    with ExitStack() as locks:
        for path in sorted({job.path for job in todo}):  # one global order: two runs never deadlock
            locks.enter_context(cache_lock(path))
        todo = _still_to_do(todo, inference)
        if not todo:
            return
        check_images_first(todo, inference)
        built = build_backbones(todo, inference, device, build)
        errors = []
        for key in dict.fromkeys(job.dataset.key for job in todo):
            jobs = [job for job in todo if job.dataset.key == key]
            errors.append(_run_dataset_pass(jobs, built, inference, accelerator, callbacks))
    if any(errors):
        raise NonFiniteLogitsError("\n".join(e for e in errors if e))


def run_inference(
    datasets: Sequence[ImageDataset],
    model_ids: Sequence[str],
    inference: InferenceConfig,
    callbacks: Sequence = (),
) -> list[CacheJob]:
    """Fill every missing or outdated cache of ``datasets`` x ``model_ids``; return all jobs (complete ones too)."""
    jobs = plan_jobs(datasets, model_ids, inference)
    run_jobs(log_up_to_date(jobs), inference, list(callbacks))
    return jobs
