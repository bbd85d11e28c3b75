"""Write the whole offline demo under one root (``beyond-imagenet make-demo-data``)."""

from __future__ import annotations

from pathlib import Path

import timm.data

from beyond_imagenet.data.cue_conflict import CATEGORIES
from beyond_imagenet.data.demo import DEMO_CLASS_INDICES, stand_ins
from beyond_imagenet.data.demo.imagenet_val import generate_demo_split
from beyond_imagenet.data.demo.real_images import copy_cue_conflict_sample, copy_weights, write_photos
from beyond_imagenet.data.demo.vtab import make_demo_vtab
from beyond_imagenet.data.imagenet_x import FACTORS
from beyond_imagenet.data.kinds import IMAGENET_C_CORRUPTIONS, IMAGENET_C_SEVERITIES
from beyond_imagenet.data.label_space import imagenet_wnids
from beyond_imagenet.data.pug import PUG_FACTORS


def make_demo_val(root: Path, images_per_class: int, seed: int) -> list[Path]:
    """The ImageNet-val-format stand-in ``<root>/val``: ``images_per_class`` JPEGs in each of the 10 demo classes."""
    wnids = [imagenet_wnids()[i] for i in DEMO_CLASS_INDICES]
    return generate_demo_split(root / "val", wnids, images_per_class, seed)


def make_stand_ins(root: Path, val_files: list[Path], seed: int) -> dict[str, int]:
    """Stand-ins for every other test set of the paper, in their real formats; returns images per set."""
    wnids = [imagenet_wnids()[i] for i in DEMO_CLASS_INDICES]
    indices = {p.name: imagenet_wnids().index(p.parent.name) for p in val_files}
    info = Path(timm.data.__file__).parent / "_info"
    counts = {
        "imagenet_v2": stand_ins.write_class_folders(
            root / "imagenet_v2", [str(i) for i in DEMO_CLASS_INDICES], 8, seed + 1, "JPEG", "jpeg"
        ),
        "imagenet_sketch": stand_ins.write_class_folders(
            root / "imagenet_sketch", wnids, 8, seed + 2, "JPEG", "JPEG", stand_ins.sketchify
        ),
    }
    for name, offset in (("imagenet_a", 3), ("imagenet_r", 4)):
        official = (info / f"{name}_synsets.txt").read_text().split()[::20][:10]
        counts[name] = stand_ins.write_class_folders(root / name, official, 8, seed + offset, "JPEG", "jpg")
    counts["imagenet_c"] = stand_ins.write_imagenet_c(
        root / "imagenet_c", wnids, 1, seed + 5, IMAGENET_C_CORRUPTIONS, IMAGENET_C_SEVERITIES
    )
    counts["imagenet_hard"] = stand_ins.write_imagenet_hard(
        root / "imagenet_hard", list(DEMO_CLASS_INDICES), 4, seed + 10
    )
    counts["pug_imagenet"] = stand_ins.write_pug(root / "pug_imagenet", PUG_FACTORS, 3, seed + 6)
    counts["cue_conflict"] = stand_ins.write_cue_conflict(root / "cue_conflict", list(CATEGORIES), 5, seed + 7)
    stand_ins.write_real_labels(root / "real.json", list(indices), indices, seed + 8)
    stand_ins.write_imagenet_x(root / "imagenet_x", indices, FACTORS, seed + 9)
    return counts


def make_real_part(root: Path) -> str:
    """The real images and weights of the real-model study (``real_images``); one summary line."""
    stimuli = copy_cue_conflict_sample(root / "cue_conflict_real")
    photos = write_photos(root / "photos")
    weights = copy_weights(root / "weights")
    return (
        f"real images (CC BY 4.0 / scikit-image): {stimuli} cue-conflict stimuli under {root / 'cue_conflict_real'}, "
        f"photos: {photos}; real weights: {weights}"
    )


def make_demo_data(root: Path, seed: int, images_per_class: int, val_only: bool = False) -> list[str]:
    """Write the demo under ``root``; returns one summary line per part written."""
    val_files = make_demo_val(root, images_per_class, seed)
    lines = [f"demo data: {len(val_files)} images in {len(DEMO_CLASS_INDICES)} ImageNet classes under {root / 'val'}"]
    if val_only:
        return lines
    counts = make_stand_ins(root, val_files, seed)
    shown = ", ".join(f"{k} {v}" for k, v in counts.items())
    lines.append(f"demo stand-ins (not real images): {shown}; real.json and imagenet_x/ annotations")
    lines.append(make_real_part(root))
    vtab = make_demo_vtab(root / "vtab", seed + 10)
    total = sum(sum(splits.values()) for splits in vtab.values())
    lines.append(
        f"VTAB stand-ins: {len(vtab)} image sources, {total} images (tfds-parquet layout) under {root / 'vtab'}"
    )
    return lines
