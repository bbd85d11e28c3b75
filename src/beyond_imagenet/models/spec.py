"""What identifies a model in a result: the frozen :class:`ModelSpec` (docs/protocol.md §1.1).

A spec names the model library (``source``, the key of its backend in ``models.backends``), the architecture, the
exact weights and the facts the analyses group by (family, paradigm). The catalogue of ids lives in
``models.catalogue``; how each library builds a spec's network lives in its backend.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

Family = Literal["vit", "convnet", "other"]
Paradigm = Literal["supervised", "clip"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to build a model and to say, in a result, exactly which model it was."""

    id: str
    source: str  # the model library: a key of models.backends.BACKENDS (timm, open_clip, open_clip_custom)
    architecture: str  # timm model name or OpenCLIP architecture
    weights: str | None  # timm pretrained tag / OpenCLIP pretrained tag; None = random init
    family: Family
    paradigm: Paradigm
    description: str
    weights_id: str  # one string naming the exact weights, recorded with every result
    paper_name: str | None = None  # name in the paper's tables, for the four paper models
    demo: bool = False  # random-init model for the demo; its numbers mean nothing
    input_size: int = 224
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    custom_config: dict | None = field(default=None, hash=False, compare=False)  # open_clip_custom only
    class_names: tuple[str, ...] | None = None  # a native head's own classes, in order; None = ImageNet-1k

    @property
    def head(self) -> str:
        """`native` for a trained classifier head, `zeroshot` for CLIP's text-derived head (§1.4)."""
        return "zeroshot" if self.paradigm == "clip" else "native"

    @property
    def pretrained(self) -> bool:
        """Whether the spec names trained weights (False: random init)."""
        return self.weights is not None

    def as_record(self) -> dict:
        """Flat, JSON-serialisable description for provenance and MLflow params."""
        return {
            "model_id": self.id,
            "source": self.source,
            "architecture": self.architecture,
            "weights": self.weights or "random-init",
            "weights_id": self.weights_id,
            "family": self.family,
            "paradigm": self.paradigm,
            "head": self.head,
            "demo": self.demo,
            **({"class_names": list(self.class_names)} if self.class_names is not None else {}),
        }


_VIT_PATTERN = re.compile(r"(vit|deit|beit|eva|swin|xcit|cait|pit|levit|mvit|coat|twins|tnt|crossvit)", re.IGNORECASE)
_CONV_PATTERN = re.compile(
    r"(convnext|resnet|resnext|regnet|efficientnet|mobilenet|densenet|vgg|inception|rn\d|RN\d|nfnet|ghostnet)",
    re.IGNORECASE,
)


def guess_family(architecture: str) -> Family:
    """ConvNet, ViT or other from an architecture name (generic timm and OpenCLIP ids)."""
    if _CONV_PATTERN.search(architecture):
        return "convnet"
    if _VIT_PATTERN.search(architecture):
        return "vit"
    return "other"
