"""ImageNet-X's annotation files (docs/protocol.md §3): the 16 factors of variation per ImageNet val image.

The annotations ship in the ``imagenet-x==0.0.7`` wheel (facebookresearch/imagenetx, CC BY-NC 4.0); only its files
are read, its modules are never imported. Val images are joined by their original file names
(``ILSVRC2012_val_XXXXXXXX.JPEG``). The error ratios themselves are ``metrics.imagenet_x``.
"""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from beyond_imagenet.base.errors import UserError

FACTORS: tuple[str, ...] = (
    "pose",
    "background",
    "pattern",
    "color",
    "smaller",
    "shape",
    "partial_view",
    "subcategory",
    "texture",
    "larger",
    "darker",
    "object_blocking",
    "person_blocking",
    "style",
    "brighter",
    "multiple_objects",
)
N_IMAGENET_CLASSES = 1000
N_VAL_IMAGES = 50_000
VAL_NAME = re.compile(r"ILSVRC2012_val_(\d{8})\.JPEG")
PROTOTYPES_FILE = "prototypical_paths.csv"
VAL_LABELS_FILE = "filename_label.csv"
INSTALL_HINT = (
    "pip install imagenet-x==0.0.7 (its annotations are licensed CC BY-NC 4.0: non-commercial use only, "
    "docs/protocol.md §13)"
)


def annotations_dir() -> Path:
    """``imagenet_x/annotations`` of the installed package, located without importing it (§3 Inputs)."""
    spec = importlib.util.find_spec("imagenet_x")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise UserError(
            f"the imagenet-x package is not installed; ImageNet-X and ReaL need its annotations: {INSTALL_HINT}"
        )
    for location in locations:
        directory = Path(location) / "annotations"
        if directory.is_dir():
            return directory
    raise UserError(f"the imagenet-x package at {locations[0]} has no annotations/ folder; reinstall: {INSTALL_HINT}")


LIBRARY_SETTING = "directory"  # how a library caller names the folder; the analyses pass their params.yaml key


def _annotation_file(directory: Path, name: str, setting: str = LIBRARY_SETTING) -> Path:
    """``directory / name``, or a UserError naming the missing file and ``setting``, the option that chose it."""
    path = directory / name
    if not path.is_file():
        raise UserError(
            f"ImageNet-X annotation file {path} is missing: {directory} must hold the imagenet_x/annotations files "
            f"of imagenet-x 0.0.7 ({name} among them). Point {setting} at that folder, or leave it unset and "
            f"{INSTALL_HINT}."
        )
    return path


def _is_val_name(name: object) -> bool:
    """Whether ``name`` is an ImageNet val file name ``ILSVRC2012_val_XXXXXXXX.JPEG`` (1..50,000)."""
    match = VAL_NAME.fullmatch(name) if isinstance(name, str) else None
    return match is not None and 1 <= int(match.group(1)) <= N_VAL_IMAGES


def check_val_ids(sample_ids: Sequence[str], where: str) -> None:
    """Require unique ImageNet val base names ``ILSVRC2012_val_XXXXXXXX.JPEG`` (§2.1: keep original names)."""
    bad = [s for s in sample_ids if not _is_val_name(s)]
    if bad:
        raise UserError(
            f"{where}: {len(bad)} sample id(s) are not ImageNet val file names like ILSVRC2012_val_00000001.JPEG "
            f"(e.g. {', '.join(repr(b) for b in bad[:3])}). Run inference on the IN val folder that keeps the "
            "original file names (docs/protocol.md §2.1), with base names, not paths, as sample ids."
        )
    counts = pd.Series(list(sample_ids)).value_counts()
    duplicated = counts[counts > 1].index.tolist()
    if duplicated:
        raise UserError(f"{where}: {len(duplicated)} sample id(s) occur more than once (e.g. {duplicated[:3]})")


def load_annotations(
    which_factor: Literal["top", "multi"] = "top",
    partition: Literal["val", "train"] = "val",
    filter_prototypes: bool = True,
    directory: str | Path | None = None,
    setting: str = LIBRARY_SETTING,
) -> pd.DataFrame:
    """``file_name``, ``class`` and the 16 factor columns; prototypes dropped by exact file name (§3).

    ``setting`` names the option that chose ``directory`` in errors (the analysis: its params.yaml key).
    """
    if which_factor not in ("top", "multi") or partition not in ("val", "train"):
        raise UserError(
            f"unknown ImageNet-X annotation set which_factor={which_factor!r}, partition={partition!r}; "
            "use which_factor 'top' or 'multi' and partition 'val' or 'train'"
        )
    directory = annotations_dir() if directory is None else Path(directory)
    path = _annotation_file(directory, f"imagenet_x_{partition}_{which_factor}_factor.jsonl", setting)
    columns = ["file_name", "class", *FACTORS]
    with path.open(encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    frame = pd.DataFrame.from_records(rows)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise UserError(
            f"ImageNet-X annotation file {path} lacks columns {missing}; it is not an imagenet-x 0.0.7 file"
        )
    frame = frame[columns].astype({c: np.int64 for c in columns[1:]})
    if not frame["file_name"].is_unique:
        raise UserError(f"ImageNet-X annotation file {path} annotates some images more than once")
    if filter_prototypes:
        prototypes = pd.read_csv(_annotation_file(directory, PROTOTYPES_FILE, setting))
        frame = frame[~frame["file_name"].isin(prototypes["file_name"])]
    return frame.reset_index(drop=True)


def load_val_labels(directory: str | Path | None = None, setting: str = LIBRARY_SETTING) -> pd.Series:
    """Standard IN label of each of the 50,000 val images (``filename_label.csv``), indexed by file name."""
    directory = annotations_dir() if directory is None else Path(directory)
    frame = pd.read_csv(_annotation_file(directory, VAL_LABELS_FILE, setting))
    return frame.set_index("file_name")["label"].astype(np.int64)
