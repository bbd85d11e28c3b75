"""Build a spec's network through its library's backend, at its native input size or another (docs/protocol.md §9.3).

Random-init models are built under :data:`~beyond_imagenet.models.backbone.RANDOM_INIT_SEED`, so every build of a
demo model is the same network. Check that pretrained weights are available first
(:func:`~beyond_imagenet.models.weights.ensure_weights_available`).
"""

from __future__ import annotations

import torch
from torch import nn

from beyond_imagenet.base.errors import UserError
from beyond_imagenet.models.backbone import RANDOM_INIT_SEED, Backbone
from beyond_imagenet.models.backends import backend_for
from beyond_imagenet.models.positional import transplant_weights
from beyond_imagenet.models.spec import ModelSpec
from beyond_imagenet.models.weights import ensure_weights_available


def _create_seeded(spec: ModelSpec, image_size: int | None = None) -> nn.Module:
    """The backend's whole network, built under the fixed random-init seed (the global RNG is left alone)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_INIT_SEED)
        return backend_for(spec).create(spec, image_size)


def build_backbone(spec: ModelSpec) -> tuple[Backbone, nn.Module | None]:
    """Build ``spec`` (weights from the local Hugging Face cache when pretrained).

    Returns the backbone and, for CLIP models, the full CLIP model whose text tower builds the zero-shot head (the
    backbone itself keeps only the image tower, so the text tower can be freed afterwards).
    """
    return backend_for(spec).wrap(spec, _create_seeded(spec))


def spec_at_resolution(spec: ModelSpec, r: int) -> ModelSpec:
    """``spec`` with ``input_size = r`` (and the library config that names the image size), same id and weights.

    The paper preprocessing of the result (``resolve_preprocessing``) is then the §9.3 transform at ``r``.
    """
    return backend_for(spec).spec_at_resolution(spec, r)


def build_at_resolution(spec: ModelSpec, r: int) -> tuple[Backbone, nn.Module | None]:
    """§9.3: the model evaluated at input resolution ``r``, as :func:`build_backbone` returns it.

    ConvNets (fully convolutional, global pooling) are the native build. ViTs are built by their library at ``r``
    (a pretrained position embedding is resampled on load); random-init ViTs are the native network (same seed)
    with its position embedding resized, so a sweep compares one network at several resolutions. The backbone's
    spec has ``input_size = r``.
    """
    if not isinstance(r, int) or r <= 0:
        raise UserError(f"{spec.id}: resolution must be a positive integer, got {r!r}")
    spec_r = spec_at_resolution(spec, r)
    if spec.family == "convnet":
        backbone, clip_model = build_backbone(spec)
        backbone.spec = spec_r
        return backbone, clip_model
    model = _create_seeded(spec, r)
    if not spec.pretrained:
        native = _create_seeded(spec)
        transplant_weights(native, model, *backend_for(spec).position_embedding(spec, native))
    return backend_for(spec).wrap(spec_r, model.eval())


def build_image_towers(specs: list[ModelSpec]) -> dict[str, Backbone]:
    """Each model once, image tower only (no zero-shot head): for features and layer taps. Weights checked first."""
    ensure_weights_available(list(specs))
    backbones = {}
    for spec in specs:
        backbone, clip_model = build_backbone(spec)
        del clip_model  # the text tower plays no part in image representations
        backbones[spec.id] = backbone
    return backbones
