"""Fidelity of a faster setting: the same models on the same images under two inference settings.

``beyond-imagenet fidelity --dataset D --a precision=fp32 --b precision=bf16`` fills one cache per side (each in
its own folder ``<cache_dir>/fidelity/<side label>/``, so the main caches are untouched) and compares them per
model on the dataset's label space (docs/protocol.md §2.2: logits restricted to its classes before any softmax):

- ``top1_agreement``: % of images whose top-1 class is the same under both settings;
- ``top1_a``, ``top1_b``, ``delta_top1`` (b - a, percentage points);
- ``ece_a``, ``ece_b``, ``delta_ece`` (15 bins, docs/protocol.md §5);
- ``max_abs_logit_diff`` and ``mean_abs_logit_diff``.

A side is ``key=value`` pairs over the inference settings that may change numbers: ``precision`` (fp32 | bf16),
``channels_last`` and ``compile`` (true | false), ``decode`` (pillow | tensor).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from beyond_imagenet.base.config import InferenceConfig, parse_section, section_as_dict
from beyond_imagenet.base.errors import UserError
from beyond_imagenet.data.registry import ImageDataset
from beyond_imagenet.inference.cache import label_space_logits, load_cache
from beyond_imagenet.inference.jobs import log_up_to_date, plan_jobs
from beyond_imagenet.inference.run import run_jobs
from beyond_imagenet.metrics.accuracy import top1_predictions, topk_accuracy
from beyond_imagenet.metrics.calibration import expected_calibration_error, softmax_confidence
from beyond_imagenet.metrics.invariance import prediction_consistency

SETTINGS = ("precision", "channels_last", "compile", "decode")
_BOOLEANS = {"true": True, "false": False}


def parse_side(text: str) -> dict[str, object]:
    """``"precision=bf16,compile=true"`` -> ``{"precision": "bf16", "compile": True}`` (validated later)."""
    side: dict[str, object] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or key not in SETTINGS:
            raise UserError(f"fidelity setting {item!r} must be key=value with key one of {', '.join(SETTINGS)}")
        side[key] = _BOOLEANS.get(value.lower(), value) if key not in ("precision", "decode") else value
    if not side:
        raise UserError(f"a fidelity side needs at least one setting, e.g. precision=bf16 ({', '.join(SETTINGS)})")
    return side


def side_label(side: dict[str, object]) -> str:
    """Name of a side for its cache folder and the output file: ``compile-true_precision-bf16`` (keys sorted)."""
    return "_".join(f"{k}-{str(v).lower()}" for k, v in sorted(side.items()))


def side_inference(inference: InferenceConfig, side: dict[str, object]) -> InferenceConfig:
    """``inference`` with the side's settings and its own cache folder, re-validated."""
    unknown = set(side) - {f.name for f in dataclasses.fields(InferenceConfig)}
    if unknown:
        raise UserError(f"unknown inference setting(s) {sorted(unknown)}")
    data = {**section_as_dict(inference), **side}
    data["cache_dir"] = str(Path(inference.cache_dir) / "fidelity" / side_label(side))
    return parse_section(InferenceConfig, data, "inference")


def compare_logits(
    logits_a: np.ndarray, logits_b: np.ndarray, targets: np.ndarray, n_bins: int = 15
) -> dict[str, float]:
    """Agreement and accuracy/ECE change between two logit arrays of the same images (rows aligned)."""
    if logits_a.shape != logits_b.shape or len(targets) != len(logits_a):
        raise UserError(f"cannot compare logits of shapes {logits_a.shape} and {logits_b.shape}")
    result: dict[str, float] = {"n_samples": float(len(targets))}
    for name, logits in (("a", logits_a), ("b", logits_b)):
        confidence, prediction = softmax_confidence(logits)
        result[f"top1_{name}"] = topk_accuracy(logits, targets, 1)
        result[f"ece_{name}"] = expected_calibration_error(confidence, prediction == targets, n_bins)
    result["top1_agreement"] = prediction_consistency(top1_predictions(logits_a), top1_predictions(logits_b))
    result["delta_top1"] = result["top1_b"] - result["top1_a"]
    result["delta_ece"] = result["ece_b"] - result["ece_a"]
    diff = np.abs(logits_a.astype(np.float64) - logits_b.astype(np.float64))
    result["max_abs_logit_diff"] = float(diff.max())
    result["mean_abs_logit_diff"] = float(diff.mean())
    return result


def run_fidelity(
    datasets: Sequence[ImageDataset],
    model_ids: Sequence[str],
    inference: InferenceConfig,
    side_a: dict[str, object],
    side_b: dict[str, object],
) -> dict:
    """Fill (or reuse) both sides' caches of ``datasets`` (one dataset's variants), then compare them per model."""
    if side_a == side_b:
        raise UserError(f"the two fidelity sides are identical ({side_a}); change at least one setting")
    sides = {"a": side_inference(inference, side_a), "b": side_inference(inference, side_b)}
    jobs = {name: plan_jobs(datasets, model_ids, config) for name, config in sides.items()}  # validates first
    for name, config in sides.items():
        run_jobs(log_up_to_date(jobs[name]), config)
    per_model = {}
    for job_a, job_b in zip(jobs["a"], jobs["b"], strict=True):
        cache_a, cache_b = load_cache(job_a.path), load_cache(job_b.path)
        if cache_a.sample_ids != cache_b.sample_ids:
            raise UserError(f"{job_a.path} and {job_b.path} hold different images; delete both and rerun")
        key = f"{job_a.dataset.key}/{job_a.spec.id}"
        per_model[key] = compare_logits(label_space_logits(cache_a), label_space_logits(cache_b), cache_a.targets)
        per_model[key]["caches"] = {"a": str(job_a.path), "b": str(job_b.path)}
    return {"dataset": datasets[0].name, "a": side_a, "b": side_b, "results": per_model}
