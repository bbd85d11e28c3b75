"""What every model library provides to the rest of the package: the :class:`ModelBackend` protocol.

A backend turns a :class:`~beyond_imagenet.models.spec.ModelSpec` into a network and knows everything about its
library that the pipeline needs: resolving generic ids, where pretrained weights live, the library's own eval
transform, the tokenizer of a CLIP text tower, building at another input resolution, and the module names of the
layer taps (docs/protocol.md §1, §9.3, §10). Adding a library is one new module that implements this protocol and
registers itself in ``models.backends``.
"""

from __future__ import annotations

import re
from typing import Any, Protocol

from torch import nn

from beyond_imagenet.models.backbone import Backbone
from beyond_imagenet.models.hub import WeightsLocation
from beyond_imagenet.models.spec import ModelSpec

LayerPatterns = dict[str, re.Pattern]  # layer type (attention_or_conv, linear, normalisation) -> module-name regex


class ModelBackend(Protocol):
    """One model library behind the pipeline."""

    sources: tuple[str, ...]  # the ModelSpec.source values it builds
    prefix: str | None  # the id prefix of its generic ids ("timm" for timm:<name>), None if it has none
    id_help: str  # how a generic id is written, for error messages and `list-models`
    feature_description: str  # what ``Backbone.features`` returns, recorded (and hashed) with every feature cache

    def resolve(self, model_id: str, name: str) -> ModelSpec:
        """The spec of the generic id ``<prefix>:<name>``; unknown names raise with close matches."""

    def create(self, spec: ModelSpec, image_size: int | None = None) -> nn.Module:
        """The library's whole network (pretrained weights loaded), optionally built for ``image_size`` input."""

    def wrap(self, spec: ModelSpec, model: nn.Module) -> tuple[Backbone, nn.Module | None]:
        """The :class:`Backbone` of a network from :meth:`create`, and the CLIP model holding the text tower."""

    def spec_at_resolution(self, spec: ModelSpec, r: int) -> ModelSpec:
        """``spec`` with input size ``r`` (and any library config that names the image size)."""

    def position_embedding(self, spec: ModelSpec, model: nn.Module) -> tuple[str, int]:
        """State-dict key of a ViT's patch position embedding in ``model`` and its number of prefix rows."""

    def locate_weights(self, spec: ModelSpec) -> WeightsLocation | None:
        """Where the pretrained weights come from; None for random-init specs."""

    def native_preprocessing(self, spec: ModelSpec) -> dict[str, Any]:
        """The library's own eval transform as ``PreprocessSpec`` fields (resize, crop, interpolation, ...)."""

    def tokenizer(self, spec: ModelSpec) -> Any:
        """The tokenizer of a CLIP model's text tower (zero-shot head, docs/protocol.md §1.4)."""

    def layer_patterns(self, spec: ModelSpec) -> LayerPatterns:
        """Module-name patterns of the CKA layer types for the spec's family (docs/protocol.md §10)."""


def patterns_for_family(spec: ModelSpec, by_family: dict[str, LayerPatterns]) -> LayerPatterns:
    """The layer patterns of the spec's family; a family without CKA layer sets raises ``ValueError``."""
    if spec.family not in by_family:
        raise ValueError(f"{spec.id}: CKA layer sets are defined for ViT and ConvNeXt, not {spec.family!r}")
    return by_family[spec.family]
