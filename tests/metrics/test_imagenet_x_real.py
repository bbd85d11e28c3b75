"""ImageNet-X error ratios (PROTOCOL §3) and ImageNet-ReaL accuracy (§7.7).

Golden data: the ResNet50 and DINO prediction CSVs released with ImageNet-X (facebookresearch/imagenetx,
CC BY-NC 4.0), in ../shared/data/imagenetx_predictions; the reference is the ``imagenet-x==0.0.7`` package.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import shutil

import numpy as np
import pandas as pd
import pytest

from beyond_imagenet.base.errors import NonFiniteLogitsError, UserError
from beyond_imagenet.data import imagenet_x as ix_data
from beyond_imagenet.data import real_labels as real_data
from beyond_imagenet.metrics import imagenet_x as ix
from beyond_imagenet.metrics import real
from helpers import SHARED_DATA

PREDICTIONS_DIR = SHARED_DATA / "imagenetx_predictions"
HAS_PACKAGE = importlib.util.find_spec("imagenet_x") is not None
needs_package = pytest.mark.skipif(not HAS_PACKAGE, reason="imagenet-x==0.0.7 is not installed (annotations)")
needs_data = pytest.mark.skipif(
    not (HAS_PACKAGE and PREDICTIONS_DIR.is_dir()), reason=f"needs imagenet-x and {PREDICTIONS_DIR}"
)
MODELS = ("ResNet50", "DINO")
# PROTOCOL §3: factor counts of the top-factor val file after prototype filtering.
FACTOR_COUNTS = dict(
    zip(
        ix_data.FACTORS,
        (15064, 14751, 5972, 6150, 1450, 679, 638, 585, 282, 150, 122, 78, 60, 43, 44, 40),
        strict=True,
    )
)


@pytest.fixture(scope="module")
def annotations() -> pd.DataFrame:
    return ix_data.load_annotations()


@pytest.fixture(scope="module")
def predictions() -> dict[str, pd.DataFrame]:
    return {m: pd.read_csv(PREDICTIONS_DIR / f"{m}.csv") for m in MODELS}


@pytest.fixture(scope="module")
def val_labels() -> pd.Series:
    return ix_data.load_val_labels()


@pytest.fixture(scope="module")
def real_labels() -> dict[str, list[int]]:
    return real_data.load_real_labels()


@pytest.fixture(scope="module")
def package_results(tmp_path_factory) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-factor accuracies and error ratios from the package itself, one row per model CSV in the folder."""
    import imagenet_x  # imports fine with the pinned pandas 3.1.1 / scipy / tqdm

    folder = tmp_path_factory.mktemp("imagenetx_models")
    for model in MODELS:
        shutil.copy(PREDICTIONS_DIR / f"{model}.csv", folder)
    accuracies = imagenet_x.get_factor_accuracies(str(folder))
    return accuracies, imagenet_x.error_ratio(accuracies)


# ---------------------------------------------------------------- annotations


@needs_package
def test_annotation_defaults_match_protocol(annotations):
    import imagenet_x

    assert tuple(imagenet_x.FACTORS) == ix_data.FACTORS
    assert list(annotations.columns) == ["file_name", "class", *ix_data.FACTORS]
    assert len(annotations) == 46_110
    assert annotations["file_name"].is_unique
    assert {f: int(annotations[f].sum()) for f in ix_data.FACTORS} == FACTOR_COUNTS
    assert int((annotations[list(ix_data.FACTORS)].sum(axis=1) == 0).sum()) == 2  # "two images have none"
    unfiltered = ix_data.load_annotations(filter_prototypes=False)
    assert len(unfiltered) == 48_868  # 2,758 of the 3,000 prototypes are annotated val images
    # the class field agrees with the standard IN label for all 46,110 images
    labels = ix_data.load_val_labels()
    assert (labels.reindex(annotations["file_name"]).to_numpy() == annotations["class"].to_numpy()).all()


