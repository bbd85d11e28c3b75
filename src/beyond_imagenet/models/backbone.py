"""One Backbone interface over every model library (docs/architecture.md, principle 3).

``Backbone.forward(x)`` returns ``(logits, features)`` from a single forward pass. ``features`` is what the
library's backend defines as the pooled representation (timm: pre-logits; OpenCLIP: the projected image
embedding, not normalised); ``logits`` come from the classifier on those features: the model's own head, or for
CLIP models the zero-shot head of docs/protocol.md §1.4, ``100 * normalise(features) @ W``.

Weights are loaded only after :func:`beyond_imagenet.models.weights.ensure_weights_available` passed, so a missing
checkpoint fails in seconds instead of retrying downloads.
"""

from __future__ import annotations

import torch
from torch import nn

from beyond_imagenet.models.spec import ModelSpec

CLIP_LOGIT_SCALE = 100.0  # docs/protocol.md §1.4: hard-coded, the learned logit_scale is not used
RANDOM_INIT_SEED = 0  # demo / random-init models are built under this seed so caches stay reproducible


class ZeroShotHead(nn.Module):
    """CLIP's text-derived classifier: ``100 * normalise(features) @ W`` with ``W`` [embed_dim, n_classes]."""

    def __init__(self, weights: torch.Tensor):
        super().__init__()
        self.register_buffer("weights", weights.to(torch.float32), persistent=False)

    @property
    def out_features(self) -> int:
        """Number of classes."""
        return int(self.weights.shape[1])

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Logits over the head's classes."""
        return CLIP_LOGIT_SCALE * nn.functional.normalize(features.float(), dim=-1) @ self.weights


class Backbone(nn.Module):
    """A frozen image model in eval mode that maps normalised images to (logits, features).

    Subclasses (one per backend) define :meth:`features`; ``classifier`` maps features to logits (None for a
    CLIP model until :meth:`set_zeroshot_weights` attaches its zero-shot head).
    """

    def __init__(self, spec: ModelSpec, image_model: nn.Module, classifier: nn.Module | None):
        super().__init__()
        self.spec = spec
        self.image_model = image_model
        self.classifier = classifier
        self.eval()
        self.requires_grad_(False)

    @property
    def output_dim(self) -> int | None:
        """Classes of the current head, None when a CLIP model has none yet."""
        return int(self.classifier.out_features) if self.classifier is not None else None

    def set_zeroshot_weights(self, weights: torch.Tensor) -> None:
        """Attach the [embed_dim, n_classes] zero-shot head of docs/protocol.md §1.4 (CLIP models only)."""
        if self.spec.head != "zeroshot":
            raise ValueError(f"{self.spec.id} is not a CLIP model; it has a native head")
        self.classifier = ZeroShotHead(weights).requires_grad_(False)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """The pooled representation of ``images`` (defined by the backend)."""
        raise NotImplementedError

    def logits_from_features(self, features: torch.Tensor) -> torch.Tensor:
        """The classifier's logits on ``features``."""
        if self.classifier is None:
            raise RuntimeError(f"{self.spec.id}: zero-shot head not built; call set_zeroshot_weights first")
        return self.classifier(features)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(logits, features)`` of one batch; the backbone must stay in eval mode."""
        if self.training:
            raise RuntimeError("Backbone must stay in eval mode for evaluation")
        features = self.features(images)
        return self.logits_from_features(features), features
