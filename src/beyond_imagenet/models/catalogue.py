"""The model catalogue: ids -> frozen specs (docs/protocol.md §1.1, docs/architecture.md principle 1).

Three kinds of id resolve to a :class:`~beyond_imagenet.models.spec.ModelSpec`:

* the paper's four models, ``vit_sup``, ``convnext_sup``, ``vit_clip``, ``convnext_clip`` (exact weights of §1.1);
* generic ids of every model library, ``<prefix>:<name>`` (``timm:<name>[.<tag>]``, ``open_clip:<arch>@<tag>``),
  resolved by that library's backend;
* tiny random-init demo models, ``demo_random_*``, for the offline demo and tests. Their results are noise by
  construction; the name says so.
"""

from __future__ import annotations

from beyond_imagenet.base.errors import UnknownNameError
from beyond_imagenet.models.backends import PREFIXES, generic_id_forms
from beyond_imagenet.models.spec import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD, ModelSpec

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
            weights_id="timm:deit3_base_patch16_224.fb_in22k_ft_in1k",
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
            weights_id="timm:convnext_base.fb_in22k_ft_in1k",
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
            weights_id="open_clip:ViT-B-16@laion400m_e31",
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
            weights_id="open_clip:convnext_base@laion400m_s13b_b51k",
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
            weights_id="timm:test_vit (random init)",
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
            weights_id="timm:test_convnext (random init)",
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
            weights_id="open_clip_custom:demo-tiny-ViT (random init)",
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
            weights_id="open_clip_custom:demo-tiny-convnext (random init)",
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


def resolve_model(model_id: str) -> ModelSpec:
    """Return the spec for a catalogue id or a generic ``<prefix>:<name>`` id of a model library.

    Raises :class:`UnknownNameError` with close matches for anything else, before any model is built.
    """
    if model_id in CATALOGUE:
        return CATALOGUE[model_id]
    prefix, sep, rest = model_id.partition(":")
    if sep and rest and prefix in PREFIXES:
        return PREFIXES[prefix].resolve(model_id, rest)
    raise UnknownNameError("model", model_id, [*CATALOGUE, *generic_id_forms()])


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
