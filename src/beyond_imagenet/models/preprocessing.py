"""Evaluation preprocessing, resolved per model in one place and recorded with every result.

docs/protocol.md §1.3 (docs/architecture.md, principle 2). The default, ``paper``, is the official code's transform:

* supervised: resize the shorter side to ``int(size / 0.875)`` (256 for 224) with **bilinear** (PIL,
  antialiased), centre-crop ``size``, model normalisation (ImageNet for the paper's models);
* CLIP: resize the shorter side to ``size`` with **bicubic**, centre-crop ``size``, CLIP normalisation.

``native`` is the library's own eval transform, as its backend reads it (timm's or open_clip's pretrained cfg).
Every image is converted to RGB by the decoder before any of these steps.

The shift sweep of docs/protocol.md §9.2 is a resize mode too (``shift``), so a sweep point is a plain, recorded spec
and runs through the same cached pass as every other transform.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Literal

from beyond_imagenet.base.compat import import_torchvision
from beyond_imagenet.base.errors import UnknownNameError
from beyond_imagenet.models.backends import backend_for
from beyond_imagenet.models.spec import ModelSpec

PreprocessingMode = Literal["paper", "native"]
PREPROCESSING_MODES: tuple[str, ...] = ("paper", "native")
PAPER_SUPERVISED_CROP_PCT = 0.875


@dataclass(frozen=True)
class PreprocessSpec:
    """A fully resolved eval transform (PIL backend).

    ``resize_mode`` ``shortest``: resize the shorter side to ``resize``, centre-crop ``crop``;
    ``squash``: resize both sides to ``crop`` (aspect ratio not kept, no crop), as some OpenCLIP models do;
    ``none``: no resize or crop, the image must already be ``crop`` x ``crop`` (cue-conflict, ImageNet-C);
    ``shift``: docs/protocol.md §9.2, the window that ``shortest`` would crop (``resize`` = R), mapped back to original
    pixels and moved by ``shift`` px along the longer side, zero-padded past the border, resized to ``crop``².

    ``shift`` is set for, and only for, ``resize_mode="shift"``. It is left out of :meth:`key` and
    :meth:`as_record` when None, so every other spec keeps the key (and the caches) it had before it existed.
    """

    mode: str
    resize: int
    crop: int
    interpolation: Literal["bilinear", "bicubic"]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    antialias: bool = True
    backend: str = "pil"
    resize_mode: Literal["shortest", "squash", "none", "shift"] = "shortest"
    shift: float | None = None  # §9.2: pixels in the original image, resize_mode "shift" only

    def __post_init__(self) -> None:
        if (self.resize_mode == "shift") != (self.shift is not None):
            raise ValueError(f"resize_mode 'shift' needs a shift and no other mode takes one: {self}")

    def _payload(self) -> dict:
        fields = asdict(self)
        if fields["shift"] is None:
            del fields["shift"]  # specs without a shift hash exactly as before the field existed
        return fields

    def key(self) -> str:
        """Short stable hash: models with equal keys share one preprocessed tensor per image."""
        payload = json.dumps(self._payload(), sort_keys=True).encode()
        return hashlib.sha256(payload).hexdigest()[:12]

    def as_record(self) -> dict:
        """The spec as recorded with caches and results: its fields (``shift`` only when set) and its ``key``."""
        return {**self._payload(), "mean": list(self.mean), "std": list(self.std), "key": self.key()}


def _paper_spec(model: ModelSpec) -> PreprocessSpec:
    if model.paradigm == "clip":
        return PreprocessSpec("paper", model.input_size, model.input_size, "bicubic", model.mean, model.std)
    resize = int(model.input_size / PAPER_SUPERVISED_CROP_PCT)
    return PreprocessSpec("paper", resize, model.input_size, "bilinear", model.mean, model.std)


def resolve_preprocessing(model: ModelSpec, mode: str = "paper") -> PreprocessSpec:
    """Return the eval transform of ``model`` under ``mode`` (`paper` = §1.3, `native` = library default)."""
    if mode == "paper" or model.weights is None:
        # Random-init models have no library-native pretrained cfg; the paper recipe is the only one.
        if mode not in PREPROCESSING_MODES:
            raise UnknownNameError("preprocessing mode", mode, PREPROCESSING_MODES)
        return _paper_spec(model)
    if mode != "native":
        raise UnknownNameError("preprocessing mode", mode, PREPROCESSING_MODES)
    return PreprocessSpec("native", **backend_for(model).native_preprocessing(model))


def without_geometry(spec: PreprocessSpec) -> PreprocessSpec:
    """The same normalisation with no resize or crop, for datasets already at the input size (§6, §7.8)."""
    return dataclasses.replace(spec, resize=spec.crop, resize_mode="none")


def _torchvision_transforms():
    return import_torchvision().transforms


def interpolation_mode(name: str):
    """Torchvision's InterpolationMode of ``bilinear`` or ``bicubic``."""
    modes = _torchvision_transforms().InterpolationMode
    return {"bilinear": modes.BILINEAR, "bicubic": modes.BICUBIC}[name]


