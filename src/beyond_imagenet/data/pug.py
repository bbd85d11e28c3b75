"""PUG-ImageNet's layout facts (docs/protocol.md §4): its 10 factor subsets and its class map.

``<root>/<Factor>/<PUGClass>/<image>`` plus ``class_to_imagenet_idx.json`` (PUG class name -> ImageNet indices).
PUG labels are positions in the sorted class names, never a per-subset folder index. Scoring is
``metrics.pug``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from beyond_imagenet.base.errors import UnknownNameError, UserError

PUG_FACTORS: tuple[str, ...] = (
    "Worlds",
    "Camera_Pitch",
    "Camera_Yaw",
    "Camera_Roll",
    "Object_Pitch",
    "Object_Yaw",
    "Object_Roll",
    "Object_Scale",
    "Object_Texture",
    "Scene_Light",
)
CLASS_MAP_FILE = "class_to_imagenet_idx.json"
CLASS_MAP_SOURCE = "github.com/facebookresearch/PUG, folder PUG_ImageNet/"


def validate_class_map(raw: object, source: str) -> dict[str, list[int]]:
    """The class map as ``{name: [indices]}`` after checking every entry; bad entries raise ``UserError``."""
    if not isinstance(raw, Mapping) or not raw:
        raise UserError(f"{source}: expected a non-empty JSON object {{PUG class name: [ImageNet indices]}}")
    for name, indices in raw.items():
        ok = isinstance(indices, (list, tuple)) and len(indices) > 0
        ok = ok and all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i < 1000 for i in indices)
        if not ok:
            raise UserError(
                f"{source}: class {name!r} maps to {indices!r}; each class needs a non-empty list of ImageNet "
                f"indices in 0..999. Use the unmodified file from {CLASS_MAP_SOURCE}"
            )
    return {name: list(indices) for name, indices in raw.items()}


def load_class_map(path: str | Path) -> dict[str, list[int]]:
    """Read ``class_to_imagenet_idx.json``: PUG class name -> ImageNet indices (docs/protocol.md §4 Label mapping)."""
    path = Path(path)
    if path.is_dir():
        path = path / CLASS_MAP_FILE
    if not path.is_file():
        raise UserError(f"PUG class map {path} not found; put {CLASS_MAP_FILE} from {CLASS_MAP_SOURCE} there")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(
            f"PUG class map {path} is not valid JSON ({err}); re-download it from {CLASS_MAP_SOURCE}"
        ) from err
    return validate_class_map(raw, str(path))


def pug_class_index(class_map: Mapping[str, Sequence[int]]) -> dict[str, int]:
    """PUG class name -> label: position in Python ``sorted()`` order (case-sensitive, = ImageFolder order)."""
    return {name: i for i, name in enumerate(sorted(class_map))}


def pug_targets(class_names: Sequence[str], class_map: Mapping[str, Sequence[int]]) -> np.ndarray:
    """Labels of images given their class-folder names.

    Use this rather than a per-subset ImageFolder index, which shifts if a subset lacks a class; folder names must
    equal the JSON keys exactly (docs/protocol.md §4).
    """
    index = pug_class_index(class_map)
    for name in sorted(set(class_names)):
        if name not in index:
            raise UnknownNameError("PUG class folder", name, index)
    return np.array([index[name] for name in class_names], dtype=np.int64)
