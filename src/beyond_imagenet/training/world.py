"""Train the procedural world's 2x2 from scratch: {ConvNet, ViT} x {cross-entropy, CLIP-style contrastive} (JANuS).

Same images, same budget, same augmentation (a random shift of up to 2 px) and the same optimiser (AdamW, one-cycle
cosine) for all four; only the architecture (``world_convnext`` / ``world_vit``, models/world_architectures.py) and
the loss differ. Cross-entropy trains the timm model on the shape labels. CLIP-style trains an OpenCLIP model whose
image tower is the same timm architecture and whose text tower is small, on the images' generated captions
(open_clip's bundled BPE tokenizer, ``ClipLoss``); it classifies by a zero-shot head of class-name prompts, as the
paper's CLIP models do (docs/protocol.md §1.4).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import lightning as L
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from beyond_imagenet.base.files import atomic_torch_save, atomic_write_json, write_if_changed
from beyond_imagenet.base.world_config import WorldTrainingConfig
from beyond_imagenet.data.world import MENTIONABLE, SHAPES, ImageFactors, WorldConfig, caption, generate
from beyond_imagenet.models.backends.open_clip_backend import CUSTOM_TOKENIZER
from beyond_imagenet.models.backends.timm_backend import timm_module
from beyond_imagenet.models.world_architectures import WORLD_INPUT, WORLD_MEAN, WORLD_STD
from beyond_imagenet.models.zeroshot import build_zeroshot_weights

Objective = Literal["cross_entropy", "clip"]
CONTEXT_LENGTH = 32  # tokens per caption and prompt (the captions and the 80 templates are short)
TEXT_CFG: dict[str, Any] = {"context_length": CONTEXT_LENGTH, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2}
EMBED_DIM = 64
_BUDGET = WorldTrainingConfig()
CLASSES_FILE = "classes.txt"  # beside the checkpoints: the shapes in logit order (timm-file's classes=)


@dataclass(frozen=True)
class TrainConfig:
    """One training run: the architecture, the loss, the world and the budget (equal across the 2x2)."""

    architecture: str  # world_convnext | world_vit
    objective: Objective
    world: WorldConfig = field(default_factory=WorldConfig)
    n_train: int = _BUDGET.n_train  # the budget's defaults are params `world`'s (base/world_config.py)
    epochs: int = _BUDGET.epochs
    batch_size: int = _BUDGET.batch_size
    lr: float = _BUDGET.lr
    weight_decay: float = _BUDGET.weight_decay
    max_shift: int = _BUDGET.max_shift
    caption_detail: float = _BUDGET.caption_detail
    seed: int = _BUDGET.seed


def clip_config(architecture: str) -> dict[str, Any]:
    """The OpenCLIP config of a CLIP-style world model: the timm architecture as image tower, a small text tower."""
    vision = {
        "image_size": WORLD_INPUT,
        "timm_model_name": architecture,
        "timm_model_pretrained": False,
        "timm_pool": "avg",
        "timm_proj": "linear",
    }
    return {"embed_dim": EMBED_DIM, "vision_cfg": vision, "text_cfg": dict(TEXT_CFG)}


def open_clip_file_config(architecture: str) -> dict[str, Any]:
    """:func:`clip_config` plus the input normalisation, as ``open_clip-file:`` reads it (models/backends)."""
    return {**clip_config(architecture), "preprocess_cfg": {"mean": list(WORLD_MEAN), "std": list(WORLD_STD)}}


def normalise(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> float (N, 3, H, W) with the world mean and std (0.5, 0.5)."""
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0
    mean, std = torch.tensor(WORLD_MEAN).view(1, 3, 1, 1), torch.tensor(WORLD_STD).view(1, 3, 1, 1)
    return (x - mean) / std


def tokenize(texts: list[str]) -> torch.Tensor:
    """open_clip's bundled tokenizer at :data:`CONTEXT_LENGTH`: the one the pipeline uses for custom towers."""
    import open_clip

    return open_clip.get_tokenizer(CUSTOM_TOKENIZER, context_length=CONTEXT_LENGTH)(texts)


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


