"""Calibration metrics and plots (PROTOCOL §5, paper Fig. 4): reference, golden values, invariants, plots.

Edge semantics versus torchmetrics 1.9 (``functional/classification/calibration_error.py``):
torchmetrics bins with ``torch.bucketize(conf, linspace(0, 1, n_bins + 1), right=True) - 1``, i.e. LEFT-CLOSED
``edges[i] <= conf < edges[i + 1]``, and gives conf == 1.0 an extra bin of its own (index ``n_bins``; its
histograms have ``n_bins + 1`` entries). It also casts confidences to float32 before binning. We follow the
paper's official code: LEFT-OPEN ``edges[i] < conf <= edges[i + 1]``, with 1.0 in the last of ``n_bins``
bins. The two agree whenever no confidence sits exactly on an edge, so the random comparisons below drop
samples within 1e-6 of an edge (far above float32 rounding); ``test_torchmetrics_differs_on_exact_edges``
pins the difference down on the golden example.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from beyond_imagenet.base.compat import import_torchvision
from beyond_imagenet.figures.calibration import CalibrationPanel, save_calibration_figure
from beyond_imagenet.metrics.calibration import (
    CalibrationBins,
    bin_indices,
    calibration_bins,
    ece_from_bins,
    expected_calibration_error,
    softmax_confidence,
    top1_accuracy,
)

import_torchvision()  # torchmetrics imports torchvision; the CPU box needs the op-schema shim first
from torchmetrics.functional.classification import multiclass_calibration_error  # noqa: E402

# ---------------------------------------------------------------------------------------------------------
# Golden example, n_bins = 4, edges [0, 0.25, 0.5, 0.75, 1] (all dyadic, so float compares are exact).
#
#   conf   correct  our bin (left-open)      torchmetrics bin (left-closed, 1.0 separate)
#   1.0    1        3  (0.75, 1]              4  {1.0}
#   1.0    0        3                         4
#   0.75   1        2  (0.5, 0.75]  on edge   3  [0.75, 1)
#   0.5    0        1  (0.25, 0.5]  on edge   2  [0.5, 0.75)
#   0.375  1        1                         1
#   0.625  0        2                         2
#   0.875  1        3                         3
#
# Ours:  bin 0 empty
#        bin 1 {0.5 F, 0.375 T}:          acc 1/2, conf 0.4375,  |gap| 0.0625, prop 2/7
#        bin 2 {0.75 T, 0.625 F}:         acc 1/2, conf 0.6875,  |gap| 0.1875, prop 2/7
#        bin 3 {1 T, 1 F, 0.875 T}:       acc 2/3, conf 2.875/3, |gap| 0.875/3, prop 3/7
#        ECE = (2*0.0625 + 2*0.1875 + 0.875) / 7 = 1.375 / 7
# torchmetrics: bin 1 {0.375 T}: |1 - 0.375| * 1/7;  bin 2 {0.5 F, 0.625 F}: 0.5625 * 2/7;
#        bin 3 {0.75 T, 0.875 T}: 0.1875 * 2/7;     bin 4 {1 T, 1 F}: 0.5 * 2/7
#        ECE = (0.625 + 1.125 + 0.375 + 1.0) / 7 = 3.125 / 7
# ---------------------------------------------------------------------------------------------------------
GOLDEN_CONF = np.array([1.0, 1.0, 0.75, 0.5, 0.375, 0.625, 0.875])
GOLDEN_CORRECT = np.array([True, False, True, False, True, False, True])
GOLDEN_ECE = 1.375 / 7
GOLDEN_ECE_TORCHMETRICS = 3.125 / 7


def _random_logits(seed: int, n: int, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Logits with a spread of sharpness, and targets that agree with the argmax about 60% of the time."""
    rng = np.random.default_rng(seed)
    scale = rng.uniform(0.2, 6.0, size=(n, 1))
    logits = rng.normal(size=(n, n_classes)) * scale
    target = np.where(rng.random(n) < 0.6, logits.argmax(axis=1), rng.integers(0, n_classes, size=n))
    return logits, target


