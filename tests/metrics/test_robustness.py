"""Robustness metrics (PROTOCOL §7, §11.2; TRANSFER §5.2): golden values, a reference fit and invariances."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image
from scipy import stats

from beyond_imagenet.base.errors import UserError
from beyond_imagenet.figures.robustness import save_robustness_figure
from beyond_imagenet.metrics.robustness import (
    ALEXNET_ERRORS,
    IMAGENET_C_CORRUPTIONS,
    TABLE2_COLUMNS,
    TABLE2_SHIFTS,
    average_robustness,
    effective_robustness,
    effective_robustness_ratio,
    fit_effective_robustness_line,
    imagenet_c_summary,
    multilabel_top1_accuracy,
    robustness_table,
    table2_average,
)

# PROTOCOL §11.2: paper Table 2 (INet-Val, V2, A, C, Hard, R, Sketch, Real) and the printed Average.
TABLE2 = {
    "vit_sup": ((85.5, 76.2, 60.0, 59.8, 28.5, 61.6, 46.1, 89.2), 60.2),
    "convnext_sup": ((85.5, 75.6, 52.9, 66.8, 29.4, 62.3, 48.6, 89.5), 60.7),
    "vit_clip": ((67.0, 59.5, 33.2, 40.8, 5.5, 77.8, 52.3, 74.3), 49.1),
    "convnext_clip": ((66.3, 58.6, 30.9, 39.0, 5.8, 75.8, 52.0, 73.8), 48.0),
}


def _accs(model: str) -> dict[str, float]:
    values, _ = TABLE2[model]
    return dict(zip(("imagenet_val", *TABLE2_SHIFTS), values, strict=True))


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


# ---------------------------------------------------------------------------------------------- Table 2 average


@pytest.mark.parametrize("model", list(TABLE2))
def test_table2_average_matches_paper(model: str) -> None:
    assert table2_average(_accs(model)) == pytest.approx(TABLE2[model][1], abs=0.05)


def test_table2_average_vit_sup_exact_sum() -> None:
    assert table2_average(_accs("vit_sup")) == pytest.approx(421.4 / 7, abs=1e-12)


def test_table2_average_excludes_imagenet_val_and_extra_keys() -> None:
    acc = _accs("convnext_clip")
    base = table2_average(acc)
    assert table2_average({**acc, "imagenet_val": 0.0, "imagenet_x": 3.0}) == base
    assert table2_average({k: v for k, v in acc.items() if k != "imagenet_val"}) == base


def test_table2_average_missing_set_raises_naming_it() -> None:
    acc = _accs("vit_sup")
    del acc["imagenet_hard"]
    with pytest.raises(UserError, match="imagenet_hard"):
        table2_average(acc)


def test_table2_average_suggests_misspelling() -> None:
    acc = _accs("vit_sup")
    acc["imagenet_skech"] = acc.pop("imagenet_sketch")
    with pytest.raises(UserError, match="'imagenet_skech' -> 'imagenet_sketch'"):
        table2_average(acc)


@pytest.mark.parametrize("bad", [float("nan"), 101.0, -1.0, "60"])
def test_table2_average_rejects_bad_values(bad: object) -> None:
    with pytest.raises(UserError, match="imagenet_a"):
        table2_average({**_accs("vit_sup"), "imagenet_a": bad})


def test_average_robustness_janus_subset() -> None:
    acc = _accs("vit_clip")
    janus = ("imagenet_v2", "imagenet_sketch", "imagenet_r", "imagenet_a")
    assert average_robustness(acc, janus) == pytest.approx((59.5 + 52.3 + 77.8 + 33.2) / 4, abs=1e-12)
    with pytest.raises(UserError, match="at least one"):
        average_robustness(acc, ())
    with pytest.raises(UserError, match="objectnet"):
        average_robustness(acc, ("imagenet_v2", "objectnet"))


def test_robustness_table_layout_and_averages() -> None:
    rows = robustness_table({m: _accs(m) for m in TABLE2})
    assert [r["model"] for r in rows] == list(TABLE2)
    for row in rows:
        assert tuple(row) == TABLE2_COLUMNS
        assert row["average"] == pytest.approx(TABLE2[row["model"]][1], abs=0.05)
        assert row["imagenet_val"] == TABLE2[row["model"]][0][0]
    with pytest.raises(UserError, match=r"'vit_sup'.*'imagenet_val'"):
        robustness_table({"vit_sup": {k: v for k, v in _accs("vit_sup").items() if k != "imagenet_val"}})
    with pytest.raises(UserError, match="at least one"):
        robustness_table({})


# ---------------------------------------------------------------------------------------------- ERR


@pytest.mark.parametrize(
    ("model", "expected"),
    [("vit_sup", 0.704), ("convnext_sup", 0.710), ("vit_clip", 0.733), ("convnext_clip", 0.724)],
)
def test_effective_robustness_ratio_paper_rows(model: str, expected: float) -> None:
    values, average = TABLE2[model]
    assert round(effective_robustness_ratio(average, values[0]), 3) == expected


def test_effective_robustness_ratio_janus_from_scratch() -> None:
    err = effective_robustness_ratio(0.279, 0.693)
    assert round(err, 2) == 0.40
    assert err == pytest.approx(0.402, abs=1e-3)


@pytest.mark.parametrize(("ar", "acc_id"), [(50.0, 0.0), (-1.0, 60.0), (float("inf"), 60.0), (50.0, None)])
def test_effective_robustness_ratio_rejects_bad_input(ar: float, acc_id: object) -> None:
    with pytest.raises(UserError):
        effective_robustness_ratio(ar, acc_id)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------- effective robustness

BASELINE_ID = [55.0, 60.0, 65.0, 70.0, 75.0, 85.0]


def test_fit_recovers_known_logit_line() -> None:
    slope, intercept = 0.9, -0.5
    shift = [100.0 * _sigmoid(slope * _logit(a / 100.0) + intercept) for a in BASELINE_ID]
    fit = fit_effective_robustness_line(BASELINE_ID, shift)
    assert fit.slope == pytest.approx(0.9, abs=1e-12)
    assert fit.intercept == pytest.approx(-0.5, abs=1e-12)
    for a, s in zip(BASELINE_ID, shift, strict=True):
        assert effective_robustness(a, s, *fit) == pytest.approx(0.0, abs=1e-9)


def test_effective_robustness_hand_computation() -> None:
    # Line slope 1, intercept -ln 2: predicted fraction = p / (2 - p) in closed form (80 % -> 2/3).
    shift = [100.0 * (a / 100.0) / (2.0 - a / 100.0) for a in BASELINE_ID]
    slope, intercept = fit_effective_robustness_line(BASELINE_ID, shift)
    assert slope == pytest.approx(1.0, abs=1e-12)
    assert intercept == pytest.approx(-math.log(2.0), abs=1e-12)
    assert effective_robustness(80.0, 70.0, slope, intercept) == pytest.approx(70.0 - 200.0 / 3.0, abs=1e-9)
    assert effective_robustness(80.0, 70.0, slope, intercept) == pytest.approx(3.333333333, abs=1e-8)
    assert effective_robustness(80.0, 60.0, slope, intercept) == pytest.approx(-6.666666667, abs=1e-8)


def test_fit_matches_scipy_linregress_and_polyfit() -> None:
    rng = np.random.default_rng(0)
    acc_id = rng.uniform(55.0, 88.0, size=20)
    logit_shift = 1.07 * np.log(acc_id / (100.0 - acc_id)) - 2.37 + rng.normal(0.0, 0.15, size=20)
    acc_shift = 100.0 / (1.0 + np.exp(-logit_shift))
    fit = fit_effective_robustness_line(acc_id.tolist(), acc_shift.tolist())
    x = np.log(acc_id / 100.0 / (1.0 - acc_id / 100.0))
    y = np.log(acc_shift / 100.0 / (1.0 - acc_shift / 100.0))
    ref = stats.linregress(x, y)
    assert fit.slope == pytest.approx(ref.slope, rel=1e-12)
    assert fit.intercept == pytest.approx(ref.intercept, rel=1e-12)
    poly_slope, poly_intercept = np.polyfit(x, y, 1)
    assert fit.slope == pytest.approx(poly_slope, rel=1e-9)
    assert fit.intercept == pytest.approx(poly_intercept, rel=1e-9)
    assert fit.slope == pytest.approx(1.07, abs=0.15)


def test_fit_refuses_too_few_baselines() -> None:
    four = BASELINE_ID[:4]
    with pytest.raises(UserError, match=r"at least 5 .*got 4.*published imagenet-testbed fit"):
        fit_effective_robustness_line(four, [a - 10.0 for a in four])
    fit = fit_effective_robustness_line(four[:3], [a - 10.0 for a in four[:3]], min_models=3)
    assert fit.slope > 0
    with pytest.raises(UserError, match="min_models"):
        fit_effective_robustness_line(four[:2], [50.0, 55.0], min_models=2)


@pytest.mark.parametrize(
    ("ids", "shifts", "message"),
    [
        (BASELINE_ID, BASELINE_ID[:-1], "pair them"),
        ([0.55, 0.6, 0.65, 0.7, 0.75], [0.4, 0.45, 0.5, 0.55, 0.6], "fractions"),
        ([0.0, *BASELINE_ID[1:]], BASELINE_ID, r"baseline_id_acc\[0\].*strictly between 0 and 100"),
        (BASELINE_ID, [100.0, *BASELINE_ID[1:]], r"baseline_shift_acc\[0\]"),
        ([70.0] * 5, [50.0, 51.0, 52.0, 53.0, 54.0], "same ID accuracy"),
    ],
)
def test_fit_rejects_bad_baselines(ids: list[float], shifts: list[float], message: str) -> None:
    with pytest.raises(UserError, match=message):
        fit_effective_robustness_line(ids, shifts)


def test_effective_robustness_rejects_bad_input() -> None:
    with pytest.raises(UserError, match="acc_id"):
        effective_robustness(100.0, 50.0, 1.0, 0.0)
    with pytest.raises(UserError, match="acc_shift"):
        effective_robustness(80.0, 150.0, 1.0, 0.0)
    with pytest.raises(UserError, match="slope"):
        effective_robustness(80.0, 50.0, float("nan"), 0.0)
    assert effective_robustness(80.0, 0.0, 1.0, 0.0) == pytest.approx(-80.0, abs=1e-9)  # IN-A 0 % is valid


# ---------------------------------------------------------------------------------------------- ImageNet-C

SEVERITY_OFFSETS = (-2.0, -1.0, 0.0, 1.0, 2.0)


def _c_table(per_corruption: dict[str, float], offsets: tuple[float, ...] = SEVERITY_OFFSETS) -> dict:
    return {(c, s): per_corruption[c] + offsets[s - 1] for c in IMAGENET_C_CORRUPTIONS for s in range(1, 6)}


def test_imagenet_c_mean_accuracy_exact() -> None:
    means = {c: 30.0 + 2.0 * i for i, c in enumerate(IMAGENET_C_CORRUPTIONS)}  # 30, 32, ..., 58 -> mean 44
    summary = imagenet_c_summary(_c_table(means))
    assert summary["mean_accuracy"] == pytest.approx(44.0, abs=1e-12)
    assert summary["per_corruption_accuracy"]["brightness"] == pytest.approx(30.0, abs=1e-12)
    assert summary["per_corruption_accuracy"]["zoom_blur"] == pytest.approx(58.0, abs=1e-12)
    assert list(summary["per_corruption_accuracy"]) == list(IMAGENET_C_CORRUPTIONS)


def test_imagenet_c_mce_of_alexnet_is_100() -> None:
    means = {c: 100.0 * (1.0 - ALEXNET_ERRORS[c]) for c in IMAGENET_C_CORRUPTIONS}
    summary = imagenet_c_summary(_c_table(means, offsets=(0.0,) * 5))
    assert summary["mce"] == pytest.approx(100.0, abs=1e-9)
    assert all(v == pytest.approx(100.0, abs=1e-9) for v in summary["corruption_errors"].values())
    assert summary["mean_accuracy"] == pytest.approx(100.0 * (1.0 - 0.7889930666666667), abs=1e-9)


def test_imagenet_c_mce_hand_computed() -> None:
    # Half AlexNet's error on 14 corruptions (CE 50), AlexNet's error on brightness (CE 100): mCE = 800 / 15.
    err = {c: ALEXNET_ERRORS[c] * (1.0 if c == "brightness" else 0.5) for c in IMAGENET_C_CORRUPTIONS}
    offsets = (-1.0, -0.5, 0.0, 0.5, 1.0)  # severities vary, their mean does not
    summary = imagenet_c_summary(_c_table({c: 100.0 * (1.0 - e) for c, e in err.items()}, offsets))
    assert summary["mce"] == pytest.approx(800.0 / 15.0, abs=1e-9)
    assert summary["corruption_errors"]["brightness"] == pytest.approx(100.0, abs=1e-9)
    assert summary["corruption_errors"]["fog"] == pytest.approx(50.0, abs=1e-9)
    # Hendrycks' form: sum of errors over severities / sum of AlexNet errors over severities.
    table = _c_table({c: 100.0 * (1.0 - e) for c, e in err.items()}, offsets)
    hendrycks = np.mean(
        [
            100.0 * sum(1.0 - table[(c, s)] / 100.0 for s in range(1, 6)) / (5 * ALEXNET_ERRORS[c])
            for c in IMAGENET_C_CORRUPTIONS
        ]
    )
    assert summary["mce"] == pytest.approx(hendrycks, abs=1e-9)


def test_imagenet_c_missing_pair_raises_naming_it() -> None:
    table = _c_table({c: 40.0 for c in IMAGENET_C_CORRUPTIONS})
    del table[("fog", 3)]
    with pytest.raises(UserError, match=r"missing 1 of 75.*fog/3"):
        imagenet_c_summary(table)


def test_imagenet_c_extras_ignored_and_unknown_keys_raise() -> None:
    table = _c_table({c: 40.0 for c in IMAGENET_C_CORRUPTIONS})
    assert imagenet_c_summary({**table, ("speckle_noise", 1): 1.0})["mean_accuracy"] == pytest.approx(40.0)
    with pytest.raises(UserError, match=r"unknown keys.*fogg"):
        imagenet_c_summary({**table, ("fogg", 1): 40.0})
    with pytest.raises(UserError, match="unknown keys"):
        imagenet_c_summary({**table, ("fog", 6): 40.0})


# ---------------------------------------------------------------------------------------------- multi-label top-1


def test_multilabel_top1_with_padding_and_empty_lists() -> None:
    predicted = np.array([3, 5, 7, 1, 2, 9])
    labels = [[3, -1, -1], [1, 5, -1], [-1, -1, -1], [4], [], [8, 9]]
    result = multilabel_top1_accuracy(predicted, labels)
    # Evaluated: images 0 (hit), 1 (hit), 3 (miss), 5 (hit); images 2 and 4 have no valid label.
    assert result == {"top1": pytest.approx(75.0), "n_correct": 3, "n_evaluated": 4, "n_unlabeled": 2, "n_images": 6}


def test_multilabel_top1_padded_array_matches_ragged() -> None:
    padded = np.full((4, 10), -1, dtype=np.int64)
    padded[0, :2] = [10, 11]
    padded[1, :1] = [20]
    padded[3, :3] = [0, 1, 2]
    predicted = np.array([11, 21, 5, 0])
    result = multilabel_top1_accuracy(predicted, padded)
    assert result["top1"] == pytest.approx(200.0 / 3.0)
    assert (result["n_correct"], result["n_unlabeled"]) == (2, 1)
    ragged = [[10, 11], [20], [], [0, 1, 2]]
    assert multilabel_top1_accuracy(predicted, ragged) == result


def test_multilabel_top1_rejects_bad_input() -> None:
    with pytest.raises(UserError, match="3 images but label_lists has 2"):
        multilabel_top1_accuracy(np.array([1, 2, 3]), [[1], [2]])
    with pytest.raises(UserError, match="top1_predictions"):
        multilabel_top1_accuracy(np.zeros((2, 5)), [[1], [2]])
    with pytest.raises(UserError, match="none of the 2 images"):
        multilabel_top1_accuracy(np.array([1, 2]), [[-1], []])
    with pytest.raises(UserError, match="image 1 must hold integer"):
        multilabel_top1_accuracy(np.array([1, 2]), [[1], [2.5]])


# ---------------------------------------------------------------------------------------------- figure


def test_save_robustness_figure_png_grows_with_models(tmp_path) -> None:
    rows = robustness_table({m: _accs(m) for m in TABLE2})
    one = save_robustness_figure(rows[:1], tmp_path / "one.png")
    four = save_robustness_figure(rows, tmp_path / "sub" / "four.png")
    with Image.open(one) as a, Image.open(four) as b:
        assert a.format == b.format == "PNG"
        assert b.size[0] > a.size[0]
        assert 400 <= a.size[1] <= 500 and 400 <= b.size[1] <= 500  # ~4.5 in at 100 dpi, trimmed to its content
        assert len(b.convert("RGB").getcolors(maxcolors=1 << 16) or []) > 4  # bars were drawn
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["four.png", "one.png", "sub"]  # no temp files left
    with pytest.raises(UserError, match="at least one row"):
        save_robustness_figure([], tmp_path / "none.png")
