"""The seeded bootstrap over images (metrics.resampling): count matrices, plans, statistics and their replicates.

Values are checked against direct numpy computations: a replicate is the metric on the data set that repeats each
image as often as the count matrix says, so every builder (accuracy, calibration, shape bias, ImageNet-X error
ratios) is compared with its metric function on explicitly materialised resamples.
"""

from __future__ import annotations

import numpy as np
import pytest

from beyond_imagenet.data.cue_conflict import CATEGORIES
from beyond_imagenet.data.imagenet_x import FACTORS
from beyond_imagenet.metrics.accuracy import topk_accuracy, topk_correct
from beyond_imagenet.metrics.calibration import calibration_statistics, expected_calibration_error
from beyond_imagenet.metrics.imagenet_x import error_ratio_statistics
from beyond_imagenet.metrics.resampling import (
    CHUNK,
    MIN_PER_CLASS,
    LinearStatistic,
    ResamplePlan,
    balanced_strata,
    bootstrap,
    combine,
    ids_digest,
    image_plan,
    mean_statistic,
    ratio,
)
from beyond_imagenet.metrics.shape_bias import shape_bias, shape_bias_statistics
from helpers import sample_ids


def _all_counts(plan: ResamplePlan) -> np.ndarray:
    return np.concatenate(list(plan.counts()), axis=0)


def _materialise(counts_row: np.ndarray) -> np.ndarray:
    """The image indices of one resample: image i repeated counts_row[i] times."""
    return np.repeat(np.arange(len(counts_row)), counts_row.astype(np.int64))


class _OnesPlan(ResamplePlan):
    """A plan whose every 'resample' is the data itself (every weight 1)."""

    def counts(self):
        yield np.ones((self.resamples, self.n))


# ---------------------------------------------------------------------------------------------------------------
# Count matrices


def test_same_key_and_seed_give_identical_counts_and_others_differ():
    ids = sample_ids(250)
    a = _all_counts(image_plan(ids, 300, seed=3))
    b = _all_counts(image_plan(list(ids), 300, seed=3))
    assert a.shape == (300, 250) and a.dtype == np.float64
    np.testing.assert_array_equal(a, b)
    other_key = _all_counts(image_plan(sample_ids(250, "other"), 300, seed=3))
    other_seed = _all_counts(image_plan(ids, 300, seed=4))
    assert not np.array_equal(a, other_key)
    assert not np.array_equal(a, other_seed)
    # Different draws are not merely permuted: the rows share few exact values
    assert np.mean(a == other_key) < 0.6


def test_chunks_have_the_chunk_size_and_fix_the_stream():
    ids = sample_ids(100)
    chunks = list(image_plan(ids, 2 * CHUNK + 44, seed=0).counts())
    assert [c.shape[0] for c in chunks] == [CHUNK, CHUNK, 44]
    # the first resamples do not depend on how many are drawn in all
    np.testing.assert_array_equal(_all_counts(image_plan(ids, CHUNK + 5, seed=0))[:CHUNK], chunks[0])


def test_count_rows_sum_to_n_and_are_multinomial():
    n, b = 400, 1000
    counts = _all_counts(image_plan(sample_ids(n), b, seed=11))
    np.testing.assert_array_equal(counts.sum(axis=1), np.full(b, n))
    assert np.all(counts >= 0) and np.all(counts == np.round(counts))
    # each count is Binomial(n, 1/n): mean exactly 1 (rows sum to n), variance 1 - 1/n, P(0) = (1 - 1/n)^n
    assert counts.mean() == pytest.approx(1.0, abs=1e-12)
    assert counts.var() == pytest.approx(1 - 1 / n, rel=0.02)
    assert np.mean(counts == 0) == pytest.approx((1 - 1 / n) ** n, abs=0.005)
    # images are exchangeable: no image is favoured (per-image means over 1000 resamples, sd ~ 0.03)
    assert np.abs(counts.mean(axis=0) - 1).max() < 0.15


