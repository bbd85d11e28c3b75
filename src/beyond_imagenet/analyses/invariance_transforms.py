"""Transforms and model builds for the transformation-invariance sweeps (PROTOCOL §9, paper Fig. 7).

* §9.1 scale: resize the shorter side to ``int(s·R)`` (bilinear, even for CLIP), centre-crop 224;
* §9.2 shift: the standard centre-crop window mapped back to original pixels, moved by ``d`` px along the longer
  side, zero-padded past the border, resized to 224 x 224 (bilinear);
* §9.3 resolution: preprocessing at ``r`` (crop ratio 0.875 supervised, 1.0 CLIP) and the model rebuilt at ``r``,
  with the ViT position embedding resized bicubically (antialias, ``align_corners=False``).

R is the model's standard resize size: 256 supervised, 224 CLIP (``PreprocessSpec.resize`` of the paper spec).
Scale and shift points are plain :class:`PreprocessSpec` values (:func:`scale_preprocess`, :func:`shift_preprocess`;
the shift window and :class:`ShiftCrop` live in ``models.preprocessing``), so the transforms here are
:func:`build_transform` of those specs: the code the cached sweeps of ``inference.sweeps`` run.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import torch
from torch import nn

from beyond_imagenet.errors import UnknownNameError, UserError
from beyond_imagenet.models.backbone import RANDOM_INIT_SEED, Backbone, build_backbone
from beyond_imagenet.models.catalogue import ModelSpec
from beyond_imagenet.models.preprocessing import PreprocessSpec, ShiftCrop, build_transform, shift_window

__all__ = [
    "PARADIGMS",
    "RESOLUTIONS",
    "SCALES",
    "SHIFTS",
    "STANDARD_RESIZE",
    "ShiftCrop",
    "build_at_resolution",
    "resize_vit_position_embedding",
    "resolution_preprocess",
    "scale_preprocess",
    "scale_transform",
    "scaled_shorter_side",
    "shift_preprocess",
    "shift_transform",
    "shift_window",
    "spec_at_resolution",
    "standard_resize",
]

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
    """R of PROTOCOL §9: the model's standard resize size (256 supervised, 224 CLIP)."""
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


def resize_vit_position_embedding(
    pos_embed: torch.Tensor, old_grid: int, new_grid: int, num_prefix_tokens: int
) -> torch.Tensor:
    """§9.3: resize a square patch-grid position embedding, bicubic, antialias=True, align_corners=False.

    ``pos_embed`` is ``[N, D]`` (open_clip) or ``[1, N, D]`` (timm) with ``N = num_prefix_tokens + old_grid²``;
    the prefix rows (class token) are kept unchanged. DeiT III has 0 prefix rows (timm ``no_embed_class``);
    open_clip's ViT has 1. The result has the input's rank and dtype; the native grid returns an exact copy.
    """
    batched = pos_embed.dim() == 3
    rows = pos_embed[0] if batched else pos_embed
    if rows.dim() != 2 or rows.shape[0] != num_prefix_tokens + old_grid * old_grid:
        raise ValueError(
            f"position embedding of shape {tuple(pos_embed.shape)} is not {num_prefix_tokens} prefix rows "
            f"+ a {old_grid}x{old_grid} grid"
        )
    if new_grid == old_grid:
        return pos_embed.clone()
    prefix, grid = rows[:num_prefix_tokens], rows[num_prefix_tokens:]
    dim = grid.shape[-1]
    image = grid.float().reshape(1, old_grid, old_grid, dim).permute(0, 3, 1, 2)
    image = nn.functional.interpolate(
        image, size=(new_grid, new_grid), mode="bicubic", antialias=True, align_corners=False
    )
    grid = image.permute(0, 2, 3, 1).reshape(new_grid * new_grid, dim).to(rows.dtype)
    resized = torch.cat([prefix, grid], dim=0)
    return resized.unsqueeze(0) if batched else resized


def spec_at_resolution(spec: ModelSpec, r: int) -> ModelSpec:
    """``spec`` with ``input_size = r`` (and a custom OpenCLIP vision cfg at ``r``), same id and weights.

    The paper preprocessing of the result (:func:`resolve_preprocessing`) is then the §9.3 transform at ``r``.
    """
    custom = spec.custom_config
    if custom is not None and "vision_cfg" in custom:
        custom = {**custom, "vision_cfg": {**custom["vision_cfg"], "image_size": r}}
    return dataclasses.replace(spec, input_size=r, custom_config=custom)


