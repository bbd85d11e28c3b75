"""PUG-ImageNet accuracy per factor subset and their unweighted average (PROTOCOL §4, paper Fig. 3).

The argmax over all 1000 ImageNet logits is mapped to a PUG class. ``official``: through the inverse map of
``class_to_imagenet_idx.json`` as in ``inference/pug_imagenet.py`` of the official code, where an ImageNet index
listed by two classes belongs only to the later-sorted one (IN 841 -> ``Sweatshirt``, so no ``Shirt`` image is
ever correct). ``corrected``: correct when the prediction is in the true class's index list (PROTOCOL §12.8).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from beyond_imagenet.errors import UnknownNameError, UserError

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
VARIANTS: tuple[str, ...] = ("official", "corrected")
CLASS_MAP_FILE = "class_to_imagenet_idx.json"
CLASS_MAP_SOURCE = "github.com/facebookresearch/PUG, folder PUG_ImageNet/"
# The official code writes 999 for unmapped predictions; that equals no PUG label (0..150), so any value outside
# the class range is equivalent. We use -1, which stays wrong whatever the number of classes.
UNMAPPED = -1


def _validate_class_map(raw: object, source: str) -> dict[str, list[int]]:
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
    """Read ``class_to_imagenet_idx.json``: PUG class name -> ImageNet indices (PROTOCOL §4 Label mapping)."""
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
    return _validate_class_map(raw, str(path))


def pug_class_index(class_map: Mapping[str, Sequence[int]]) -> dict[str, int]:
    """PUG class name -> label: position in Python ``sorted()`` order (case-sensitive, = ImageFolder order)."""
    return {name: i for i, name in enumerate(sorted(class_map))}


def pug_targets(class_names: Sequence[str], class_map: Mapping[str, Sequence[int]]) -> np.ndarray:
    """Labels of images given their class-folder names. Use this rather than a per-subset ImageFolder index,
    which shifts if a subset lacks a class; folder names must equal the JSON keys exactly (PROTOCOL §4)."""
    index = pug_class_index(class_map)
    for name in sorted(set(class_names)):
        if name not in index:
            raise UnknownNameError("PUG class folder", name, index)
    return np.array([index[name] for name in class_names], dtype=np.int64)


def official_inverse_map(class_map: Mapping[str, Sequence[int]]) -> np.ndarray:
    """[1000] ImageNet index -> PUG label; on duplicates the later-sorted class wins; ``UNMAPPED`` (-1) elsewhere."""
    class_map = _validate_class_map(class_map, "PUG class map")
    inverse = np.full(1000, UNMAPPED, dtype=np.int64)
    for label, name in enumerate(sorted(class_map)):
        inverse[np.asarray(class_map[name], dtype=np.int64)] = label
    return inverse


def _check_predictions(
    pred_imagenet: np.ndarray, true_pug: np.ndarray, n_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    pred = np.asarray(pred_imagenet)
    true = np.asarray(true_pug)
    if pred.ndim != 1 or pred.shape != true.shape:
        raise UserError(
            f"PUG: predictions {pred.shape} and labels {true.shape} must be 1-D and of equal length; pass the "
            "argmax over all 1000 ImageNet logits and the PUG labels"
        )
    for what, arr, hi in (("predicted ImageNet indices", pred, 1000), ("PUG labels", true, n_classes)):
        if arr.size and (not np.issubdtype(arr.dtype, np.integer) or arr.min() < 0 or arr.max() >= hi):
            raise UserError(f"PUG: {what} must be integers in 0..{hi - 1}")
    return pred.astype(np.int64), true.astype(np.int64)


def pug_correct(
    pred_imagenet: np.ndarray,
    true_pug: np.ndarray,
    class_map: Mapping[str, Sequence[int]],
    variant: str = "official",
) -> np.ndarray:
    """Per-image correctness (PROTOCOL §4 Metric): ``official`` via the inverse map, ``corrected`` via membership
    of the prediction in the true class's index list. Unmapped predictions are wrong in both."""
    class_map = _validate_class_map(class_map, "PUG class map")
    pred, true = _check_predictions(pred_imagenet, true_pug, len(class_map))
    if variant == "official":
        return official_inverse_map(class_map)[pred] == true
    if variant == "corrected":
        member = np.zeros((len(class_map), 1000), dtype=bool)
        for label, name in enumerate(sorted(class_map)):
            member[label, np.asarray(class_map[name], dtype=np.int64)] = True
        return member[true, pred]
    raise UnknownNameError("PUG scoring variant", variant, VARIANTS)


def pug_accuracies(
    per_subset: Mapping[str, tuple[np.ndarray, np.ndarray]],
    class_map: Mapping[str, Sequence[int]],
    variant: str = "official",
) -> dict[str, float]:
    """Top-1 % per factor subset, in ``PUG_FACTORS`` order, plus ``average`` = unweighted mean of the 10."""
    for name in per_subset:
        if name not in PUG_FACTORS:
            raise UnknownNameError("PUG subset", name, PUG_FACTORS)
    missing = [f for f in PUG_FACTORS if f not in per_subset]
    if missing:
        raise UserError(f"PUG: subsets {missing} are missing; the average needs all 10: {', '.join(PUG_FACTORS)}")
    result = {}
    for factor in PUG_FACTORS:
        correct = pug_correct(*per_subset[factor], class_map, variant)
        if correct.size == 0:
            raise UserError(f"PUG: subset {factor} has no images; check <root>/{factor}/")
        result[factor] = 100.0 * int(correct.sum()) / correct.size
    result["average"] = float(np.mean([result[f] for f in PUG_FACTORS]))
    return result
