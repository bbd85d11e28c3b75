"""Cached transformation-invariance sweeps (docs/protocol.md §9, paper Fig. 7): every sweep point is a cache variant.

The invariance dataset (``analyses.invariance.dataset``, an ImageNet-val-like set, optionally cut to its first
``images_per_class`` images per class) is evaluated once per sweep point, each into its own cache variant:

* ``scale/<s>``: shorter side ``int(s·R)``, centre crop, bilinear (§9.1), the native model;
* ``shift/<d>``: the centre window moved by ``d`` original pixels, zero-padded, resized (§9.2), the native model;
* ``resolution/<r>``: the §9.3 transform at ``r`` and the model rebuilt at ``r`` (ViT position embedding resized).

A subset prefixes its own variant (``per_class5/scale/1.25``). Each sweep always contains its reference point
(scale 1, shift 0, the model's native input size), which prediction consistency is measured against.
Each cache's configuration adds ``"sweep": {"kind", "value"}`` to what :func:`make_job` records, so the caches
resume, skip and invalidate exactly like the plain ones. Scale and shift points reuse one build of each model;
the resolution points build each model once per resolution.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

from beyond_imagenet.base.config import InferenceConfig, InvarianceConfig
from beyond_imagenet.base.errors import UserError
from beyond_imagenet.data.registry import ImageDataset
from beyond_imagenet.data.subsets import stratified_subset
from beyond_imagenet.inference.jobs import CacheJob, log_up_to_date, make_job
from beyond_imagenet.inference.run import run_jobs
from beyond_imagenet.models.build import build_at_resolution, spec_at_resolution
from beyond_imagenet.models.catalogue import resolve_model
from beyond_imagenet.models.preprocessing import PreprocessSpec, resolve_preprocessing
from beyond_imagenet.models.spec import ModelSpec
from beyond_imagenet.models.sweep_transforms import SWEEP_KINDS, scale_preprocess, shift_preprocess
from beyond_imagenet.models.weights import ensure_weights_available

log = logging.getLogger(__name__)

SWEEP_PARAMS: dict[str, str] = {"scale": "scales", "shift": "shifts", "resolution": "resolutions"}
INFER_HINT = "run `beyond-imagenet infer` (or `dvc repro`): it writes the sweep caches of analyses.invariance"


@dataclass(frozen=True)
class SweepPoint:
    """One point of one sweep: ``kind`` in :data:`SWEEP_KINDS`, ``value`` its magnitude (s, d or r)."""

    kind: str
    value: float

    @property
    def label(self) -> str:
        """``scale/1.25``, ``shift/30``, ``resolution/336``: the variant suffix and the metric namespace."""
        return f"{self.kind}/{format_sweep_value(self.value)}"

    def as_record(self) -> dict:
        """The ``"sweep"`` entry of the point's cache configuration; a resolution is recorded as an int."""
        value = int(self.value) if self.kind == "resolution" else float(self.value)
        return {"kind": self.kind, "value": value}


def format_sweep_value(value: float) -> str:
    """``1.0`` -> ``1``, ``1.25`` -> ``1.25``, ``30`` -> ``30`` (the shortest exact decimal)."""
    value = float(value)
    return str(int(value)) if value.is_integer() else repr(value)


def reference_value(kind: str, spec: ModelSpec) -> float:
    """The point the other points of a sweep are compared with: s = 1, d = 0, r = the model's input size."""
    return {"scale": 1.0, "shift": 0.0, "resolution": float(spec.input_size)}[kind]


def sweep_points(config: InvarianceConfig, spec: ModelSpec) -> list[SweepPoint]:
    """Every point of the three sweeps for ``spec``, ascending per sweep, the reference added when missing."""
    points = []
    for kind in SWEEP_KINDS:
        values = {float(v) for v in getattr(config, SWEEP_PARAMS[kind])} | {reference_value(kind, spec)}
        points += [SweepPoint(kind, v) for v in sorted(values)]
    return points


def subset_variant(config: InvarianceConfig) -> str | None:
    """The variant of the evaluated subset (``per_class<k>``, as ``data.subsets`` names it), None for all images."""
    return None if config.images_per_class is None else f"per_class{config.images_per_class}"


def sweep_variant(config: InvarianceConfig, point: SweepPoint) -> str:
    """Cache variant of a sweep point: ``scale/1.25``, or ``per_class5/scale/1.25`` on a subset."""
    base = subset_variant(config)
    return f"{base}/{point.label}" if base else point.label