@needs_package
def test_package_location_and_missing_package(monkeypatch):
    directory = ix_data.annotations_dir()
    assert directory.name == "annotations" and (directory / "imagenet_x_val_top_factor.jsonl").is_file()
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(UserError, match=r"pip install imagenet-x==0\.0\.7.*CC BY-NC 4\.0"):
        ix_data.annotations_dir()


def test_missing_annotation_files_name_the_file(tmp_path):
    with pytest.raises(UserError, match=r"imagenet_x_val_top_factor\.jsonl is missing"):
        ix_data.load_annotations(directory=tmp_path)
    (tmp_path / "imagenet_x_val_top_factor.jsonl").write_text(
        json.dumps({"file_name": "ILSVRC2012_val_00000001.JPEG", "class": 65, **dict.fromkeys(ix_data.FACTORS, 0)})
        + "\n"
    )
    with pytest.raises(UserError, match=r"prototypical_paths\.csv is missing"):
        ix_data.load_annotations(directory=tmp_path)
    assert len(ix_data.load_annotations(directory=tmp_path, filter_prototypes=False)) == 1
    with pytest.raises(UserError, match="which_factor"):
        ix_data.load_annotations(which_factor="all", directory=tmp_path)


# ---------------------------------------------------------------- golden equality with the package


@needs_data
@pytest.mark.parametrize("model", MODELS)
def test_factor_accuracies_equal_package(model, annotations, predictions, package_results):
    package_acc, package_ratio = package_results
    ours = ix.factor_accuracies(predictions[model], annotations)
    assert ours["n_joined"] == ours["n_annotated"] == 46_110 and ours["coverage"] == 1.0
    assert ours["count"] == FACTOR_COUNTS
    assert ours["average"] == pytest.approx(package_acc.loc[model, "average"], abs=1e-12)
    for factor in ix_data.FACTORS:
        assert ours["accuracy"][factor] == pytest.approx(package_acc.loc[model, factor], abs=1e-12)
        assert ours["error_ratio"][factor] == pytest.approx(package_ratio.loc[model, factor], abs=1e-12)


@needs_data
def test_resnet50_denominator_discrepancy(annotations, predictions, val_labels):
    preds = predictions["ResNet50"]
    package = ix.factor_accuracies(preds, annotations)
    assert package["average"] == package["annotated_accuracy"] == 34_430 / 46_110  # 74.67%
    assert round(100 * package["average"], 2) == 74.67
    assert package["error_ratio"]["pose"] == pytest.approx(0.6947, abs=5e-5)
    assert package["accuracy"]["pose"] == package["correct"]["pose"] / 15_064

    assert ix.full_val_accuracy(preds, val_labels) == 38_065 / 50_000 == 0.7613
    paper = ix.factor_accuracies(preds, annotations, denominator="paper", val_labels=val_labels)
    given = ix.factor_accuracies(preds, annotations, denominator="paper", overall_accuracy=0.7613)
    assert paper["average"] == given["average"] == 0.7613
    assert paper["annotated_accuracy"] == package["annotated_accuracy"]
    assert paper["error_ratio"]["pose"] == pytest.approx(0.7373, abs=5e-5)
    assert paper["error_ratio"] == given["error_ratio"]
    with pytest.raises(UserError, match=r"fraction .*0\.7613, not 76\.13"):
        ix.factor_accuracies(preds, annotations, denominator="paper", overall_accuracy=76.13)


# ---------------------------------------------------------------- logits -> predictions


