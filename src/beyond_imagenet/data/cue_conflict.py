"""The cue-conflict stimuli of Geirhos et al. (docs/protocol.md §6): the 16 categories, file names and layout.

``<root>/<shape>/<shape><i>-<texture><j>.png``, 16 shape folders of 80 images at 224 px. Each category maps to a
fixed list of ImageNet indices (207 in all, model-vs-human's ``human_categories.py``); the shape-bias metric
(``metrics.shape_bias``) decides between categories by the mean probability over these indices.
"""

from __future__ import annotations

import difflib
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from beyond_imagenet.base.errors import DatasetLayoutError, UserError

# The 207 ImageNet indices of the 16 categories (docs/protocol.md §6 table; model-vs-human `human_categories.py`).
CATEGORY_INDICES: dict[str, tuple[int, ...]] = {
    "airplane": (404,),
    "bear": (294, 295, 296, 297),
    "bicycle": (444, 671),
    "bird": (
        *(8, *range(10, 17), *range(18, 21), *range(22, 25), *range(80, 84), *range(87, 97)),
        *(*range(98, 101), *range(127, 134), *range(135, 146)),
    ),
    "boat": (472, 554, 625, 814, 914),
    "bottle": (440, 720, 737, 898, 899, 901, 907),
    "car": (436, 511, 817),
    "cat": tuple(range(281, 287)),
    "chair": (423, 559, 765, 857),
    "clock": (409, 530, 892),
    "dog": (
        *(*range(152, 192), *range(193, 204), *range(205, 227), *range(228, 242), *range(243, 251)),
        *(*range(252, 258), 259, *range(261, 264), *range(265, 269)),
    ),
    "elephant": (385, 386),
    "keyboard": (508, 878),
    "knife": (499,),
    "oven": (766,),
    "truck": (555, 569, 656, 675, 717, 734, 864, 867),
}
CATEGORIES: tuple[str, ...] = tuple(sorted(CATEGORY_INDICES))

CUE_CONFLICT_EXPECTED = 1280  # 16 folders x 80 images (docs/protocol.md §6)
CUE_CONFLICT_PER_CLASS = 80
CUE_CONFLICT_BYTES = 136_489_547  # total size of the 1,280 PNGs (docs/protocol.md §6, §13)
CUE_CONFLICT_SOURCE = (
    "github.com/bethgelab/model-vs-human/releases/download/v0.1/cue-conflict.tar.gz "
    "(or rgeirhos/texture-vs-shape stimuli/style-transfer-preprocessed-512/)"
)
_FILE_NAME = re.compile(r"^([a-z]+)(\d+)-([a-z]+)(\d+)\.png$")


class CueConflictEntry(NamedTuple):
    """One cue-conflict stimulus: its file and the shape and texture categories it combines (docs/protocol.md §6)."""

    path: Path
    shape: str
    texture: str


def check_category(name: str, what: str) -> str:
    """``name`` if it is one of the 16 categories, else a ``UserError`` naming ``what`` and the closest one."""
    if name not in CATEGORY_INDICES:
        close = difflib.get_close_matches(name, CATEGORIES, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise UserError(f"{what}: {name!r} is not one of the 16 cue-conflict categories {', '.join(CATEGORIES)}.{hint}")
    return name


def parse_cue_conflict_name(shape_folder: str, file_name: str) -> tuple[str, str]:
    """(shape, texture) of one stimulus, both checked against the 16 categories.

    Shape = parent folder; texture = text after the last '-', digits and extension removed (docs/protocol.md §6;
    model-vs-human ``get_texture_category``).
    """
    shape = check_category(shape_folder, f"cue-conflict folder of {file_name!r}")
    stem = file_name.split(".")[0]
    texture = "".join(c for c in stem.split("-")[-1] if not c.isdigit())
    return shape, check_category(texture, f"texture class parsed from {shape_folder}/{file_name}")


def _resolve_root(root: Path) -> Path:
    if not root.is_dir():
        raise DatasetLayoutError(
            f"cue-conflict folder {root} does not exist (or is not a folder); download it from {CUE_CONFLICT_SOURCE}"
        )
    if not (root / CATEGORIES[0]).is_dir() and (root / "cue-conflict").is_dir():
        return root / "cue-conflict"
    return root


def _check_folders(root: Path) -> None:
    folders = {p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")}
    unknown = sorted(folders - set(CATEGORIES))
    missing = sorted(set(CATEGORIES) - folders)
    if unknown or missing:
        raise DatasetLayoutError(
            f"{root}: expected the 16 cue-conflict class folders {', '.join(CATEGORIES)}; "
            f"unknown folders: {unknown or 'none'}, missing folders: {missing or 'none'}. "
            f"Point to the extracted cue-conflict/ folder from {CUE_CONFLICT_SOURCE}"
        )


def _scan_folder(folder: Path) -> list[CueConflictEntry]:
    entries, wrong = [], []
    for path in sorted(p for p in folder.iterdir() if not p.name.startswith(".")):
        match = _FILE_NAME.match(path.name)
        if not path.is_file() or match is None or match.group(1) != folder.name:
            wrong.append(path.name)
            continue
        entries.append(CueConflictEntry(path, *parse_cue_conflict_name(folder.name, path.name)))
    if wrong:
        raise DatasetLayoutError(
            f"{folder}: {len(wrong)} entries are not named <shape><i>-<texture><j>.png with shape "
            f"{folder.name!r} (first: {wrong[:5]}); remove them or re-extract the stimuli"
        )
    return entries


def scan_cue_conflict(root: str | Path) -> list[CueConflictEntry]:
    """(path, shape, texture) of every stimulus in ``root/<shape>/<shape><i>-<texture><j>.png``.

    Sorted by shape folder then file name (docs/protocol.md §2.1, §6). Accepts the folder holding ``cue-conflict/``
    too.
    """
    root = _resolve_root(Path(root))
    _check_folders(root)
    return [entry for shape in CATEGORIES for entry in _scan_folder(root / shape)]


def check_complete(entries: Sequence[CueConflictEntry]) -> None:
    """Raise unless ``entries`` is the full set: 1,280 images, 80 per class, 136,489,547 bytes (docs/protocol.md §6)."""
    if len(entries) != CUE_CONFLICT_EXPECTED:
        raise DatasetLayoutError(
            f"cue-conflict is incomplete: found {len(entries)} images, expected {CUE_CONFLICT_EXPECTED}; "
            f"download the full set from {CUE_CONFLICT_SOURCE}"
        )
    counts = Counter(e.shape for e in entries)
    off = {c: counts[c] for c in CATEGORIES if counts[c] != CUE_CONFLICT_PER_CLASS}
    if off:
        raise DatasetLayoutError(
            f"cue-conflict: expected {CUE_CONFLICT_PER_CLASS} images per class, found {off}; "
            f"re-extract the stimuli from {CUE_CONFLICT_SOURCE}"
        )
    total = sum(e.path.stat().st_size for e in entries)
    if total != CUE_CONFLICT_BYTES:
        raise DatasetLayoutError(
            f"cue-conflict: the 1,280 images total {total:,} bytes, expected {CUE_CONFLICT_BYTES:,}; the files "
            f"differ from the originals (re-encoded or resized?). Re-download them from {CUE_CONFLICT_SOURCE}"
        )
