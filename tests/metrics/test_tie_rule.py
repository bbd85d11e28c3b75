"""The one tie rule of top-k (docs/protocol.md §2.3 "Ties"): ties count as wrong, in every metric that predicts."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from beyond_imagenet.data.cue_conflict import CATEGORIES, CATEGORY_INDICES
from beyond_imagenet.metrics.accuracy import NO_PREDICTION, top1_predictions, topk_accuracy, topk_correct
from beyond_imagenet.metrics.calibration import softmax_confidence
from beyond_imagenet.metrics.imagenet_x import predictions_from_logits
from beyond_imagenet.metrics.invariance import prediction_consistency
from beyond_imagenet.metrics.probe import evaluate
from beyond_imagenet.metrics.pug import pug_correct
from beyond_imagenet.metrics.real import real_hits
from beyond_imagenet.metrics.robustness import multilabel_hits
from beyond_imagenet.metrics.shape_bias import NO_DECISION, category_decisions, decision_names, decisions_from_logits

# Hand-made: 4 classes, 5 rows. Row 0 has a unique top; row 1 ties the target with one class at the top;
# row 2 ties two other classes above the target; row 3 is all equal; row 4 ties the target for 2nd/3rd place.
TIED = np.array(
    [
        [4.0, 3.0, 2.0, 1.0],
        [2.0, 2.0, 1.0, 0.0],
        [3.0, 3.0, 1.0, 0.0],
        [1.0, 1.0, 1.0, 1.0],
        [5.0, 2.0, 2.0, 0.0],
    ]
)
TIED_TARGETS = np.array([0, 1, 2, 3, 1])


def test_golden_top1_predictions_and_topk_on_ties():
    np.testing.assert_array_equal(top1_predictions(TIED), [0, NO_PREDICTION, NO_PREDICTION, NO_PREDICTION, 0])
    # classes scoring >= the target's logit, the target included: 1, 2, 3, 4, 3
    expected = {
        1: [True, False, False, False, False],
        2: [True, True, False, False, False],
        3: [True, True, True, False, True],
        4: [True, True, True, True, True],
    }
    for k, correct in expected.items():
        np.testing.assert_array_equal(topk_correct(TIED, TIED_TARGETS, k), correct)
    assert topk_accuracy(TIED, TIED_TARGETS, 1) == 20.0
    assert topk_accuracy(TIED, TIED_TARGETS, 2) == 40.0
    assert topk_accuracy(TIED, TIED_TARGETS, 3) == 80.0


def test_one_hot_logits_on_a_wrong_class_are_not_top5():
    """The issue's case: one-hot logits made top-5 100% because the 999 tied zeros counted for the target."""
    targets = np.arange(20) * 37 % 1000
    logits = np.zeros((20, 1000), dtype=np.float32)
    logits[np.arange(20), (targets + 1) % 1000] = 1.0  # every row sure of the wrong class
    assert topk_accuracy(logits, targets, 5) == 0.0
    assert topk_accuracy(logits, targets, 1) == 0.0
    logits[:10] = 0.0  # all-zero rows: a 1000-way tie, no class is predicted
    logits[10:, :] = 0.0
    logits[np.arange(10, 20), targets[10:]] = 1.0  # confident and right
    assert topk_accuracy(logits, targets, 5) == 50.0
    assert topk_accuracy(logits, targets, 1000) == 100.0  # k = C: every class is in the top-C


def test_top1_is_argmax_and_topk_is_sorting_when_nothing_ties():
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(400, 50)).astype(np.float32)
    targets = rng.integers(0, 50, 400)
    np.testing.assert_array_equal(top1_predictions(logits), logits.argmax(axis=1))
    torch_top5 = torch.topk(torch.from_numpy(logits), 5, dim=1).indices.numpy()
    np.testing.assert_array_equal(topk_correct(logits, targets, 5), (torch_top5 == targets[:, None]).any(axis=1))


def test_rule_does_not_depend_on_class_order():
    rng = np.random.default_rng(5)
    logits = rng.integers(0, 3, size=(300, 8)).astype(np.float64)  # many ties
    targets = rng.integers(0, 8, 300)
    permutation = rng.permutation(8)
    inverse = np.argsort(permutation)
    for k in (1, 2, 5):
        np.testing.assert_array_equal(
            topk_correct(logits, targets, k), topk_correct(logits[:, permutation], inverse[targets], k)
        )


def test_every_metric_agrees_on_top1_of_tied_logits():
    """Accuracy, calibration, ImageNet-X, ReaL, multi-label (Hard), PUG, probes and consistency: one rule."""
    rng = np.random.default_rng(11)
    n = 200
    logits = np.zeros((n, 1000), dtype=np.float32)
    targets = rng.integers(0, 1000, n)
    top = rng.integers(0, 3, (n, 3))  # the target and two rivals share the top in about a third of the rows
    rivals = (targets[:, None] + np.array([[1, 2]])) % 1000
    logits[np.arange(n), targets] = 5.0 + top[:, 0]
    logits[np.arange(n)[:, None], rivals] = 5.0 + top[:, 1:]
    reference = topk_correct(logits, targets, 1)
    assert 0 < reference.sum() < n and (top1_predictions(logits) == NO_PREDICTION).any()
    ids = [f"ILSVRC2012_val_{i:08d}.JPEG" for i in range(1, n + 1)]
    _, prediction = softmax_confidence(logits)
    np.testing.assert_array_equal(prediction == targets, reference)
    frame = predictions_from_logits(logits, ids)
    np.testing.assert_array_equal(frame["predicted_class"].to_numpy() == targets, reference)
    predicted = top1_predictions(logits)
    hit, _ = real_hits(predicted, ids, {s: [int(t)] for s, t in zip(ids, targets, strict=True)})
    np.testing.assert_array_equal(hit, reference)
    np.testing.assert_array_equal(multilabel_hits(predicted, [[int(t)] for t in targets])[0], reference)
    class_map = {f"c{i:04d}": [i] for i in range(1000)}  # PUG label i = ImageNet index i
    for variant in ("official", "corrected"):
        np.testing.assert_array_equal(pug_correct(predicted, targets, class_map, variant), reference)
    probe_top1 = evaluate(torch.from_numpy(logits), torch.from_numpy(targets), 1000)["top1"]
    assert probe_top1 == pytest.approx(100 * reference.mean())
    assert prediction_consistency(predicted, predicted) == pytest.approx(100 * (predicted != NO_PREDICTION).mean())


def test_shape_bias_tie_is_no_decision():
    probabilities = np.full((2, 1000), 1e-3)
    probabilities[1, CATEGORY_INDICES["knife"][0]] = 0.5  # row 0: all 16 means equal; row 1: knife wins
    decisions = category_decisions(probabilities)
    assert decisions[0] == NO_PREDICTION and CATEGORIES[decisions[1]] == "knife"
    assert decision_names(decisions) == [NO_DECISION, "knife"]


@pytest.mark.parametrize("batch", [1, 2, 7, 64])
def test_shape_bias_tie_does_not_depend_on_the_batch_size(batch):
    """Equal logits tie in every batch: the category means' rounding (order 1e-14) is not a difference."""
    logits = np.zeros((batch, 1000))
    assert (decisions_from_logits(logits) == NO_PREDICTION).all()
    logits[:, CATEGORY_INDICES["dog"]] = 1e-6  # a real (small) difference still decides
    assert [CATEGORIES[d] for d in decisions_from_logits(logits)] == ["dog"] * batch
