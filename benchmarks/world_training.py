"""Training time, images/s and in-distribution top-1 of the procedural world's 2x2 (issue 17's targets).

Trains {world_convnext, world_vit} x {cross-entropy, CLIP-style} with the same world, budget and seed
(``training/world.py``) and reports per model: wall time of ``train``, training images/s (images x epochs / time),
and top-1 on 2,000 held-out images of the training distribution (CLIP-style: zero-shot from class-name prompts).
Targets (issue 17): >= 90% (cross-entropy) and >= 80% (CLIP-style) top-1; all four within the demo's budget.

Usage: ``.venv/bin/python benchmarks/world_training.py [--n-train 16000] [--epochs 10] [--rotation 30]``;
writes benchmarks/world_training.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

import beyond_imagenet  # noqa: F401  (torchvision shim before timm)
from beyond_imagenet.data.world import WorldConfig, generate
from beyond_imagenet.training.world import TrainConfig, predict, train

OUTPUT = Path(__file__).with_name("world_training.json")
MODELS = [(a, o) for a in ("world_convnext", "world_vit") for o in ("cross_entropy", "clip")]


def main() -> None:
    """Train the four, one after the other, and write the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-train", type=int, default=16000)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--rotation", type=float, default=30.0, help="training rotations uniform in +-this")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    world = WorldConfig(rotation=(-args.rotation, args.rotation))
    images, factors = generate(world, 2000, seed=12345)
    labels = np.array([f.label for f in factors])
    rows = []
    for architecture, objective in MODELS:
        config = TrainConfig(architecture, objective, world=world, n_train=args.n_train, epochs=args.epochs)
        start = time.perf_counter()
        model = train(config)
        seconds = time.perf_counter() - start
        top1 = float((predict(model, objective, images).argmax(1) == labels).mean())
        rate = round(args.n_train * args.epochs / seconds)
        row = {"architecture": architecture, "objective": objective, "train_s": round(seconds, 1)}
        rows.append({**row, "images_per_s": rate, "top1": round(100 * top1, 2)})
        print(rows[-1], flush=True)
    facts = {"machine": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
             "cuda": torch.cuda.is_available(), "n_train": args.n_train, "epochs": args.epochs,
             "rotation": args.rotation}  # fmt: skip
    args.output.write_text(json.dumps({"facts": facts, "models": rows}, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
