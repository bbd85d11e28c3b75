"""Effective robustness in the robustness analysis, on caches written by hand (docs/cache.md).

Every expected ER is recomputed in the test with numpy from the accuracies the caches were built to have and the
baseline's points (a line or plane in logit space, or a least-squares fit done here with ``np.linalg.lstsq``),
never taken from the code under test.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from beyond_imagenet.analyses.common import AnalysisContext
from beyond_imagenet.analyses.effective_robustness import add_effective_robustness
from beyond_imagenet.analyses.estimates import dataset_plan, new_book
from beyond_imagenet.analyses.robustness import run_robustness
from beyond_imagenet.analyses.store import CacheStore
from beyond_imagenet.base.config import DatasetConfig, RobustnessConfig, StatisticsConfig, parse_params
from beyond_imagenet.base.errors import ParamsError, UserError
from beyond_imagenet.base.record import ResultRecord
from beyond_imagenet.data import baselines
from beyond_imagenet.data.baselines import TESTBED_FILE, on_classes_column
from beyond_imagenet.inference.cache import cache_path
from beyond_imagenet.metrics.resampling import mean_statistic

IMAGENET1K = {"kind": "imagenet1k", "n_classes": 1000}
RESAMPLES = 200
# ImageNet val cache: the 10 ImageNet classes below, 10 images each (ILSVRC2012_val_00000001..100), so a top-1 in %
# is the number of correct images.
VAL_CLASSES = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]
PER_CLASS = 10
DECOY = VAL_CLASSES[0]  # the top logit of val images of a shift's classes: wrong on all of ImageNet val
A_COLUMNS = [30, 60, 80]  # an ImageNet-A-like subset: 3 val classes (30 val images)
R_COLUMNS = [20, 40, 90, 100]  # an ImageNet-R-like subset: 4 val classes (40 val images)
SHIFT_SIZE = 100  # images of every shifted set, so its top-1 in % is its number of correct images


def logit(p):
    p = np.asarray(p, dtype=np.float64)
    return np.log(p / (1.0 - p))


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-np.asarray(z, dtype=np.float64)))


def on_line(id_pct, slope: float, intercept: float):
    """OOD top-1 (%) on the line logit(ood) = slope * logit(id) + intercept."""
    return 100.0 * sigmoid(slope * logit(np.asarray(id_pct) / 100.0) + intercept)


def on_plane(id_pct, id2_pct, coef):
    p, q, c = coef
    return 100.0 * sigmoid(p * logit(np.asarray(id_pct) / 100.0) + q * logit(np.asarray(id2_pct) / 100.0) + c)


def wls(design_pct: list, y_pct, weights=None) -> np.ndarray:
    """Weighted least squares of logit(y) on [logit(x) for x in design] and 1: coefficients (..., intercept)."""
    y = logit(np.asarray(y_pct, dtype=np.float64) / 100.0)
    w = np.ones_like(y) if weights is None else np.asarray(weights, dtype=np.float64)
    design = np.stack([*(logit(np.asarray(x, dtype=np.float64) / 100.0) for x in design_pct), np.ones_like(y)], 1)
    root = np.sqrt(w)
    coef, *_ = np.linalg.lstsq(design * root[:, None], y * root, rcond=None)
    return coef


# ---------------------------------------------------------------------------------------------------------------
# Writing caches and running the analysis


def val_name(number: int) -> str:
    return f"ILSVRC2012_val_{number:08d}.JPEG"


def write_cache(cache_dir: Path, dataset: str, model: str, logits, targets, ids, label=None, output="imagenet1k"):
    """The five files of docs/cache.md at the path the inference stage uses."""
    path = cache_path(cache_dir, dataset, model)
    path.mkdir(parents=True, exist_ok=True)
    logits = np.asarray(logits, dtype=np.float32)
    np.save(path / "logits.npy", logits)
    np.save(path / "features.npy", np.zeros((len(ids), 4), dtype=np.float32))
    np.save(path / "targets.npy", np.asarray(targets, dtype=np.int64))
    (path / "sample_ids.json").write_text(json.dumps(list(ids)))
    meta = {
        "model": {"model_id": model, "family": "convnet", "paradigm": "supervised"},
        "dataset": {"name": dataset},
        "output_space": {"kind": output, "n_classes": logits.shape[1]},
        "label_space": label or IMAGENET1K,
    }
    (path / "meta.json").write_text(json.dumps(meta))


def write_val(root: Path, model: str, correct: int, shift_columns=(), shift_correct: int = 0, subset_labels=False):
    """ImageNet val (1000 logits): ``correct`` of the 10 images of each class outside ``shift_columns`` are right.

    Images of a shift's class have their top logit on ``DECOY`` (wrong on val), and among the shift's columns the
    right one for the first ``shift_correct`` of each class: val top-1 = (10 - len(shift_columns)) * correct %,
    val on the shift's classes = 10 * shift_correct %. ``subset_labels``: the label space is an ImageNet subset (the
    10 classes), targets 0..9, instead of ImageNet-1k.
    """
    shift_columns = list(shift_columns)
    assert DECOY not in shift_columns
    logits = np.zeros((len(VAL_CLASSES) * PER_CLASS, 1000))
    classes = np.repeat(VAL_CLASSES, PER_CLASS)
    for i, c in enumerate(classes):
        j = i % PER_CLASS
        if c in shift_columns:
            logits[i, DECOY] = 10.0
            other = shift_columns[(shift_columns.index(c) + 1) % len(shift_columns)]
            logits[i, c if j < shift_correct else other] = 5.0
        else:
            other = VAL_CLASSES[(VAL_CLASSES.index(c) + 1) % len(VAL_CLASSES)]
            logits[i, c if j < correct else other] = 10.0
    ids = [val_name(i + 1) for i in range(len(classes))]
    if subset_labels:
        label = {"kind": "imagenet_subset", "n_classes": len(VAL_CLASSES), "imagenet_columns": VAL_CLASSES}
        targets = np.repeat(np.arange(len(VAL_CLASSES)), PER_CLASS)
    else:
        label, targets = IMAGENET1K, classes
    write_cache(root / "cache", "val", model, logits, targets, ids, label)


def write_shift(root: Path, dataset: str, model: str, n_correct: int, columns=None):
    """A shifted set of ``SHIFT_SIZE`` images, the first ``n_correct`` right (classes cycle, so spread over them).

    ``columns``: an ImageNet-subset label space (IN-A/R style) with a decoy logit outside it; else ImageNet-1k.
    """
    logits = np.zeros((SHIFT_SIZE, 1000))
    if columns is None:
        targets = np.array([5 + i % 5 for i in range(SHIFT_SIZE)])
        for i, t in enumerate(targets):
            logits[i, t if i < n_correct else t + 1] = 10.0
        label = IMAGENET1K
    else:
        targets = np.arange(SHIFT_SIZE) % len(columns)
        for i, t in enumerate(targets):
            logits[i, columns[t] if i < n_correct else columns[(t + 1) % len(columns)]] = 10.0
        logits[:, 999] = 50.0  # outside the subset: wins unless the logits are restricted to its columns
        label = {"kind": "imagenet_subset", "n_classes": len(columns), "imagenet_columns": list(columns)}
    ids = [f"{dataset}_{i:04d}.jpg" for i in range(SHIFT_SIZE)]
    write_cache(root / "cache", dataset, model, logits, targets, ids, label)


def write_second_id(root: Path, model: str, n_correct: int):
    """A dataset of its own 5 classes (output space = label space), ``SHIFT_SIZE`` images, the first right."""
    targets = np.arange(SHIFT_SIZE) % 5
    logits = np.zeros((SHIFT_SIZE, 5))
    logits[np.arange(SHIFT_SIZE), np.where(np.arange(SHIFT_SIZE) < n_correct, targets, (targets + 1) % 5)] = 3.0
    label = {"kind": "custom", "n_classes": 5}
    ids = [f"sec_{i:04d}.png" for i in range(SHIFT_SIZE)]
    write_cache(root / "cache", "sec", model, logits, targets, ids, label, output="label_space")


def write_real(root: Path) -> Path:
    """ReaL labels (50,000 lists) with the true class of the 100 val images, empty elsewhere."""
    real = [[] for _ in range(50_000)]
    for i, c in enumerate(np.repeat(VAL_CLASSES, PER_CLASS)):
        real[i] = [int(c)]
    path = root / "real.json"
    path.write_text(json.dumps(real))
    return path


def write_baseline(path: Path, table: dict[str, list]) -> Path:
    """A baseline CSV (``model`` column and top-1 % columns, full float precision)."""
    pd.DataFrame(table).to_csv(path, index=False)
    return path


def params_for(root: Path, models, shifts: dict[str, str], robustness: dict, statistics=None, extra_datasets=None):
    """Params: ``val`` (imagenet_val) and ``shifts`` (name: kind) in analyses.robustness, 200 resamples."""
    unused = str(root / "unused")
    datasets = {"val": {"path": unused, "kind": "imagenet_val"}}
    datasets.update({name: {"path": unused, "kind": kind} for name, kind in shifts.items()})
    datasets.update(extra_datasets or {})
    section = {"datasets": ["val", *shifts], "real_labels": str(root / "real.json"), **robustness}
    return parse_params(
        {
            "models": list(models),
            "datasets": datasets,
            "inference": {"cache_dir": str(root / "cache")},
            "analyses": {"robustness": section},
            "tracking": {"enabled": False},
            "results_dir": str(root / "results"),
            "statistics": {"resamples": RESAMPLES, "seed": 11, **(statistics or {})},
        }
    )


def run(params) -> dict:
    """The robustness analysis as the analyze stage runs it; records by model."""
    root = Path(params.results_dir).parent
    if not (root / "real.json").exists():
        write_real(root)
    ctx = AnalysisContext(
        list(params.models), CacheStore(params.inference.cache_dir), Path(params.results_dir) / "figures",
        params.datasets, params.statistics,
    )  # fmt: skip
    return {r.model_id: r for r in run_robustness(params.analyses.robustness, ctx)}


def er_metric(shift: str, multi: bool = False) -> str:
    return f"robustness/{shift}/effective_robustness" + ("_multi_id" if multi else "")


def image_only_interval(replicates: np.ndarray, level: float = 0.95) -> float:
    finite = replicates[np.isfinite(replicates)]
    low, high = np.quantile(finite, [(1 - level) / 2, (1 + level) / 2])
    return float(high - low)


def check_interval(record, metric: str) -> dict:
    """The metric's interval exists, is finite, contains the value and has width; returns it."""
    interval = record.intervals[metric]
    value = record.metrics[metric]
    assert interval["low"] is not None and interval["high"] is not None, metric
    assert interval["low"] <= value <= interval["high"], (metric, interval, value)
    assert interval["high"] - interval["low"] > 1e-6, (metric, interval)
    assert interval["level"] == 0.95 and interval["method"] == "bootstrap percentile"
    assert record.replicates[metric].shape == (RESAMPLES,)
    return interval


