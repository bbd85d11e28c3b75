"""The model catalogue: ids -> frozen specs (PROTOCOL.md §1.1, DESIGN.md principle 1).

Three kinds of id resolve to a :class:`ModelSpec`:

* the paper's four models, ``vit_sup``, ``convnext_sup``, ``vit_clip``, ``convnext_clip`` (exact weights of §1.1);
* generic ids for any timm model (``timm:<name>[.<tag>]``) and any OpenCLIP model (``open_clip:<arch>@<tag>``);
* tiny random-init demo models, ``demo_random_*``, for the offline demo and tests. Their results are noise by
  construction; the name says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from beyond_imagenet.errors import UnknownNameError, UserError

Source = Literal["timm", "open_clip", "open_clip_custom"]
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
    source: Source
    architecture: str  # timm model name or OpenCLIP architecture
    weights: str | None  # timm pretrained tag / OpenCLIP pretrained tag; None = random init
    family: Family
    paradigm: Paradigm
    description: str
    paper_name: str | None = None  # name in the paper's tables, for the four paper models
    demo: bool = False  # random-init model for the demo; its numbers mean nothing
    input_size: int = 224
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    custom_config: dict | None = field(default=None, hash=False, compare=False)  # open_clip_custom only

    @property
    def head(self) -> str:
        """`native` for a trained classifier head, `zeroshot` for CLIP's text-derived head (§1.4)."""
        return "zeroshot" if self.paradigm == "clip" else "native"

    @property
    def weights_id(self) -> str:
        """A single string naming the exact weights, recorded with every result."""
        if self.weights is None:
            return f"{self.source}:{self.architecture} (random init)"
        if self.source == "timm":
            return f"timm:{self.architecture}.{self.weights}"
        return f"open_clip:{self.architecture}@{self.weights}"

    @property
    def pretrained(self) -> bool:
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
        }


# Small enough that the 80-template x 1000-class zero-shot head builds in seconds on a laptop CPU.
_TINY_TEXT_CFG = {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}

PAPER_MODELS: dict[str, ModelSpec] = {
    spec.id: spec
    for spec in (
        ModelSpec(
            id="vit_sup",
            source="timm",
            architecture="deit3_base_patch16_224",
            weights="fb_in22k_ft_in1k",
            family="vit",
            paradigm="supervised",
            paper_name="ViT-sup",
            description="DeiT III Base/16, IN-21k pre-trained, IN-1k fine-tuned at 224",
        ),
        ModelSpec(
            id="convnext_sup",
            source="timm",
            architecture="convnext_base",
            weights="fb_in22k_ft_in1k",
            family="convnet",
            paradigm="supervised",
            paper_name="ConvNeXt-sup",
            description="ConvNeXt-B, IN-22k pre-trained, IN-1k fine-tuned at 224",
        ),
        ModelSpec(
            id="vit_clip",
            source="open_clip",
            architecture="ViT-B-16",
            weights="laion400m_e31",
            family="vit",
            paradigm="clip",
            paper_name="ViT-clip",
            mean=OPENAI_CLIP_MEAN,
            std=OPENAI_CLIP_STD,
            description="OpenCLIP ViT-B/16 trained on LAION-400M, epoch 31",
        ),
        ModelSpec(
            id="convnext_clip",
            source="open_clip",
            architecture="convnext_base",
            weights="laion400m_s13b_b51k",
            family="convnet",
            paradigm="clip",
            paper_name="ConvNeXt-clip",
            mean=OPENAI_CLIP_MEAN,
            std=OPENAI_CLIP_STD,
            description="OpenCLIP ConvNeXt-B trained on LAION-400M, 13B samples seen, batch 51k",
        ),
    )
}

DEMO_MODELS: dict[str, ModelSpec] = {
    spec.id: spec
    for spec in (
        ModelSpec(
            id="demo_random_vit_sup",
            source="timm",
            architecture="test_vit",
            weights=None,
            family="vit",
            paradigm="supervised",
            demo=True,
            description="tiny random-init timm ViT (demo only: results are noise)",
        ),
        ModelSpec(
            id="demo_random_convnext_sup",
            source="timm",
            architecture="test_convnext",
            weights=None,
            family="convnet",
            paradigm="supervised",
            demo=True,
            description="tiny random-init timm ConvNeXt (demo only: results are noise)",
        ),
        ModelSpec(
            id="demo_random_vit_clip",
            source="open_clip_custom",
            architecture="demo-tiny-ViT",
            weights=None,
            family="vit",
            paradigm="clip",
            demo=True,
            mean=OPENAI_CLIP_MEAN,
            std=OPENAI_CLIP_STD,
            custom_config={
                "embed_dim": 64,
                "vision_cfg": {
                    "image_size": 224,
                    "layers": 2,
                    "width": 64,
                    "patch_size": 16,
                    "head_width": 32,
                },
                "text_cfg": _TINY_TEXT_CFG,
            },
            description="tiny random-init OpenCLIP ViT (demo only: results are noise)",
        ),
        ModelSpec(
            id="demo_random_convnext_clip",
            source="open_clip_custom",
            architecture="demo-tiny-convnext",
            weights=None,
            family="convnet",
            paradigm="clip",
            demo=True,
            mean=OPENAI_CLIP_MEAN,
            std=OPENAI_CLIP_STD,
            custom_config={
                "embed_dim": 64,
                "vision_cfg": {
                    "image_size": 224,
                    "timm_model_name": "test_convnext",
                    "timm_model_pretrained": False,
                    "timm_pool": "avg",
                    "timm_proj": "linear",
                },
                "text_cfg": _TINY_TEXT_CFG,
            },
            description="tiny random-init OpenCLIP ConvNeXt tower (demo only: results are noise)",
        ),
    )
}

