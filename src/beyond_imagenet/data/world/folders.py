"""The world's test sets on disk, in the layouts the pipeline reads (docs/world.md): class folders of lossless PNGs.

``<root>/<shape>/<index>.png`` is an ``image_folder`` dataset with ``label_space: custom`` whose class names are the
shapes, which a world model trained by ``train-world`` (``classes=`` its class file) scores directly. Next to the
images, ``factors.jsonl`` holds each image's recorded factors (one JSON object per line, with its file), the
ground truth of every per-factor analysis. Files are written only when their bytes change, so a rerun is a no-op.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from beyond_imagenet.base.files import write_if_changed
from beyond_imagenet.data.vtab.writers import encode_png
from beyond_imagenet.data.world.factors import SHAPES, ImageFactors

FACTORS_FILE = "factors.jsonl"


def _written_pngs(root: Path) -> list[str]:
    """The PNGs of a folder in this layout: ``<shape>/<name>.png`` for the world's shapes only."""
    return [p.relative_to(root).as_posix() for shape in SHAPES for p in (root / shape).glob("*.png")]


def write_image_folder(
    root: Path, images: np.ndarray, labels: Sequence[int], factors: Sequence[ImageFactors] | None = None
) -> list[str]:
    """Write ``images`` under ``root/<SHAPES[label]>/<index>.png`` (and ``factors.jsonl``); the relative paths.

    PNGs of the layout that this call did not write (an earlier suite's, filed under other labels) are removed,
    so the folder holds exactly this set.
    """
    root = Path(root)
    names = []
    for index, (image, label) in enumerate(zip(images, labels, strict=True)):
        name = f"{SHAPES[int(label)]}/{index:05d}.png"
        write_if_changed(root / name, encode_png(image))
        names.append(name)
    for stale in sorted(set(_written_pngs(root)) - set(names)):  # from an earlier suite with other labels
        (root / stale).unlink()
    if factors is not None:
        lines = [json.dumps({"file": n, **f.as_dict()}, sort_keys=True) for n, f in zip(names, factors, strict=True)]
        write_if_changed(root / FACTORS_FILE, ("\n".join(lines) + "\n").encode())
    return names


def read_factors(root: Path) -> dict[str, ImageFactors]:
    """``factors.jsonl`` of a written folder: relative file name -> its factors."""
    rows = (json.loads(line) for line in (Path(root) / FACTORS_FILE).read_text().splitlines() if line)
    return {row["file"]: ImageFactors.from_dict(row) for row in rows}
