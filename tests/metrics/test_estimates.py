"""The estimate book (metrics.estimates): base and derived estimates, their intervals, replicates and plans.

Every number is recomputed here from the parts the book is made of (``bootstrap`` on the same plan,
``clopper_pearson``, ``bootstrap_interval``), so the book must wire them together exactly.
"""

from __future__ import annotations

import numpy as np
import pytest

from beyond_imagenet.base.errors import UserError
from beyond_imagenet.base.record import ResultRecord
from beyond_imagenet.metrics.calibration import calibration_statistics
from beyond_imagenet.metrics.estimates import EXACT_METHOD, Estimate, EstimateBook, attach, mean_of, plan_signature
from beyond_imagenet.metrics.intervals import bootstrap_interval, clopper_pearson
from beyond_imagenet.metrics.resampling import balanced_strata, bootstrap, image_plan, mean_statistic

N = 600
IDS = [f"img{i:04d}" for i in range(N)]


@pytest.fixture(scope="module")
def data() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(31)
    u = rng.random(N)
    confidence = rng.beta(5, 2, N)
    return {
        "a": u < 0.75,
        "b": np.where(rng.random(N) < 0.7, u, rng.random(N)) < 0.70,  # correlated with a
        "confidence": confidence,
        "targets": np.repeat(np.arange(20), 30),
    }


def test_base_and_derived_estimates(data):
    plan = image_plan(IDS, 400, seed=3)
    a, b = data["a"], data["b"]
    book = EstimateBook(level=0.95, method="percentile")
    ka = book.add("model_a", "top1", plan, mean_statistic(a, 100.0), exact=(int(a.sum()), N))
    kb = book.add("model_b", "top1", plan, mean_statistic(b, 100.0), exact=(int(b.sum()), N))
    ece = calibration_statistics(data["confidence"], a)["ece"]
    book.add("model_a", "ece", plan, ece)
    kmean = book.derive("both", "mean_top1", [ka, kb], mean_of)
    assert book.plan_of(ka) == plan.name and book.plan_of(kmean) == plan.name
    estimates = book.resolve()
    assert list(estimates) == ["model_a", "model_b", "both"]
    assert list(estimates["model_a"]) == ["top1", "ece"]

    reference = bootstrap(plan, {"a": mean_statistic(a, 100.0), "b": mean_statistic(b, 100.0), "ece": ece})
    top1_a = estimates["model_a"]["top1"]
    assert top1_a.value == pytest.approx(100 * a.mean(), rel=1e-12)
    low, high = clopper_pearson(int(a.sum()), N)
    assert (top1_a.low, top1_a.high) == pytest.approx((100 * float(low), 100 * float(high)), rel=1e-12)
    assert top1_a.method == EXACT_METHOD and top1_a.n == N and top1_a.plan == plan.name and top1_a.level == 0.95
    np.testing.assert_allclose(top1_a.replicates, reference["a"], rtol=1e-12)
    np.testing.assert_allclose(estimates["model_b"]["top1"].replicates, reference["b"], rtol=1e-12)

    ece_a = estimates["model_a"]["ece"]
    assert ece_a.value == pytest.approx(ece.value(), rel=1e-12)
    np.testing.assert_allclose(ece_a.replicates, reference["ece"], rtol=1e-12)
    assert (ece_a.low, ece_a.high) == pytest.approx(bootstrap_interval(reference["ece"], ece.value()), rel=1e-12)
    assert ece_a.method == "bootstrap percentile (over images)"

    derived = estimates["both"]["mean_top1"]
    assert derived.value == pytest.approx(50 * (a.mean() + b.mean()), rel=1e-12)
    np.testing.assert_allclose(derived.replicates, (reference["a"] + reference["b"]) / 2, rtol=1e-12)
    assert (derived.low, derived.high) == pytest.approx(
        bootstrap_interval(derived.replicates, derived.value), rel=1e-12
    )
    assert derived.plan == plan.name and derived.n == N and derived.method == "bootstrap percentile"
    # the inputs' replicates are paired (same resamples), so the mean's sd is that of the per-image mean, which the
    # positive correlation of a and b makes larger than for two independent accuracies
    per_image = (a.astype(float) + b) / 2
    assert np.std(derived.replicates) == pytest.approx(100 * np.sqrt(per_image.var() / N), rel=0.1)
    assert np.std(derived.replicates) > 1.1 * np.hypot(np.std(reference["a"]), np.std(reference["b"])) / 2


