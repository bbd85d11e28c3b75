"""timm behind the pipeline: generic ids ``timm:<name>[.<tag>]``, supervised models with their own 1000-way head.

Features are timm's pooled pre-logits (``forward_head(pre_logits=True)``: DeiT III's class token after the final
norm, ConvNeXt's pooled and LayerNormed map); logits are the model's classifier on them (docs/protocol.md §1.1).
timm is imported inside the functions, so listing the catalogue stays fast.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from beyond_imagenet.base.errors import UnknownNameError, UserError
from beyond_imagenet.models.backbone import Backbone
from beyond_imagenet.models.backends.base import LayerPatterns, patterns_for_family
from beyond_imagenet.models.hub import WeightsLocation, safe_alternative
from beyond_imagenet.models.spec import IMAGENET_MEAN, IMAGENET_STD, ModelSpec, guess_family
from beyond_imagenet.models.world_architectures import register as register_world_architectures

HUB_FILES = ("model.safetensors", "pytorch_model.bin")
PAPER_CROP_PCT = 0.875  # timm's default crop ratio when a pretrained cfg gives none

# docs/protocol.md §10: ViT blocks (attention output, the two MLP linears, the block norms and the final norm) and
# ConvNeXt stages (each block's depthwise 7x7 conv, pwconv1/2 as mlp.fc1/fc2, block, stem and downsample norms).
VIT_PATTERNS: LayerPatterns = {
    "attention_or_conv": re.compile(r"(^|\.)blocks\.\d+\.attn$"),
    "linear": re.compile(r"(^|\.)blocks\.\d+\.mlp\.(fc1|fc2)$"),
    "normalisation": re.compile(r"((^|\.)blocks\.\d+\.(norm1|norm2)$|^norm$)"),
}
CONVNEXT_PATTERNS: LayerPatterns = {
    "attention_or_conv": re.compile(r"(^|\.)stages\.\d+\.blocks\.\d+\.conv_dw$"),
    "linear": re.compile(r"(^|\.)stages\.\d+\.blocks\.\d+\.mlp\.(fc1|fc2)$"),
    "normalisation": re.compile(r"((^|\.)stages\.\d+\.blocks\.\d+\.norm$|(^|\.)stem\.1$|(^|\.)downsample\.0$)"),
}


class TimmBackbone(Backbone):
    """A timm model: features are its pooled pre-logits, logits its own classifier."""

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Pooled pre-logits (``forward_head(pre_logits=True)``)."""
        return self.image_model.forward_head(self.image_model.forward_features(images), pre_logits=True)


def timm_module() -> Any:
    """timm, with the procedural world's architectures registered (``models/world_architectures.py``)."""
    import timm

    register_world_architectures()
    return timm


def _name_and_tag(model_id: str, name: str) -> tuple[str, str | None]:
    """Split ``arch[.tag]``; old aliases map to their weights; no tag = timm's default pretrained tag."""
    timm = timm_module()
    from timm.models import get_deprecated_models

    name = get_deprecated_models().get(name, name)  # e.g. deit3_base_patch16_224_in21ft1k -> .fb_in22k_ft_in1k
    architecture, dot, tag = name.partition(".")
    if dot and not tag:
        raise UserError(f"{model_id!r} ends with an empty pretrained tag; use timm:<arch> or timm:<arch>.<tag>")
    if not timm.is_model(architecture):
        raise UnknownNameError("timm model", architecture, timm.list_models())
    tagged = timm.list_pretrained(f"{architecture}.*")
    if tag and name not in tagged:
        raise UnknownNameError(f"pretrained tag of timm:{architecture}", name, tagged)
    if not tag:
        # As timm.create_model(arch, pretrained=True): the architecture's default weights, if it has any.
        default = timm.models.get_pretrained_cfg(architecture)
        has_weights = default is not None and bool(default.hf_hub_id or default.url or default.file)
        tag = default.tag if has_weights else ""
    return architecture, tag or None


def _full_name(spec: ModelSpec) -> str:
    return spec.architecture + (f".{spec.weights}" if spec.weights else "")


def cfg_preprocessing(cfg: dict[str, Any]) -> dict[str, Any]:
    """``input_size``, ``mean`` and ``std`` of a timm pretrained cfg (ImageNet defaults where it gives none)."""
    return {
        "input_size": int(cfg.get("input_size", (3, 224, 224))[-1]),
        "mean": tuple(cfg.get("mean", IMAGENET_MEAN)),
        "std": tuple(cfg.get("std", IMAGENET_STD)),
    }


