"""The paper-suite analyses (robustness, ImageNet-X, PUG, shape bias) on caches written by hand per docs/cache.md.

Every expected value is counted by hand in the comments (or recomputed independently in the test), never taken
from the code under test.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from beyond_imagenet.analyses.common import AnalysisContext
from beyond_imagenet.analyses.imagenet_x import run_imagenet_x
from beyond_imagenet.analyses.pug import run_pug
from beyond_imagenet.analyses.robustness import run_robustness
from beyond_imagenet.analyses.shape_bias import run_shape_bias
from beyond_imagenet.analyses.store import CacheStore
from beyond_imagenet.base.config import parse_params
from beyond_imagenet.base.errors import UserError
from beyond_imagenet.data.cue_conflict import CATEGORIES, CATEGORY_INDICES
from beyond_imagenet.data.imagenet_x import FACTORS
from beyond_imagenet.data.pug import PUG_FACTORS
from beyond_imagenet.inference.cache import cache_path
from beyond_imagenet.stages.analyze import analyze
from beyond_imagenet.stages.paths import stage_paths

MODEL_A, MODEL_B = "hand:model_a", "hand:model_b"
MODELS = [MODEL_A, MODEL_B]
IMAGENET1K = {"kind": "imagenet1k", "n_classes": 1000}


def val_name(number: int) -> str:
    return f"ILSVRC2012_val_{number:08d}.JPEG"


def logits_with_argmax(predicted, n_columns: int = 1000, decoy: int | None = None) -> np.ndarray:
    """Zero logits with 10 at each row's predicted column (and 50 at ``decoy``, a column the analysis must drop)."""
    predicted = np.asarray(predicted, dtype=np.int64)
    logits = np.zeros((len(predicted), n_columns), dtype=np.float32)
    logits[np.arange(len(predicted)), predicted] = 10.0
    if decoy is not None:
        logits[:, decoy] = 50.0
    return logits


def write_cache(
    cache_dir: Path,
    dataset: str,
    model: str,
    logits: np.ndarray,
    targets,
    ids: list[str],
    label: dict | None = None,
    variant: str | None = None,
) -> Path:
    """Exactly the five files of docs/cache.md, at the path the inference stage would use."""
    path = cache_path(cache_dir, dataset, model, variant)
    path.mkdir(parents=True, exist_ok=True)
    np.save(path / "logits.npy", np.asarray(logits, dtype=np.float32))
    np.save(path / "features.npy", np.zeros((len(ids), 4), dtype=np.float32))
    np.save(path / "targets.npy", np.asarray(targets, dtype=np.int64))
    (path / "sample_ids.json").write_text(json.dumps(ids))
    dataset_meta = {"name": dataset, **({"variant": variant} if variant else {})}
    meta = {
        "model": {"model_id": model, "family": "convnet", "paradigm": "supervised"},
        "dataset": dataset_meta,
        "output_space": {"kind": "imagenet1k", "n_classes": logits.shape[1]},
        "label_space": label or IMAGENET1K,
    }
    (path / "meta.json").write_text(json.dumps(meta))
    return path


def make_params(root: Path, datasets: dict, analyses: dict):
    return parse_params(
        {
            "models": MODELS,
            "datasets": datasets,
            "inference": {"cache_dir": str(root / "cache")},
            "analyses": analyses,
            "tracking": {"enabled": False},
            "results_dir": str(root / "results"),
        }
    )


def context(params, store: CacheStore) -> AnalysisContext:
    """What the analyze stage hands an analysis: the models, the caches, the figures folder and the datasets."""
    return AnalysisContext(list(params.models), store, stage_paths(params).analyze.figures, params.datasets)


def is_png(path: Path) -> bool:
    return path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ----------------------------------------------------------------------------------------------------------------
# Robustness (Table 2, Fig. 6 top)

# Hendrycks & Dietterich's AlexNet top-1 errors per corruption (averaged over severities), as fractions.
ALEXNET_ERRORS = {
    "gaussian_noise": 0.886428,
    "shot_noise": 0.894468,
    "impulse_noise": 0.922640,
    "defocus_blur": 0.819880,
    "glass_blur": 0.826268,
    "motion_blur": 0.785948,
    "zoom_blur": 0.798360,
    "snow": 0.866816,
    "frost": 0.826572,
    "fog": 0.819324,
    "brightness": 0.564592,
    "contrast": 0.853204,
    "elastic_transform": 0.646056,
    "pixelate": 0.717840,
    "jpeg_compression": 0.606500,
}
CORRUPTIONS = list(ALEXNET_ERRORS)
NOISE_AND_TWO_BLURS = CORRUPTIONS[:5]  # model B does better on these

