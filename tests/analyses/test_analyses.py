"""Accuracy and calibration analyses on caches written by hand in the documented format (docs/cache.md)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torchmetrics.functional.classification import multiclass_accuracy

from beyond_imagenet.analyses.accuracy import analyse_accuracy
from beyond_imagenet.analyses.calibration import analyse_calibration
from beyond_imagenet.analyses.registry import ANALYSES, resolve_analyses
from beyond_imagenet.base.config import parse_params
from beyond_imagenet.base.errors import CacheFormatError, NonFiniteLogitsError, UnknownNameError
from beyond_imagenet.cli import main
from beyond_imagenet.inference.cache import cache_path, load_cache
from beyond_imagenet.metrics.accuracy import topk_accuracy
from beyond_imagenet.stages.analyze import analyze
from helpers import TOY_PROBS, TOY_TARGETS

PROBS = TOY_PROBS
TARGETS = TOY_TARGETS
EXPECTED_ECE = 2.36 / 6
EXPECTED_TOP1 = 100 * 4 / 6
IDS = [f"ILSVRC2012_val_{i:08d}.JPEG" for i in range(1, 7)]


def write_cache_by_hand(path: Path, logits: np.ndarray, meta: dict, targets=TARGETS, ids=IDS) -> Path:
    """Exactly what docs/cache.md tells another tool to write."""
    path.mkdir(parents=True, exist_ok=True)
    np.save(path / "logits.npy", logits.astype(np.float32))
    np.save(path / "features.npy", np.zeros((len(ids), 4), dtype=np.float32))
    np.save(path / "targets.npy", np.asarray(targets, dtype=np.int64))
    (path / "sample_ids.json").write_text(json.dumps(ids))
    (path / "meta.json").write_text(json.dumps(meta))
    return path


def meta_for(model: str, dataset: str, output: str = "label_space", label: dict | None = None) -> dict:
    return {
        "model": {"model_id": model, "family": "convnet", "paradigm": "supervised"},
        "dataset": {"name": dataset},
        "output_space": {"kind": output},
        "label_space": label or {"kind": "custom", "n_classes": 3},
    }


def test_calibration_on_hand_written_cache_matches_hand_computation(tmp_path):
    cache = load_cache(write_cache_by_hand(tmp_path / "c", np.log(PROBS), meta_for("mine", "toy")))
    record, panel = analyse_calibration(cache, n_bins=15)
    assert record.metrics["calibration/toy/ece"] == pytest.approx(EXPECTED_ECE, abs=1e-6)
    assert record.metrics["calibration/toy/top1"] == pytest.approx(EXPECTED_TOP1)
    assert record.metrics["calibration/toy/mean_confidence"] == pytest.approx(PROBS.max(1).mean(), abs=1e-6)
    counts = record.details["bins"]["counts"]
    assert [i for i, c in enumerate(counts) if c] == [5, 7, 9, 10, 12, 13]
    assert panel.model == "mine"


def test_imagenet_logits_are_restricted_to_the_subset_columns_before_softmax(tmp_path):
    logits = np.full((6, 1000), 50.0)  # huge logits elsewhere must not enter the softmax
    columns = [5, 17, 900]
    logits[:, columns] = np.log(PROBS)
    label = {"kind": "imagenet_subset", "n_classes": 3, "imagenet_columns": columns}
    cache = load_cache(write_cache_by_hand(tmp_path / "c", logits, meta_for("m", "subset", "imagenet1k", label)))
    record, _ = analyse_calibration(cache, n_bins=15)
    assert record.metrics["calibration/subset/ece"] == pytest.approx(EXPECTED_ECE, abs=1e-6)
    assert analyse_accuracy(cache).metrics["accuracy/subset/top1"] == pytest.approx(EXPECTED_TOP1)


def test_subset_without_column_map_is_rejected(tmp_path):
    label = {"kind": "imagenet_subset", "n_classes": 3}
    cache = load_cache(
        write_cache_by_hand(tmp_path / "c", np.zeros((6, 1000)), meta_for("m", "d", "imagenet1k", label))
    )
    with pytest.raises(CacheFormatError, match="imagenet_columns"):
        analyse_accuracy(cache)


def test_nan_in_a_cache_is_an_error_naming_the_sample(tmp_path):
    logits = np.log(PROBS)
    logits[3, 1] = np.nan
    with pytest.raises(NonFiniteLogitsError, match=r"ILSVRC2012_val_00000004\.JPEG"):
        load_cache(write_cache_by_hand(tmp_path / "c", logits, meta_for("m", "d")))


def test_misaligned_or_incomplete_cache_is_rejected(tmp_path):
    path = write_cache_by_hand(tmp_path / "c", np.log(PROBS), meta_for("m", "d"), ids=IDS[:5])
    with pytest.raises(CacheFormatError, match="do not align"):
        load_cache(path)
    (path / "meta.json").unlink()
    with pytest.raises(CacheFormatError, match=r"meta\.json is missing"):
        load_cache(path)


@pytest.mark.parametrize("k", [1, 5])
def test_topk_accuracy_matches_torchmetrics(k):
    rng = np.random.default_rng(k)
    logits = rng.normal(size=(500, 10)).astype(np.float32)
    targets = rng.integers(0, 10, 500)
    expected = multiclass_accuracy(
        torch.from_numpy(logits), torch.from_numpy(targets), num_classes=10, top_k=k, average="micro"
    )
    assert topk_accuracy(logits, targets, k) == pytest.approx(100 * float(expected), abs=1e-4)


def test_topk_accuracy_golden_values():
    logits = np.array([[3.0, 2.0, 1.0], [1.0, 2.0, 3.0], [0.0, 5.0, 1.0], [2.0, 1.0, 0.0]])
    targets = np.array([0, 0, 2, 1])
    assert topk_accuracy(logits, targets, 1) == 25.0
    assert topk_accuracy(logits, targets, 2) == 75.0
    assert topk_accuracy(logits, targets, 5) == 100.0  # k capped at the 3 classes


def test_analysis_stage_runs_from_hand_written_caches(tmp_path):
    params = parse_params(
        {
            "models": ["tool_a", "tool_b"],
            "datasets": {"toy": {"path": str(tmp_path / "unused"), "kind": "image_folder"}},
            "inference": {"cache_dir": str(tmp_path / "cache")},
            "analyses": {"accuracy": {"datasets": ["toy"]}, "calibration": {"datasets": ["toy"]}},
            "tracking": {"enabled": False},
            "results_dir": str(tmp_path / "results"),
        }
    )
    flipped = np.log(PROBS[:, ::-1])  # a second "model" with other predictions
    for model, logits in (("tool_a", np.log(PROBS)), ("tool_b", flipped)):
        write_cache_by_hand(cache_path(params.inference.cache_dir, "toy", model), logits, meta_for(model, "toy"))
    records = analyze(params)
    metrics = json.loads((tmp_path / "results" / "metrics.json").read_text())
    assert metrics["tool_a"]["calibration/toy/ece"] == pytest.approx(EXPECTED_ECE, abs=1e-6)
    # flipped predictions: 2, 2, 1, 0, 2, 2 against targets 0, 1, 1, 2, 2, 0 -> samples 3 and 5 right
    assert metrics["tool_b"]["accuracy/toy/top1"] == pytest.approx(100 * 2 / 6)
    assert len(records) == 4
    figures = tmp_path / "results" / "figures" / "calibration" / "toy"
    assert sorted(p.name for p in figures.glob("*.png")) == ["all_models.png", "tool_a.png", "tool_b.png"]
    record = json.loads((tmp_path / "results" / "records" / "calibration" / "toy" / "tool_b.json").read_text())
    assert record["provenance"]["n_samples"] == 6 and str(figures / "tool_b.png") in record["artifacts"]


def test_analyze_cache_command_on_a_hand_written_cache(tmp_path, capsys):
    path = write_cache_by_hand(tmp_path / "mycache", np.log(PROBS), meta_for("byo", "toy"))
    assert main(["analyze-cache", str(path), "--out", str(tmp_path / "out")]) == 0
    record = json.loads((tmp_path / "out" / "records" / "calibration" / "toy" / "byo.json").read_text())
    assert record["metrics"]["calibration/toy/ece"] == pytest.approx(EXPECTED_ECE, abs=1e-6)
    assert "ece=0.3933" in capsys.readouterr().out


def test_unknown_analysis_name_suggests_close_match():
    with pytest.raises(UnknownNameError, match="'calibration'"):
        resolve_analyses(["calibraton"])
    assert set(ANALYSES) == {"accuracy", "calibration", "robustness", "imagenet_x", "pug", "shape_bias", "invariance"}