def _check_resolution(spec: ModelSpec, r: int) -> None:
    if not isinstance(r, int) or r <= 0:
        raise UserError(f"{spec.id}: resolution must be a positive integer, got {r!r}")


def _timm_at_resolution(spec: ModelSpec, r: int) -> nn.Module:
    """timm ViT built with ``img_size=r``; pretrained weights get their pos embed resampled by timm on load."""
    import timm

    name = spec.architecture + (f".{spec.weights}" if spec.weights else "")
    return timm.create_model(name, pretrained=spec.pretrained, img_size=r)


def _open_clip_at_resolution(spec: ModelSpec, r: int) -> nn.Module:
    """OpenCLIP model with ``force_image_size=r`` (custom demo configs: ``vision_cfg.image_size = r``)."""
    import open_clip

    if spec.source == "open_clip_custom":
        from open_clip.model import CLIP

        config = spec_at_resolution(spec, r).custom_config or {}
        return CLIP(config["embed_dim"], config["vision_cfg"], config["text_cfg"]).eval()
    return open_clip.create_model(spec.architecture, pretrained=spec.weights, force_image_size=r).eval()


def _pos_embed_key_and_prefix(spec: ModelSpec, model: nn.Module) -> tuple[str, int]:
    """State-dict key of the patch position embedding and its number of prefix rows."""
    if spec.source == "timm":
        prefix = 0 if getattr(model, "no_embed_class", False) else int(getattr(model, "num_prefix_tokens", 1))
        return "pos_embed", prefix
    return "visual.positional_embedding", 1  # open_clip ViT: class row first


def _grid_of(rows: int, prefix: int) -> int:
    grid = math.isqrt(rows - prefix)
    if grid * grid != rows - prefix:
        raise ValueError(f"{rows} position rows minus {prefix} prefix rows is not a square grid")
    return grid


def _transplant_native_weights(spec: ModelSpec, native: nn.Module, model: nn.Module) -> None:
    """Copy every weight of the native random-init model into ``model``, the pos embed resized (§9.3)."""
    key, prefix = _pos_embed_key_and_prefix(spec, native)
    state = native.state_dict()
    target = model.state_dict()[key]
    rows = target.shape[-2]
    state[key] = resize_vit_position_embedding(
        state[key], _grid_of(state[key].shape[-2], prefix), _grid_of(rows, prefix), prefix
    )
    model.load_state_dict(state, strict=True)


def _build_vit_at_resolution(spec: ModelSpec, r: int) -> nn.Module:
    """The timm model or the full CLIP model at ``r``; random-init ones carry the native weights."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_INIT_SEED)
        model = _timm_at_resolution(spec, r) if spec.source == "timm" else _open_clip_at_resolution(spec, r)
    if not spec.pretrained:
        native_backbone, native_clip = build_backbone(spec)  # same seed: the network the other sweeps evaluate
        native = native_backbone.image_model if native_clip is None else native_clip
        _transplant_native_weights(spec, native, model)
    return model.eval()


def build_at_resolution(spec: ModelSpec, r: int) -> tuple[Backbone, nn.Module | None]:
    """§9.3: the model evaluated at input resolution ``r``, as :func:`build_backbone` returns it.

    ConvNets (fully convolutional, global pooling) are the native build. ViTs: timm ``img_size=r`` (timm resamples
    the pretrained pos embed, 0 prefix rows for DeiT III), OpenCLIP ``force_image_size=r`` (class row kept).
    Random-init models are the native network (same seed) with its position embedding resized, so the sweep
    compares one network at several resolutions. Returns ``(backbone, clip_model or None)``; the backbone's spec
    has ``input_size = r``. Check pretrained weights are available first, as for :func:`build_backbone`.
    """
    _check_resolution(spec, r)
    if spec.family == "convnet":
        backbone, clip_model = build_backbone(spec)
        return Backbone(spec_at_resolution(spec, r), backbone.image_model, backbone.classifier), clip_model
    model = _build_vit_at_resolution(spec, r)
    spec_r = spec_at_resolution(spec, r)
    if spec.source == "timm":
        return Backbone(spec_r, model, model.get_classifier()), None
    return Backbone(spec_r, model.visual, None), model