# ---------------------------------------------------------------------------------------------------------------
# baseline: file, points exactly on a line

SLOPE = 0.85
INTERCEPT = float(logit(0.60) - SLOPE * logit(0.80))  # the line passes through (80 %, 60 %)
LINE_IDS = [55.0, 62.0, 68.0, 74.0, 79.0, 84.0, 88.0]
# (val correct per class -> val top-1 %, ImageNet-V2 top-1 %)
ON_LINE = ("on_line", 8, 60)
OFF_LINE = ("off_line", 7, 58)


@pytest.fixture(scope="module")
def line_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("er_line")
    table = {
        "model": [*(f"base{i}" for i in range(len(LINE_IDS))), "no_v2", "zero_v2"],
        "imagenet_val": [*LINE_IDS, 70.0, 71.0],
        "imagenet_v2": [*on_line(np.array(LINE_IDS), SLOPE, INTERCEPT), np.nan, 0.0],  # last two: left out
    }
    csv = write_baseline(root / "baseline.csv", table)
    for model, val_correct, v2 in (ON_LINE, OFF_LINE):
        write_val(root, model, val_correct)
        write_shift(root, "v2", model, v2)
    params = params_for(
        root, [ON_LINE[0], OFF_LINE[0]], {"v2": "imagenet_v2"}, {"baseline": "file", "baseline_file": str(csv)}
    )
    return csv, run(params)


