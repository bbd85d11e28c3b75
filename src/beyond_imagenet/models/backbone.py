"""One Backbone interface over timm and OpenCLIP (DESIGN.md principle 3).

``Backbone.forward(x)`` returns ``(logits, features)`` from a single forward pass:

* timm: features = pooled pre-logits (``forward_head(pre_logits=True)``: DeiT III's class token after the final
  norm, ConvNeXt's pooled and LayerNormed map); logits = the model's own classifier on them;
* OpenCLIP: features = the projected image embedding (``encode_image``, not normalised); logits =
  ``100 * normalise(features) @ W`` with the zero-shot weights ``W`` of PROTOCOL.md §1.4.

Weights are loaded only after :func:`beyond_imagenet.models.weights.ensure_weights_available` passed, so a missing
checkpoint fails in seconds instead of retrying downloads.
"""

from __future__ import annotations

import torch
from torch import nn

from beyond_imagenet.models.catalogue import ModelSpec

CLIP_LOGIT_SCALE = 100.0  # PROTOCOL §1.4: hard-coded, the learned logit_scale is not used
RANDOM_INIT_SEED = 0  # demo / random-init models are built under this seed so caches stay reproducible


class Backbone(nn.Module):
    """A frozen image model in eval mode that maps normalised images to (logits, features)."""

    def __init__(self, spec: ModelSpec, image_model: nn.Module, classifier: nn.Module | None):
        super().__init__()
        self.spec = spec
        self.image_model = image_model
        self.classifier = classifier  # timm head; None for CLIP until a zero-shot head is attached
        self.register_buffer("zeroshot_weights", torch.empty(0), persistent=False)
        self.eval()
        self.requires_grad_(False)

    @property
    def output_dim(self) -> int | None:
        if self.spec.paradigm == "clip":
            return int(self.zeroshot_weights.shape[1]) if self.zeroshot_weights.numel() else None
        return int(self.classifier.out_features) if isinstance(self.classifier, nn.Linear) else None

    def set_zeroshot_weights(self, weights: torch.Tensor) -> None:
        """Attach the [embed_dim, n_classes] zero-shot head of §1.4 (CLIP models only)."""
        if self.spec.paradigm != "clip":
            raise ValueError(f"{self.spec.id} is not a CLIP model; it has a native head")
        self.zeroshot_weights = weights.to(self.zeroshot_weights.device, torch.float32)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        if self.spec.paradigm == "clip":
            return self.image_model(images)  # open_clip's encode_image without normalisation
        return self.image_model.forward_head(self.image_model.forward_features(images), pre_logits=True)

    def logits_from_features(self, features: torch.Tensor) -> torch.Tensor:
        if self.spec.paradigm == "clip":
            if not self.zeroshot_weights.numel():
                raise RuntimeError(f"{self.spec.id}: zero-shot head not built; call set_zeroshot_weights first")
            normalised = nn.functional.normalize(features.float(), dim=-1)
            return CLIP_LOGIT_SCALE * normalised @ self.zeroshot_weights
        return self.classifier(features)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.training:
            raise RuntimeError("Backbone must stay in eval mode for evaluation")
        features = self.features(images)
        return self.logits_from_features(features), features


def _build_timm(spec: ModelSpec) -> Backbone:
    import timm

    name = spec.architecture + (f".{spec.weights}" if spec.weights else "")
    model = timm.create_model(name, pretrained=spec.pretrained)
    return Backbone(spec, model, model.get_classifier())


def _build_open_clip(spec: ModelSpec) -> nn.Module:
    import open_clip

    if spec.source == "open_clip_custom":
        from open_clip.model import CLIP

        config = spec.custom_config or {}
        model = CLIP(config["embed_dim"], config["vision_cfg"], config["text_cfg"])
    else:
        model = open_clip.create_model(spec.architecture, pretrained=spec.weights)
    return model.eval()


def build_backbone(spec: ModelSpec) -> tuple[Backbone, nn.Module | None]:
    """Build ``spec`` (weights from the local Hugging Face cache when pretrained).

    Returns the backbone and, for CLIP models, the full CLIP model whose text tower builds the zero-shot
    head (the backbone itself keeps only the image tower, so the text tower can be freed afterwards).
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_INIT_SEED)
        if spec.source == "timm":
            return _build_timm(spec), None
        clip_model = _build_open_clip(spec)
        return Backbone(spec, clip_model.visual, None), clip_model
