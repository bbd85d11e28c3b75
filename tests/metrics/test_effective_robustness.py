"""Effective robustness (metrics.effective_robustness): logit transform, line and plane fits, predictions and ER.

References are written out here with plain numpy (the logit as log(p / (1 - p)), the sigmoid as 1 / (1 + e^-z),
least squares by ``np.polyfit`` / ``np.linalg.lstsq``); lines and planes are planted and must be recovered.
"""

from __future__ import annotations

import numpy as np
import pytest

from beyond_imagenet.metrics.effective_robustness import (
    LOGIT_CLIP,
    effective_robustness_from_line,
    fit_lines,
    fit_planes,
    line_prediction,
    logit_percent,
    plane_prediction,
)


def _logit(percent: np.ndarray) -> np.ndarray:
    p = np.asarray(percent, dtype=np.float64) / 100
    return np.log(p / (1 - p))


def _sigmoid_percent(z: np.ndarray) -> np.ndarray:
    return 100 / (1 + np.exp(-np.asarray(z, dtype=np.float64)))


def _on_line(id_acc: np.ndarray, slope: float, intercept: float) -> np.ndarray:
    return _sigmoid_percent(slope * _logit(id_acc) + intercept)


# ---------------------------------------------------------------------------------------------------------------
# logit_percent


def test_logit_percent_values_and_clipping():
    assert LOGIT_CLIP == 1e-4
    np.testing.assert_allclose(logit_percent(np.array([50.0, 75.0, 10.0])), [0.0, np.log(3), np.log(1 / 9)])
    low, high = np.log(1e-4 / (1 - 1e-4)), np.log((1 - 1e-4) / 1e-4)
    np.testing.assert_allclose(logit_percent(np.array([0.0, -3.0, 0.005, 0.01])), [low, low, low, low], rtol=1e-12)
    np.testing.assert_allclose(logit_percent(np.array([100.0, 120.0, 99.995])), [high, high, high], rtol=1e-12)
    assert np.all(np.isfinite(logit_percent(np.array([0.0, 100.0]))))
    assert logit_percent(0.02) > low  # just inside the clip
    assert float(logit_percent(30.0)) == pytest.approx(-float(logit_percent(70.0)), rel=1e-12)  # symmetry


def test_logit_percent_inverts_to_the_accuracy():
    accuracy = np.linspace(0.01, 99.99, 501)
    np.testing.assert_allclose(_sigmoid_percent(logit_percent(accuracy)), accuracy, rtol=1e-10)
    np.testing.assert_allclose(line_prediction(accuracy, np.array([1.0, 0.0])), accuracy, rtol=1e-10)  # identity line


# ---------------------------------------------------------------------------------------------------------------
# Lines


def test_fit_lines_recovers_a_planted_line():
    rng = np.random.default_rng(0)
    id_acc = rng.uniform(40, 90, 25)
    ood_acc = _on_line(id_acc, 0.83, -0.41)
    line = fit_lines(id_acc, ood_acc)
    assert line.shape == (2,)
    np.testing.assert_allclose(line, [0.83, -0.41], atol=1e-10)
    np.testing.assert_allclose(line_prediction(id_acc, line), ood_acc, rtol=1e-10)


def test_fit_lines_equals_weighted_least_squares_reference():
    rng = np.random.default_rng(1)
    id_acc = rng.uniform(50, 85, 30)
    ood_acc = np.clip(_on_line(id_acc, 1.1, -0.9) + rng.normal(0, 3, 30), 1, 99)
    weights = rng.integers(0, 4, 30).astype(float)
    x, y = _logit(id_acc), _logit(ood_acc)
    reference = np.polyfit(x, y, 1, w=np.sqrt(weights))  # polyfit weights multiply the residuals
    np.testing.assert_allclose(fit_lines(id_acc, ood_acc, weights), reference, rtol=1e-9)
    np.testing.assert_allclose(fit_lines(id_acc, ood_acc), np.polyfit(x, y, 1), rtol=1e-9)
    # integer weights = repeating the points
    repeated = np.repeat(np.arange(30), weights.astype(int))
    np.testing.assert_allclose(fit_lines(id_acc, ood_acc, weights), fit_lines(id_acc[repeated], ood_acc[repeated]))


def test_zero_weights_ignore_points():
    rng = np.random.default_rng(2)
    id_acc = rng.uniform(40, 90, 20)
    ood_acc = _on_line(id_acc, 0.7, 0.2)
    outliers_id, outliers_ood = np.array([60.0, 70.0, 95.0]), np.array([5.0, 99.0, 1.0])
    weights = np.concatenate([np.ones(20), np.zeros(3)])
    line = fit_lines(np.concatenate([id_acc, outliers_id]), np.concatenate([ood_acc, outliers_ood]), weights)
    np.testing.assert_allclose(line, [0.7, 0.2], atol=1e-10)
    unweighted = fit_lines(np.concatenate([id_acc, outliers_id]), np.concatenate([ood_acc, outliers_ood]))
    assert abs(unweighted[0] - 0.7) > 0.05  # the outliers do matter without the zero weights


def test_fit_lines_is_nan_without_spread():
    line = fit_lines(np.full(5, 70.0), np.linspace(40, 60, 5))
    assert np.isnan(line).all()
    # a bootstrap of the baseline that drew one model only
    assert np.isnan(fit_lines(np.array([60.0, 70.0, 80.0]), np.array([40.0, 50.0, 60.0]), np.array([0, 3, 0]))).all()