def test_file_baseline_model_on_the_line_has_zero_er(line_run):
    _, records = line_run
    record = records[ON_LINE[0]]
    assert record.metrics["robustness/imagenet_val/top1"] == pytest.approx(80.0)
    assert record.metrics["robustness/imagenet_v2/top1"] == pytest.approx(60.0)
    assert record.metrics[er_metric("imagenet_v2")] == pytest.approx(0.0, abs=1e-9)


def test_file_baseline_model_off_the_line_has_hand_computed_er(line_run):
    _, records = line_run
    # the line at val 70 %: 100 * sigmoid(0.85 * logit(0.7) + logit(0.6) - 0.85 * logit(0.8))
    expected = 58.0 - 100.0 * sigmoid(SLOPE * np.log(0.7 / 0.3) + np.log(0.6 / 0.4) - SLOPE * np.log(0.8 / 0.2))
    assert expected == pytest.approx(9.3167, abs=1e-4)  # 58 - 48.683: the model sits well above the line
    assert records[OFF_LINE[0]].metrics[er_metric("imagenet_v2")] == pytest.approx(expected, abs=1e-9)


def test_file_baseline_record_details_name_the_line(line_run):
    csv, records = line_run
    for record in records.values():
        details = record.details["effective_robustness"]
        assert details["baseline"] == str(csv)
        assert details["skipped"] == {}
        line = details["lines"]["imagenet_v2"]
        assert line["id_axis"] == ["imagenet_val"]
        assert line["n_models"] == len(LINE_IDS)  # the rows with a missing or 0 % top-1 are left out
        assert line["fit"] == pytest.approx([SLOPE, INTERCEPT], abs=1e-9)


def test_file_baseline_without_a_shift_column_is_an_error(tmp_path):
    csv = write_baseline(tmp_path / "baseline.csv", {"model": ["a", "b"], "imagenet_val": [70.0, 80.0]})
    write_val(tmp_path, "m", 8)
    write_shift(tmp_path, "v2", "m", 60)
    params = params_for(tmp_path, ["m"], {"v2": "imagenet_v2"}, {"baseline": "file", "baseline_file": str(csv)})
    with pytest.raises(UserError, match=r"no column 'imagenet_v2'"):
        run(params)


# ---------------------------------------------------------------------------------------------------------------
# baseline: testbed (the shipped imagenet-testbed table)


def test_testbed_baseline_loads_the_packaged_csv():
    baseline = baselines.testbed_baseline()
    table = pd.read_csv(TESTBED_FILE)
    assert len(baseline.models) == 85 == len(table)
    assert baseline.models == tuple(table["model"])
    assert "imagenet-testbed" in baseline.source
    assert set(baseline.columns) == set(table.columns) - {"model"}
    np.testing.assert_array_equal(baseline.columns["imagenet_v2"], table["imagenet_v2"].to_numpy())
    assert baseline.points(["imagenet_val", "imagenet_v2"]).shape == (2, 85)
    assert baseline.points([on_classes_column("imagenet_a"), "imagenet_a"]).shape == (2, 84)  # one model at 0 %
    assert baseline.points([on_classes_column("imagenet_r"), "imagenet_r"]).shape == (2, 80)  # 5 without IN-R


# (model, val correct per class outside A's classes, val correct per class on A's classes, V2, Sketch, A top-1 %)
TESTBED_MODELS = [("tb_low", 6, 8, 55, 20, 6), ("tb_high", 9, 9, 72, 41, 35)]


@pytest.fixture(scope="module")
def testbed_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("er_testbed")
    for model, correct, a_correct, v2, sketch, ina in TESTBED_MODELS:
        write_val(root, model, correct, A_COLUMNS, a_correct)
        write_shift(root, "v2", model, v2)
        write_shift(root, "sketch", model, sketch)
        write_shift(root, "ina", model, ina, A_COLUMNS)
    shifts = {"v2": "imagenet_v2", "sketch": "imagenet_sketch", "ina": "imagenet_a"}
    params = params_for(root, [m[0] for m in TESTBED_MODELS], shifts, {"baseline": "testbed"})
    return run(params)