# ImageNet val: file numbers, targets, and each model's top-1 class.
VAL_NUMBERS = [1, 2, 3, 10, 11, 50_000]
VAL_TARGETS = [3, 7, 100, 200, 999, 0]
VAL_PRED = {MODEL_A: [3, 8, 100, 200, 999, 5], MODEL_B: [4, 7, 100, 201, 998, 0]}
# ReaL entry i is the label list of ILSVRC2012_val_{i+1}: multi-label (file 2), empty (file 3), the last file.
REAL = {1: [3], 2: [7, 8], 3: [], 10: [201], 11: [999], 50_000: [5]}
# top-1 vs targets: A right on files 1, 3, 10, 11 (4/6); B right on 2, 3, 50000 (3/6)
# ReaL (file 3 skipped): A: 3 in [3], 8 in [7, 8], 200 not in [201], 999 in [999], 5 in [5] -> 4/5
#                        B: 4 not in [3], 7 in [7, 8], 201 in [201], 998 not in [999], 0 not in [5] -> 2/5
EXPECTED_ROBUSTNESS = {
    MODEL_A: {
        "imagenet_val": 100 * 4 / 6,
        "imagenet_real": 100 * 4 / 5,
        "imagenet_v2": 75.0,
        "imagenet_a": 80.0,
        "imagenet_r": 100.0,
        "imagenet_sketch": 60.0,
        "imagenet_c": 50.0,
    },
    MODEL_B: {
        "imagenet_val": 50.0,
        "imagenet_real": 40.0,
        "imagenet_v2": 25.0,
        "imagenet_a": 40.0,
        "imagenet_r": 50.0,
        "imagenet_sketch": 20.0,
        "imagenet_c": (5 * 60 + 10 * 20) / 15,
    },
}


def c_correct(model: str, corruption: str, severity: int) -> int:
    """Correct rows out of 4 in the ImageNet-C set (corruption, severity)."""
    if model == MODEL_A:  # severities 1..5 -> 100, 75, 50, 25, 0 %: every corruption averages 50 %
        return 5 - severity
    if severity == 1:  # B: 100 % at severity 1, then 50 % (first five corruptions: mean 60) or 0 % (mean 20)
        return 4
    return 2 if corruption in NOISE_AND_TWO_BLURS else 0


def c_per_corruption(model: str) -> dict[str, float]:
    return {c: 50.0 if model == MODEL_A else (60.0 if c in NOISE_AND_TWO_BLURS else 20.0) for c in CORRUPTIONS}


def expected_mce(model: str) -> float:
    """mCE (%) = mean over corruptions of 100 * mean-severity error / AlexNet error (Hendrycks)."""
    per = c_per_corruption(model)
    return sum(100 * (1 - per[c] / 100) / ALEXNET_ERRORS[c] for c in CORRUPTIONS) / len(CORRUPTIONS)


def setup_robustness(root: Path) -> tuple[dict, dict]:
    """Write the caches of both models on the six Table 2 sets and a ReaL file; return (datasets, analyses)."""
    cache_dir = root / "cache"
    real = [[] for _ in range(50_000)]
    for number, labels in REAL.items():
        real[number - 1] = labels
    (root / "real.json").write_text(json.dumps(real))

    a_columns = [6, 11, 13, 300]  # IN-A style subset: 4 classes, ImageNet columns in label order
    r_columns = [1, 2, 3]
    subsets = {
        # name: (label space, targets, {model: predicted column}, decoy column outside the subset)
        "v2": (IMAGENET1K, [10, 20, 30, 40], {MODEL_A: [10, 20, 30, 41], MODEL_B: [10, 0, 0, 0]}, None),
        "ina": (
            {"kind": "imagenet_subset", "n_classes": 4, "imagenet_columns": a_columns},
            [0, 1, 2, 3, 0],
            {MODEL_A: [a_columns[i] for i in (0, 1, 2, 3, 1)], MODEL_B: [a_columns[0]] * 5},
            500,  # logit 50 outside the subset: without the column restriction every row would be wrong
        ),
        "inr": (
            {"kind": "imagenet_subset", "n_classes": 3, "imagenet_columns": r_columns},
            [0, 1, 2, 2],
            {MODEL_A: [r_columns[i] for i in (0, 1, 2, 2)], MODEL_B: [r_columns[i] for i in (0, 1, 0, 1)]},
            999,
        ),
        "sketch": (IMAGENET1K, [5, 6, 7, 8, 9], {MODEL_A: [5, 6, 7, 0, 0], MODEL_B: [5, 0, 0, 0, 0]}, None),
    }
    ids = [val_name(n) for n in VAL_NUMBERS]
    for model in MODELS:
        write_cache(cache_dir, "val", model, logits_with_argmax(VAL_PRED[model]), VAL_TARGETS, ids)
        for name, (label, targets, predicted, decoy) in subsets.items():
            names = [f"{name}_{i}.jpg" for i in range(len(targets))]
            logits = logits_with_argmax(predicted[model], decoy=decoy)
            write_cache(cache_dir, name, model, logits, targets, names, label)
        for corruption in CORRUPTIONS:
            for severity in range(1, 6):
                targets = [0, 1, 2, 3]
                k = c_correct(model, corruption, severity)
                predicted = [t if i < k else t + 500 for i, t in enumerate(targets)]
                variant = f"{corruption}/{severity}"
                names = [val_name(i + 1) for i in range(4)]
                write_cache(cache_dir, "inc", model, logits_with_argmax(predicted), targets, names, variant=variant)

    datasets = {
        "val": {"path": str(root / "unused"), "kind": "imagenet_val"},
        "v2": {"path": str(root / "unused"), "kind": "imagenet_v2"},
        "ina": {"path": str(root / "unused"), "kind": "imagenet_a"},
        "inr": {"path": str(root / "unused"), "kind": "imagenet_r"},
        "sketch": {"path": str(root / "unused"), "kind": "imagenet_sketch"},
        "inc": {"path": str(root / "unused"), "kind": "imagenet_c"},
    }
    analyses = {"robustness": {"datasets": list(datasets), "real_labels": str(root / "real.json")}}
    return datasets, analyses