def test_predictions_from_logits_known_values():
    ids = [f"ILSVRC2012_val_{i:08d}.JPEG" for i in (1, 2, 3, 50_000)]
    logits = np.zeros((4, 1000))
    logits[0, 65] = np.log(3.0)  # p = 3 / (3 + 999)
    logits[1, 999] = 50_000.0  # naive exp overflows; stable softmax gives exactly 1
    logits[2] += 1e4  # all equal: a tie, so no prediction (-1, docs/protocol.md §2.3), p = 1/1000
    logits[3, [7, 8]] = np.log(499.0), np.log(1.0)  # p = 499 / (499 + 999)
    out = ix.predictions_from_logits(logits.astype(np.float32), ids)
    assert out["file_name"].tolist() == ids
    assert out["predicted_class"].tolist() == [65, 999, -1, 7]
    assert out["predicted_probability"].dtype == np.float64
    np.testing.assert_allclose(out["predicted_probability"], [3 / 1002, 1.0, 1e-3, 499 / 1498], rtol=1e-6)
    exact = ix.predictions_from_logits(logits, ids)["predicted_probability"]
    np.testing.assert_allclose(exact, [3 / 1002, 1.0, 1e-3, 499 / 1498], rtol=1e-14)


def test_predictions_from_logits_rejects_bad_input():
    ids = ["ILSVRC2012_val_00000001.JPEG", "ILSVRC2012_val_00000002.JPEG"]
    with pytest.raises(UserError, match=r"shape \[N, 1000\].*\[2, 200\]"):
        ix.predictions_from_logits(np.zeros((2, 200)), ids)
    with pytest.raises(UserError, match="2 logit rows but 1 sample ids"):
        ix.predictions_from_logits(np.zeros((2, 1000)), ids[:1])
    bad = np.zeros((2, 1000))
    bad[1, 3] = np.nan
    with pytest.raises(NonFiniteLogitsError, match=r"ILSVRC2012_val_00000002\.JPEG"):
        ix.predictions_from_logits(bad, ids)
    with pytest.raises(UserError, match=r"not ImageNet val file names.*'n01440764/ILSVRC2012_val_00000293\.JPEG'"):
        ix.predictions_from_logits(np.zeros((2, 1000)), [ids[0], "n01440764/ILSVRC2012_val_00000293.JPEG"])
    with pytest.raises(UserError, match=r"'ILSVRC2012_val_00050001\.JPEG'"):  # val numbering is 1..50,000
        ix.predictions_from_logits(np.zeros((2, 1000)), [ids[0], "ILSVRC2012_val_00050001.JPEG"])
    with pytest.raises(UserError, match="more than once"):
        ix.predictions_from_logits(np.zeros((2, 1000)), [ids[0], ids[0]])


@needs_data
def test_round_trip_csv_to_logits_to_error_ratios(annotations, predictions):
    preds = predictions["ResNet50"]
    n = len(preds)
    prob = preds["predicted_probability"].to_numpy()
    rest = np.maximum(1.0 - prob, 1e-30) / 999  # p = 1.0 occurs; keep the logits finite
    logits = np.repeat(np.log(rest)[:, None], 1000, axis=1).astype(np.float32)
    logits[np.arange(n), preds["predicted_class"].to_numpy()] = np.log(prob)
    rebuilt = ix.predictions_from_logits(logits, preds["file_name"].tolist())
    assert (rebuilt["predicted_class"].to_numpy() == preds["predicted_class"].to_numpy()).all()
    np.testing.assert_allclose(rebuilt["predicted_probability"], prob, rtol=1e-5)
    from_csv = ix.factor_accuracies(preds, annotations)
    from_logits = ix.factor_accuracies(rebuilt, annotations)
    assert from_logits["error_ratio"] == from_csv["error_ratio"]
    assert from_logits["average"] == from_csv["average"]


# ---------------------------------------------------------------- bad predictions


