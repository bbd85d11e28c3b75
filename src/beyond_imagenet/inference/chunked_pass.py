"""The one model pass every cache is written by: each image decoded once for all models, finished chunks kept.

Shared by the inference caches (logits and features) and the VTAB feature caches (features only). The pass runs
only the chunks some model still lacks; each finished chunk is saved per model (``cache.PartialChunks``), so an
interrupted pass resumes (docs/cache.md).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from beyond_imagenet.base.config import InferenceConfig
from beyond_imagenet.base.provenance import environment_record
from beyond_imagenet.data.samples import Sample
from beyond_imagenet.inference.cache import PartialChunks
from beyond_imagenet.inference.engine import (
    ChunkWriter,
    MultiModelPredictor,
    ProgressReporter,
    make_trainer,
    non_finite_rows,
    speed_options,
)
from beyond_imagenet.inference.loader import DecodeOnceDataset, auto_num_workers, make_loader
from beyond_imagenet.inference.tensor_decode import (
    RawBytesDataset,
    check_tensor_specs,
    collate_raw,
    supports_tensor_decode,
)
from beyond_imagenet.models.preprocessing import PreprocessSpec

log = logging.getLogger(__name__)

__all__ = ["PassCache", "non_finite_message", "non_finite_rows", "pass_provenance", "run_chunked_pass"]


@dataclass(frozen=True)
class PassCache:
    """Where one model's results of a pass go: its cache folder, configuration hash and preprocessing."""

    path: Path
    hash: str
    preprocessing: PreprocessSpec


@dataclass(frozen=True)
class _Chunks:
    """The chunking of one pass: sizes, and the chunks each model still needs."""

    size: int
    sizes: dict[int, int]
    needed: dict[str, set[int]]

    @property
    def pending(self) -> list[int]:
        return sorted(set().union(*self.needed.values()))

    def indices(self) -> np.ndarray:
        """Sample indices of every pending chunk, in order."""
        return np.concatenate([np.arange(c * self.size, c * self.size + self.sizes[c]) for c in self.pending])


def _plan_chunks(n_samples: int, chunk_size: int, partials: dict[str, PartialChunks]) -> _Chunks:
    n_chunks = -(-n_samples // chunk_size)
    sizes = {c: min(chunk_size, n_samples - c * chunk_size) for c in range(n_chunks)}
    needed = {model_id: set(range(n_chunks)) - partial.done() for model_id, partial in partials.items()}
    return _Chunks(chunk_size, sizes, needed)


def _use_tensor_decode(inference: InferenceConfig, samples: Sequence[Sample], name: str, specs: dict) -> bool:
    """Whether this pass decodes batches on the device (``decode: tensor`` and plain image files only)."""
    if inference.decode != "tensor":
        return False
    if not supports_tensor_decode(samples):
        log.warning("%s: inference.decode tensor needs plain image files; decoding with Pillow", name)
        return False
    check_tensor_specs(specs)
    return True


def _loader(samples: Sequence[Sample], indices: np.ndarray, specs: dict, tensor: bool, inference, accelerator: str):
    dataset = RawBytesDataset(samples, indices) if tensor else DecodeOnceDataset(samples, indices, specs)
    workers = inference.num_workers
    return make_loader(
        dataset,
        inference.batch_size,
        auto_num_workers() if workers == "auto" else workers,
        pin_memory=accelerator == "gpu",
        collate_fn=collate_raw if tensor else None,
    )


def non_finite_message(name: str, bad: dict[str, list[str]], written: Sequence[str]) -> str:
    """The error for models whose outputs on ``name`` hold NaN or infinity (``bad``: model id -> sample ids)."""
    lines = [
        f"model {model_id} on {name}: {len(ids)} sample(s) have NaN or infinite logits or features (e.g. "
        f"{', '.join(ids[:10])}); a NaN is never counted as a prediction, so no cache was written for this model."
        for model_id, ids in bad.items()
    ]
    done = f" The other models' caches were written ({', '.join(written)})." if written else ""
    return (
        "\n".join(lines) + done + " Fix: check the weights, set inference.precision: fp32, or inspect these images, "
        "then rerun `beyond-imagenet infer`; only the chunks holding these samples are recomputed."
    )


def run_chunked_pass(
    samples: Sequence[Sample],
    name: str,
    caches: dict[str, PassCache],
    backbones: dict[str, object],
    inference: InferenceConfig,
    accelerator: str,
    callbacks: Sequence = (),
    features_only: bool = False,
    activity: str = "infer",
) -> tuple[dict[str, PartialChunks], dict | None, dict[str, list[str]]]:
    """One pass over the chunks that any model of ``caches`` still lacks; each image decoded once for all models.

    ``name`` labels errors, ``activity`` the progress line. Returns the finished chunks per model, the pass
    statistics (None when every chunk was already done) and, per model whose outputs held NaN or infinity, those
    sample ids (their chunks are not saved; the pass goes on for every model).
    """
    partials = {model_id: PartialChunks(cache.path, cache.hash) for model_id, cache in caches.items()}
    chunks = _plan_chunks(len(samples), inference.chunk_size, partials)
    if not chunks.pending:
        return partials, None, {}
    indices = chunks.indices()
    specs = {cache.preprocessing.key(): cache.preprocessing for cache in caches.values()}
    tensor = _use_tensor_decode(inference, samples, name, specs)
    module = MultiModelPredictor(
        {model_id: backbones[model_id] for model_id in caches},
        {model_id: cache.preprocessing.key() for model_id, cache in caches.items()},
        features_only=features_only,
        **speed_options(inference, accelerator),
        tensor_decode_specs=specs if tensor else None,
    )
    progress = ProgressReporter(len(indices), f"{activity} {name}: {', '.join(caches)}")
    sample_ids = [s.sample_id for s in samples]
    writer = ChunkWriter(partials, chunks.needed, chunks.sizes, chunks.size, sample_ids, name)
    trainer = make_trainer(accelerator, inference.precision, [writer, progress, *callbacks])
    started = time.perf_counter()
    with torch.inference_mode():
        trainer.predict(
            module, _loader(samples, indices, specs, tensor, inference, accelerator), return_predictions=False
        )
    stats = {
        "seconds": round(time.perf_counter() - started, 3),
        "images": len(indices),
        "images_per_s": round(progress.images_per_second, 2),
        "models_in_pass": list(caches),
    }
    return partials, stats, dict(writer.non_finite)


def pass_provenance(
    config_hash: str, config: dict, run_stats: dict | None, inference: InferenceConfig, accelerator: str
) -> dict:
    """The meta.json fields every cache written by :func:`run_chunked_pass` shares (inference and VTAB features).

    Its configuration and hash, precision, speed options, batch size, accelerator, the pass's statistics, when it
    was written, and the code and machine (:func:`~beyond_imagenet.base.provenance.environment_record`).
    """
    return {
        "config_hash": config_hash,
        "config": config,
        "model": config["model"],
        "preprocessing": config["preprocessing"],
        "precision": inference.precision,
        "speed_options": speed_options(inference, accelerator),
        "batch_size": inference.batch_size,
        "accelerator": accelerator,
        "last_pass": run_stats or None,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "environment": environment_record(),
    }