@pytest.fixture(scope="module")
def robustness_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("robustness")
    params = make_params(root, *setup_robustness(root))
    records = run_robustness(params.analyses.robustness, context(params, CacheStore(params.inference.cache_dir)))
    return root, params, {r.model_id: r for r in records}


@pytest.mark.parametrize("model", MODELS)
def test_robustness_top1_per_table2_column(robustness_run, model):
    _, _, records = robustness_run
    metrics = records[model].metrics
    for role, value in EXPECTED_ROBUSTNESS[model].items():
        assert metrics[f"robustness/{role}/top1"] == pytest.approx(value), role
    assert records[model].details["table2_row"] == pytest.approx(EXPECTED_ROBUSTNESS[model])
    assert records[model].analysis == "robustness" and records[model].dataset == "table2"


def test_real_accuracy_and_skipped_count(robustness_run):
    _, _, records = robustness_run
    for model, expected in ((MODEL_A, 80.0), (MODEL_B, 40.0)):
        assert records[model].metrics["robustness/imagenet_real/top1"] == pytest.approx(expected)
        assert records[model].metrics["robustness/imagenet_real/n_unlabeled_skipped"] == 1.0  # file 3


@pytest.mark.parametrize("model", MODELS)
def test_imagenet_c_mean_per_corruption_and_mce(robustness_run, model):
    _, _, records = robustness_run
    metrics = records[model].metrics
    assert metrics["robustness/imagenet_c/top1"] == pytest.approx(EXPECTED_ROBUSTNESS[model]["imagenet_c"])
    for corruption, value in c_per_corruption(model).items():
        assert metrics[f"robustness/imagenet_c/{corruption}/top1"] == pytest.approx(value), corruption
    assert metrics["robustness/imagenet_c/mce"] == pytest.approx(expected_mce(model))


def test_imagenet_c_mce_reference_values():
    # A: CE_c = 50 / E_c for all 15 -> 64.67; B: 40 / E_c for the first five, 80 / E_c for the rest -> 88.12
    assert expected_mce(MODEL_A) == pytest.approx(64.6726, abs=1e-4)
    assert expected_mce(MODEL_B) == pytest.approx(88.1164, abs=1e-4)


def test_no_table2_average_without_imagenet_hard(robustness_run):
    _, _, records = robustness_run
    for record in records.values():
        assert "robustness/average" not in record.metrics
        assert "robustness/effective_robustness_ratio" not in record.metrics
        assert record.details["average_missing"] == ["imagenet_hard"]


def test_janus_average_robustness_is_mean_of_v2_sketch_r_a(robustness_run):
    _, _, records = robustness_run
    # A: (75 + 60 + 100 + 80) / 4; B: (25 + 20 + 50 + 40) / 4
    assert records[MODEL_A].metrics["robustness/janus_average_robustness"] == pytest.approx(78.75)
    assert records[MODEL_B].metrics["robustness/janus_average_robustness"] == pytest.approx(33.75)


def test_robustness_figure_and_provenance(robustness_run):
    root, _, records = robustness_run
    figure = root / "results" / "figures" / "robustness" / "table2" / "all_models.png"
    assert is_png(figure)
    for model, record in records.items():
        assert record.artifacts == [str(figure)]
        assert {"val", "v2", "ina", "inr", "sketch"} <= set(record.provenance["datasets"])
        assert record.provenance["model"]["model_id"] == model
        assert record.provenance["n_samples"] == len(VAL_NUMBERS)  # the first dataset's (val) provenance


def test_robustness_rejects_a_dataset_that_is_no_table2_column(robustness_run):
    root, _, _ = robustness_run
    datasets = {"mine": {"path": str(root / "unused"), "kind": "image_folder"}}
    params = make_params(root, datasets, {"robustness": {"datasets": ["mine"]}})
    with pytest.raises(UserError, match="image_folder"):
        run_robustness(params.analyses.robustness, context(params, CacheStore(params.inference.cache_dir)))


def test_robustness_incomplete_imagenet_c_is_an_error(tmp_path):
    for severity in range(1, 5):  # fog at severities 1-4 only: 71 of the 75 sets missing
        write_cache(
            tmp_path / "cache", "inc", MODEL_A, logits_with_argmax([0]), [0], [val_name(1)], variant=f"fog/{severity}"
        )
    params = parse_params(
        {
            "models": [MODEL_A],
            "datasets": {"inc": {"path": str(tmp_path), "kind": "imagenet_c"}},
            "inference": {"cache_dir": str(tmp_path / "cache")},
            "analyses": {"robustness": {"datasets": ["inc"]}},
            "tracking": {"enabled": False},
            "results_dir": str(tmp_path / "results"),
        }
    )
    with pytest.raises(UserError, match="missing 71 of 75"):
        run_robustness(params.analyses.robustness, context(params, CacheStore(tmp_path / "cache")))