def reference_testbed_line(id_column: str, shift: str) -> np.ndarray:
    """Least squares in logit space over the CSV rows with both top-1s strictly between 0 and 100 %."""
    table = pd.read_csv(TESTBED_FILE)
    x, y = table[id_column].to_numpy(float), table[shift].to_numpy(float)
    keep = np.isfinite(x) & np.isfinite(y) & (x > 0) & (x < 100) & (y > 0) & (y < 100)
    return wls([x[keep]], y[keep], np.ones(keep.sum()))


@pytest.mark.parametrize("index", range(len(TESTBED_MODELS)))
def test_testbed_er_equals_a_numpy_least_squares_reference(testbed_run, index):
    model, correct, a_correct, v2, sketch, ina = TESTBED_MODELS[index]
    record = testbed_run[model]
    val_top1 = (len(VAL_CLASSES) - len(A_COLUMNS)) * correct
    a_classes_top1 = 10.0 * a_correct
    assert record.metrics["robustness/imagenet_val/top1"] == pytest.approx(val_top1)
    assert record.metrics["robustness/imagenet_val_on_imagenet_a_classes/top1"] == pytest.approx(a_classes_top1)
    for shift, id_column, id_top1, top1 in (
        ("imagenet_v2", "imagenet_val", val_top1, v2),
        ("imagenet_sketch", "imagenet_val", val_top1, sketch),
        ("imagenet_a", on_classes_column("imagenet_a"), a_classes_top1, ina),
    ):
        slope, intercept = reference_testbed_line(id_column, shift)
        expected = top1 - on_line(id_top1, slope, intercept)
        assert record.metrics[er_metric(shift)] == pytest.approx(expected, abs=1e-9), shift
        line = record.details["effective_robustness"]["lines"][shift]
        assert line["fit"] == pytest.approx([slope, intercept], abs=1e-9)
        assert line["id_axis"] == [id_column]


def test_testbed_record_details(testbed_run):
    details = testbed_run["tb_low"].details["effective_robustness"]
    assert "imagenet-testbed" in details["baseline"] and details["skipped"] == {}
    assert {s: line["n_models"] for s, line in details["lines"].items()} == {
        "imagenet_v2": 85,
        "imagenet_sketch": 85,
        "imagenet_a": 84,
    }


# ---------------------------------------------------------------------------------------------------------------
# baseline: models of this run

# (model, val correct per class, V2 top-1 %): four baseline models (not on one line) and one other model
RUN_MODELS = [("b1", 6, 42), ("b2", 7, 55), ("b3", 8, 61), ("b4", 9, 77), ("new", 8, 70)]
MEMBERS = ["b1", "b2", "b3", "b4"]


@pytest.fixture(scope="module")
def models_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("er_models")
    for model, correct, v2 in RUN_MODELS:
        write_val(root, model, correct)
        write_shift(root, "v2", model, v2)
    robustness = {"baseline": "models", "baseline_models": MEMBERS}
    return run(params_for(root, [m[0] for m in RUN_MODELS], {"v2": "imagenet_v2"}, robustness))


def test_models_baseline_er_is_against_the_members_least_squares_line(models_run):
    members = [m for m in RUN_MODELS if m[0] in MEMBERS]
    slope, intercept = wls([[10.0 * m[1] for m in members]], [m[2] for m in members])
    for model, correct, v2 in RUN_MODELS:
        expected = v2 - on_line(10.0 * correct, slope, intercept)
        assert models_run[model].metrics[er_metric("imagenet_v2")] == pytest.approx(expected, abs=1e-9), model
    # the members scatter about their line (ER of both signs); the other model lies well above it
    members_er = [models_run[m].metrics[er_metric("imagenet_v2")] for m in MEMBERS]
    assert min(members_er) < -0.5 and max(members_er) > 0.5
    assert models_run["new"].metrics[er_metric("imagenet_v2")] > 5.0


def test_models_baseline_details_and_intervals(models_run):
    for record in models_run.values():
        details = record.details["effective_robustness"]
        assert details["baseline"] == "models of this run: b1, b2, b3, b4"
        assert details["lines"]["imagenet_v2"] == {"id_axis": ["imagenet_val"], "n_models": 4, "fit": None}
        check_interval(record, er_metric("imagenet_v2"))


@pytest.mark.parametrize(
    ("robustness", "message"),
    [
        ({"baseline": "models", "baseline_models": ["b1", "b2"]}, r"baseline_models must list >= 3 models"),
        ({"baseline": "models", "baseline_models": []}, r"baseline_models must list >= 3 models"),
        ({"baseline": "models", "baseline_models": ["b1", "b2", "ghost"]}, r"\['ghost'\].*not in `models`"),
        # a model listed twice would pass ">= 3" with a line through two models (and count double in the fit)
        ({"baseline": "models", "baseline_models": ["b1", "b1", "b2"]}, r"baseline_models lists a model twice"),
        ({"baseline": "file"}, r"baseline_file must name a CSV"),
        ({"baseline": "testbed", "second_id": "val"}, r"second_id needs baseline: models or file"),
        ({"baseline": "models", "baseline_models": ["b1", "b2", "b3"], "second_id": "nope"}, r"'nope'.*not a key"),
    ],
)
def test_robustness_baseline_config_is_validated(tmp_path, robustness, message):
    with pytest.raises(ParamsError, match=message):
        params_for(tmp_path, ["b1", "b2", "b3"], {"v2": "imagenet_v2"}, robustness)


