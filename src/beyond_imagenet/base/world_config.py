"""``world`` in params.yaml: the procedural world's models, trained from scratch by ``beyond-imagenet train-world``.

The 2x2 of the demo (docs/world.md): {ConvNet, ViT} x {cross-entropy, CLIP-style}, same images, same budget, same
augmentation; plus controls that differ from one of them in one factor of the training world (e.g. texture tied to
the class). World factors are given as overrides of ``data.world.WorldConfig``'s fields (lists for ranges and
names) and checked by the stage against that class before any training starts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from beyond_imagenet.base.errors import ParamsError

WorldValue = bool | int | float | str | list[float] | list[str]


@dataclass(frozen=True)
class WorldModelConfig:
    """One trained model: its architecture, its loss, and how its training world differs from ``world.train``."""

    architecture: Literal["world_convnext", "world_vit"]
    objective: Literal["cross_entropy", "clip"]
    train: dict[str, WorldValue] = field(default_factory=dict)  # overrides of world.train for this model only


@dataclass(frozen=True)
class WorldTrainingConfig:
    """``world``: the training world, the budget every model shares, and the models (empty: nothing to train)."""

    models_dir: str = "models/world"  # checkpoint, config and training record of each model (a DVC output)
    data_dir: str = "data/world"  # make-world-data: the test suite (data/world/suite.py), images per set below
    test_images: int = 400
    rare_fraction: float = 0.25  # of the val set: any rotation and up to three objects (ImageNet-X's rare factors)
    seed: int = 0
    n_train: int = 16000
    epochs: int = 10
    batch_size: int = 128
    lr: float = 0.002
    weight_decay: float = 0.05
    max_shift: int = 2  # augmentation: a random shift of up to this many pixels, the same for all models
    caption_detail: float = 0.25  # CLIP-style: chance that a caption mentions each non-shape factor
    train: dict[str, WorldValue] = field(default_factory=dict)  # the training world (WorldConfig overrides)
    models: dict[str, WorldModelConfig] = field(default_factory=dict)


def check_world(config: WorldTrainingConfig) -> None:
    """The budget's values (the world factors are checked by the stage against ``WorldConfig``)."""
    checks = (
        ("n_train", config.n_train >= config.batch_size, f"at least batch_size ({config.batch_size})"),
        ("epochs", config.epochs >= 1, ">= 1"),
        ("batch_size", config.batch_size >= 2, ">= 2 (the contrastive loss needs negatives)"),
        ("lr", config.lr > 0, "> 0"),
        ("weight_decay", config.weight_decay >= 0, ">= 0"),
        ("max_shift", config.max_shift >= 0, ">= 0"),
        ("caption_detail", 0.0 <= config.caption_detail <= 1.0, "in [0, 1]"),
        ("test_images", config.test_images >= 8, ">= 8 (one image per class at least)"),
        ("rare_fraction", 0.0 <= config.rare_fraction <= 1.0, "in [0, 1]"),
    )
    for name, ok, need in checks:
        if not ok:
            raise ParamsError(f"params: world.{name} must be {need}, got {getattr(config, name)!r}")
