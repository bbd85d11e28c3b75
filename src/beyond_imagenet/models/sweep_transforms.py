"""The preprocessing of the transformation-invariance sweeps (docs/protocol.md §9, paper Fig. 7).

* §9.1 scale: resize the shorter side to ``int(s·R)`` (bilinear, even for CLIP), centre-crop 224;
* §9.2 shift: the standard centre-crop window mapped back to original pixels, moved by ``d`` px along the longer
  side, zero-padded past the border, resized to 224 x 224 (bilinear);
* §9.3 resolution: preprocessing at ``r`` (crop ratio 0.875 supervised, 1.0 CLIP); the model rebuilt at ``r`` is
  ``models.build.build_at_resolution``.

R is the model's standard resize size: 256 supervised, 224 CLIP (``PreprocessSpec.resize`` of the paper spec).
Sweep points are plain :class:`PreprocessSpec` values (the shift window and :class:`ShiftCrop` live in
``models.preprocessing``), so their transforms are :func:`build_transform` of those specs: the code the cached
sweeps of ``inference.sweeps`` run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch

from beyond_imagenet.base.errors import UnknownNameError
from beyond_imagenet.models.preprocessing import PreprocessSpec, build_transform

SWEEP_KINDS: tuple[str, ...] = ("scale", "shift", "resolution")  # §9.1-§9.3, in the paper's panel order
SCALES: tuple[float, ...] = (1, 1.25, 1.5, 2, 3)
SHIFTS: tuple[int, ...] = (0, 5, 30, 75, 100)
RESOLUTIONS: tuple[int, ...] = (112, 224, 336, 512, 640)

STANDARD_RESIZE: dict[str, int] = {"supervised": 256, "clip": 224}  # §9: R per paradigm
PARADIGMS: tuple[str, ...] = tuple(STANDARD_RESIZE)

Transform = Callable[[object], torch.Tensor]


def _check_paradigm(paradigm: str) -> None:
    if paradigm not in STANDARD_RESIZE:
        raise UnknownNameError("paradigm", paradigm, PARADIGMS)


def standard_resize(spec_or_paradigm: PreprocessSpec | str) -> int:
    """R of docs/protocol.md §9: the model's standard resize size (256 supervised, 224 CLIP)."""
    if isinstance(spec_or_paradigm, PreprocessSpec):
        return int(spec_or_paradigm.resize)
    _check_paradigm(spec_or_paradigm)
    return STANDARD_RESIZE[spec_or_paradigm]


def scaled_shorter_side(spec: PreprocessSpec, s: float) -> int:
    """``int(s·R)`` of §9.1: 256/320/384/512/768 supervised, 224/280/336/448/672 CLIP."""
    return int(s * standard_resize(spec))


def scale_preprocess(spec: PreprocessSpec, s: float) -> PreprocessSpec:
    """§9.1 as a spec: shorter side ``int(s·R)``, centre-crop ``spec.crop``, bilinear (even for CLIP)."""
    return dataclasses.replace(
        spec, resize=scaled_shorter_side(spec, s), interpolation="bilinear", resize_mode="shortest", shift=None
    )


def shift_preprocess(spec: PreprocessSpec, d: float) -> PreprocessSpec:
    """§9.2 as a spec: ``resize_mode="shift"`` with ``resize = R``, bilinear; ``d`` stored as a float."""
    return dataclasses.replace(
        spec, resize=standard_resize(spec), interpolation="bilinear", resize_mode="shift", shift=float(d)
    )


def _transform(spec: PreprocessSpec, normalize: bool) -> Transform:
    """:func:`build_transform` of ``spec``; ``normalize=False`` (tests) swaps in mean 0, std 1, an exact identity."""
    if not normalize:
        spec = dataclasses.replace(spec, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    return build_transform(spec)


def scale_transform(spec: PreprocessSpec, s: float, *, normalize: bool = True) -> Transform:
    """§9.1: the transform of :func:`scale_preprocess` (Resize, CenterCrop, ToTensor, Normalize)."""
    return _transform(scale_preprocess(spec, s), normalize)


def shift_transform(spec: PreprocessSpec, d: float, *, normalize: bool = True) -> Transform:
    """§9.2: the transform of :func:`shift_preprocess` (:class:`ShiftCrop`, ToTensor, Normalize)."""
    return _transform(shift_preprocess(spec, d), normalize)


def resolution_preprocess(spec: PreprocessSpec, paradigm: str, r: int) -> PreprocessSpec:
    """§9.3 preprocessing at resolution ``r``.

    Supervised: shorter side ``int(r·256/224)`` (128, 256, 384, 585, 731), centre-crop ``r`` (ratio 0.875), the
    spec's own interpolation and normalisation. CLIP: Resize(r, bicubic) + CenterCrop(r) (ratio 1.0).
    """
    _check_paradigm(paradigm)
    if paradigm == "clip":
        return dataclasses.replace(spec, resize=r, crop=r, interpolation="bicubic", resize_mode="shortest")
    return dataclasses.replace(spec, resize=r * 256 // 224, crop=r, resize_mode="shortest")