def _off_edge(conf: np.ndarray, n_bins: int, margin: float = 1e-6) -> np.ndarray:
    """Mask of confidences at least ``margin`` away from every bin edge."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return np.abs(conf[:, None] - edges[None, :]).min(axis=1) > margin


# --- against torchmetrics --------------------------------------------------------------------------------


@pytest.mark.parametrize("n_classes", [2, 10, 200, 1000])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ece_matches_torchmetrics(seed: int, n_classes: int) -> None:
    logits, target = _random_logits(seed, 2000, n_classes)
    conf, pred = softmax_confidence(logits)
    keep = _off_edge(conf, 15)
    assert keep.mean() > 0.95  # drops few samples (2 classes: some conf round to 1.0 in float32)
    logits, target, conf, pred = logits[keep], target[keep], conf[keep], pred[keep]
    probs = torch.softmax(torch.from_numpy(logits), dim=1)  # float64; torchmetrics casts conf to float32
    expected = multiclass_calibration_error(
        probs, torch.from_numpy(target), num_classes=n_classes, n_bins=15, norm="l1"
    ).item()
    ours = expected_calibration_error(conf, pred == target, n_bins=15)
    assert ours == pytest.approx(expected, abs=1e-6)
    assert ours > 0.0


def test_torchmetrics_differs_on_exact_edges() -> None:
    # Four classes so that a max prob of 0.375 is possible; the argmax is class 0 in every row.
    probs = np.array([[c, (1 - c) / 3, (1 - c) / 3, (1 - c) / 3] for c in GOLDEN_CONF])
    target = np.where(GOLDEN_CORRECT, 0, 1)
    tm = multiclass_calibration_error(
        torch.from_numpy(probs), torch.from_numpy(target), num_classes=4, n_bins=4, norm="l1"
    ).item()
    assert tm == pytest.approx(GOLDEN_ECE_TORCHMETRICS, abs=1e-6)
    assert expected_calibration_error(probs.max(axis=1), GOLDEN_CORRECT, n_bins=4) == pytest.approx(
        GOLDEN_ECE, abs=1e-15
    )


# --- golden values ---------------------------------------------------------------------------------------


def test_golden_bins_and_ece() -> None:
    bins = calibration_bins(GOLDEN_CONF, GOLDEN_CORRECT, n_bins=4)
    np.testing.assert_array_equal(bins.edges, [0.0, 0.25, 0.5, 0.75, 1.0])
    np.testing.assert_array_equal(bins.counts, [0, 2, 2, 3])
    assert bins.counts.dtype == np.int64
    np.testing.assert_array_equal(bins.accuracy, [np.nan, 0.5, 0.5, 2 / 3])
    np.testing.assert_allclose(bins.confidence, [np.nan, 0.4375, 0.6875, 2.875 / 3], rtol=1e-15)
    np.testing.assert_allclose(bins.proportion, [0.0, 2 / 7, 2 / 7, 3 / 7], rtol=1e-15)
    assert bins.n == 7 and bins.n_bins == 4
    assert ece_from_bins(bins) == pytest.approx(GOLDEN_ECE, abs=1e-15)
    assert expected_calibration_error(GOLDEN_CONF, GOLDEN_CORRECT, n_bins=4) == pytest.approx(GOLDEN_ECE, abs=1e-15)


def test_exact_edges_land_in_the_lower_bin() -> None:
    # 0.5 is an exact edge for n_bins=2 -> bin 0 (left-open); for n_bins=15 it is inside (7/15, 8/15]: bin 7.
    assert calibration_bins(np.array([0.5]), np.array([True]), n_bins=2).counts.tolist() == [1, 0]
    assert int(np.argmax(calibration_bins(np.array([0.5]), np.array([True]), n_bins=15).counts)) == 7
    # n_bins=5: linspace gives exactly 0.2, 0.4, 0.8 (0.6 is 0.6000000000000001, so 0.6 sits just below it).
    edges5 = np.linspace(0, 1, 6)
    assert (edges5[1], edges5[2], edges5[4]) == (0.2, 0.4, 0.8) and edges5[3] != 0.6
    conf = np.array([0.2, 0.4, 0.6, 0.8, 1.0])
    np.testing.assert_array_equal(bin_indices(conf, edges5), [0, 1, 2, 3, 4])
    # Every edge of the default 15 bins, taken from linspace itself, goes to the bin below it; the next float
    # up goes to the bin above.
    edges15 = np.linspace(0, 1, 16)
    np.testing.assert_array_equal(bin_indices(edges15[1:], edges15), np.arange(15))
    np.testing.assert_array_equal(bin_indices(np.nextafter(edges15[1:-1], 2.0), edges15), np.arange(1, 15))


def test_zero_confidence_goes_to_bin_zero() -> None:
    bins = calibration_bins(np.array([0.0, 0.25, 0.3]), np.array([False, True, True]), n_bins=4)
    np.testing.assert_array_equal(bins.counts, [2, 1, 0, 0])
    # bin 0: acc 1/2, conf 0.125 -> 2/3 * 0.375; bin 1: acc 1, conf 0.3 -> 1/3 * 0.7
    assert ece_from_bins(bins) == pytest.approx(2 / 3 * 0.375 + 1 / 3 * 0.7, abs=1e-15)


def test_to_dict_is_json_with_none_for_empty_bins() -> None:
    d = calibration_bins(GOLDEN_CONF, GOLDEN_CORRECT, n_bins=4).to_dict()
    assert json.loads(json.dumps(d, allow_nan=False)) == d
    assert d["accuracy"][0] is None and d["confidence"][0] is None
    assert d["counts"] == [0, 2, 2, 3] and d["n"] == 7 and d["n_bins"] == 4
    assert d["edges"] == [0.0, 0.25, 0.5, 0.75, 1.0]


def test_bins_are_read_only() -> None:
    bins = calibration_bins(GOLDEN_CONF, GOLDEN_CORRECT, n_bins=4)
    assert isinstance(bins, CalibrationBins)
    with pytest.raises(ValueError):
        bins.counts[0] = 5


# --- invariants ------------------------------------------------------------------------------------------


def test_perfectly_calibrated_construction_is_zero() -> None:
    # In each used bin the confidence equals the fraction correct exactly: 1/4, 1/2, 3/4, 1.
    conf = np.repeat([0.25, 0.5, 0.75, 1.0], [4, 2, 4, 3])
    correct = np.array([1, 0, 0, 0, 1, 0, 1, 1, 1, 0, 1, 1, 1], dtype=bool)  # 1 of 4, 1 of 2, 3 of 4, 3 of 3
    assert expected_calibration_error(conf, correct) == 0.0


def test_bernoulli_sampled_labels_are_nearly_calibrated() -> None:
    rng = np.random.default_rng(0)
    conf = rng.uniform(0.05, 1.0, size=200_000)
    correct = rng.random(conf.size) < conf
    assert expected_calibration_error(conf, correct) < 0.01


def test_extreme_cases() -> None:
    ones = np.ones(10)
    assert expected_calibration_error(ones, np.ones(10, dtype=bool)) == 0.0
    assert expected_calibration_error(ones, np.zeros(10, dtype=bool)) == 1.0
    assert expected_calibration_error(np.zeros(3), np.ones(3, dtype=int)) == 1.0


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_ece_in_unit_interval_and_permutation_invariant(seed: int) -> None:
    rng = np.random.default_rng(seed)
    conf = rng.beta(0.3, 0.3, size=500)  # mass piled near 0 and 1
    correct = rng.random(500) < 0.5
    ece = expected_calibration_error(conf, correct)
    assert 0.0 <= ece <= 1.0
    perm = rng.permutation(500)
    assert expected_calibration_error(conf[perm], correct[perm]) == pytest.approx(ece, abs=1e-14)
    # Invariant to n_bins=1 reducing to |accuracy - mean confidence|.
    assert expected_calibration_error(conf, correct, n_bins=1) == pytest.approx(
        abs(correct.mean() - conf.mean()), abs=1e-14
    )


def test_top1_accuracy() -> None:
    assert top1_accuracy(np.array([0, 1, 2, 3]), np.array([0, 1, 0, 0])) == 0.5
    assert top1_accuracy(np.array([7]), np.array([7])) == 1.0
    with pytest.raises(ValueError, match="length"):
        top1_accuracy(np.array([0, 1]), np.array([0]))
    with pytest.raises(ValueError, match="at least one"):
        top1_accuracy(np.array([]), np.array([]))


# --- bad input -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("conf", "correct", "n_bins", "message"),
    [
        ([0.5, np.nan], [1, 0], 15, "NaN"),
        ([0.5, np.inf], [1, 0], 15, "NaN or infinite"),
        ([0.5, 1.0000001], [1, 0], 15, r"\[0, 1\]"),
        ([-0.1, 0.5], [1, 0], 15, r"\[0, 1\]"),
        ([0.5, 0.6], [1], 15, "length"),
        ([], [], 15, "at least one sample"),
        ([[0.5]], [[1]], 15, "1-D"),
        ([0.5], [2], 15, "only 0 and 1"),
        ([0.5], [1], 0, "n_bins"),
        ([0.5], [1], 2.5, "n_bins"),
    ],
)
def test_bad_input_raises(conf: list, correct: list, n_bins: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        calibration_bins(np.array(conf, dtype=float), np.array(correct), n_bins=n_bins)
    with pytest.raises(ValueError, match=message):
        expected_calibration_error(np.array(conf, dtype=float), np.array(correct), n_bins=n_bins)


# --- softmax ---------------------------------------------------------------------------------------------


def test_softmax_confidence_matches_torch() -> None:
    logits, _ = _random_logits(5, 300, 37)
    conf, pred = softmax_confidence(logits.astype(np.float32))
    ref_conf, ref_pred = torch.softmax(torch.from_numpy(logits.astype(np.float32)).double(), dim=1).max(dim=1)
    np.testing.assert_allclose(conf, ref_conf.numpy(), rtol=1e-13)
    np.testing.assert_array_equal(pred, ref_pred.numpy())
    assert conf.dtype == np.float64 and pred.dtype == np.int64


def test_softmax_confidence_is_stable_for_huge_logits() -> None:
    logits = np.array([[1e4, 0.0, -1e4], [1e4, 1e4, 0.0], [-1e4, -1e4 + np.log(3.0), -1e4], [3e38, 0.0, -3e38]])
    conf, pred = softmax_confidence(logits)
    assert np.isfinite(conf).all()
    np.testing.assert_allclose(conf, [1.0, 0.5, 3 / 5, 1.0], rtol=1e-12)
    np.testing.assert_array_equal(pred, [0, -1, 1, 0])  # row 1 ties at the top: no prediction (§2.3)


def test_softmax_confidence_single_class_and_bad_shapes() -> None:
    conf, pred = softmax_confidence(np.array([[2.0], [-5.0]]))
    np.testing.assert_array_equal(conf, [1.0, 1.0])
    np.testing.assert_array_equal(pred, [0, 0])
    with pytest.raises(ValueError, match="2-D"):
        softmax_confidence(np.zeros(5))
    with pytest.raises(ValueError, match="at least one class"):
        softmax_confidence(np.zeros((3, 0)))
    with pytest.raises(ValueError, match="NaN or infinite"):
        softmax_confidence(np.array([[0.0, np.nan], [1.0, 2.0]]))


# --- plots -----------------------------------------------------------------------------------------------


def _panel(model: str, seed: int) -> CalibrationPanel:
    logits, target = _random_logits(seed, 500, 10)
    conf, pred = softmax_confidence(logits)
    bins = calibration_bins(conf, pred == target)
    return CalibrationPanel(
        model=model,
        bins=bins,
        ece=ece_from_bins(bins),
        accuracy=top1_accuracy(pred, target),
        mean_confidence=float(conf.mean()),
    )


def test_save_calibration_figure_one_and_four_panels(tmp_path) -> None:
    one = save_calibration_figure([_panel("vit_sup", 0)], tmp_path / "one" / "vit_sup.png", "IN val")
    four_panels = [_panel(m, i) for i, m in enumerate(["vit_sup", "convnext_sup", "vit_clip", "convnext_clip"])]
    four = save_calibration_figure(four_panels, str(tmp_path / "all.png"), "IN val")
    assert one == tmp_path / "one" / "vit_sup.png" and four == tmp_path / "all.png"
    sizes = {}
    for path in (one, four):
        assert path.stat().st_size > 0
        with Image.open(path) as img:
            assert img.format == "PNG"
            img.verify()
            sizes[path] = img.size
    (w1, h1), (w4, h4) = sizes[one], sizes[four]
    assert w1 > 0 and h1 > 0
    assert w4 > w1 and h4 == h1
    # Atomic write leaves no temp files behind.
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["all.png", "vit_sup.png"]


def test_save_calibration_figure_handles_empty_bins_and_rejects_no_panels(tmp_path) -> None:
    bins = calibration_bins(GOLDEN_CONF, GOLDEN_CORRECT)  # most of the 15 bins are empty
    panel = CalibrationPanel("golden", bins, ece_from_bins(bins), 4 / 7, float(GOLDEN_CONF.mean()))
    out = save_calibration_figure([panel], tmp_path / "golden.png", "golden")
    with Image.open(out) as img:
        assert img.size[0] > 0
    with pytest.raises(ValueError, match="at least one panel"):
        save_calibration_figure([], tmp_path / "none.png", "none")