# ----------------------------------------------------------------------------------------------------------------
# ImageNet-X (Fig. 2)

# (file number, class, factors set to 1, model A's prediction, model B's prediction); file 112 is a prototype.
X_ROWS = [
    (101, 10, ["pose"], 10, 10),
    (102, 11, ["pose"], 0, 11),
    (103, 12, ["pose"], 12, 12),
    (104, 13, ["background"], 13, 13),
    (105, 14, ["background"], 0, 0),
    (106, 15, ["color"], 15, 15),
    (107, 16, ["color"], 16, 16),
    (108, 17, ["texture"], 0, 17),
    (109, 18, ["texture", "darker"], 18, 18),
    (110, 19, ["style"], 19, 19),
    (111, 20, ["smaller"], 0, 20),
    (112, 21, ["pose"], 0, 0),
]
PROTOTYPE = 112
# Annotated (prototype removed): 11 images. A right on 101, 103, 104, 106, 107, 109, 110 -> 7/11, 1 - avg = 4/11.
# B wrong only on 105 -> 10/11, 1 - avg = 1/11.
X_ACCURACY = {
    MODEL_A: {
        "pose": 2 / 3,
        "background": 1 / 2,
        "color": 1.0,
        "texture": 1 / 2,
        "darker": 1.0,
        "style": 1.0,
        "smaller": 0.0,
    },
    MODEL_B: {
        "pose": 1.0,
        "background": 1 / 2,
        "color": 1.0,
        "texture": 1.0,
        "darker": 1.0,
        "style": 1.0,
        "smaller": 1.0,
    },
}
X_AVERAGE = {MODEL_A: 7 / 11, MODEL_B: 10 / 11}
# error ratio (1 - acc_f) / (1 - avg): A: pose (1/3)/(4/11) = 11/12, background and texture 11/8, smaller 11/4
X_ERROR_RATIO_A = {"pose": 11 / 12, "background": 11 / 8, "color": 0.0, "texture": 11 / 8, "darker": 0.0}
X_ERROR_RATIO_A |= {"style": 0.0, "smaller": 11 / 4}
X_ERROR_RATIO_B = {"background": 11 / 2, "pose": 0.0}  # B: (1/2)/(1/11)


def write_imagenet_x_annotations(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / "imagenet_x_val_top_factor.jsonl").open("w") as handle:
        for number, label, flags, *_ in X_ROWS:
            row = {"file_name": val_name(number), "class": label, **{f: int(f in flags) for f in FACTORS}}
            row |= {"justification": "hand-made", "one_word": "toy"}
            handle.write(json.dumps(row) + "\n")
    (directory / "prototypical_paths.csv").write_text(f"file_name\n{val_name(PROTOTYPE)}\n")
    labels = "".join(f"{val_name(number)},{label}\n" for number, label, *_ in X_ROWS)
    (directory / "filename_label.csv").write_text("file_name,label\n" + labels)
    return directory


def write_imagenet_x_caches(cache_dir: Path, skip: int | None = None) -> None:
    rows = [r for r in X_ROWS if r[0] != skip]
    ids = [val_name(r[0]) for r in rows]
    targets = [r[1] for r in rows]
    for model, column in ((MODEL_A, 3), (MODEL_B, 4)):
        write_cache(cache_dir, "val_x", model, logits_with_argmax([r[column] for r in rows]), targets, ids)


def setup_imagenet_x(root: Path, skip: int | None = None, **config) -> tuple[dict, dict]:
    annotations = write_imagenet_x_annotations(root / "x_annotations")
    write_imagenet_x_caches(root / "cache", skip)
    datasets = {"val_x": {"path": str(root / "unused"), "kind": "imagenet_val"}}
    return datasets, {"imagenet_x": {"dataset": "val_x", "annotations_dir": str(annotations), **config}}


def run_x(root: Path, skip: int | None = None, **config):
    params = make_params(root, *setup_imagenet_x(root, skip, **config))
    return {
        r.model_id: r
        for r in run_imagenet_x(params.analyses.imagenet_x, context(params, CacheStore(params.inference.cache_dir)))
    }