@needs_data
def test_partial_coverage_is_an_error_unless_allowed(annotations, predictions, val_labels):
    dropped = annotations["file_name"].iloc[:10].tolist()
    preds = predictions["ResNet50"]
    partial = preds[~preds["file_name"].isin(dropped)]
    with pytest.raises(UserError, match=rf"46,100 of the 46,110 .*10 are missing \(e\.g\. {dropped[0]}") as err:
        ix.factor_accuracies(partial, annotations)
    assert "allow_partial=True" in str(err.value)
    result = ix.factor_accuracies(partial, annotations, allow_partial=True)
    assert (result["n_joined"], result["n_missing"]) == (46_100, 10)
    assert result["coverage"] == 46_100 / 46_110
    assert sum(result["count"].values()) == sum(FACTOR_COUNTS.values()) - int(
        annotations.iloc[:10][list(ix_data.FACTORS)].to_numpy().sum()
    )
    # unannotated val images (e.g. prototypes) do not count for the package denominator, but do for the paper's
    unannotated = preds[~preds["file_name"].isin(annotations["file_name"])]["file_name"].iloc[:10]
    rest = preds[~preds["file_name"].isin(unannotated)]
    assert ix.factor_accuracies(rest, annotations)["n_missing"] == 0
    with pytest.raises(
        UserError, match=rf"49,990 of the 50,000 IN val images: 10 are missing \(e\.g\. {unannotated.iloc[0]}"
    ):
        ix.factor_accuracies(rest, annotations, denominator="paper", val_labels=val_labels)
    assert ix.full_val_accuracy(rest, val_labels, allow_partial=True) == pytest.approx(0.7613, abs=2e-4)


@needs_package
def test_factor_accuracies_rejects_non_val_ids_and_bad_classes(annotations):
    preds = pd.DataFrame({"file_name": ["n01440764_10026.JPEG"], "predicted_class": [0]})
    with pytest.raises(UserError, match=r"not ImageNet val file names.*n01440764_10026\.JPEG"):
        ix.factor_accuracies(preds, annotations)
    preds = pd.DataFrame({"file_name": annotations["file_name"], "predicted_class": 1000})
    with pytest.raises(UserError, match=r"0\.\.999"):
        ix.factor_accuracies(preds, annotations)
    with pytest.raises(UserError, match="lack columns"):
        ix.factor_accuracies(preds.rename(columns={"predicted_class": "pred"}), annotations)


def test_small_annotation_set_hand_computed():
    names = [f"ILSVRC2012_val_{i:08d}.JPEG" for i in range(1, 6)]
    factors = [{"pose": 1}, {"pose": 1}, {"style": 1}, {"style": 1}, {"pose": 1}]
    annotations = pd.DataFrame(
        [
            {"file_name": n, "class": 5, **dict.fromkeys(ix_data.FACTORS, 0), **f}
            for n, f in zip(names, factors, strict=True)
        ]
    )
    preds = pd.DataFrame({"file_name": names, "predicted_class": [5, 1, 5, 5, 2]})
    result = ix.factor_accuracies(preds, annotations)
    assert result["average"] == 3 / 5
    assert result["accuracy"] == {"pose": 1 / 3, "style": 1.0}
    assert result["error_ratio"] == pytest.approx({"pose": (2 / 3) / (2 / 5), "style": 0.0}, abs=1e-15)
    assert result["empty_factors"] == [f for f in ix_data.FACTORS if f not in ("pose", "style")]
    with pytest.raises(UserError, match="100%"):
        ix.factor_accuracies(preds.assign(predicted_class=5), annotations)


# ---------------------------------------------------------------- ImageNet-ReaL


@needs_data
@pytest.mark.parametrize(("model", "n_correct", "percent"), [("ResNet50", 38_855, 82.958), ("DINO", 38_781, 82.800)])
def test_real_accuracy_matches_protocol(model, n_correct, percent, predictions, real_labels):
    preds = predictions[model]
    result = real.real_accuracy(preds["predicted_class"].to_numpy(), preds["file_name"].tolist(), real_labels)
    assert result["n_scored"] == 46_837 and result["n_unlabeled_skipped"] == 3_163
    assert result["n_missing"] == result["n_unpredicted"] == 0
    assert result["n_correct"] == n_correct
    assert result["accuracy"] == 100 * n_correct / 46_837
    assert round(result["accuracy"], 3) == percent


