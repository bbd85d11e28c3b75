"""Coverage of the 95% intervals against a known truth (metrics.intervals, metrics.resampling).

Each simulation draws a data set of ``N`` images from a fixed population whose metric is known exactly (a large
finite population: the data sets are i.i.d. draws from it, so the metric computed on the whole population is the
truth), bootstraps it with the project's machinery (``image_plan`` + ``bootstrap`` + ``bootstrap_interval``) and
records whether the interval covers the truth. Over ``N_SIMS`` = 1000 simulations the empirical coverage has a
standard error of about 0.7%, so a correct 95% interval lies in [93%, 97%] (about 3 standard errors).

Accuracy uses the exact Clopper-Pearson interval, whose coverage can also be computed exactly from the binomial
distribution; it is checked both ways.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from scipy.special import betaln
from threadpoolctl import threadpool_limits

from beyond_imagenet.data.cue_conflict import CATEGORIES
from beyond_imagenet.data.imagenet_x import FACTORS
from beyond_imagenet.metrics.calibration import calibration_statistics
from beyond_imagenet.metrics.imagenet_x import error_ratio_statistics
from beyond_imagenet.metrics.intervals import bootstrap_interval, clopper_pearson
from beyond_imagenet.metrics.resampling import balanced_strata, bootstrap, image_plan, mean_statistic
from beyond_imagenet.metrics.shape_bias import shape_bias_statistics

N_SIMS = 1000
N = 1000  # images per simulated data set
B = 300  # bootstrap resamples per data set
POPULATION = 200_000
LEVEL = 0.95
COVERAGE_RANGE = (0.93, 0.97)
IDS = [f"img{i:05d}" for i in range(N)]


def _calibration_population(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Confidence ~ Beta(5, 2) and P(correct | conf) = conf ** 1.6: over-confident in every confidence bin.

    ECE is biased upward in small samples because of the |acc_b - conf_b| per bin: a bin whose true gap is near 0
    gets a positive gap whatever the sign of its noise. Here every bin's true gap has the same sign and is large
    against its sampling noise (except in the sparse low-confidence bins, which carry little weight), so ECE's bias at
    N = 1000 is small and its coverage is an honest test. Mean confidence and over-confidence are smooth ratios of
    sums without that bias.
    """
    confidence = rng.beta(5.0, 2.0, POPULATION)
    correct = rng.random(POPULATION) < confidence**1.6
    return confidence, correct