def test_imagenet_x_error_ratios_by_hand_annotated_denominator(tmp_path):
    records = run_x(tmp_path)
    for model, ratios in ((MODEL_A, X_ERROR_RATIO_A), (MODEL_B, X_ERROR_RATIO_B)):
        metrics = records[model].metrics
        for factor, ratio in ratios.items():
            assert metrics[f"imagenet_x/{factor}/error_ratio"] == pytest.approx(ratio), factor
        for factor, accuracy in X_ACCURACY[model].items():
            assert metrics[f"imagenet_x/{factor}/accuracy"] == pytest.approx(100 * accuracy), factor
        assert metrics["imagenet_x/average"] == pytest.approx(100 * X_AVERAGE[model])
        # factors no annotated image has get no metric (rather than 0/0)
        assert not any(
            k.startswith(f"imagenet_x/{f}/") for f in ("pattern", "shape", "multiple_objects") for k in metrics
        )
        details = records[model].details
        assert details["n_annotated"] == 11 and details["n_joined"] == 11 and details["coverage"] == 1.0
        assert details["denominator"] == "annotated"
        # the prototype (a pose image) is not counted
        assert details["count"]["pose"] == 3 and details["count"]["darker"] == 1 and details["count"]["pattern"] == 0
    figure = tmp_path / "results" / "figures" / "imagenet_x" / "val_x" / "all_models.png"
    assert is_png(figure) and records[MODEL_A].artifacts == [str(figure)]


def test_imagenet_x_cache_without_the_prototype_is_complete(tmp_path):
    records = run_x(tmp_path, skip=PROTOTYPE)
    assert records[MODEL_A].metrics["imagenet_x/average"] == pytest.approx(100 * 7 / 11)
    assert records[MODEL_A].details["coverage"] == 1.0


def test_imagenet_x_partial_coverage_is_an_error_unless_allowed(tmp_path):
    with pytest.raises(UserError, match="allow_partial"):
        run_x(tmp_path / "strict", skip=108)
    # allowed: drop file 108 (A wrong, B right): A 7/10 right (1 - avg = 3/10), B 9/10 (1 - avg = 1/10)
    records = run_x(tmp_path / "partial", skip=108, allow_partial=True)
    a, b = records[MODEL_A], records[MODEL_B]
    assert a.details["n_joined"] == 10 and a.details["n_annotated"] == 11
    assert a.details["coverage"] == pytest.approx(10 / 11)
    assert a.metrics["imagenet_x/average"] == pytest.approx(70.0)
    assert a.metrics["imagenet_x/texture/accuracy"] == pytest.approx(100.0)  # only 109 is left
    assert a.metrics["imagenet_x/texture/error_ratio"] == pytest.approx(0.0)
    assert a.metrics["imagenet_x/pose/error_ratio"] == pytest.approx((1 / 3) / (3 / 10))
    assert a.metrics["imagenet_x/smaller/error_ratio"] == pytest.approx(1 / (3 / 10))
    assert b.metrics["imagenet_x/average"] == pytest.approx(90.0)
    assert b.metrics["imagenet_x/background/error_ratio"] == pytest.approx((1 / 2) / (1 / 10))


def test_imagenet_x_paper_denominator_uses_the_configured_annotations(tmp_path):
    records = run_x(tmp_path, denominator="paper")
    # full-val accuracy over all 12 predicted files (prototype included): A 7/12, B 10/12
    a, b = records[MODEL_A], records[MODEL_B]
    assert a.metrics["imagenet_x/average"] == pytest.approx(100 * 7 / 12)
    assert a.metrics["imagenet_x/pose/error_ratio"] == pytest.approx((1 / 3) / (5 / 12))
    assert a.metrics["imagenet_x/smaller/error_ratio"] == pytest.approx(1 / (5 / 12))
    assert b.metrics["imagenet_x/background/error_ratio"] == pytest.approx((1 / 2) / (2 / 12))
    assert a.details["denominator"] == "paper"


def test_imagenet_x_paper_denominator_partial_uses_the_configured_labels(tmp_path):
    records = run_x(tmp_path, denominator="paper", allow_partial=True)
    assert records[MODEL_A].metrics["imagenet_x/average"] == pytest.approx(100 * 7 / 12)


def test_imagenet_x_paper_denominator_with_the_package_annotations(tmp_path):
    """annotations_dir unset: the paper denominator is the accuracy against the package's filename_label.csv."""
    imagenet_x = pytest.importorskip("imagenet_x")
    package = Path(imagenet_x.__file__).parent / "annotations"
    with (package / "imagenet_x_val_top_factor.jsonl").open() as handle:
        rows = [json.loads(next(handle)) for _ in range(6)]
    prototypes = set((package / "prototypical_paths.csv").read_text().split())
    rows = [r for r in rows if r["file_name"] not in prototypes]
    val_labels = dict(line.split(",") for line in (package / "filename_label.csv").read_text().split()[1:])
    ids = [r["file_name"] for r in rows]
    labels = [int(val_labels[name]) for name in ids]
    assert labels == [r["class"] for r in rows]
    predicted = [label if i % 2 == 0 else (label + 1) % 1000 for i, label in enumerate(labels)]
    for model in MODELS:
        write_cache(tmp_path / "cache", "val_x", model, logits_with_argmax(predicted), labels, ids)
    datasets = {"val_x": {"path": str(tmp_path / "unused"), "kind": "imagenet_val"}}
    analyses = {"imagenet_x": {"dataset": "val_x", "denominator": "paper", "allow_partial": True}}
    params = make_params(tmp_path, datasets, analyses)
    record = {
        r.model_id: r
        for r in run_imagenet_x(params.analyses.imagenet_x, context(params, CacheStore(tmp_path / "cache")))
    }[MODEL_A]
    correct = [p == t for p, t in zip(predicted, labels, strict=True)]
    average = sum(correct) / len(correct)
    assert record.metrics["imagenet_x/average"] == pytest.approx(100 * average)
    for factor in FACTORS:
        hits = [c for c, r in zip(correct, rows, strict=True) if r[factor] == 1]
        key = f"imagenet_x/{factor}/error_ratio"
        if hits:
            assert record.metrics[key] == pytest.approx((1 - sum(hits) / len(hits)) / (1 - average)), factor
        else:
            assert key not in record.metrics
    assert record.details["n_joined"] == len(rows) and record.details["denominator"] == "paper"