def test_within_class_plan_keeps_each_class_count_fixed():
    rng = np.random.default_rng(5)
    targets = rng.permutation(np.repeat(np.arange(7), 12))  # shuffled: classes are not contiguous
    strata = balanced_strata(targets)
    assert strata is not None
    plan = image_plan(sample_ids(len(targets)), 300, seed=2, strata=strata)
    assert plan.method == "within class"
    counts = _all_counts(plan)
    members = targets[None, :] == np.arange(7)[:, None]  # [classes, n]
    per_class = counts @ members.T.astype(np.float64)  # [b, classes]
    np.testing.assert_array_equal(per_class, np.full((300, 7), 12.0))
    # within its class each count is Binomial(12, 1/12)
    assert counts.var() == pytest.approx(1 - 1 / 12, rel=0.05)
    assert not np.array_equal(counts, _all_counts(image_plan(sample_ids(len(targets)), 300, seed=2)))


def test_within_class_plan_on_unequal_strata_keeps_class_sizes():
    """``_draw`` handles classes of different sizes (the plan does not require balance; balanced_strata does)."""
    targets = np.array([2] * 15 + [0] * 3 + [9] * 30 + [0] * 4)
    plan = ResamplePlan("unequal", len(targets), 200, 1, strata=targets)
    counts = _all_counts(plan)
    for label, size in ((0, 7), (2, 15), (9, 30)):
        np.testing.assert_array_equal(counts[:, targets == label].sum(axis=1), np.full(200, size))


def test_plan_identity_name_and_key():
    ids = sample_ids(60)
    targets = np.repeat(np.arange(6), 10)
    plan = image_plan(ids, 500, seed=9)
    within = image_plan(ids, 500, seed=9, strata=balanced_strata(targets))
    assert plan.key == f"{ids_digest(ids)}/images" and within.key == f"{ids_digest(ids)}/within-class"
    assert plan.name == f"{ids_digest(ids)}/images/B500/s9"
    assert plan.method == "over images"
    assert plan == image_plan(list(ids), 500, seed=9) and hash(plan) == hash(image_plan(list(ids), 500, seed=9))
    assert plan != within and plan != image_plan(ids, 500, seed=10) and plan != image_plan(ids, 400, seed=9)
    # strata do not enter equality (the key encodes them)
    assert ResamplePlan("k", 60, 5, 1, targets) == ResamplePlan("k", 60, 5, 1, None)


def test_ids_digest():
    ids = ["a", "b", "c"]
    assert ids_digest(ids) == ids_digest(list(ids))
    assert ids_digest(ids) != ids_digest(["c", "b", "a"])  # order matters
    assert ids_digest(["ab", "c"]) != ids_digest(["a", "bc"])  # the separator keeps names apart
    digest = ids_digest(ids)
    assert len(digest) == 12 and int(digest, 16) >= 0


def test_balanced_strata():
    assert MIN_PER_CLASS == 10
    balanced = np.repeat(np.arange(5), 10)
    np.testing.assert_array_equal(balanced_strata(balanced), balanced)
    np.testing.assert_array_equal(balanced_strata(list(balanced)), balanced)
    assert balanced_strata(np.repeat(np.arange(5), 9)) is None  # classes below MIN_PER_CLASS
    assert balanced_strata(np.array([0] * 10 + [1] * 11)) is None  # unbalanced
    assert balanced_strata(np.array([], dtype=int)) is None
    assert balanced_strata(np.zeros(10, dtype=int)) is not None  # one class of 10


# ---------------------------------------------------------------------------------------------------------------
# Statistics and their replicates


def test_linear_statistic_value_equals_numpy():
    rng = np.random.default_rng(0)
    x = rng.normal(size=500)
    w = rng.random(500)
    assert mean_statistic(x).value() == pytest.approx(np.mean(x), rel=1e-12)
    assert mean_statistic(x, scale=100.0).value() == pytest.approx(100 * np.mean(x), rel=1e-12)
    weighted = LinearStatistic(np.stack([w * x, w], axis=1), ratio(0, 1))
    assert weighted.value() == pytest.approx(np.average(x, weights=w), rel=1e-12)
    ratio_of_means = LinearStatistic(np.stack([x**2, np.abs(x)], axis=1), ratio(0, 1, 2.5))
    assert ratio_of_means.value() == pytest.approx(2.5 * np.sum(x**2) / np.sum(np.abs(x)), rel=1e-12)
    # a zero denominator is NaN, not an error
    assert np.isnan(LinearStatistic(np.zeros((3, 2)), ratio(0, 1)).value())


def test_bootstrap_with_every_weight_one_is_the_statistic():
    rng = np.random.default_rng(1)
    correct = rng.random(321) < 0.7
    plan = _OnesPlan("ones", 321, 4, 0)
    replicates = bootstrap(plan, {"top1": mean_statistic(correct, scale=100.0)})
    np.testing.assert_allclose(replicates["top1"], np.full(4, 100 * correct.mean()), rtol=1e-12)


