"""PUG-ImageNet accuracy per factor subset and their unweighted average (docs/protocol.md §4, paper Fig. 3).

The top-1 over all 1000 ImageNet logits (ties count as wrong, §2.3) is mapped to a PUG class. ``official``:
through the inverse map of ``class_to_imagenet_idx.json`` as in ``inference/pug_imagenet.py`` of the official
code, where an ImageNet index listed by two classes belongs only to the later-sorted one (IN 841 -> ``Sweatshirt``,
so no ``Shirt`` image is ever correct). ``corrected``: correct when the prediction is in the true class's index
list (docs/protocol.md §12.8).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from beyond_imagenet.base.errors import UnknownNameError, UserError
from beyond_imagenet.data.pug import PUG_FACTORS, validate_class_map
from beyond_imagenet.metrics.accuracy import NO_PREDICTION

VARIANTS: tuple[str, ...] = ("official", "corrected")
# The official code writes 999 for unmapped predictions; that equals no PUG label (0..150), so any value outside
# the class range is equivalent. We use -1, which stays wrong whatever the number of classes.
UNMAPPED = -1


def official_inverse_map(class_map: Mapping[str, Sequence[int]]) -> np.ndarray:
    """[1000] ImageNet index -> PUG label; on duplicates the later-sorted class wins; ``UNMAPPED`` (-1) elsewhere."""
    class_map = validate_class_map(class_map, "PUG class map")
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
            "top-1 over all 1000 ImageNet logits (metrics.accuracy.top1_predictions) and the PUG labels"
        )
    checks = (("predicted ImageNet indices", pred, NO_PREDICTION, 1000), ("PUG labels", true, 0, n_classes))
    for what, arr, lo, hi in checks:
        if arr.size and (not np.issubdtype(arr.dtype, np.integer) or arr.min() < lo or arr.max() >= hi):
            tie = f" ({NO_PREDICTION}: a tied top-1, docs/protocol.md §2.3)" if lo < 0 else ""
            raise UserError(f"PUG: {what} must be integers in {lo}..{hi - 1}{tie}")
    return pred.astype(np.int64), true.astype(np.int64)


def pug_correct(
    pred_imagenet: np.ndarray,
    true_pug: np.ndarray,
    class_map: Mapping[str, Sequence[int]],
    variant: str = "official",
) -> np.ndarray:
    """Per-image correctness (docs/protocol.md §4 Metric) under the ``official`` or ``corrected`` label map.

    ``official`` via the inverse map, ``corrected`` via membership of the prediction in the true class's index list.
    Unmapped predictions and tied top-1s (``NO_PREDICTION``, docs/protocol.md §2.3) are wrong in both.
    """
    class_map = validate_class_map(class_map, "PUG class map")
    pred, true = _check_predictions(pred_imagenet, true_pug, len(class_map))
    decided = pred != NO_PREDICTION
    safe = np.where(decided, pred, 0)  # any valid column; undecided rows are masked out below
    if variant == "official":
        return decided & (official_inverse_map(class_map)[safe] == true)
    if variant == "corrected":
        member = np.zeros((len(class_map), 1000), dtype=bool)
        for label, name in enumerate(sorted(class_map)):
            member[label, np.asarray(class_map[name], dtype=np.int64)] = True
        return decided & member[true, safe]
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