@needs_package
def test_real_file_index_is_one_based(real_labels):
    assert real_data.real_labels_path().name == "imagenet_real_labels.jsonl"
    assert len(real_labels) == 50_000 and sum(1 for v in real_labels.values() if len(v) > 1) == 7_443
    first = json.loads(real_data.real_labels_path().read_text())[:2]
    assert real_labels["ILSVRC2012_val_00000001.JPEG"] == first[0] == []
    assert real_labels["ILSVRC2012_val_00000002.JPEG"] == first[1] == [970, 795]
    assert "ILSVRC2012_val_00000000.JPEG" not in real_labels and "ILSVRC2012_val_00050000.JPEG" in real_labels
    # With i + 1 the ReaL sets contain the original label almost always; shifted by one they almost never do.
    original = ix_data.load_val_labels()
    names = [f"ILSVRC2012_val_{i:08d}.JPEG" for i in range(2, 50_001)]
    aligned = np.mean([original[n] in real_labels[n] for n in names if real_labels[n]])
    shifted = np.mean([original[p] in real_labels[n] for p, n in itertools.pairwise(names) if real_labels[n]])
    assert aligned > 0.9 and shifted < 0.01


@needs_package
def test_real_label_file_errors(tmp_path, monkeypatch):
    with pytest.raises(UserError, match=r"ReaL labels file .*nowhere\.json is missing"):
        real_data.load_real_labels(tmp_path / "nowhere.json")
    tampered = tmp_path / real_data.REAL_LABELS_FILE
    tampered.write_text(real_data.real_labels_path().read_text().replace("[970, 795]", "[795, 970]", 1))
    monkeypatch.setattr(real_data, "real_labels_path", lambda: tampered)
    with pytest.raises(
        UserError, match=rf"{tampered.name} has md5 [0-9a-f]{{32}}, expected {real_data.REAL_LABELS_MD5}"
    ):
        real_data.load_real_labels()
    assert real_data.load_real_labels(tampered)["ILSVRC2012_val_00000002.JPEG"] == [795, 970]  # no md5 for user files
    with pytest.raises(UserError, match="md5"):
        real_data.load_real_labels(tampered, expected_md5=real_data.REAL_LABELS_MD5)
    short = tmp_path / "short.json"
    short.write_text("[[1], [2]]")
    with pytest.raises(UserError, match=r"must hold 50,000 label lists.*found 2"):
        real_data.load_real_labels(short)


@needs_package
def test_real_json_and_json_lines_formats(tmp_path, real_labels):
    entries = [real_labels[real_data.val_file_name(i)] for i in range(50_000)]
    as_list = tmp_path / "real.json"
    as_list.write_text(json.dumps(entries, separators=(",", ":")))
    assert real_data.load_real_labels(as_list) == real_labels
    as_lines = tmp_path / "real_lines.jsonl"
    as_lines.write_text("\n".join(json.dumps(e) for e in entries) + "\n")
    assert real_data.load_real_labels(as_lines) == real_labels


def test_real_accuracy_partial_and_bad_input():
    labels = {"ILSVRC2012_val_00000001.JPEG": [], "ILSVRC2012_val_00000002.JPEG": [3, 4]}
    labels["ILSVRC2012_val_00000003.JPEG"] = [7]
    ids = ["ILSVRC2012_val_00000002.JPEG", "ILSVRC2012_val_00000001.JPEG", "ILSVRC2012_val_00000009.JPEG"]
    with pytest.raises(UserError, match=r"1 sample id\(s\) have no label entry .*ILSVRC2012_val_00000009.JPEG"):
        real.real_accuracy(np.array([4, 0, 1]), ids, labels)
    result = real.real_accuracy(np.array([4, 0, 1]), ids, labels, allow_partial=True)
    assert result == {
        "accuracy": 100.0,
        "n_correct": 1,
        "n_scored": 1,
        "n_unlabeled_skipped": 1,
        "n_missing": 1,
        "n_unpredicted": 1,
    }
    with pytest.raises(UserError, match="not ImageNet val file names"):
        real.real_accuracy(np.array([0]), ["val_1.JPEG"], labels, allow_partial=True)
    with pytest.raises(UserError, match="align"):
        real.real_accuracy(np.array([0, 1]), ids[:1], labels, allow_partial=True)
