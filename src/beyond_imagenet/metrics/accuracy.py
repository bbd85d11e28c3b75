"""Top-1 / top-k accuracy on a dataset's label space, and the one tie rule (docs/protocol.md §2.3, §7.1).

Tie rule (docs/protocol.md §2.3, "Ties"): **ties count as wrong**. The target is in the top-k only if at most
``k`` classes, the target included, score at least as high as the target; a top-1 prediction exists only where
the maximum is unique (:func:`top1_predictions` gives :data:`NO_PREDICTION` elsewhere). Every analysis that
turns scores into a prediction or a hit calls these two functions, so they agree on every cache.

Counted exactly in integers (torchmetrics returns float32, which prints 85.5 as 85.4999...); the tests check
these values against torchmetrics' ``multiclass_accuracy`` on tie-free logits.
"""

from __future__ import annotations

import numpy as np

NO_PREDICTION = -1
"""The top-1 "class" of a row whose maximum is shared: equal to no label, so it is always wrong."""


def _scores(scores: np.ndarray) -> np.ndarray:
    """``scores`` as a 2-D ``[N, C]`` array with at least one class, or ValueError."""
    scores = np.asarray(scores)
    if scores.ndim != 2 or scores.shape[1] == 0:
        raise ValueError(f"scores must be a 2-D [N, C] array with C >= 1, got shape {scores.shape}")
    return scores


def top1_predictions(scores: np.ndarray) -> np.ndarray:
    """Per row the index of the unique largest score, or ``NO_PREDICTION`` (-1) where it is shared. Int64 [N].

    Ties count as wrong (docs/protocol.md §2.3): a tied maximum names no class, so it never matches a label,
    whichever of the tied classes the label is; a row with a NaN names none either. Where the maximum is unique
    this is ``argmax``. ``scores`` are logits, probabilities or any per-class score (compared within a row).
    """
    scores = _scores(scores)
    top = scores.argmax(axis=1)
    best = np.take_along_axis(scores, top[:, None], axis=1)
    undecided = ((scores == best).sum(axis=1) > 1) | np.isnan(scores).any(axis=1)
    return np.where(undecided, NO_PREDICTION, top).astype(np.int64)


def topk_correct(logits: np.ndarray, targets: np.ndarray, k: int) -> np.ndarray:
    """Per sample: is its target among the ``k`` largest logits (k capped at the class count)? Bool [N].

    Ties count as wrong (docs/protocol.md §2.3): the target counts only if at most ``k`` classes, itself
    included, score ``>=`` its logit, i.e. it is in the top-k under every way of breaking the ties. For
    ``k = 1`` this is exactly ``top1_predictions(logits) == targets``. One-hot logits on a wrong class
    therefore score 0 at every k < C, not 100%.
    """
    logits = _scores(logits)
    targets = np.asarray(targets, dtype=np.int64)
    if len(targets) == 0:
        raise ValueError("accuracy of an empty set of predictions is undefined")
    k = min(k, logits.shape[1])
    target_logit = np.take_along_axis(logits, targets[:, None], axis=1)
    at_least = (logits >= target_logit).sum(axis=1)  # the target and every class tied with or above it
    return (at_least <= k) & ~np.isnan(logits).any(axis=1)  # a NaN row is never a hit


def topk_accuracy(logits: np.ndarray, targets: np.ndarray, k: int) -> float:
    """Percentage of samples whose target is among the ``k`` largest logits (ties count as wrong, k capped)."""
    correct = topk_correct(logits, targets, k)
    return 100.0 * int(correct.sum()) / len(correct)