def test_vectorised_line_fits_equal_individual_fits():
    rng = np.random.default_rng(3)
    m, r = 12, 40
    id_acc = rng.uniform(40, 90, m)
    ood_acc = np.clip(_on_line(id_acc, 0.9, -0.5) + rng.normal(0, 2, m), 1, 99)
    weights = rng.multinomial(m, np.full(m, 1 / m), size=r).astype(float)  # bootstrap counts over the models
    lines = fit_lines(id_acc, ood_acc, weights)
    assert lines.shape == (r, 2)
    for i in range(r):
        np.testing.assert_allclose(lines[i], fit_lines(id_acc, ood_acc, weights[i]), rtol=1e-12, equal_nan=True)
    # per-replicate accuracies [r, m] too
    noisy_id = id_acc + rng.normal(0, 0.5, (r, m))
    lines = fit_lines(noisy_id, ood_acc)
    for i in range(r):
        np.testing.assert_allclose(lines[i], fit_lines(noisy_id[i], ood_acc), rtol=1e-12)


# ---------------------------------------------------------------------------------------------------------------
# Effective robustness


def test_points_on_the_line_have_zero_effective_robustness():
    line = np.array([0.95, -0.3])
    id_acc = np.array([55.0, 76.1, 88.8])
    er = effective_robustness_from_line(id_acc, _on_line(id_acc, 0.95, -0.3), line)
    np.testing.assert_allclose(er, 0.0, atol=1e-10)


def test_effective_robustness_by_hand():
    line = np.array([0.95, -0.3])
    # a model at 80% ID and 60% OOD: the line predicts 100 sigmoid(0.95 logit(0.8) - 0.3)
    predicted = 100 / (1 + np.exp(-(0.95 * np.log(0.8 / 0.2) - 0.3)))
    assert float(line_prediction(80.0, line)) == pytest.approx(predicted, rel=1e-12)
    assert float(effective_robustness_from_line(80.0, 60.0, line)) == pytest.approx(60.0 - predicted, rel=1e-12)
    assert predicted == pytest.approx(73.4384, abs=1e-3)  # 0.95 ln 4 - 0.3 = 1.0170: a fixed number
    # vectorised over replicate lines [r, 2] with per-replicate accuracies [r]
    lines = np.array([[0.95, -0.3], [1.0, 0.0], [0.5, 0.1]])
    ids, oods = np.array([80.0, 70.0, 60.0]), np.array([60.0, 65.0, 50.0])
    expected = oods - _sigmoid_percent(lines[:, 0] * _logit(ids) + lines[:, 1])
    np.testing.assert_allclose(effective_robustness_from_line(ids, oods, lines), expected, rtol=1e-12)
    assert expected[1] == pytest.approx(-5.0)  # the identity line predicts OOD = ID


# ---------------------------------------------------------------------------------------------------------------
# Planes (multi-ID effective robustness)


def _plane_data(rng: np.random.Generator, m: int, a: float, b: float, c: float):
    id1, id2 = rng.uniform(40, 90, m), rng.uniform(20, 80, m)
    ood = _sigmoid_percent(a * _logit(id1) + b * _logit(id2) + c)
    return id1, id2, ood


def test_fit_planes_recovers_a_planted_plane():
    rng = np.random.default_rng(4)
    id1, id2, ood = _plane_data(rng, 30, 0.7, 0.35, -0.25)
    plane = fit_planes(id1, id2, ood)
    assert plane.shape == (3,)
    np.testing.assert_allclose(plane, [0.7, 0.35, -0.25], atol=1e-9)
    np.testing.assert_allclose(plane_prediction(id1, id2, plane), ood, rtol=1e-9)


def test_fit_planes_equals_lstsq_and_ignores_zero_weights():
    rng = np.random.default_rng(5)
    id1, id2, ood = _plane_data(rng, 25, 0.6, 0.5, 0.1)
    ood = np.clip(ood + rng.normal(0, 2, 25), 1, 99)
    weights = rng.integers(0, 3, 25).astype(float)
    design = np.stack([_logit(id1), _logit(id2), np.ones(25)], axis=1)
    root = np.sqrt(weights)[:, None]
    reference = np.linalg.lstsq(design * root, _logit(ood) * root[:, 0], rcond=None)[0]
    np.testing.assert_allclose(fit_planes(id1, id2, ood, weights), reference, rtol=1e-9)
    kept = weights > 0
    np.testing.assert_allclose(
        fit_planes(id1, id2, ood, kept.astype(float)), fit_planes(id1[kept], id2[kept], ood[kept]), rtol=1e-9
    )


def test_fit_planes_is_nan_when_degenerate():
    rng = np.random.default_rng(6)
    id1 = rng.uniform(40, 90, 10)
    assert np.isnan(fit_planes(id1, id1, rng.uniform(20, 60, 10))).all()  # the two ID axes coincide
    assert np.isnan(fit_planes(id1[:2], id1[:2] / 2, np.array([30.0, 40.0]))).all()  # two points, three unknowns


def test_vectorised_plane_fits_equal_individual_fits():
    rng = np.random.default_rng(7)
    m, r = 15, 30
    id1, id2, ood = _plane_data(rng, m, 0.8, 0.2, -0.1)
    ood = np.clip(ood + rng.normal(0, 1.5, m), 1, 99)
    weights = rng.multinomial(m, np.full(m, 1 / m), size=r).astype(float)
    planes = fit_planes(id1, id2, ood, weights)
    assert planes.shape == (r, 3)
    for i in range(r):
        np.testing.assert_allclose(planes[i], fit_planes(id1, id2, ood, weights[i]), rtol=1e-10, equal_nan=True)
    predictions = plane_prediction(np.full(r, 70.0), np.full(r, 50.0), planes)
    expected = _sigmoid_percent(planes[:, 0] * _logit(70.0) + planes[:, 1] * _logit(50.0) + planes[:, 2])
    np.testing.assert_allclose(predictions, expected, rtol=1e-10)