def test_valid_models_baseline_config_parses(tmp_path):
    params = params_for(tmp_path, ["b1", "b2", "b3"], {}, {"baseline": "models", "baseline_models": ["b1", "b2", "b3"]})
    assert params.analyses.robustness.baseline_models == ["b1", "b2", "b3"]


# ---------------------------------------------------------------------------------------------------------------
# ImageNet-A and -R: the ID axis is ImageNet val on the shift's classes

SHIFT_SUBSETS = {"imagenet_a": A_COLUMNS, "imagenet_r": R_COLUMNS}
SHIFT_SLOPE, SHIFT_INTERCEPT = 1.1, -2.3
# (model, val correct per class outside the shift's classes, on its classes, shift top-1 %)
SUBSET_MODELS = [("sx", 8, 7, 30), ("sy", 5, 9, 55)]
# the baseline file: val on the shift's classes (its line's ID axis) and all of val (not on that line)
SUBSET_BASE_ON_CLASSES = [70.0, 75.0, 80.0, 85.0, 90.0, 95.0]
SUBSET_BASE_VAL = [50.0, 58.0, 64.0, 71.0, 77.0, 83.0]


def subset_run(root: Path, kind: str, subset_labels: bool, with_on_classes_column: bool = True) -> dict:
    columns = SHIFT_SUBSETS[kind]
    table = {
        "model": [f"base{i}" for i in range(len(SUBSET_BASE_ON_CLASSES))],
        "imagenet_val": SUBSET_BASE_VAL,
        kind: list(on_line(np.array(SUBSET_BASE_ON_CLASSES), SHIFT_SLOPE, SHIFT_INTERCEPT)),
    }
    if with_on_classes_column:
        table[on_classes_column(kind)] = SUBSET_BASE_ON_CLASSES
    csv = write_baseline(root / "baseline.csv", table)
    for model, correct, shift_correct, top1 in SUBSET_MODELS:
        write_val(root, model, correct, columns, shift_correct, subset_labels)
        write_shift(root, "shift", model, top1, columns)
    robustness = {"baseline": "file", "baseline_file": str(csv)}
    return run(params_for(root, [m[0] for m in SUBSET_MODELS], {"shift": kind}, robustness))


@pytest.mark.parametrize("subset_labels", [False, True], ids=["val_imagenet1k", "val_subset_labels"])
@pytest.mark.parametrize("kind", ["imagenet_a", "imagenet_r"])
def test_a_and_r_id_axis_is_val_on_the_shift_classes(tmp_path, kind, subset_labels):
    records = subset_run(tmp_path, kind, subset_labels)
    n_shift_classes = len(SHIFT_SUBSETS[kind])
    for model, correct, shift_correct, top1 in SUBSET_MODELS:
        record = records[model]
        val_top1 = (len(VAL_CLASSES) - n_shift_classes) * correct
        on_classes_top1 = 10.0 * shift_correct
        assert record.metrics["robustness/imagenet_val/top1"] == pytest.approx(val_top1)
        assert record.metrics[f"robustness/{kind}/top1"] == pytest.approx(top1)
        assert record.metrics[f"robustness/{on_classes_column(kind)}/top1"] == pytest.approx(on_classes_top1)
        expected = top1 - on_line(on_classes_top1, SHIFT_SLOPE, SHIFT_INTERCEPT)
        assert record.metrics[er_metric(kind)] == pytest.approx(expected, abs=1e-9)
        wrong_axis = top1 - on_line(val_top1, SHIFT_SLOPE, SHIFT_INTERCEPT)
        assert abs(expected - wrong_axis) > 5.0  # the test tells the two ID axes apart
        # the val images of the shift's classes: 10 per class of a class-balanced set -> resampled within class
        assert "/within-class/" in record.intervals[f"robustness/{on_classes_column(kind)}/top1"]["plan"]
        line = record.details["effective_robustness"]["lines"][kind]
        assert line["id_axis"] == [on_classes_column(kind)] and line["n_models"] == 6
        check_interval(record, er_metric(kind))


