"""Transformation-invariance metrics per sweep point (docs/protocol.md §9, paper Fig. 7).

The true class's mean softmax probability (the official code's ``correct_class_prob``) and prediction
consistency: the share of images whose top-1 prediction equals the one at the sweep's reference point.
"""

from __future__ import annotations

import numpy as np

from beyond_imagenet.metrics.accuracy import NO_PREDICTION


def true_class_probabilities(logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Per image: the softmax probability (float64, log-sum-exp) of its true class, in [0, 1]."""
    z = np.asarray(logits, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.int64)
    if len(targets) == 0:
        raise ValueError("the true-class probability of an empty set of predictions is undefined")
    z = z - z.max(axis=1, keepdims=True)
    log_p = np.take_along_axis(z, targets[:, None], axis=1)[:, 0] - np.log(np.exp(z).sum(axis=1))
    return np.exp(log_p)


def correct_class_probability(logits: np.ndarray, targets: np.ndarray) -> float:
    """Mean over images of the softmax probability of the true class, in [0, 1]."""
    return float(true_class_probabilities(logits, targets).mean())


def prediction_consistency(predictions: np.ndarray, reference: np.ndarray) -> float:
    """Percentage of images whose prediction equals the reference prediction (same images, same order).

    Predictions come from ``metrics.accuracy.top1_predictions``; a tied top-1 (``NO_PREDICTION``) is consistent
    with nothing, not even another tie (ties count as wrong, docs/protocol.md §2.3).
    """
    predictions, reference = np.asarray(predictions), np.asarray(reference)
    if predictions.shape != reference.shape or predictions.ndim != 1 or len(predictions) == 0:
        raise ValueError(f"need two equal, non-empty prediction vectors, got {predictions.shape} and {reference.shape}")
    same = (predictions == reference) & (predictions != NO_PREDICTION)
    return 100.0 * int(same.sum()) / len(predictions)