# ----------------------------------------------------------------------------------------------------------------
# PUG-ImageNet (Fig. 3)

PUG_CLASS_MAP = {"Goldfish": [1], "Shirt": [841, 610], "Sweatshirt": [841], "Wolf": [269, 270, 271, 272]}
GOLDFISH, SHIRT, SWEATSHIRT, WOLF = range(4)  # sorted key order
PUG_BASE_TARGETS = [GOLDFISH, SHIRT, SHIRT, SWEATSHIRT, WOLF]
PUG_BASE_PRED = {MODEL_A: [1, 841, 610, 841, 272], MODEL_B: [841] * 5}
# Factor i adds i Wolf images predicted as tench (0, in no class), so subsets have 5..14 images.
# official (IN 841 -> Sweatshirt only): A right on goldfish, shirt->610, sweatshirt, wolf = 4; B only sweatshirt = 1
# corrected (prediction in the class's list): A 5 (shirt->841 too); B shirt x2 + sweatshirt = 3
PUG_CORRECT = {("official", MODEL_A): 4, ("official", MODEL_B): 1, ("corrected", MODEL_A): 5}
PUG_CORRECT[("corrected", MODEL_B)] = 3


def setup_pug(root: Path, label_map: str = "official") -> tuple[dict, dict]:
    pug_root = root / "pug_root"
    pug_root.mkdir(parents=True, exist_ok=True)
    (pug_root / "class_to_imagenet_idx.json").write_text(json.dumps(PUG_CLASS_MAP))
    label = {"kind": "custom", "n_classes": 4, "imagenet_columns": None}
    for i, factor in enumerate(PUG_FACTORS):
        targets = PUG_BASE_TARGETS + [WOLF] * i
        ids = [f"{factor}/img_{j}.png" for j in range(len(targets))]
        for model in MODELS:
            logits = logits_with_argmax(PUG_BASE_PRED[model] + [0] * i)
            write_cache(root / "cache", "pug", model, logits, targets, ids, label, variant=factor)
    datasets = {"pug": {"path": str(pug_root), "kind": "pug_imagenet"}}
    return datasets, {"pug": {"dataset": "pug", "label_map": label_map}}


@pytest.mark.parametrize("label_map", ["official", "corrected"])
def test_pug_per_factor_accuracy_and_unweighted_average(tmp_path, label_map):
    params = make_params(tmp_path, *setup_pug(tmp_path, label_map))
    records = {r.model_id: r for r in run_pug(params.analyses.pug, context(params, CacheStore(tmp_path / "cache")))}
    for model in MODELS:
        correct = PUG_CORRECT[(label_map, model)]
        per_factor = {f: 100 * correct / (5 + i) for i, f in enumerate(PUG_FACTORS)}
        metrics = records[model].metrics
        for factor, value in per_factor.items():
            assert metrics[f"pug/{factor}/top1"] == pytest.approx(value), factor
        assert metrics["pug/average"] == pytest.approx(sum(per_factor.values()) / 10)
        assert metrics["pug/average"] != pytest.approx(100 * 10 * correct / sum(5 + i for i in range(10)))  # pooled
        assert set(metrics) == {f"pug/{f}/top1" for f in PUG_FACTORS} | {"pug/average"}
        assert records[model].params == {"label_map": label_map}
    # official vs corrected on the Worlds subset (i = 0): A 80 % vs 100 %, B 20 % vs 60 %
    expected_worlds = {"official": (80.0, 20.0), "corrected": (100.0, 60.0)}[label_map]
    assert records[MODEL_A].metrics["pug/Worlds/top1"] == pytest.approx(expected_worlds[0])
    assert records[MODEL_B].metrics["pug/Worlds/top1"] == pytest.approx(expected_worlds[1])
    assert is_png(tmp_path / "results" / "figures" / "pug" / "pug" / "all_models.png")


def test_pug_missing_factor_subset_is_an_error(tmp_path):
    params = make_params(tmp_path, *setup_pug(tmp_path))
    for model in MODELS:
        (cache_path(tmp_path / "cache", "pug", model, "Scene_Light") / "meta.json").unlink()
    with pytest.raises(UserError, match="Scene_Light"):
        run_pug(params.analyses.pug, context(params, CacheStore(tmp_path / "cache")))


# ----------------------------------------------------------------------------------------------------------------
# Shape bias (Fig. 5)

