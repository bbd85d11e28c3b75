"""Estimated wall time of the whole paper suite on one GPU, from measured throughput (issue 6).

Every pass of the pipeline runs all four models on each decoded image, so its time is images / (end-to-end
four-model rate). The workload is the paper's datasets at their docs/protocol.md sizes (§2.1, §4, §6, §9, §10) plus the
VTAB sources (docs/transfer.md §6). Resolution sweep points cost more than a 224 px image: they are weighted by the
number of input pixels, (r / 224)^2, a first-order model of the backbones' compute (ViT attention grows faster,
so large r is underestimated a little).

Usage: ``.venv/bin/python benchmarks/suite_estimate.py [--throughput benchmarks/throughput_cuda.json]
[--mode bf16] [--rate IMG_PER_S]``. Without a measured file, ``--rate`` gives the four-model rate directly.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

IMAGENET_VAL = 50_000
INVARIANCE_SCALES = 5  # §9.1: s in {1, 1.25, 1.5, 2, 3}, all fed at 224 px
INVARIANCE_SHIFTS = 5  # §9.2: d in {0, 5, 30, 75, 100}
INVARIANCE_RESOLUTIONS = (112, 224, 336, 512, 640)  # §9.3
VTAB_CLIPBENCH19_IMAGES = 1_762_520 - 108_753 + 60_000  # docs/transfer.md §6: vtab19 unique images, SUN397 -> CIFAR-10


def workload() -> list[tuple[str, float]]:
    """(pass, 224-px image equivalents per model) of the paper suite."""
    resolution_weight = sum((r / 224) ** 2 for r in INVARIANCE_RESOLUTIONS)
    return [
        ("ImageNet val (accuracy, calibration, ImageNet-X, ReaL)", IMAGENET_VAL),
        ("ImageNet-V2", 10_000),
        ("ImageNet-A", 7_500),
        ("ImageNet-R", 30_000),
        ("ImageNet-Sketch", 50_889),
        ("ImageNet-C (15 corruptions x 5 severities)", 75 * IMAGENET_VAL),
        ("ImageNet-Hard", 10_980),
        ("PUG-ImageNet", 88_328),
        ("cue-conflict", 1_280),
        ("invariance: scale + shift sweeps (10 points)", (INVARIANCE_SCALES + INVARIANCE_SHIFTS) * IMAGENET_VAL),
        ("invariance: resolution sweep (5 points, pixel-weighted)", resolution_weight * IMAGENET_VAL),
        ("CKA (10% of ImageNet val)", IMAGENET_VAL // 10),
        ("VTAB clipbench19 features", VTAB_CLIPBENCH19_IMAGES),
    ]


def four_model_rate(throughput: dict, mode: str) -> tuple[float, str]:
    """The measured end-to-end rate of the all-model pass in ``mode``, from benchmarks/throughput.py's JSON."""
    end_to_end = throughput.get("end_to_end", {})
    entry = end_to_end.get(mode)
    if not entry or "all_models" not in entry:
        raise SystemExit(f"no end-to-end all-model result for mode {mode!r}; have {sorted(end_to_end)}")
    machine = throughput.get("machine", {})
    return float(entry["all_models"]["images_per_s"]), f"{machine.get('device_name', '?')}, {mode} end-to-end"


def estimate(rate: float) -> tuple[list[tuple[str, float, float]], float]:
    """Rows (pass, image equivalents, seconds) and the total seconds at ``rate`` images/s (all models per image)."""
    rows = [(name, images, images / rate) for name, images in workload()]
    return rows, sum(seconds for _, _, seconds in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--throughput", type=Path, help="JSON written by benchmarks/throughput.py on the GPU")
    parser.add_argument("--mode", default="bf16", help="precision mode of the end-to-end pass (default bf16)")
    parser.add_argument("--rate", type=float, help="four-model end-to-end images/s, instead of a measured file")
    args = parser.parse_args(argv)
    if args.rate:
        rate, source = args.rate, "given rate"
    elif args.throughput:
        rate, source = four_model_rate(json.loads(args.throughput.read_text()), args.mode)
    else:
        parser.error("give --throughput FILE (from `make bench` on the GPU) or --rate IMG_PER_S")
    rows, total = estimate(rate)
    print(f"four models per image at {rate:,.0f} img/s ({source})")
    for name, images, seconds in rows:
        print(f"  {name:58s} {images:>12,.0f}  {seconds / 60:8.1f} min")
    print(f"  {'total':58s} {sum(r[1] for r in rows):>12,.0f}  {total / 60:8.1f} min ({total / 3600:.2f} h)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