CATALOGUE: dict[str, ModelSpec] = {**PAPER_MODELS, **DEMO_MODELS}

_VIT_PATTERN = re.compile(r"(vit|deit|beit|eva|swin|xcit|cait|pit|levit|mvit|coat|twins|tnt|crossvit)", re.IGNORECASE)
_CONV_PATTERN = re.compile(
    r"(convnext|resnet|resnext|regnet|efficientnet|mobilenet|densenet|vgg|inception|rn\d|RN\d|nfnet|ghostnet)",
    re.IGNORECASE,
)


def _guess_family(architecture: str) -> Family:
    if _CONV_PATTERN.search(architecture):
        return "convnet"
    if _VIT_PATTERN.search(architecture):
        return "vit"
    return "other"


def _timm_name_and_tag(model_id: str, name: str) -> tuple[str, str | None]:
    """Split ``arch[.tag]``; old aliases map to their weights; no tag = timm's default pretrained tag."""
    import timm  # imported here so listing the catalogue stays fast
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


def _timm_spec(model_id: str, name: str) -> ModelSpec:
    import timm

    architecture, tag = _timm_name_and_tag(model_id, name)
    pretrained_cfg = timm.models.get_pretrained_cfg(f"{architecture}.{tag}" if tag else architecture)
    cfg = pretrained_cfg.to_dict() if pretrained_cfg is not None else {}
    size = int(cfg.get("input_size", (3, 224, 224))[-1])
    return ModelSpec(
        id=model_id,
        source="timm",
        architecture=architecture,
        weights=tag,
        family=_guess_family(architecture),
        paradigm="supervised",
        input_size=size,
        mean=tuple(cfg.get("mean", IMAGENET_MEAN)),
        std=tuple(cfg.get("std", IMAGENET_STD)),
        description=f"timm {architecture}" + (f".{tag}" if tag else " (random init: no pretrained weights exist)"),
    )


def _open_clip_spec(model_id: str, name: str) -> ModelSpec:
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
    cfg = open_clip.get_pretrained_cfg(architecture, tag)
    model_cfg = open_clip.get_model_config(architecture) or {}
    size = model_cfg.get("vision_cfg", {}).get("image_size", 224)
    return ModelSpec(
        id=model_id,
        source="open_clip",
        architecture=architecture,
        weights=tag,
        family=_guess_family(architecture),
        paradigm="clip",
        input_size=int(size if isinstance(size, int) else size[0]),
        mean=tuple(cfg.get("mean", OPENAI_CLIP_MEAN)),
        std=tuple(cfg.get("std", OPENAI_CLIP_STD)),
        description=f"OpenCLIP {architecture} pretrained {tag}",
    )


def resolve_model(model_id: str) -> ModelSpec:
    """Return the spec for a catalogue id or a generic ``timm:`` / ``open_clip:`` id.

    Raises :class:`UnknownNameError` with close matches for anything else, before any model is built.
    """
    if model_id in CATALOGUE:
        return CATALOGUE[model_id]
    prefix, sep, rest = model_id.partition(":")
    if sep and prefix == "timm" and rest:
        return _timm_spec(model_id, rest)
    if sep and prefix == "open_clip" and rest:
        return _open_clip_spec(model_id, rest)
    raise UnknownNameError("model", model_id, [*CATALOGUE, "timm:<name>[.<tag>]", "open_clip:<arch>@<tag>"])


def catalogue_table() -> list[dict[str, str]]:
    """Rows for ``beyond-imagenet list-models``."""
    return [
        {
            "id": spec.id,
            "paper": spec.paper_name or ("demo" if spec.demo else ""),
            "family": spec.family,
            "paradigm": spec.paradigm,
            "weights": spec.weights_id,
            "description": spec.description,
        }
        for spec in CATALOGUE.values()
    ]