# (sample id, decision of model A); shape = the part before the digits of the first name, texture after the '-'.
CUE_ROWS = [
    ("cat1-dog2.png", "cat"),  # shape decision
    ("cat2-elephant1.png", "elephant"),  # texture decision
    ("cat3-clock1.png", "cat"),  # shape
    ("dog1-cat4.png", "cat"),  # texture
    ("dog2-bird1.png", "oven"),  # neither
    ("bear1-bear2.png", "bear"),  # shape == texture: excluded
    ("knife1-knife3.png", "oven"),  # shape == texture: excluded -> knife has no conflict image (NaN)
    ("truck1-boat1.png", "knife"),  # neither -> truck S + T = 0 (NaN)
    ("bird1-car1.png", "bird"),  # shape
]
CUE_SHAPES = ["cat", "cat", "cat", "dog", "dog", "bear", "knife", "truck", "bird"]


def category_logits(decisions: list[str]) -> np.ndarray:
    """Logit 10 on every ImageNet index of the decided category, 0 elsewhere."""
    logits = np.zeros((len(decisions), 1000), dtype=np.float32)
    for row, category in enumerate(decisions):
        logits[row, list(CATEGORY_INDICES[category])] = 10.0
    return logits


def setup_shape_bias(root: Path) -> tuple[dict, dict]:
    ids = [row[0] for row in CUE_ROWS]
    targets = [CATEGORIES.index(s) for s in CUE_SHAPES]
    label = {"kind": "custom", "n_classes": 16, "imagenet_columns": None}
    decisions = {MODEL_A: [row[1] for row in CUE_ROWS], MODEL_B: ["oven"] * len(CUE_ROWS)}
    for model in MODELS:
        write_cache(root / "cache", "cue", model, category_logits(decisions[model]), targets, ids, label)
    datasets = {"cue": {"path": str(root / "unused"), "kind": "cue_conflict"}}
    return datasets, {"shape_bias": {"dataset": "cue"}}


def test_shape_bias_overall_and_per_class(tmp_path):
    params = make_params(tmp_path, *setup_shape_bias(tmp_path))
    records = {
        r.model_id: r
        for r in run_shape_bias(params.analyses.shape_bias, context(params, CacheStore(tmp_path / "cache")))
    }
    a = records[MODEL_A]
    # 7 conflict images; shape decisions: cat1, cat3, bird1 (3); texture: cat2, dog1 (2) -> 3 / 5
    assert a.metrics["shape_bias/overall"] == pytest.approx(0.6)
    assert a.metrics["shape_bias/fraction_correct_shape"] == pytest.approx(3 / 9)
    assert a.metrics["shape_bias/fraction_correct_texture"] == pytest.approx(2 / 9)
    # decision == shape over all 9: cat1, cat3, bear1 (excluded from the bias, not from accuracy), bird1
    assert a.metrics["shape_bias/accuracy_16"] == pytest.approx(100 * 4 / 9)
    assert a.metrics["shape_bias/cat/shape_bias"] == pytest.approx(2 / 3)
    assert a.metrics["shape_bias/dog/shape_bias"] == 0.0  # 0 shape vs 1 texture: a real 0, logged
    assert a.metrics["shape_bias/bird/shape_bias"] == 1.0
    # bear and knife (no conflict image) and truck (neither decision) are NaN: not logged
    per_class = {k for k in a.metrics if k.split("/")[1] in CATEGORIES}
    assert per_class == {"shape_bias/cat/shape_bias", "shape_bias/dog/shape_bias", "shape_bias/bird/shape_bias"}
    assert set(a.intervals) == set(a.metrics)  # every metric has its interval
    assert a.intervals["shape_bias/accuracy_16"]["method"] == "clopper-pearson"
    assert all(not math.isnan(v) for v in a.metrics.values())
    assert a.details == {"n_images": 9, "n_conflict": 7, "n_excluded": 2, "shape_bias_defined": True}

    b = records[MODEL_B]  # always "oven": neither shape nor texture anywhere -> undefined, nothing NaN logged
    assert b.metrics == {
        "shape_bias/fraction_correct_shape": 0.0,
        "shape_bias/fraction_correct_texture": 0.0,
        "shape_bias/accuracy_16": 0.0,
    }
    assert b.details["shape_bias_defined"] is False
    figure = tmp_path / "results" / "figures" / "shape_bias" / "cue" / "all_models.png"
    assert is_png(figure) and a.artifacts == [str(figure)]


def test_shape_bias_needs_1000_logits(tmp_path):
    label = {"kind": "custom", "n_classes": 16}
    write_cache(tmp_path / "cache", "cue", MODEL_A, np.zeros((1, 16)), [7], ["cat1-dog1.png"], label)
    write_cache(tmp_path / "cache", "cue", MODEL_B, np.zeros((1, 16)), [7], ["cat1-dog1.png"], label)
    datasets = {"cue": {"path": str(tmp_path / "unused"), "kind": "cue_conflict"}}
    params = make_params(tmp_path, datasets, {"shape_bias": {"dataset": "cue"}})
    with pytest.raises(UserError, match="1000"):
        run_shape_bias(params.analyses.shape_bias, context(params, CacheStore(tmp_path / "cache")))


# ----------------------------------------------------------------------------------------------------------------
# The analysis stage: all four through the registry, metrics.json and records on disk