def test_file_baseline_without_the_on_classes_column_uses_all_of_val_and_says_so(tmp_path):
    records = subset_run(tmp_path, "imagenet_a", False, with_on_classes_column=False)
    # the file's line is then fitted on (and read at) full val top-1: the file's imagenet_val column
    shift_top1 = on_line(np.array(SUBSET_BASE_ON_CLASSES), SHIFT_SLOPE, SHIFT_INTERCEPT)
    slope, intercept = wls([SUBSET_BASE_VAL], shift_top1)
    for model, correct, _, top1 in SUBSET_MODELS:
        record = records[model]
        val_top1 = (len(VAL_CLASSES) - len(A_COLUMNS)) * correct
        assert record.metrics[er_metric("imagenet_a")] == pytest.approx(top1 - on_line(val_top1, slope, intercept))
        assert record.details["effective_robustness"]["lines"]["imagenet_a"]["id_axis"] == ["imagenet_val"]
        assert f"robustness/{on_classes_column('imagenet_a')}/top1" not in record.metrics


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("val_imagenet1k_other_classes", r"val has images of 0 of the 3 classes of ina"),
        ("val_subset_other_classes", r"val has images of 0 of the 3 classes of ina"),
        ("val_covers_some_classes", r"val has images of 1 of the 3 classes of ina"),
        ("shift_without_subset_labels", r"has no ImageNet subset label space"),
    ],
)
def test_a_is_skipped_with_a_reason_when_val_cannot_give_its_id_axis(tmp_path, case, reason):
    # none of the val classes; or one of them: the testbed's axis is val on *all* the shift's classes
    other_columns = [VAL_CLASSES[5], 600, 700] if case == "val_covers_some_classes" else [500, 600, 700]
    table = {
        "model": ["b0", "b1", "b2", "b3"],
        "imagenet_val": [60.0, 70.0, 75.0, 80.0],
        "imagenet_v2": [48.0, 57.0, 63.0, 69.0],
        on_classes_column("imagenet_a"): [85.0, 90.0, 92.0, 95.0],
        "imagenet_a": [3.0, 8.0, 12.0, 20.0],
    }
    csv = write_baseline(tmp_path / "baseline.csv", table)
    for model, correct in (("m1", 8), ("m2", 6)):
        write_val(tmp_path, model, correct, subset_labels=case == "val_subset_other_classes")
        write_shift(tmp_path, "v2", model, 60)
        write_shift(tmp_path, "ina", model, 20, None if case == "shift_without_subset_labels" else other_columns)
    shifts = {"v2": "imagenet_v2", "ina": "imagenet_a"}
    records = run(params_for(tmp_path, ["m1", "m2"], shifts, {"baseline": "file", "baseline_file": str(csv)}))
    slope, intercept = wls([table["imagenet_val"]], table["imagenet_v2"])
    for model, correct in (("m1", 8), ("m2", 6)):
        record = records[model]
        details = record.details["effective_robustness"]
        assert set(details["skipped"]) == {"imagenet_a"}
        assert "cannot be computed" in details["skipped"]["imagenet_a"]
        assert re.search(reason, details["skipped"]["imagenet_a"])
        assert "imagenet_a" not in details["lines"]
        assert er_metric("imagenet_a") not in record.metrics and er_metric("imagenet_a") not in record.intervals
        assert record.metrics["robustness/imagenet_a/top1"] == pytest.approx(20.0)  # its top-1 is still there
        expected = 60.0 - on_line(10.0 * correct, slope, intercept)  # the other shift still gets its ER
        assert record.metrics[er_metric("imagenet_v2")] == pytest.approx(expected, abs=1e-9)


# ---------------------------------------------------------------------------------------------------------------
# second_id: a plane on two ID axes (Shi et al. 2023)

PLANE = (0.7, 0.4, float(logit(0.70) - 0.7 * logit(0.80) - 0.4 * logit(0.60)))  # through (80 %, 60 %, 70 %)
# (model, val correct per class, second-ID top-1 %, V2 top-1 %)
ON_PLANE = ("on_plane", 8, 60, 70)
OFF_PLANE = ("off_plane", 7, 75, 66)
SECOND_DATASET = {"sec": {"path": "unused", "kind": "image_folder", "label_space": "custom"}}


@pytest.fixture(scope="module")
def plane_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("er_plane")
    rng = np.random.default_rng(5)
    ids, seconds = rng.uniform(55, 90, 8), rng.uniform(40, 80, 8)
    table = {
        "model": [f"base{i}" for i in range(8)],
        "imagenet_val": ids,
        "sec": seconds,
        "imagenet_v2": on_plane(ids, seconds, PLANE),
    }
    write_baseline(root / "baseline.csv", table)
    for model, correct, second, v2 in (ON_PLANE, OFF_PLANE):
        write_val(root, model, correct)
        write_shift(root, "v2", model, v2)
        write_second_id(root, model, second)
    robustness = {"baseline": "file", "baseline_file": str(root / "baseline.csv"), "second_id": "sec"}
    params = params_for(
        root, [ON_PLANE[0], OFF_PLANE[0]], {"v2": "imagenet_v2"}, robustness, extra_datasets=SECOND_DATASET
    )
    return table, run(params)


def test_second_id_model_on_the_plane_has_zero_multi_id_er(plane_run):
    _, records = plane_run
    record = records[ON_PLANE[0]]
    assert record.metrics["robustness/second_id/sec/top1"] == pytest.approx(60.0)
    assert record.metrics[er_metric("imagenet_v2", multi=True)] == pytest.approx(0.0, abs=1e-9)


def test_second_id_off_the_plane_and_the_single_line_beside_it(plane_run):
    table, records = plane_run
    record = records[OFF_PLANE[0]]
    _, correct, second, v2 = OFF_PLANE
    expected = v2 - on_plane(10.0 * correct, second, PLANE)
    assert abs(expected) > 1.0
    assert record.metrics[er_metric("imagenet_v2", multi=True)] == pytest.approx(expected, abs=1e-9)
    slope, intercept = wls([table["imagenet_val"]], table["imagenet_v2"])  # the one-ID line on the same baseline
    assert record.metrics[er_metric("imagenet_v2")] == pytest.approx(v2 - on_line(10.0 * correct, slope, intercept))
    for model_record in records.values():
        check_interval(model_record, er_metric("imagenet_v2", multi=True))
        check_interval(model_record, er_metric("imagenet_v2"))


def test_second_id_plane_is_recorded_beside_the_line(plane_run):
    table, records = plane_run
    lines = records[ON_PLANE[0]].details["effective_robustness"]["lines"]
    assert lines["imagenet_v2"]["id_axis"] == ["imagenet_val"]
    plane = lines["imagenet_v2/multi_id"]
    assert plane["id_axis"] == ["imagenet_val", "sec"] and plane["n_models"] == len(table["model"])
    assert np.allclose(sorted(plane["fit"]), sorted(PLANE), atol=1e-6)  # the planted plane's coefficients


