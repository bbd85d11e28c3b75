"""Shape / texture bias on the cue-conflict stimuli (PROTOCOL §6, paper Fig. 5).

1000-way softmax -> 16 categories by the **mean** probability over each category's ImageNet indices -> decision.
Shape bias = S / (S + T) over the cue-conflict images (shape != texture); decisions matching neither are ignored.
This follows bethgelab/model-vs-human (``ImageNetProbabilitiesTo16ClassesMapping``, ``analyses.ShapeBias``).
"""

from __future__ import annotations

import difflib
import math
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from beyond_imagenet.errors import DatasetLayoutError, NonFiniteLogitsError, UserError

# The 207 ImageNet indices of the 16 categories (PROTOCOL §6 table; model-vs-human `human_categories.py`).
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

CUE_CONFLICT_EXPECTED = 1280  # 16 folders x 80 images (PROTOCOL §6)
CUE_CONFLICT_PER_CLASS = 80
CUE_CONFLICT_BYTES = 136_489_547  # total size of the 1,280 PNGs (PROTOCOL §6, §13)
CUE_CONFLICT_SOURCE = (
    "github.com/bethgelab/model-vs-human/releases/download/v0.1/cue-conflict.tar.gz "
    "(or rgeirhos/texture-vs-shape stimuli/style-transfer-preprocessed-512/)"
)
_FILE_NAME = re.compile(r"^([a-z]+)(\d+)-([a-z]+)(\d+)\.png$")


class CueConflictEntry(NamedTuple):
    path: Path
    shape: str
    texture: str


def _check_category(name: str, what: str) -> str:
    if name not in CATEGORY_INDICES:
        close = difflib.get_close_matches(name, CATEGORIES, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise UserError(f"{what}: {name!r} is not one of the 16 cue-conflict categories {', '.join(CATEGORIES)}.{hint}")
    return name


def parse_cue_conflict_name(shape_folder: str, file_name: str) -> tuple[str, str]:
    """(shape, texture) of one stimulus: shape = parent folder; texture = text after the last '-', digits and
    extension removed (PROTOCOL §6; model-vs-human ``get_texture_category``)."""
    shape = _check_category(shape_folder, f"cue-conflict folder of {file_name!r}")
    stem = file_name.split(".")[0]
    texture = "".join(c for c in stem.split("-")[-1] if not c.isdigit())
    return shape, _check_category(texture, f"texture class parsed from {shape_folder}/{file_name}")


def _check_rows(values: np.ndarray, what: str) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or values.shape[1] != 1000:
        raise UserError(f"shape bias needs [N, 1000] ImageNet {what}, got an array of shape {values.shape}")
    bad = np.flatnonzero(~np.isfinite(values).all(axis=1))
    if bad.size:
        raise NonFiniteLogitsError(f"{bad.size} rows have NaN/inf {what} (first rows: {bad[:5].tolist()})")
    return values


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64 (PROTOCOL §6 step 1)."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def category_probabilities(probabilities: np.ndarray) -> np.ndarray:
    """[N, 16] arithmetic mean of the 1000-way probabilities over each category's indices (PROTOCOL §6 step 2)."""
    p = _check_rows(probabilities, "probabilities")
    return np.stack([p[:, list(CATEGORY_INDICES[c])].mean(axis=1) for c in CATEGORIES], axis=1)


def category_decisions(probabilities: np.ndarray) -> np.ndarray:
    """[N] index into ``CATEGORIES`` of the category with the highest mean probability (PROTOCOL §6 step 3)."""
    return category_probabilities(probabilities).argmax(axis=1)


def decisions_from_logits(logits: np.ndarray) -> np.ndarray:
    """``category_decisions`` of the float64 softmax of [N, 1000] logits (CLIP: the zero-shot head's logits)."""
    return category_decisions(softmax(_check_rows(logits, "logits")))


def decision_names(decisions: np.ndarray) -> list[str]:
    """Category names of decision indices."""
    return [CATEGORIES[int(i)] for i in np.asarray(decisions).ravel()]


def _bias_counts(decisions: np.ndarray, shapes: np.ndarray, textures: np.ndarray) -> dict:
    conflict = shapes != textures
    s = int((decisions[conflict] == shapes[conflict]).sum())
    t = int((decisions[conflict] == textures[conflict]).sum())
    defined = s + t > 0
    return {
        "shape_bias": s / (s + t) if defined else math.nan,
        "shape_bias_defined": defined,
        "n_shape_decisions": s,
        "n_texture_decisions": t,
        "n_other_decisions": int(conflict.sum()) - s - t,
        "n_conflict": int(conflict.sum()),
    }


def shape_bias(decisions: Sequence[str], shapes: Sequence[str], textures: Sequence[str]) -> dict:
    """Pooled and per-shape-class shape bias (PROTOCOL §6 Metric; Fig. 5 dashed line and markers).

    Images with shape == texture are excluded; S + T == 0 gives NaN with ``shape_bias_defined`` False.
    ``fraction_correct_*`` divide by all images (model-vs-human); ``accuracy_16`` = decision == shape over all.
    """
    if not (len(decisions) == len(shapes) == len(textures)):
        raise UserError(
            f"shape_bias: {len(decisions)} decisions, {len(shapes)} shapes and {len(textures)} textures; "
            "pass one decision per stimulus, in the order of scan_cue_conflict()"
        )
    if len(decisions) == 0:
        raise UserError("shape_bias: no stimuli given; scan the cue-conflict folder first")
    for what, names in (("decision", decisions), ("shape", shapes), ("texture", textures)):
        for name in sorted(set(names)):
            _check_category(name, f"shape_bias {what}")
    d, s, t = (np.asarray(x, dtype=object) for x in (decisions, shapes, textures))
    n_all = len(d)
    result = _bias_counts(d, s, t)
    result |= {
        "texture_bias": 1.0 - result["shape_bias"],
        "fraction_correct_shape": result["n_shape_decisions"] / n_all,
        "fraction_correct_texture": result["n_texture_decisions"] / n_all,
        "accuracy_16": int((d == s).sum()) / n_all,
        "n_images": n_all,
        "n_excluded": n_all - result["n_conflict"],
    }
    result["per_class"] = {c: _bias_counts(d[s == c], s[s == c], t[s == c]) for c in CATEGORIES if (s == c).any()}
    return result


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
    """(path, shape, texture) of every stimulus in ``root/<shape>/<shape><i>-<texture><j>.png`` (PROTOCOL §2.1,
    §6), sorted by shape folder then file name. Accepts the folder holding ``cue-conflict/`` too."""
    root = _resolve_root(Path(root))
    _check_folders(root)
    return [entry for shape in CATEGORIES for entry in _scan_folder(root / shape)]


def check_complete(entries: Sequence[CueConflictEntry]) -> None:
    """Raise unless ``entries`` is the full set: 1,280 images, 80 per class, 136,489,547 bytes (PROTOCOL §6)."""
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