def training_captions(factors: list[ImageFactors], detail: float, seed: int) -> list[str]:
    """One caption per image: the shape always, each other factor with chance ``detail`` (seeded), as alt text."""
    rng = np.random.default_rng((seed, 7))
    order = sorted(MENTIONABLE)
    said = rng.random((len(factors), len(order))) < detail
    mentions = [{k for k, keep in zip(order, row, strict=True) if keep} for row in said]
    return [caption(f, mention) for f, mention in zip(factors, mentions, strict=True)]


def training_data(config: TrainConfig) -> TensorDataset:
    """The training set: ``n_train`` world images (seeded), their labels and their tokenised captions."""
    images, factors = generate(config.world, config.n_train, seed=config.seed + 1)
    labels = torch.tensor([f.label for f in factors])
    tokens = tokenize(training_captions(factors, config.caption_detail, config.seed))
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


def zero_shot_head(model: nn.Module) -> torch.Tensor:
    """[embed_dim, 8] class embeddings from the 80 OpenAI templates, built as the pipeline builds every CLIP head."""
    return build_zeroshot_weights(model, tokenize, list(SHAPES), torch.device("cpu"))


@torch.no_grad()
def predict(model: nn.Module, objective: Objective, images: np.ndarray, head: torch.Tensor | None = None) -> np.ndarray:
    """Logits over the shapes: the classifier's, or (CLIP-style) 100 x cosine to the zero-shot head's columns."""
    x = normalise(images)
    if objective == "cross_entropy":
        return model(x).numpy()
    head = zero_shot_head(model) if head is None else head
    return (100.0 * nn.functional.normalize(model.encode_image(x), dim=-1) @ head).numpy()


_OWN_FIELDS = ("architecture", "objective", "world")  # per model; the rest is the budget all models share
BUDGET_FIELDS = tuple(f.name for f in dataclasses.fields(TrainConfig) if f.name not in _OWN_FIELDS)


def model_id(folder: Path, name: str, config: TrainConfig) -> str:
    """The pipeline's id of a trained model: ``timm-file:`` (cross-entropy) or ``open_clip-file:`` (CLIP-style)."""
    weights = folder / f"{name}.pth"
    if config.objective == "cross_entropy":
        return f"timm-file:{config.architecture}@{weights.as_posix()}?classes={(folder / CLASSES_FILE).as_posix()}"
    return f"open_clip-file:{(folder / f'{name}.json').as_posix()}@{weights.as_posix()}"


def config_record(config: TrainConfig) -> dict[str, Any]:
    """Everything that determines a training run, JSON-ready (its hash keys the checkpoint)."""
    record = dataclasses.asdict(config)
    record["world"] = {k: list(v) if isinstance(v, tuple) else v for k, v in record["world"].items()}
    return record


def save_model(model: nn.Module, config: TrainConfig, folder: Path, name: str) -> str:
    """Write ``<name>.pth`` (the state dict) and, CLIP-style, ``<name>.json`` (its open_clip config); the model id."""
    folder.mkdir(parents=True, exist_ok=True)
    write_if_changed(folder / CLASSES_FILE, ("\n".join(SHAPES) + "\n").encode())  # the heads' logit order
    if config.objective == "clip":
        atomic_write_json(folder / f"{name}.json", open_clip_file_config(config.architecture))
    atomic_torch_save(model.state_dict(), folder / f"{name}.pth")
    return model_id(folder, name, config)


def held_out_top1(model: nn.Module, config: TrainConfig, n: int = 2000) -> float:
    """Top-1 on ``n`` fresh images of the training distribution (another seed), as the pipeline classifies them."""
    images, factors = generate(config.world, n, seed=config.seed + 10_000)
    logits = predict(model, config.objective, images)
    return float((logits.argmax(1) == np.array([f.label for f in factors])).mean())