def _shape_population(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cue-conflict stimuli: random shape and texture classes; the decision is the shape with probability 0.3, the
    texture with 0.45, else a random class (which may still match either)."""
    names = np.array(CATEGORIES, dtype=object)
    shapes = names[rng.integers(0, len(names), POPULATION)]
    textures = names[rng.integers(0, len(names), POPULATION)]
    u = rng.random(POPULATION)
    other = names[rng.integers(0, len(names), POPULATION)]
    decisions = np.where(u < 0.3, shapes, np.where(u < 0.75, textures, other))
    return decisions, shapes, textures


def _imagenet_x_population(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Three ImageNet-X factors (30%, 15% and 8% of the images) that each lower the chance of a correct prediction."""
    flags = np.zeros((POPULATION, len(FACTORS)), dtype=bool)
    for column, share in ((0, 0.30), (1, 0.15), (2, 0.08)):
        flags[:, column] = rng.random(POPULATION) < share
    p_correct = 0.8 - 0.2 * flags[:, 0] - 0.35 * flags[:, 1] - 0.1 * flags[:, 2]
    return flags, rng.random(POPULATION) < p_correct


def _statistics(idx: dict[str, np.ndarray], populations: dict) -> dict:
    """The statistics whose coverage is measured, on the data set ``idx`` (population rows per family)."""
    confidence, correct = populations["calibration"]
    rows = idx["calibration"]
    calibration = calibration_statistics(confidence[rows], correct[rows])
    decisions, shapes, textures = populations["shape"]
    rows = idx["shape"]
    shape = shape_bias_statistics(decisions[rows], shapes[rows], textures[rows])
    flags, x_correct = populations["imagenet_x"]
    rows = idx["imagenet_x"]
    ratios = error_ratio_statistics(flags[rows], x_correct[rows], np.ones(len(rows), dtype=bool))
    return {
        "ece": calibration["ece"],
        "mean_confidence": calibration["mean_confidence"],
        "overconfidence": calibration["overconfidence"],
        "shape_bias": shape["overall"],
        "error_ratio_pose": ratios[f"{FACTORS[0]}/error_ratio"],
        "error_ratio_pattern": ratios[f"{FACTORS[2]}/error_ratio"],  # the rare factor: ~80 images per data set
        "mean_error_ratio": ratios["mean_error_ratio"],
    }


@pytest.fixture(scope="module")
def bootstrap_coverage() -> dict[str, float]:
    """Empirical coverage of each statistic's 95% percentile interval over ``N_SIMS`` simulated data sets."""
    rng = np.random.default_rng(20240611)
    populations = {
        "calibration": _calibration_population(rng),
        "shape": _shape_population(rng),
        "imagenet_x": _imagenet_x_population(rng),
    }
    everything = {family: np.arange(POPULATION) for family in populations}
    truth = {name: statistic.value() for name, statistic in _statistics(everything, populations).items()}
    hits = {name: 0 for name in truth}
    with threadpool_limits(1):  # small matrix products: BLAS threads only contend on a shared machine
        for sim in range(N_SIMS):
            idx = {family: rng.integers(0, POPULATION, N) for family in populations}
            statistics = _statistics(idx, populations)
            replicates = bootstrap(image_plan(IDS, B, seed=sim), statistics)  # a fresh seed: new resamples each time
            for name, statistic in statistics.items():
                low, high = bootstrap_interval(replicates[name], statistic.value(), LEVEL, "percentile")
                hits[name] += low <= truth[name] <= high
    return {name: count / N_SIMS for name, count in hits.items()}


@pytest.mark.slow
@pytest.mark.parametrize(
    "name",
    [
        "ece",
        "mean_confidence",
        "overconfidence",
        "shape_bias",
        "error_ratio_pose",
        "error_ratio_pattern",
        "mean_error_ratio",
    ],
)
def test_bootstrap_percentile_interval_covers_the_truth(bootstrap_coverage, name):
    coverage = bootstrap_coverage[name]
    print(f"bootstrap coverage {name}: {coverage:.3f}")
    assert COVERAGE_RANGE[0] <= coverage <= COVERAGE_RANGE[1], (name, coverage)


def test_population_truths_are_what_the_simulation_assumes():
    """The populations are as described: every calibration bin over-confident, so ECE = over-confidence exactly."""
    rng = np.random.default_rng(20240611)
    confidence, correct = _calibration_population(rng)
    calibration = calibration_statistics(confidence, correct)
    assert calibration["ece"].value() == pytest.approx(calibration["overconfidence"].value(), abs=1e-12)
    assert calibration["mean_confidence"].value() == pytest.approx(5 / 7, abs=0.003)  # Beta(5, 2) mean
    # E[conf ** 1.6] under Beta(5, 2) = B(6.6, 2) / B(5, 2): the population's accuracy, in %
    expected_accuracy = np.exp(betaln(6.6, 2.0) - betaln(5.0, 2.0))
    assert calibration["top1"].value() == pytest.approx(100 * expected_accuracy, abs=0.3)


# ---------------------------------------------------------------------------------------------------------------
# Clopper-Pearson: exact coverage from the binomial distribution, and by simulation


@pytest.mark.parametrize("level", [0.9, 0.95, 0.99])
def test_clopper_pearson_equals_scipy_binomtest(level):
    """Against ``scipy.stats.binomtest(k, n).proportion_ci(level, method="exact")`` on a grid with k = 0 and k = n."""
    grid = [(n, k) for n in (1, 2, 5, 10, 37) for k in range(n + 1)]
    grid += [(n, k) for n in (100, 1000, 50_000) for k in (0, 1, 2, n // 3, n // 2, n - 2, n - 1, n)]
    n, k = np.array(grid).T
    low, high = clopper_pearson(k, n, level)
    for i, (ni, ki) in enumerate(grid):
        reference = stats.binomtest(int(ki), int(ni)).proportion_ci(confidence_level=level, method="exact")
        assert low[i] == pytest.approx(reference.low, abs=1e-12, rel=1e-9), (ni, ki)
        assert high[i] == pytest.approx(reference.high, abs=1e-12, rel=1e-9), (ni, ki)
    assert np.all(low[k == 0] == 0.0) and np.all(high[k == n] == 1.0)
    assert np.all((low <= k / n) & (k / n <= high))


def test_clopper_pearson_scalar_and_known_values():
    low, high = clopper_pearson(0, 10)
    assert float(low) == 0.0
    assert float(high) == pytest.approx(1 - 0.025 ** (1 / 10), rel=1e-12)  # k = 0: 1 - (alpha/2)^(1/n)
    low, high = clopper_pearson(10, 10)
    assert float(low) == pytest.approx(0.025 ** (1 / 10), rel=1e-12) and float(high) == 1.0
    with pytest.raises(ValueError):
        clopper_pearson(11, 10)
    with pytest.raises(ValueError):
        clopper_pearson(-1, 10)
    with pytest.raises(ValueError):
        clopper_pearson(0, 0)


def _exact_coverage(n: int, p: float, level: float = LEVEL) -> float:
    k = np.arange(n + 1)
    low, high = clopper_pearson(k, n, level)
    return float(stats.binom.pmf(k, n, p)[(low <= p) & (p <= high)].sum())


@pytest.mark.parametrize("p", [0.02, 0.1, 0.37, 0.5, 0.76, 0.95, 0.999])
def test_clopper_pearson_exact_coverage_is_at_least_nominal(p):
    """The exact interval never under-covers, whatever n and p (and is not wildly conservative at n = 1000)."""
    for n in (1, 7, 50, 333, 1000):
        assert _exact_coverage(n, p) >= LEVEL - 1e-12, (n, p)


@pytest.mark.parametrize("p", [0.1, 0.37, 0.5, 0.76])
def test_clopper_pearson_is_close_to_nominal_at_moderate_n(p):
    """Conservative, but not wildly: at n = 1000 and p away from 0 and 1 the coverage is within 95-96%."""
    assert LEVEL <= _exact_coverage(N, p) <= 0.96


@pytest.mark.parametrize("p", [0.3, 0.76])
def test_clopper_pearson_simulated_coverage(p):
    rng = np.random.default_rng(int(p * 1000))
    k = rng.binomial(N, p, size=N_SIMS)
    low, high = clopper_pearson(k, N, LEVEL)
    coverage = float(np.mean((low <= p) & (p <= high)))
    exact = _exact_coverage(N, p)
    print(f"Clopper-Pearson coverage p={p}: simulated {coverage:.3f}, exact {exact:.4f}")
    assert COVERAGE_RANGE[0] <= coverage <= COVERAGE_RANGE[1]
    assert abs(coverage - exact) <= 3 * np.sqrt(exact * (1 - exact) / N_SIMS)


# ---------------------------------------------------------------------------------------------------------------
# Within-class resampling on a class-balanced design


@pytest.mark.slow
def test_within_class_bootstrap_covers_a_stratified_design_and_over_images_is_conservative():
    """A class-balanced data set (ImageNet val: a fixed number of images per class) varies less than an i.i.d. one
    when the classes' accuracies differ; the within-class bootstrap matches its sampling distribution, the bootstrap
    over images over-covers.

    20 classes x 50 images, half the classes at 95% accuracy and half at 30%: the truth is their mean, 62.5%. The
    i.i.d. variance p(1 - p) = 0.234 against the stratified mean of p_c(1 - p_c) = 0.129 makes the over-images
    interval 1.35 times too wide: it covers about 99%.
    """
    classes, per_class, sims = 20, 50, 600
    p_class = np.where(np.arange(classes) % 2 == 0, 0.95, 0.30)
    targets = np.repeat(np.arange(classes), per_class)
    strata = balanced_strata(targets)
    assert strata is not None
    ids = [f"val{i:05d}" for i in range(len(targets))]
    truth = 100 * p_class.mean()
    rng = np.random.default_rng(7)
    hits = {"within class": 0, "over images": 0}
    with threadpool_limits(1):
        for sim in range(sims):
            correct = rng.random(len(targets)) < p_class[targets]
            statistic = {"top1": mean_statistic(correct, scale=100.0)}
            for method, plan in (
                ("within class", image_plan(ids, 200, seed=sim, strata=strata)),
                ("over images", image_plan(ids, 200, seed=sim)),
            ):
                low, high = bootstrap_interval(bootstrap(plan, statistic)["top1"], statistic["top1"].value(), LEVEL)
                hits[method] += low <= truth <= high
    within, over = hits["within class"] / sims, hits["over images"] / sims
    print(f"stratified design coverage: within class {within:.3f}, over images {over:.3f}")
    assert 0.925 <= within <= 0.975
    assert over >= 0.98
