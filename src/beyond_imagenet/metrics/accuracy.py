"""Top-1 / top-k accuracy on a dataset's label space (docs/protocol.md §2.3, §7.1).

Counted exactly in integers (torchmetrics returns float32, which prints 85.5 as 85.4999...); the tests check
these values against torchmetrics' ``multiclass_accuracy``.
"""

from __future__ import annotations

import numpy as np


def topk_correct(logits: np.ndarray, targets: np.ndarray, k: int) -> np.ndarray:
    """Per sample: is its target among the ``k`` largest logits (k capped at the class count)? Bool [N]."""
    logits = np.asarray(logits)
    targets = np.asarray(targets, dtype=np.int64)
    if len(targets) == 0:
        raise ValueError("accuracy of an empty set of predictions is undefined")
    k = min(k, logits.shape[1])
    target_logit = np.take_along_axis(logits, targets[:, None], axis=1)
    # rank = number of classes scoring strictly higher than the target; ties count in the target's favour,
    # matching argmax/top-k up to exact float ties (probability zero, docs/protocol.md §2.3).
    rank = (logits > target_logit).sum(axis=1)
    return rank < k


def topk_accuracy(logits: np.ndarray, targets: np.ndarray, k: int) -> float:
    """Percentage of samples whose target is among the ``k`` largest logits (k capped at the class count)."""
    correct = topk_correct(logits, targets, k)
    return 100.0 * int(correct.sum()) / len(correct)
