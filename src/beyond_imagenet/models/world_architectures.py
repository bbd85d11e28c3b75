"""Two small timm architectures for the procedural world's 32 px images: a ConvNeXt and a ViT (the demo's 2x2).

``world_convnext`` (ConvNeXt blocks, dims 32-256, depths 1-1-2-1, ~1.0M parameters) and ``world_vit`` (ViT, patch 8,
width 96, depth 4, 3 heads, ~0.5M parameters) are registered with timm by :func:`register`, each with a pretrained cfg
that says its input (32 px, mean = std = 0.5, no crop), so checkpoints trained on the world load like any timm model:
``timm-file:world_vit@<file>?num_classes=8`` (README, "Your own checkpoint"). Their module names follow timm's, so
the CKA layer sets of ViT and ConvNeXt apply unchanged (docs/protocol.md §10).
"""

from __future__ import annotations

import functools
from typing import Any

WORLD_INPUT = 32
WORLD_MEAN = (0.5, 0.5, 0.5)
WORLD_STD = (0.5, 0.5, 0.5)
CONVNEXT_ARGS: dict[str, Any] = {"depths": (1, 1, 2, 1), "dims": (32, 64, 128, 256)}
VIT_ARGS: dict[str, Any] = {"img_size": WORLD_INPUT, "patch_size": 8, "embed_dim": 96, "depth": 4, "num_heads": 3}
_CFG: dict[str, Any] = {
    "input_size": (3, WORLD_INPUT, WORLD_INPUT),
    "mean": WORLD_MEAN,
    "std": WORLD_STD,
    "crop_pct": 1.0,
    "interpolation": "bilinear",
    "num_classes": 8,
}


def _timm_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """``create_model`` keywords minus the pretrained-cfg ones timm passes to every entrypoint."""
    ignored = ("pretrained_cfg", "pretrained_cfg_overlay", "cache_dir")
    return {k: v for k, v in kwargs.items() if k not in ignored}


def _with_cfg(model: Any) -> Any:
    """The model with its cfg attached as timm's builder does (``pretrained_cfg``; open_clip reads ``default_cfg``)."""
    model.pretrained_cfg = model.default_cfg = dict(_CFG)
    return model


def world_convnext(pretrained: bool = False, **kwargs: Any):
    """The world's ConvNet: timm ConvNeXt at 32 px (no pretrained weights exist)."""
    from timm.models import ConvNeXt

    if pretrained:
        raise ValueError("world_convnext has no pretrained weights: train it on the world first")
    return _with_cfg(ConvNeXt(**{"num_classes": 8, **CONVNEXT_ARGS, **_timm_kwargs(kwargs)}))


def world_vit(pretrained: bool = False, **kwargs: Any):
    """The world's ViT: timm VisionTransformer at 32 px, patch 8 (no pretrained weights exist)."""
    from timm.models import VisionTransformer

    if pretrained:
        raise ValueError("world_vit has no pretrained weights: train it on the world first")
    return _with_cfg(VisionTransformer(**{"num_classes": 8, **VIT_ARGS, **_timm_kwargs(kwargs)}))


default_cfgs = {"world_convnext": dict(_CFG), "world_vit": dict(_CFG)}  # read by timm's register_model


@functools.cache
def register() -> None:
    """Register both architectures (and their pretrained cfgs) with timm, once per process; imports timm."""
    from timm.models import register_model

    register_model(world_convnext)
    register_model(world_vit)
