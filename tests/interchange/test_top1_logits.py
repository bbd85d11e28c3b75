"""Logits rebuilt from a top-1 class and probability: the softmax gives back exactly what the CSV said."""

from __future__ import annotations

import numpy as np
import pytest

from beyond_imagenet.inference.interchange.top1_logits import FLOOR_LOGIT, top1_logits
from beyond_imagenet.metrics.accuracy import NO_PREDICTION, top1_predictions
from beyond_imagenet.metrics.imagenet_x import predictions_from_logits


def val_ids(n: int) -> list[str]:
    return [f"ILSVRC2012_val_{i + 1:08d}.JPEG" for i in range(n)]


def test_hand_computed_rows():
    logits = top1_logits(np.array([3, 999, 0]), np.array([1.0, 0.5, 0.25]), n_classes=1000)
    assert logits.dtype == np.float32 and logits.shape == (3, 1000)
    assert logits[0, 3] == 0.0 and (np.delete(logits[0], 3) == FLOOR_LOGIT).all()  # p = 1: nothing elsewhere
    # p = 1/2: the other 999 columns hold e^z summing to 1, each below the class's logit 0
    assert logits[1, 999] == 0.0 and np.delete(logits[1], 999).max() < 0
    assert np.exp(np.delete(logits[1], 999).astype(np.float64)).sum() == pytest.approx(1.0, abs=1e-15)
    bulk = np.float32(np.log(1 / 997))  # 997 columns share log(S / 997) (rounded down), S = 1
    assert np.all(logits[1, :997] <= bulk) and np.all(logits[1, :997] == logits[1, 0])
    assert logits[2, 0] == 0.0 and logits[2, 1:].max() < 0  # S = 3 for p = 1/4


def test_softmax_reproduces_probability_to_float64_precision():
    rng = np.random.default_rng(0)
    classes = rng.integers(0, 1000, 5000)
    edges = [1.0, 1 - 1e-16, 1 - 1e-12, 0.999999, 0.5, 0.002, 0.0011, 0.00100001, 0.0010000001]
    probabilities = np.concatenate([rng.uniform(0.001, 1.0, 5000 - len(edges) - 2), edges, [0.9, 0.3]])
    classes[-2:] = [998, 999]  # the remainder columns move aside for the last two classes
    predictions = predictions_from_logits(top1_logits(classes, probabilities), val_ids(5000))
    assert (predictions["predicted_class"].to_numpy() == classes).all()
    np.testing.assert_allclose(predictions["predicted_probability"], probabilities, rtol=1e-12, atol=2e-15)


def test_a_tied_top1_is_rebuilt_as_a_tie():
    probabilities = np.array([0.5, 0.3, 0.001])
    logits = top1_logits(np.full(3, NO_PREDICTION), probabilities)
    assert (top1_predictions(logits) == NO_PREDICTION).all()
    assert (logits[:, :2] == 0).all() and (logits[:2, 2:] < 0).all()
    shifted = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    np.testing.assert_allclose(1.0 / np.exp(shifted).sum(axis=1), probabilities, rtol=1e-12)