def test_bootstrap_replicates_are_weighted_means_of_the_resamples():
    rng = np.random.default_rng(2)
    x = rng.exponential(size=150)
    plan = image_plan(sample_ids(150), 200, seed=8)
    counts = _all_counts(plan)
    replicates = bootstrap(plan, {"mean": mean_statistic(x), "scaled": mean_statistic(x, scale=-3.0)})
    expected = np.array([x[_materialise(row)].mean() for row in counts])
    np.testing.assert_allclose(replicates["mean"], expected, rtol=1e-12)
    np.testing.assert_allclose(replicates["scaled"], -3.0 * expected, rtol=1e-12)
    # constant data: every replicate is the constant
    np.testing.assert_allclose(bootstrap(plan, {"c": mean_statistic(np.full(150, 0.25))})["c"], 0.25, rtol=1e-12)


def test_bootstrap_of_a_proportion_matches_the_analytic_standard_error():
    """Replicates of a proportion: mean ≈ p̂ and sd ≈ sqrt(p̂(1 - p̂)/n) (the bootstrap's exact sd in expectation)."""
    n, b = 2000, 2000
    correct = np.random.default_rng(3).random(n) < 0.3
    p_hat = correct.mean()
    replicates = bootstrap(image_plan(sample_ids(n), b, seed=1), {"p": mean_statistic(correct)})["p"]
    sd = np.sqrt(p_hat * (1 - p_hat) / n)
    assert replicates.shape == (b,)
    assert abs(replicates.mean() - p_hat) < 4 * sd / np.sqrt(b)
    assert np.std(replicates, ddof=1) == pytest.approx(sd, rel=0.06)  # sd of an sd estimate: 1/sqrt(2B) = 1.6%


def test_bootstrap_shares_draws_between_statistics_and_checks_rows():
    x = np.random.default_rng(4).random(80)
    plan = image_plan(sample_ids(80), 130, seed=0)
    together = bootstrap(plan, {"a": mean_statistic(x), "b": mean_statistic(1 - x)})
    np.testing.assert_allclose(together["a"] + together["b"], 1.0, rtol=1e-12)  # same resamples
    np.testing.assert_array_equal(together["a"], bootstrap(plan, {"a": mean_statistic(x)})["a"])
    assert bootstrap(plan, {}) == {}
    with pytest.raises(ValueError, match="79 rows"):
        bootstrap(plan, {"short": mean_statistic(x[:79])})


def test_combine_is_the_replicatewise_mean():
    rng = np.random.default_rng(6)
    parts = [rng.normal(size=50) for _ in range(4)]
    np.testing.assert_allclose(combine(parts), (parts[0] + parts[1] + parts[2] + parts[3]) / 4, rtol=1e-12)
    np.testing.assert_array_equal(combine(parts, np.median), np.median(np.stack(parts), axis=0))
    np.testing.assert_array_equal(combine(parts, np.max), np.maximum.reduce(parts))


# ---------------------------------------------------------------------------------------------------------------
# The statistic builders: value on the data and on every resample equal their metric functions


def test_topk_correct_equals_a_sorting_reference():
    rng = np.random.default_rng(7)
    logits = rng.normal(size=(300, 12))
    targets = rng.integers(0, 12, 300)
    order = np.argsort(-logits, axis=1)
    for k in (1, 3, 12, 50):
        expected = (order[:, : min(k, 12)] == targets[:, None]).any(axis=1)
        np.testing.assert_array_equal(topk_correct(logits, targets, k), expected)
        assert topk_accuracy(logits, targets, k) == pytest.approx(100 * expected.mean(), rel=1e-12)
    statistic = mean_statistic(topk_correct(logits, targets, 1), scale=100.0)
    assert statistic.value() == pytest.approx(topk_accuracy(logits, targets, 1), rel=1e-12)


