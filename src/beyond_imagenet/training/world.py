"""Train the procedural world's 2x2 from scratch: {ConvNet, ViT} x {cross-entropy, CLIP-style contrastive} (JANuS).

Same images, same budget, same augmentation (a random shift of up to 2 px) and the same optimiser (AdamW, one-cycle
cosine) for all four; only the architecture (``world_convnext`` / ``world_vit``, models/world_architectures.py) and
the loss differ. Cross-entropy trains the timm model on the shape labels. CLIP-style trains an OpenCLIP model whose
image tower is the same timm architecture and whose text tower is small, on the images' generated captions
(open_clip's bundled BPE tokenizer, ``ClipLoss``); it classifies by a zero-shot head of class-name prompts, as the
paper's CLIP models do (docs/protocol.md §1.4).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import lightning as L
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from beyond_imagenet.data.world import SHAPES, WorldConfig, caption, generate
from beyond_imagenet.models.backends.timm_backend import timm_module
from beyond_imagenet.models.world_architectures import WORLD_MEAN, WORLD_STD

Objective = Literal["cross_entropy", "clip"]
CONTEXT_LENGTH = 32  # tokens per caption: the captions are short
TOKENIZER = "ViT-B-16"  # open_clip's bundled CLIP BPE tokenizer (no download)
TEXT_CFG: dict[str, Any] = {"context_length": CONTEXT_LENGTH, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2}
EMBED_DIM = 64
PROMPT = "a photo of a {}."


@dataclass(frozen=True)
class TrainConfig:
    """One training run: the architecture, the loss, the world and the budget (equal across the 2x2)."""

    architecture: str  # world_convnext | world_vit
    objective: Objective
    world: WorldConfig = field(default_factory=WorldConfig)
    n_train: int = 16000
    epochs: int = 10
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 0.05
    max_shift: int = 2
    seed: int = 0


def clip_config(architecture: str) -> dict[str, Any]:
    """The OpenCLIP config of a CLIP-style world model: the timm architecture as image tower, a small text tower."""
    vision = {
        "image_size": 32,
        "timm_model_name": architecture,
        "timm_model_pretrained": False,
        "timm_pool": "avg",
        "timm_proj": "linear",
    }
    return {"embed_dim": EMBED_DIM, "vision_cfg": vision, "text_cfg": dict(TEXT_CFG)}


def normalise(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> float (N, 3, H, W) with the world mean and std (0.5, 0.5)."""
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0
    mean, std = torch.tensor(WORLD_MEAN).view(1, 3, 1, 1), torch.tensor(WORLD_STD).view(1, 3, 1, 1)
    return (x - mean) / std


def tokenize(texts: list[str]) -> torch.Tensor:
    """open_clip's bundled tokenizer at :data:`CONTEXT_LENGTH`."""
    import open_clip

    return open_clip.get_tokenizer(TOKENIZER, context_length=CONTEXT_LENGTH)(texts)


def build_model(config: TrainConfig) -> nn.Module:
    """A fresh model: the timm classifier (cross-entropy) or the OpenCLIP model (CLIP-style), seeded."""
    torch.manual_seed(config.seed)
    timm = timm_module()  # registers world_convnext / world_vit before open_clip asks timm for them
    if config.objective == "cross_entropy":
        return timm.create_model(config.architecture, num_classes=len(SHAPES))
    from open_clip.model import CLIP

    cfg = clip_config(config.architecture)
    return CLIP(cfg["embed_dim"], cfg["vision_cfg"], cfg["text_cfg"])


class WorldModule(L.LightningModule):
    """One of the 2x2: the same step for both losses (a shifted batch), AdamW with a one-cycle schedule."""

    def __init__(self, config: TrainConfig, steps: int):
        super().__init__()
        self.config, self.steps = config, steps
        self.model = build_model(config)
        self.shift_generator = torch.Generator().manual_seed(config.seed)
        if config.objective == "clip":
            from open_clip.loss import ClipLoss

            self.clip_loss = ClipLoss()

    def _shift(self, images: torch.Tensor) -> torch.Tensor:
        m = self.config.max_shift
        dx, dy = torch.randint(-m, m + 1, (2,), generator=self.shift_generator).tolist()
        return torch.roll(images, (dx, dy), (2, 3))

    def training_step(self, batch: tuple[torch.Tensor, ...], batch_index: int) -> torch.Tensor:
        """Cross-entropy on the labels, or the symmetric contrastive loss on (image, caption) pairs."""
        images, labels, tokens = batch
        images = self._shift(images)
        if self.config.objective == "cross_entropy":
            loss = nn.functional.cross_entropy(self.model(images), labels)
        else:
            image_features, text_features, scale = self.model(images, tokens)
            loss = self.clip_loss(image_features, text_features, scale)
        self.log("train/loss", loss, prog_bar=False)
        return loss

    def configure_optimizers(self) -> Any:
        """AdamW with a one-cycle cosine schedule stepped per batch."""
        optimiser = torch.optim.AdamW(self.model.parameters(), lr=self.config.lr, weight_decay=self.config.weight_decay)
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, self.config.lr, total_steps=self.steps, pct_start=0.1)
        return {"optimizer": optimiser, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


def training_data(config: TrainConfig) -> TensorDataset:
    """The training set: ``n_train`` world images (seeded), their labels and their tokenised captions."""
    images, factors = generate(config.world, config.n_train, seed=config.seed + 1)
    labels = torch.tensor([f.label for f in factors])
    tokens = tokenize([caption(f) for f in factors])
    return TensorDataset(normalise(images), labels, tokens)


def train(config: TrainConfig, accelerator: str = "auto") -> nn.Module:
    """Train one model of the 2x2 with Lightning and return it in eval mode (seeded: the same config, the same run)."""
    L.seed_everything(config.seed, workers=True, verbose=False)
    data = training_data(config)
    loader = DataLoader(
        data, batch_size=config.batch_size, shuffle=True, drop_last=True, generator=torch.Generator().manual_seed(0)
    )
    module = WorldModule(config, steps=config.epochs * len(loader))
    trainer = L.Trainer(
        max_epochs=config.epochs,
        accelerator=accelerator,
        devices=1,
        deterministic=True,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, loader)
    return module.model.eval()


@torch.no_grad()
def predict(model: nn.Module, objective: Objective, images: np.ndarray) -> np.ndarray:
    """Logits over the shapes: the classifier's, or (CLIP-style) 100 x cosine to the class-name prompt embeddings."""
    x = normalise(images)
    if objective == "cross_entropy":
        return model(x).numpy()
    text = nn.functional.normalize(model.encode_text(tokenize([PROMPT.format(s) for s in SHAPES])), dim=-1)
    image = nn.functional.normalize(model.encode_image(x), dim=-1)
    return (100.0 * image @ text.T).numpy()
