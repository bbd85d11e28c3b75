"""Training time, images/s and in-distribution top-1 of the procedural world's 2x2 (issue 17's targets).

Trains the models of a params file's ``world`` section (default configs/world.yaml; ``--only`` picks some) one after
the other with ``training/world.py``, exactly as ``beyond-imagenet train-world`` does but into a scratch folder, and
reports per model: wall time of ``train``, training images/s (images x epochs / time) and top-1 on 2,000 held-out
images of the training distribution (CLIP-style: zero-shot from the 80 OpenAI templates over the class names).
Targets (issue 17): >= 90% (cross-entropy) and >= 80% (CLIP-style) top-1; all within the demo's budget.

Usage: ``.venv/bin/python benchmarks/world_training.py [--params configs/world.yaml] [--only convnext_ce ...]``;
writes benchmarks/world_training.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

import beyond_imagenet  # noqa: F401  (torchvision shim before timm)
from beyond_imagenet.stages.params import load_stage_params
from beyond_imagenet.stages.train_world import train_configs
from beyond_imagenet.training.world import config_record, held_out_top1, train

OUTPUT = Path(__file__).with_name("world_training.json")
TWO_BY_TWO = ("convnext_ce", "convnext_clip", "vit_ce", "vit_clip")


def main() -> None:
    """Train the chosen models and write the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="configs/world.yaml")
    parser.add_argument("--only", nargs="*", default=list(TWO_BY_TWO))
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    runs = train_configs(load_stage_params(args.params).world)
    rows = []
    for name in args.only:
        config = runs[name]
        start = time.perf_counter()
        model = train(config, accelerator="auto")
        seconds = time.perf_counter() - start
        rate = round(config.n_train * config.epochs / seconds)
        row = {"model": name, "architecture": config.architecture, "objective": config.objective}
        rows.append({**row, "train_s": round(seconds, 1), "images_per_s": rate,
                     "top1": round(100 * held_out_top1(model, config), 2)})  # fmt: skip
        print(rows[-1], flush=True)
    facts = {"machine": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
             "cuda": torch.cuda.is_available(), "params": args.params,
             "config": {k: v for k, v in config_record(runs[args.only[0]]).items() if k != "architecture"}}  # fmt: skip
    args.output.write_text(json.dumps({"facts": facts, "models": rows}, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