def shift_window(width: int, height: int, R: int, crop: int, d: float) -> tuple[int, int, int]:
    """§9.2 steps 1-4: ``(top, left, size)`` of the shifted square window in original-image pixels.

    The window the standard pipeline (shorter side to ``R``, centre crop ``crop``) covers has side ``crop·m/R``
    (``m = min(w, h)``) and its corner is the centre-crop offset mapped back by ``m/R``. ``d`` is added along the
    longer side (``left`` when ``w > h``, else ``top``: square images shift vertically); all three are truncated
    to int. The arithmetic order follows the official ``CropShift`` so truncation lands on the same pixel.
    """
    short, long = (height, width) if width > height else (width, height)
    offset_short = ((R - crop) / 2 * short) / R
    offset_long = ((long / short * R - crop) / 2 * short) / R + d
    size = crop * short / R
    top, left = (offset_short, offset_long) if width > height else (offset_long, offset_short)
    return int(top), int(left), int(size)


class ShiftCrop:
    """§9.2 steps 1-6 on a PIL image: crop the shifted window (zero-padded past the border), resize to crop²."""

    def __init__(self, R: int, crop: int, d: float, interpolation: str = "bilinear", antialias: bool = True):
        self.R, self.crop, self.d = R, crop, d
        self.resize = _torchvision_transforms().Resize(
            (crop, crop), interpolation=interpolation_mode(interpolation), antialias=antialias
        )

    def __call__(self, img):
        """Return ``img`` (PIL) cropped to the shifted window and resized to ``crop`` x ``crop``."""
        functional = _torchvision_transforms().functional
        width, height = functional.get_image_size(img)
        top, left, size = shift_window(width, height, self.R, self.crop, self.d)
        return self.resize(functional.crop(img, top, left, size, size))  # pads with 0 outside the image

    def __repr__(self) -> str:
        return f"{type(self).__name__}(R={self.R}, crop={self.crop}, d={self.d})"


def build_transform(spec: PreprocessSpec):
    """Torchvision transform (PIL RGB image -> normalised float tensor [3, crop, crop]) for ``spec``."""
    transforms = _torchvision_transforms()
    interpolation = interpolation_mode(spec.interpolation)
    if spec.resize_mode == "none":
        geometry = []
    elif spec.resize_mode == "shift":
        geometry = [ShiftCrop(spec.resize, spec.crop, spec.shift, spec.interpolation, spec.antialias)]
    elif spec.resize_mode == "squash":
        geometry = [transforms.Resize((spec.crop, spec.crop), interpolation=interpolation, antialias=spec.antialias)]
    else:
        geometry = [
            transforms.Resize(spec.resize, interpolation=interpolation, antialias=spec.antialias),
            transforms.CenterCrop(spec.crop),
        ]
    return transforms.Compose([*geometry, transforms.ToTensor(), transforms.Normalize(spec.mean, spec.std)])