def sweep_dataset(name: str, variants: list[ImageDataset], config: InvarianceConfig) -> ImageDataset:
    """The scanned invariance dataset ``name`` checked to be sweepable, cut to ``images_per_class`` when set.

    ``variants`` is what ``data.registry.resolve_datasets`` returns for it; no model is built here.
    """
    problem = None
    if len(variants) != 1:
        problem = f"it has {len(variants)} variants (e.g. {variants[0].variant!r})"
    elif variants[0].geometry != "model":
        problem = f"its images are fed without resize and crop (geometry {variants[0].geometry!r})"
    elif variants[0].label_lists is not None:
        problem = "it is multi-label"
    elif variants[0].label_space.one_to_one_imagenet_columns() is None:
        problem = f"its classes ({variants[0].label_space.kind}) are not each exactly one ImageNet-1k class"
    if problem:
        raise UserError(
            f"analyses.invariance.dataset {name!r} cannot be swept: {problem}. The sweeps of §9 resize, crop and "
            "shift the original photos of an ImageNet-val-like dataset (one folder of class folders, single labels)."
        )
    dataset = variants[0]
    if config.images_per_class is not None:
        dataset = stratified_subset(dataset, per_class=config.images_per_class)
        if dataset.variant != subset_variant(config):
            raise RuntimeError(f"subset variant {dataset.variant!r} != {subset_variant(config)!r}")
    return dataset


def _base_preprocessing(mode: str, spec: ModelSpec) -> PreprocessSpec:
    prep = resolve_preprocessing(spec, mode)
    if prep.resize_mode not in ("shortest", "squash"):
        raise UserError(f"{spec.id}: the invariance sweeps need a resize-and-crop transform, got {prep.resize_mode!r}")
    return prep


def resolution_preprocessing(mode: str, spec: ModelSpec, r: int) -> PreprocessSpec:
    """§9.3: the model's preprocessing resolved at input size ``r`` (paper mode: ``resolution_preprocess``).

    A library-native transform whose size comes from the pretrained cfg (timm) is rescaled to ``r`` keeping its
    resize / crop ratio.
    """
    prep = resolve_preprocessing(spec_at_resolution(spec, r), mode)
    if prep.crop != r:
        prep = dataclasses.replace(prep, resize=math.floor(r * prep.resize / prep.crop), crop=r)
    return prep


def _scale_point(mode: str, spec: ModelSpec, value: float) -> tuple[ModelSpec, PreprocessSpec]:
    return spec, scale_preprocess(_base_preprocessing(mode, spec), value)


def _shift_point(mode: str, spec: ModelSpec, value: float) -> tuple[ModelSpec, PreprocessSpec]:
    return spec, shift_preprocess(_base_preprocessing(mode, spec), value)


def _resolution_point(mode: str, spec: ModelSpec, value: float) -> tuple[ModelSpec, PreprocessSpec]:
    return spec_at_resolution(spec, int(value)), resolution_preprocessing(mode, spec, int(value))


# sweep kind -> (the model spec a point runs, its preprocessing)
POINT_SPECS = {"scale": _scale_point, "shift": _shift_point, "resolution": _resolution_point}


def point_job_spec(mode: str, spec: ModelSpec, point: SweepPoint) -> tuple[ModelSpec, PreprocessSpec]:
    """(the model spec the point runs, its preprocessing) for one sweep point under preprocessing ``mode``."""
    return POINT_SPECS[point.kind](mode, spec, point.value)


def plan_sweep_jobs(
    dataset: ImageDataset, model_ids: Sequence[str], config: InvarianceConfig, inference: InferenceConfig
) -> list[CacheJob]:
    """One cache job per (sweep point, model) on the invariance dataset (``sweep_dataset``); builds nothing."""
    specs = [resolve_model(m) for m in model_ids]
    files_sha256 = dataset.manifest_sha256()
    jobs = []
    for spec in specs:
        for point in sweep_points(config, spec):
            point_dataset = dataclasses.replace(dataset, variant=sweep_variant(config, point))
            job_spec, prep = point_job_spec(inference.preprocessing, spec, point)
            jobs.append(make_job(inference, point_dataset, job_spec, prep, files_sha256, {"sweep": point.as_record()}))
    return jobs


def _resolution_builder(native: dict[str, ModelSpec], r: int, spec: ModelSpec):
    return build_at_resolution(native[spec.id], r)


def run_invariance_sweeps(
    dataset: ImageDataset,
    model_ids: Sequence[str],
    config: InvarianceConfig,
    inference: InferenceConfig,
    callbacks: Sequence = (),
) -> list[CacheJob]:
    """Fill every missing or outdated sweep cache; return all sweep jobs (complete ones untouched).

    Scale and shift: each model built once, one pass per point with all models. Resolution: per ``r``, the models
    built at ``r`` (:func:`build_at_resolution`) and one pass. Nothing is built when every cache is complete.
    """
    jobs = plan_sweep_jobs(dataset, model_ids, config, inference)
    todo = log_up_to_date(jobs)
    if not todo:
        return jobs
    native = {spec.id: spec for spec in map(resolve_model, model_ids)}
    ensure_weights_available([native[i] for i in dict.fromkeys(job.spec.id for job in todo)])
    run_jobs([job for job in todo if job.config["sweep"]["kind"] != "resolution"], inference, callbacks)
    resolutions = sorted({job.config["sweep"]["value"] for job in todo if job.config["sweep"]["kind"] == "resolution"})
    for r in resolutions:
        at_r = [job for job in todo if job.config["sweep"] == {"kind": "resolution", "value": r}]
        log.info("resolution %d: %s", r, ", ".join(job.spec.id for job in at_r))
        run_jobs(at_r, inference, callbacks, build=partial(_resolution_builder, native, r))
    return jobs