def _no_nan(token: str):
    raise AssertionError(f"metrics.json holds {token}")


def test_run_analyses_writes_metrics_and_records(tmp_path):
    datasets, analyses = {}, {}
    for setup in (setup_robustness, setup_imagenet_x, setup_pug, setup_shape_bias):
        more_datasets, more_analyses = setup(tmp_path)
        datasets |= more_datasets
        analyses |= more_analyses
    params = make_params(tmp_path, datasets, analyses)
    records = analyze(params)
    assert sorted((r.analysis, r.model_id) for r in records) == sorted(
        (a, m) for a in ("robustness", "imagenet_x", "pug", "shape_bias") for m in MODELS
    )
    results = tmp_path / "results"
    metrics = json.loads((results / "metrics.json").read_text(), parse_constant=_no_nan)
    assert set(metrics) == set(MODELS)
    a = metrics[MODEL_A]
    assert a["robustness/imagenet_val/top1"] == pytest.approx(100 * 4 / 6)
    assert a["robustness/imagenet_real/top1"] == pytest.approx(80.0)
    assert a["robustness/imagenet_c/mce"] == pytest.approx(expected_mce(MODEL_A))
    assert a["robustness/janus_average_robustness"] == pytest.approx(78.75)
    assert "robustness/average" not in a
    assert a["imagenet_x/pose/error_ratio"] == pytest.approx(11 / 12)
    assert a["pug/average"] == pytest.approx(sum(100 * 4 / (5 + i) for i in range(10)) / 10)
    assert a["shape_bias/overall"] == pytest.approx(0.6)
    assert "shape_bias/overall" not in metrics[MODEL_B]
    assert metrics[MODEL_B]["robustness/imagenet_v2/top1"] == pytest.approx(25.0)

    record_files = {
        ("robustness", "table2"),
        ("imagenet_x", "val_x"),
        ("pug", "pug"),
        ("shape_bias", "cue"),
    }
    for analysis, dataset in record_files:
        for model in MODELS:
            path = results / "records" / analysis / dataset / f"{model.replace(':', '_')}.json"
            record = json.loads(path.read_text(), parse_constant=_no_nan)
            assert record["model_id"] == model and record["analysis"] == analysis
            assert all(metrics[model][k] == pytest.approx(v) for k, v in record["metrics"].items())
            assert all(Path(p).is_file() for p in record["artifacts"])
    robustness = json.loads((results / "records" / "robustness" / "table2" / "hand_model_a.json").read_text())
    assert robustness["details"]["average_missing"] == ["imagenet_hard"]
    assert robustness["details"]["table2_row"]["imagenet_c"] == pytest.approx(50.0)


# ---------------------------------------------------------------------------------------------------------------
# Errors name the params.yaml keys, never Python arguments


def _real_on_val_subset(root: Path, **robustness):
    """Robustness on a val cache lacking file 1 (a labelled ReaL image), with the given robustness params."""
    root.mkdir()
    datasets, analyses = setup_robustness(root)
    ids = [val_name(n) for n in VAL_NUMBERS[1:]]
    for model in MODELS:
        write_cache(root / "cache", "val", model, logits_with_argmax(VAL_PRED[model][1:]), VAL_TARGETS[1:], ids)
    analyses = {"robustness": {**analyses["robustness"], "datasets": ["val"], **robustness}}
    params = make_params(root, {"val": datasets["val"]}, analyses)
    return run_robustness(params.analyses.robustness, context(params, CacheStore(params.inference.cache_dir)))


def test_real_on_a_val_subset_names_the_params_key(tmp_path):
    with pytest.raises(UserError) as err:
        _real_on_val_subset(tmp_path / "strict")
    message = str(err.value)
    assert "analyses.robustness.real_allow_partial: true in params.yaml" in message
    assert "allow_partial=True" not in message
    records = {r.model_id: r for r in _real_on_val_subset(tmp_path / "partial", real_allow_partial=True)}
    # the 4 labelled files left (2, 10, 11, 50000): A hits 7, 999, 5 (not 201) -> 3/4; B hits 7, 201 -> 2/4
    assert records[MODEL_A].metrics["robustness/imagenet_real/top1"] == pytest.approx(75.0)
    assert records[MODEL_B].metrics["robustness/imagenet_real/top1"] == pytest.approx(50.0)


def test_imagenet_x_errors_name_the_params_keys(tmp_path):
    with pytest.raises(UserError) as err:
        run_x(tmp_path / "strict", skip=108)
    assert "analyses.imagenet_x.allow_partial: true" in str(err.value)
    assert "allow_partial=True" not in str(err.value)
    empty = tmp_path / "no_annotations"
    empty.mkdir()
    params = make_params(tmp_path, *setup_imagenet_x(tmp_path / "x", annotations_dir=str(empty)))
    with pytest.raises(UserError) as err:
        run_imagenet_x(params.analyses.imagenet_x, context(params, CacheStore(params.inference.cache_dir)))
    message = str(err.value)
    assert "analyses.imagenet_x.annotations_dir" in message and str(empty) in message
    assert "directory=" not in message
