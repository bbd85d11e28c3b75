"""Write the world's whole test suite under one root, each set in a layout the pipeline reads (docs/world.md).

| folder | what | paper counterpart |
|---|---|---|
| ``val`` | the training world plus rare factors it never shows | ImageNet val, ImageNet-X |
| ``v2`` | the same recipe, new images | ImageNet-V2 |
| ``sketch``, ``rendition`` | the val scenes as outline drawings / flat clip art | ImageNet-Sketch / -R |
| ``corruptions/<c>/<s>`` | the val images under four ImageNet-C corruptions, severities 1-5 | ImageNet-C |
| ``rotation/<deg>`` | the same upright scenes turned by one angle (one factor at a time) | PUG-ImageNet |
| ``cue_conflict`` | one class's shape with another class's texture, filed by shape | Geirhos cue conflict |

Every set's ``factors.jsonl`` records the factors of each image (cue conflict: the texture's class is the index of
the recorded texture in ``TEXTURES``). The val
set's rare part (``rare_fraction`` of it) draws rotations from the whole circle and up to three objects, so the
ImageNet-X-style flags ``pose`` and ``multiple_objects`` have images; all other factors vary within the training world.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from beyond_imagenet.data.world.factors import WorldConfig, change
from beyond_imagenet.data.world.folders import write_image_folder
from beyond_imagenet.data.world.render import generate, render_all
from beyond_imagenet.data.world.testsets import CORRUPTIONS, corrupt, cue_conflict_factors, rendition, sketch

ROTATIONS = (0, 45, 90, 135, 180)


def test_world(train: WorldConfig) -> WorldConfig:
    """The rare factors of the val set: any rotation, up to three objects; everything else as in training."""
    return dataclasses.replace(train, rotation=(0.0, 360.0), max_objects=max(3, train.max_objects))


def _val(train: WorldConfig, n: int, seed: int, rare_fraction: float) -> tuple[np.ndarray, list]:
    n_rare = round(n * rare_fraction)
    common, common_factors = generate(train, n - n_rare, seed=seed)
    rare, rare_factors = generate(test_world(train), n_rare, seed=seed + 1)
    order = np.random.default_rng(seed).permutation(n)  # mixed, so no class folder holds only one part
    images = np.concatenate([common, rare])[order]
    factors = [(common_factors + rare_factors)[i] for i in order]
    return images, factors


def write_world_suite(root: Path, train: WorldConfig, n: int, seed: int, rare_fraction: float = 0.25) -> dict[str, int]:
    """Write every set of the table above under ``root`` (reruns with the same arguments rewrite nothing)."""
    root = Path(root)
    side = train.image_size
    images, factors = _val(train, n, seed, rare_fraction)
    labels = [f.label for f in factors]
    counts = {"val": len(write_image_folder(root / "val", images, labels, factors))}
    v2_images, v2_factors = _val(train, n, seed + 100, rare_fraction)
    counts["v2"] = len(write_image_folder(root / "v2", v2_images, [f.label for f in v2_factors], v2_factors))
    counts["sketch"] = len(write_image_folder(root / "sketch", sketch(factors, side), labels, factors))
    counts["rendition"] = len(write_image_folder(root / "rendition", rendition(factors, side, seed), labels, factors))
    for corruption in CORRUPTIONS:
        for severity in range(1, 6):
            folder = root / "corruptions" / corruption / str(severity)
            write_image_folder(folder, corrupt(images, corruption, severity, seed), labels, factors)
    counts["corruptions"] = len(CORRUPTIONS) * 5 * n
    scenes = generate(train, n, seed=seed + 200)[1]
    for angle in ROTATIONS:
        turned = [change(f, rotation=float(angle)) for f in scenes]
        write_image_folder(root / "rotation" / str(angle), render_all(turned, side), [f.label for f in turned], turned)
    counts["rotation"] = len(ROTATIONS) * n
    conflicts, shapes, _ = cue_conflict_factors(train, n, seed + 300)
    write_image_folder(root / "cue_conflict", render_all(conflicts, side), shapes, conflicts)
    counts["cue_conflict"] = n
    return counts