def test_no_shift_needs_no_imagenet_val(tmp_path):
    # an ImageNet-Hard-only robustness run: no shift to put ER on, so no ID axis is needed (and nothing is read)
    config = RobustnessConfig(datasets=["hard"], baseline="testbed")
    datasets = {"hard": DatasetConfig(path=str(tmp_path), kind="imagenet_hard")}
    ctx = AnalysisContext(["m1"], CacheStore(tmp_path), tmp_path, datasets, StatisticsConfig(resamples=100))
    record = ResultRecord("robustness", "m1", "robustness", {})
    book = new_book(ctx.statistics)
    add_effective_robustness(book, config, ctx, {"m1": record})
    assert record.details["effective_robustness"]["lines"] == {} and not book.resolve()
    with pytest.raises(UserError, match="needs an imagenet_val dataset"):  # a shift without val is refused
        config = RobustnessConfig(datasets=["v2"], baseline="testbed")
        v2_only = {"v2": DatasetConfig(path="x", kind="imagenet_v2")}
        ctx = AnalysisContext(["m1"], CacheStore(tmp_path), tmp_path, v2_only, StatisticsConfig(resamples=100))
        add_effective_robustness(new_book(ctx.statistics), config, ctx, {"m1": record})


def test_second_id_with_a_models_baseline_fits_their_plane(tmp_path):
    # (model, val correct per class, second-ID top-1 %, V2 top-1 %): five baseline models and one other
    rows = [("p1", 6, 50, 45), ("p2", 7, 70, 52), ("p3", 8, 45, 60), ("p4", 9, 65, 74), ("p5", 7, 55, 50)]
    rows.append(("other", 8, 80, 66))
    members = [r[0] for r in rows[:5]]
    for model, correct, second, v2 in rows:
        write_val(tmp_path, model, correct)
        write_shift(tmp_path, "v2", model, v2)
        write_second_id(tmp_path, model, second)
    robustness = {"baseline": "models", "baseline_models": members, "second_id": "sec"}
    params = params_for(
        tmp_path, [r[0] for r in rows], {"v2": "imagenet_v2"}, robustness, extra_datasets=SECOND_DATASET
    )
    records = run(params)
    coef = wls([[10.0 * r[1] for r in rows[:5]], [r[2] for r in rows[:5]]], [r[3] for r in rows[:5]])
    for model, correct, second, v2 in rows:
        expected = v2 - on_plane(10.0 * correct, second, coef)
        assert records[model].metrics[er_metric("imagenet_v2", multi=True)] == pytest.approx(expected, abs=1e-9)
    assert abs(records["other"].metrics[er_metric("imagenet_v2", multi=True)]) > 1.0
    assert np.isfinite(records["other"].replicates[er_metric("imagenet_v2", multi=True)]).mean() > 0.9


# ---------------------------------------------------------------------------------------------------------------
# Intervals: image bootstrap combined with the bootstrap over baseline models


def image_only_replicates(record, slope: float, intercept: float) -> np.ndarray:
    """ER replicates with the line held fixed: only the model's images are resampled (paired top-1 replicates)."""
    id_rep = record.replicates["robustness/imagenet_val/top1"]
    v2_rep = record.replicates["robustness/imagenet_v2/top1"]
    return v2_rep - on_line(id_rep, slope, intercept)


def test_exact_line_baseline_bootstrap_adds_nothing_to_the_image_bootstrap(line_run):
    # every resample of baseline models that lie on one line refits that same line: ER replicates = image-only ones
    _, records = line_run
    for record in records.values():
        interval = check_interval(record, er_metric("imagenet_v2"))
        assert interval["plan"].startswith("combined:")
        replicates = record.replicates[er_metric("imagenet_v2")]
        reference = image_only_replicates(record, SLOPE, INTERCEPT)
        finite = np.isfinite(replicates)
        assert finite.mean() > 0.99
        np.testing.assert_allclose(replicates[finite], reference[finite], atol=1e-8)
        assert reference.std() > 1.0  # the images alone leave the ER uncertain by a few points


@pytest.fixture(scope="module")
def noisy_run(tmp_path_factory):
    """Six baseline models scattered about the line (0.5 logits), at lower accuracies than the model's."""
    root = tmp_path_factory.mktemp("er_noisy")
    ids = np.array([45.0, 50.0, 55.0, 60.0, 65.0, 70.0])
    scatter = np.array([0.5, -0.5, 0.5, -0.5, -0.5, 0.5])
    table = {
        "model": [f"base{i}" for i in range(6)],
        "imagenet_val": ids,
        "imagenet_v2": 100.0 * sigmoid(SLOPE * logit(ids / 100.0) + INTERCEPT + scatter),
        "imagenet_sketch": 100.0 * sigmoid(0.9 * logit(ids / 100.0) - 1.0 - scatter),
    }
    csv = write_baseline(root / "baseline.csv", table)
    write_val(root, "far", 9)
    write_shift(root, "v2", "far", 70)
    write_shift(root, "sketch", "far", 40)
    shifts = {"v2": "imagenet_v2", "sketch": "imagenet_sketch"}
    return table, run(params_for(root, ["far"], shifts, {"baseline": "file", "baseline_file": str(csv)}))


def test_intervals_widen_with_the_baseline_bootstrap(noisy_run):
    table, records = noisy_run
    record = records["far"]
    slope, intercept = wls([table["imagenet_val"]], table["imagenet_v2"])
    assert record.metrics[er_metric("imagenet_v2")] == pytest.approx(70.0 - on_line(90.0, slope, intercept))
    for shift in ("imagenet_v2", "imagenet_sketch"):
        check_interval(record, er_metric(shift))
    interval = record.intervals[er_metric("imagenet_v2")]
    image_only = image_only_replicates(record, slope, intercept)
    combined = record.replicates[er_metric("imagenet_v2")]
    assert interval["high"] - interval["low"] > 1.2 * image_only_interval(image_only)
    finite = np.isfinite(combined)
    assert np.std(combined[finite] - image_only[finite]) > 1.0  # the refitted lines move the prediction


