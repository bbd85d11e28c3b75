"""OpenCLIP behind the pipeline: generic ids ``open_clip:<arch>@<tag>`` and small custom configs (the demo towers).

Features are the projected image embedding (``encode_image``, not normalised); logits come from the zero-shot head
built from the text tower (docs/protocol.md §1.4). A spec with a ``custom_config`` (source ``open_clip_custom``)
is built from that config with random weights. open_clip is imported inside the functions: the GPU inference path
of timm-only runs never needs it.
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from beyond_imagenet.base.errors import UnknownNameError, UserError
from beyond_imagenet.models.backbone import Backbone
from beyond_imagenet.models.backends.base import LayerPatterns, patterns_for_family
from beyond_imagenet.models.backends.timm_backend import CONVNEXT_PATTERNS
from beyond_imagenet.models.hub import WeightsLocation, safe_alternative
from beyond_imagenet.models.spec import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD, ModelSpec, guess_family

HUB_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
CUSTOM_TOKENIZER = "ViT-B-16"  # custom towers: the standard CLIP BPE tokenizer at their own context length

# docs/protocol.md §10 for OpenCLIP's own ViT (transformer.resblocks); its ConvNeXt tower is a timm trunk.
VIT_PATTERNS: LayerPatterns = {
    "attention_or_conv": re.compile(r"(^|\.)resblocks\.\d+\.attn$"),
    "linear": re.compile(r"(^|\.)resblocks\.\d+\.mlp\.(c_fc|c_proj)$"),
    "normalisation": re.compile(r"((^|\.)resblocks\.\d+\.(ln_1|ln_2)$|^(ln_pre|ln_post)$)"),
}


class ClipBackbone(Backbone):
    """An OpenCLIP image tower: features are its projected embedding, logits the zero-shot head."""

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """``encode_image`` without normalisation."""
        return self.image_model(images)


def _check_id(model_id: str, name: str) -> tuple[str, str]:
    """``(architecture, tag)`` of ``<arch>@<tag>``, both known to open_clip."""
    import open_clip

    architecture, sep, tag = name.partition("@")
    if not sep or not tag:
        raise UserError(
            f"OpenCLIP ids need an architecture and a pretrained tag: 'open_clip:<arch>@<tag>', got {model_id!r}. "
            "Example: open_clip:ViT-B-16@laion400m_e31."
        )
    if architecture not in open_clip.list_models():
        raise UnknownNameError("OpenCLIP architecture", architecture, open_clip.list_models())
    tags = open_clip.list_pretrained_tags_by_model(architecture)
    if tag not in tags:
        raise UnknownNameError(f"pretrained tag of open_clip:{architecture}", tag, tags)
    return architecture, tag


class OpenClipBackend:
    """The :class:`~beyond_imagenet.models.backends.base.ModelBackend` of OpenCLIP (pretrained and custom)."""

    sources = ("open_clip", "open_clip_custom")
    prefix = "open_clip"
    id_help = "open_clip:<arch>@<tag>"
    feature_description = "projected encode_image"

    def resolve(self, model_id: str, name: str) -> ModelSpec:
        """A spec for any OpenCLIP architecture and pretrained tag."""
        import open_clip

        architecture, tag = _check_id(model_id, name)
        cfg = open_clip.get_pretrained_cfg(architecture, tag)
        size = (open_clip.get_model_config(architecture) or {}).get("vision_cfg", {}).get("image_size", 224)
        return ModelSpec(
            id=model_id,
            source="open_clip",
            architecture=architecture,
            weights=tag,
            family=guess_family(architecture),
            paradigm="clip",
            weights_id=f"open_clip:{architecture}@{tag}",
            input_size=int(size if isinstance(size, int) else size[0]),
            mean=tuple(cfg.get("mean", OPENAI_CLIP_MEAN)),
            std=tuple(cfg.get("std", OPENAI_CLIP_STD)),
            description=f"OpenCLIP {architecture} pretrained {tag}",
        )

    def create(self, spec: ModelSpec, image_size: int | None = None) -> nn.Module:
        """The whole CLIP model in eval mode; ``force_image_size`` (custom: the vision cfg) at ``image_size``."""
        import open_clip

        if spec.custom_config is not None:
            from open_clip.model import CLIP

            config = (spec if image_size is None else self.spec_at_resolution(spec, image_size)).custom_config
            return CLIP(config["embed_dim"], config["vision_cfg"], config["text_cfg"]).eval()
        extra = {"force_image_size": image_size} if image_size is not None else {}
        return open_clip.create_model(spec.architecture, pretrained=spec.weights, **extra).eval()

    def wrap(self, spec: ModelSpec, model: nn.Module) -> tuple[Backbone, nn.Module | None]:
        """The image tower as the backbone; the whole model is returned for the zero-shot head's text tower."""
        return ClipBackbone(spec, model.visual, None), model

    def spec_at_resolution(self, spec: ModelSpec, r: int) -> ModelSpec:
        """``spec`` with ``input_size = r``; a custom config's ``vision_cfg.image_size`` too."""
        custom = spec.custom_config
        if custom is not None and "vision_cfg" in custom:
            custom = {**custom, "vision_cfg": {**custom["vision_cfg"], "image_size": r}}
        return dataclasses.replace(spec, input_size=r, custom_config=custom)

    def position_embedding(self, spec: ModelSpec, model: nn.Module) -> tuple[str, int]:
        """OpenCLIP's ViT keeps its class row first."""
        return "visual.positional_embedding", 1

    def locate_weights(self, spec: ModelSpec) -> WeightsLocation | None:
        """The pretrained cfg's hub repo (``org/repo/`` or ``org/repo/file.bin``), or its URL."""
        if not spec.pretrained:
            return None
        import open_clip

        cfg = open_clip.get_pretrained_cfg(spec.architecture, spec.weights)
        hub = cfg.get("hf_hub", "")
        if hub:
            repo, filename = (hub.rstrip("/"), "") if hub.endswith("/") else os.path.split(hub)
            files = safe_alternative(filename) if filename else HUB_FILES
            return WeightsLocation(repo, files, None, None)
        return WeightsLocation(None, (), cfg.get("url"), Path.home() / ".cache" / "clip")

    def native_preprocessing(self, spec: ModelSpec) -> dict[str, Any]:
        """open_clip's eval transform from the pretrained cfg: interpolation and resize mode (default shortest)."""
        import open_clip

        cfg = open_clip.get_pretrained_cfg(spec.architecture, spec.weights) or {}
        interpolation = cfg.get("interpolation", "bicubic")
        resize_mode = cfg.get("resize_mode", "shortest")
        if interpolation not in ("bilinear", "bicubic") or resize_mode not in ("shortest", "squash"):
            raise UserError(
                f"{spec.id}: open_clip's native transform uses interpolation={interpolation!r}, "
                f"resize_mode={resize_mode!r}, which beyond-imagenet does not reproduce; use preprocessing: paper"
            )
        size = spec.input_size
        return {
            "resize": size,
            "crop": size,
            "interpolation": interpolation,
            "mean": spec.mean,
            "std": spec.std,
            "resize_mode": resize_mode,
        }

    def tokenizer(self, spec: ModelSpec) -> Any:
        """open_clip's tokenizer of the architecture (custom towers: CLIP's BPE at their text tower's context)."""
        import open_clip

        if spec.custom_config is None:
            return open_clip.get_tokenizer(spec.architecture)
        context = spec.custom_config.get("text_cfg", {}).get("context_length", 77)
        return open_clip.get_tokenizer(CUSTOM_TOKENIZER, context_length=context)

    def layer_patterns(self, spec: ModelSpec) -> LayerPatterns:
        """OpenCLIP's ViT module names, or the timm ConvNeXt trunk's."""
        return patterns_for_family(spec, {"vit": VIT_PATTERNS, "convnet": CONVNEXT_PATTERNS})


BACKEND = OpenClipBackend()