def weights_id(architecture: str, tag: str | None) -> str:
    """``timm:<arch>.<tag>``, or ``timm:<arch> (random init)``."""
    return f"timm:{architecture}.{tag}" if tag else f"timm:{architecture} (random init)"


class TimmBackend:
    """The :class:`~beyond_imagenet.models.backends.base.ModelBackend` of timm."""

    sources = ("timm",)
    prefix = "timm"
    id_help = "timm:<name>[.<tag>]"
    feature_description = "pooled pre-logits"

    def resolve(self, model_id: str, name: str) -> ModelSpec:
        """A spec for any timm model and pretrained tag (no tag: timm's default weights, if any)."""
        timm = timm_module()

        architecture, tag = _name_and_tag(model_id, name)
        pretrained_cfg = timm.models.get_pretrained_cfg(f"{architecture}.{tag}" if tag else architecture)
        cfg = pretrained_cfg.to_dict() if pretrained_cfg is not None else {}
        return ModelSpec(
            id=model_id,
            source="timm",
            architecture=architecture,
            weights=tag,
            family=guess_family(architecture),
            paradigm="supervised",
            weights_id=weights_id(architecture, tag),
            **cfg_preprocessing(cfg),
            description=f"timm {architecture}" + (f".{tag}" if tag else " (random init: no pretrained weights exist)"),
        )

    def create(self, spec: ModelSpec, image_size: int | None = None) -> nn.Module:
        """``timm.create_model``; at another ``image_size`` timm resamples a pretrained position embedding."""
        timm = timm_module()

        extra = {"img_size": image_size} if image_size is not None else {}
        return timm.create_model(_full_name(spec), pretrained=spec.pretrained, **extra)

    def wrap(self, spec: ModelSpec, model: nn.Module) -> tuple[Backbone, nn.Module | None]:
        """The backbone over the whole timm model and its classifier; no text tower."""
        return TimmBackbone(spec, model, model.get_classifier()), None

    def spec_at_resolution(self, spec: ModelSpec, r: int) -> ModelSpec:
        """``spec`` with ``input_size = r``."""
        import dataclasses

        return dataclasses.replace(spec, input_size=r)

    def position_embedding(self, spec: ModelSpec, model: nn.Module) -> tuple[str, int]:
        """``pos_embed``; DeiT III has no prefix rows (``no_embed_class``), other ViTs their class token."""
        prefix = 0 if getattr(model, "no_embed_class", False) else int(getattr(model, "num_prefix_tokens", 1))
        return "pos_embed", prefix

    def locate_weights(self, spec: ModelSpec) -> WeightsLocation | None:
        """The pretrained cfg's hub repo (or URL, cached by torch.hub)."""
        if not spec.pretrained:
            return None
        timm = timm_module()

        cfg = timm.models.get_pretrained_cfg(_full_name(spec))
        if cfg.hf_hub_id:
            files = safe_alternative(cfg.hf_hub_filename) if cfg.hf_hub_filename else HUB_FILES
            return WeightsLocation(cfg.hf_hub_id, files, None, None)
        return WeightsLocation(None, (), cfg.url, Path(torch.hub.get_dir()) / "checkpoints")

    def native_preprocessing(self, spec: ModelSpec) -> dict[str, Any]:
        """Timm's eval transform from the pretrained cfg: input size, crop ratio, interpolation, mean and std."""
        timm = timm_module()

        cfg = timm.models.get_pretrained_cfg(_full_name(spec)).to_dict()
        size = int(cfg.get("input_size", (3, spec.input_size, spec.input_size))[-1])
        interpolation = cfg.get("interpolation", "bicubic")
        return {
            "resize": math.floor(size / float(cfg.get("crop_pct", PAPER_CROP_PCT))),  # as timm resolves scale_size
            "crop": size,
            "interpolation": interpolation if interpolation in ("bilinear", "bicubic") else "bicubic",
            "mean": tuple(cfg.get("mean", spec.mean)),
            "std": tuple(cfg.get("std", spec.std)),
        }

    def tokenizer(self, spec: ModelSpec) -> Any:
        """Timm models have no text tower."""
        raise UserError(f"{spec.id} is a timm model: it has no text tower and no zero-shot head")

    def layer_patterns(self, spec: ModelSpec) -> LayerPatterns:
        """The ViT or ConvNeXt patterns of timm's module names."""
        return patterns_for_family(spec, {"vit": VIT_PATTERNS, "convnet": CONVNEXT_PATTERNS})


BACKEND = TimmBackend()