def test_intervals_are_reproducible_from_the_seed(noisy_run, tmp_path):
    table, records = noisy_run
    csv = write_baseline(tmp_path / "baseline.csv", table)
    write_val(tmp_path, "far", 9)
    write_shift(tmp_path, "v2", "far", 70)
    write_shift(tmp_path, "sketch", "far", 40)
    shifts = {"v2": "imagenet_v2", "sketch": "imagenet_sketch"}
    robustness = {"baseline": "file", "baseline_file": str(csv)}
    same = run(params_for(tmp_path, ["far"], shifts, robustness))["far"]
    metric = er_metric("imagenet_v2")
    np.testing.assert_array_equal(same.replicates[metric], records["far"].replicates[metric])
    other = run(params_for(tmp_path, ["far"], shifts, robustness, statistics={"seed": 12}))["far"]
    assert not np.allclose(other.replicates[metric], same.replicates[metric])


# ---------------------------------------------------------------------------------------------------------------
# dataset_plan: within class on class-balanced-by-design sets, else over images

PLAN_DATASETS = {
    "val": DatasetConfig(path="unused", kind="imagenet_val"),
    "ina": DatasetConfig(path="unused", kind="imagenet_a"),
    "folder": DatasetConfig(path="unused", kind="image_folder"),
}


def ids_of(n: int) -> list[str]:
    return [val_name(i + 1) for i in range(n)]


@pytest.mark.parametrize(
    ("dataset", "per_class", "within_class", "method"),
    [
        ("val", [10, 10, 10, 10], True, "within class"),
        ("val", [12, 12, 12], True, "within class"),
        ("val", [9, 9, 9, 9], True, "over images"),  # fewer than 10 per class
        ("val", [10, 10, 11], True, "over images"),  # these images are not balanced
        ("val", [10, 10, 10, 10], False, "over images"),  # statistics.within_class: false
        ("ina", [10, 10, 10, 10], True, "over images"),  # ImageNet-A is not balanced by design
        ("folder", [10, 10, 10, 10], True, "over images"),
        ("not_listed", [10, 10, 10, 10], True, "over images"),
    ],
)
def test_dataset_plan(dataset, per_class, within_class, method):
    statistics = StatisticsConfig(resamples=150, seed=4, within_class=within_class)
    targets = np.repeat(np.arange(len(per_class)), per_class)
    targets = targets[np.random.default_rng(0).permutation(len(targets))]  # classes interleaved
    plan = dataset_plan(statistics, PLAN_DATASETS, dataset, ids_of(len(targets)), targets)
    assert plan.method == method
    assert plan.n == len(targets) and plan.resamples == 150 and plan.seed == 4
    counts = np.concatenate(list(plan.counts()))
    assert counts.shape == (150, len(targets))
    assert np.all(counts.sum(axis=1) == len(targets))
    per_class_draws = np.stack([counts[:, targets == c].sum(axis=1) for c in range(len(per_class))], axis=1)
    if method == "within class":
        assert "/within-class/" in plan.name
        np.testing.assert_array_equal(plan.strata, targets)
        np.testing.assert_array_equal(per_class_draws, np.broadcast_to(per_class, per_class_draws.shape))
    else:
        assert "/images/" in plan.name and plan.strata is None
        assert not np.all(per_class_draws == np.asarray(per_class))  # class sizes vary across resamples


def test_plan_method_reaches_the_estimate_record():
    statistics = StatisticsConfig(resamples=120, seed=2)
    targets = np.repeat(np.arange(4), 10)
    values = (np.arange(40) % 3 == 0).astype(float)
    book = new_book(statistics)
    for dataset in ("val", "ina"):
        plan = dataset_plan(statistics, PLAN_DATASETS, dataset, ids_of(40), targets)
        book.add("m", f"{dataset}/mean", plan, mean_statistic(values, 100.0))
    estimates = book.resolve()["m"]
    assert estimates["val/mean"].method == "bootstrap percentile (within class)"
    assert estimates["ina/mean"].method == "bootstrap percentile (over images)"
    assert estimates["val/mean"].level == statistics.level and len(estimates["val/mean"].replicates) == 120


@pytest.mark.parametrize("within_class", [True, False])
def test_robustness_record_says_which_plan(tmp_path, within_class):
    csv = write_baseline(
        tmp_path / "baseline.csv",
        {"model": ["a", "b", "c"], "imagenet_val": [60.0, 70.0, 80.0], "imagenet_sketch": [20.0, 25.0, 31.0]},
    )
    write_val(tmp_path, "m", 8)
    write_shift(tmp_path, "sketch", "m", 30)
    robustness = {"baseline": "file", "baseline_file": str(csv)}
    statistics = {"within_class": within_class}
    record = run(params_for(tmp_path, ["m"], {"sketch": "imagenet_sketch"}, robustness, statistics))["m"]
    val_plan = record.intervals["robustness/imagenet_val/top1"]["plan"]
    assert ("/within-class/" in val_plan) is within_class and ("/images/" in val_plan) is not within_class
    assert "/images/" in record.intervals["robustness/imagenet_sketch/top1"]["plan"]  # not balanced by design
    check_interval(record, er_metric("imagenet_sketch"))