def test_derived_over_two_plans_and_replicate_combination(data):
    a, b = data["a"], data["b"]
    plan_1 = image_plan(IDS, 300, seed=1)
    plan_2 = image_plan([f"other{i}" for i in range(N // 2)], 300, seed=1)
    book = EstimateBook(method="basic")
    k1 = book.add("m", "shift_1", plan_1, mean_statistic(a, 100.0))
    k2 = book.add("m", "shift_2", plan_2, mean_statistic(b[: N // 2], 100.0))
    average = book.derive("m", "average", [k1, k2], mean_of)
    spread = book.derive(
        "m", "gap", [k1, k2], lambda v: v[:, 0] - v[:, 1], plan="custom", combine_replicates=lambda v: v[:, 0] * 0
    )
    nested = book.derive("m", "twice_average", [average], lambda v: 2 * v[:, 0])
    signature = plan_signature([plan_1.name, plan_2.name])
    assert signature.startswith("combined:") and signature == plan_signature([plan_2.name, plan_1.name, plan_1.name])
    assert book.plan_of(average) == signature and book.plan_of(spread) == "custom"
    assert book.plan_of(nested) == signature
    estimates = book.resolve()["m"]
    e1, e2 = estimates["shift_1"], estimates["shift_2"]
    assert e1.method == "bootstrap basic (over images)"  # no exact count given: a bootstrap interval
    assert (e1.low, e1.high) == pytest.approx(bootstrap_interval(e1.replicates, e1.value, method="basic"))
    np.testing.assert_allclose(estimates["average"].replicates, (e1.replicates + e2.replicates) / 2, rtol=1e-12)
    assert estimates["average"].plan == signature and estimates["average"].n == N + N // 2
    assert estimates["gap"].value == pytest.approx(e1.value - e2.value)
    np.testing.assert_array_equal(estimates["gap"].replicates, np.zeros(300))  # combine_replicates was used
    assert estimates["gap"].plan == "custom"
    twice = estimates["twice_average"]
    assert twice.value == pytest.approx(2 * estimates["average"].value)
    np.testing.assert_allclose(twice.replicates, 2 * estimates["average"].replicates, rtol=1e-12)
    assert twice.plan == signature


def test_within_class_plan_in_the_book(data):
    plan = image_plan(IDS, 200, seed=0, strata=balanced_strata(data["targets"]))
    book = EstimateBook()
    book.add("m", "mean_confidence", plan, mean_statistic(data["confidence"]))
    estimate = book.resolve()["m"]["mean_confidence"]
    assert estimate.method == "bootstrap percentile (within class)"
    assert estimate.plan == plan.name and plan.name.endswith("/within-class/B200/s0")


def test_book_rejects_duplicates_and_unknown_inputs(data):
    plan = image_plan(IDS, 10, seed=0)
    book = EstimateBook()
    key = book.add("m", "top1", plan, mean_statistic(data["a"]))
    with pytest.raises(KeyError, match="twice"):
        book.add("m", "top1", plan, mean_statistic(data["b"]))
    with pytest.raises(KeyError, match="not added"):
        book.derive("m", "avg", [key, ("m", "missing")], mean_of)
    book.derive("m", "avg", [key], mean_of)
    with pytest.raises(KeyError, match="twice"):
        book.derive("m", "avg", [key], mean_of)


def test_mean_of():
    np.testing.assert_allclose(mean_of(np.array([[1.0, 2.0, 6.0], [0.0, 0.0, 3.0]])), [3.0, 1.0])
    assert np.isnan(mean_of(np.array([[1.0, np.nan]]))[0])


def _estimate(value=71.5, low=70.0, high=73.0) -> Estimate:
    return Estimate(value, low, high, 1000, EXACT_METHOD, "abc/images/B1000/s0", np.array([71.0, 72.0]))


def test_interval_record():
    assert _estimate().interval_record() == {
        "low": 70.0,
        "high": 73.0,
        "n": 1000,
        "level": 0.95,
        "method": EXACT_METHOD,
        "plan": "abc/images/B1000/s0",
    }
    record = _estimate(low=float("nan"), high=float("inf")).interval_record()
    assert record["low"] is None and record["high"] is None  # JSON has no NaN


def test_attach():
    record = ResultRecord("calibration", "model", "imagenet_val", {"calibration/top1": 71.5})
    attach(record, {"top1": _estimate(), "ece": _estimate(value=0.04, low=0.03, high=0.05)}, prefix="calibration/")
    assert record.metrics == {"calibration/top1": 71.5, "calibration/ece": 0.04}
    assert record.intervals["calibration/top1"] == _estimate().interval_record()
    assert record.intervals["calibration/ece"]["low"] == 0.03
    np.testing.assert_array_equal(record.replicates["calibration/ece"], [71.0, 72.0])
    # the statistic must give the metric the record already has
    mismatch = ResultRecord("calibration", "model", "imagenet_val", {"calibration/top1": 71.6})
    with pytest.raises(UserError, match=r"top1 is 71\.6 but"):
        attach(mismatch, {"top1": _estimate()}, prefix="calibration/")
    tiny = ResultRecord("calibration", "model", "imagenet_val", {"top1": 71.5 + 1e-12})
    attach(tiny, {"top1": _estimate()})  # agreement up to rounding
    nan = ResultRecord("calibration", "model", "imagenet_val", {"top1": float("nan")})
    attach(nan, {"top1": _estimate(value=float("nan"))})  # NaN agrees with NaN
    assert "top1" in nan.intervals