def test_calibration_statistics_equal_the_metrics_on_each_resample():
    rng = np.random.default_rng(8)
    n = 240
    confidence = rng.beta(4, 2, n)
    correct = rng.random(n) < confidence**2
    statistics = calibration_statistics(confidence, correct, n_bins=10)
    assert statistics["ece"].value() == pytest.approx(expected_calibration_error(confidence, correct, 10), rel=1e-12)
    assert statistics["top1"].value() == pytest.approx(100 * correct.mean(), rel=1e-12)
    assert statistics["mean_confidence"].value() == pytest.approx(confidence.mean(), rel=1e-12)
    assert statistics["overconfidence"].value() == pytest.approx(confidence.mean() - correct.mean(), rel=1e-12)
    plan = image_plan(sample_ids(n), 20, seed=3)
    replicates = bootstrap(plan, statistics)
    for r, row in enumerate(_all_counts(plan)):
        idx = _materialise(row)
        c, k = confidence[idx], correct[idx]
        assert replicates["ece"][r] == pytest.approx(expected_calibration_error(c, k, 10), rel=1e-10)
        assert replicates["top1"][r] == pytest.approx(100 * k.mean(), rel=1e-12)
        assert replicates["overconfidence"][r] == pytest.approx(c.mean() - k.mean(), rel=1e-10, abs=1e-14)


def test_shape_bias_statistics_equal_shape_bias_on_each_resample():
    rng = np.random.default_rng(9)
    n = 200
    names = np.array(CATEGORIES)
    shapes = names[rng.integers(0, 16, n)]
    textures = names[rng.integers(0, 16, n)]
    u = rng.random(n)
    decisions = np.where(u < 0.35, shapes, np.where(u < 0.8, textures, names[rng.integers(0, 16, n)]))
    statistics = shape_bias_statistics(decisions, shapes, textures)
    reference = shape_bias(list(decisions), list(shapes), list(textures))
    assert statistics["overall"].value() == pytest.approx(reference["shape_bias"], rel=1e-12)
    assert statistics["accuracy_16"].value() == pytest.approx(100 * reference["accuracy_16"], rel=1e-12)
    assert statistics["fraction_correct_shape"].value() == pytest.approx(reference["fraction_correct_shape"])
    for category, counts in reference["per_class"].items():
        value = statistics[f"{category}/shape_bias"].value()
        assert value == pytest.approx(counts["shape_bias"], rel=1e-12, nan_ok=True), category
    plan = image_plan(sample_ids(n), 10, seed=4)
    replicates = bootstrap(plan, {"overall": statistics["overall"]})["overall"]
    for r, row in enumerate(_all_counts(plan)):
        idx = _materialise(row)
        resampled = shape_bias(list(decisions[idx]), list(shapes[idx]), list(textures[idx]))
        assert replicates[r] == pytest.approx(resampled["shape_bias"], rel=1e-12)


def test_error_ratio_statistics_equal_numpy_on_each_resample():
    rng = np.random.default_rng(10)
    n = 500
    flags = np.zeros((n, len(FACTORS)), dtype=bool)
    flags[:, 0] = rng.random(n) < 0.4
    flags[:, 5] = rng.random(n) < 0.2
    correct = rng.random(n) < 0.75 - 0.2 * flags[:, 0] - 0.3 * flags[:, 5]
    denominator = rng.random(n) < 0.9  # e.g. the paper's denominator: a different image set

    def reference(idx: np.ndarray) -> dict[str, float]:
        f, c, d = flags[idx], correct[idx], denominator[idx]
        average = c[d].mean()
        ratios = {i: (1 - c[f[:, i]].mean()) / (1 - average) for i in (0, 5)}
        return {
            "average": 100 * average,
            f"{FACTORS[0]}/accuracy": 100 * c[f[:, 0]].mean(),
            f"{FACTORS[0]}/error_ratio": ratios[0],
            f"{FACTORS[5]}/error_ratio": ratios[5],
            "mean_error_ratio": (ratios[0] + ratios[5]) / 2,
        }

    statistics = error_ratio_statistics(flags, correct, denominator)
    assert set(statistics) == {"average", "mean_error_ratio"} | {
        f"{FACTORS[i]}/{m}" for i in (0, 5) for m in ("accuracy", "error_ratio")
    }  # factors without images are left out
    for name, value in reference(np.arange(n)).items():
        assert statistics[name].value() == pytest.approx(value, rel=1e-12), name
    plan = image_plan(sample_ids(n), 15, seed=5)
    replicates = bootstrap(plan, statistics)
    for r, row in enumerate(_all_counts(plan)):
        for name, value in reference(_materialise(row)).items():
            assert replicates[name][r] == pytest.approx(value, rel=1e-10), (name, r)
