"""On a cache with exact ties every analysis counts the same top-1 (docs/protocol.md §2.3 "Ties")."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from beyond_imagenet.analyses.accuracy import analyse_accuracy
from beyond_imagenet.analyses.calibration import analyse_calibration
from beyond_imagenet.inference.cache import load_cache

# 3 classes; rows 1-3 tie at the top (row 1 with the target among the tied classes, after a lower index).
LOGITS = np.array([[2.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 1.0, 1.0], [1.0, 1.0, 1.0], [0.0, 0.0, 3.0]])
TARGETS = np.array([0, 1, 1, 2, 2])
# Ties count as wrong: only rows 0 and 4 are right at top-1; top-2: rows 0, 1, 2 (2 classes >= the target), 4.


def _cache(path: Path):
    path.mkdir(parents=True)
    ids = [f"ILSVRC2012_val_{i:08d}.JPEG" for i in range(1, 6)]
    np.save(path / "logits.npy", LOGITS.astype(np.float32))
    np.save(path / "features.npy", np.zeros((5, 2), dtype=np.float32))
    np.save(path / "targets.npy", TARGETS)
    (path / "sample_ids.json").write_text(json.dumps(ids))
    meta = {
        "model": {"model_id": "tied", "family": "convnet", "paradigm": "supervised"},
        "dataset": {"name": "toy"},
        "output_space": {"kind": "label_space"},
        "label_space": {"kind": "custom", "n_classes": 3},
    }
    (path / "meta.json").write_text(json.dumps(meta))
    return load_cache(path)


def test_accuracy_and_calibration_agree_on_a_tied_cache(tmp_path):
    cache = _cache(tmp_path / "c")
    accuracy = analyse_accuracy(cache).metrics
    calibration, _ = analyse_calibration(cache, n_bins=15)
    assert accuracy["accuracy/toy/top1"] == pytest.approx(40.0)
    assert calibration.metrics["calibration/toy/top1"] == pytest.approx(40.0)
    assert accuracy["accuracy/toy/top5"] == pytest.approx(100.0)  # k capped at the 3 classes
