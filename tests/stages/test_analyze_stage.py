"""Stage ``analyze``: each analysis replaces only its own records and figures, atomically; metrics.json follows disk.

Caches are written by hand (docs/cache.md): six samples of three classes, two models. Model ``tool_a`` is right
on samples 1, 3, 4 and 6 (top-1 4/6), ``tool_b`` (the reversed probabilities) on samples 3 and 5 (2/6).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from beyond_imagenet.analyses.registry import ANALYSES
from beyond_imagenet.base.config import parse_params
from beyond_imagenet.base.errors import UserError
from beyond_imagenet.inference.cache import cache_path
from beyond_imagenet.records import load_records
from beyond_imagenet.stages.analyze import analyze, input_problems, planned_analyses
from helpers import TOY_PROBS, TOY_TARGETS

PROBS = TOY_PROBS
TARGETS = TOY_TARGETS.tolist()
MODELS = ("tool_a", "tool_b")
TOP1 = "accuracy/toy/top1"


def write_cache(cache_dir: Path, model: str, probs: np.ndarray) -> Path:
    """The five files of docs/cache.md for ``model`` on dataset ``toy``."""
    path = cache_path(cache_dir, "toy", model)
    path.mkdir(parents=True, exist_ok=True)
    np.save(path / "logits.npy", np.log(probs).astype(np.float32))
    np.save(path / "features.npy", np.zeros((len(probs), 4), dtype=np.float32))
    np.save(path / "targets.npy", np.asarray(TARGETS, dtype=np.int64))
    (path / "sample_ids.json").write_text(json.dumps([f"s{i}.png" for i in range(len(probs))]))
    meta = {
        "model": {"model_id": model, "family": "convnet", "paradigm": "supervised"},
        "dataset": {"name": "toy"},
        "output_space": {"kind": "label_space"},
        "label_space": {"kind": "custom", "n_classes": 3},
    }
    (path / "meta.json").write_text(json.dumps(meta))
    return path


def make_params(root: Path, analyses: dict | None = None):
    return parse_params(
        {
            "models": list(MODELS),
            "datasets": {"toy": {"path": str(root / "unused"), "kind": "image_folder"}},
            "inference": {"cache_dir": str(root / "cache")},
            "analyses": analyses or {"accuracy": {"datasets": ["toy"]}, "calibration": {"datasets": ["toy"]}},
            "tracking": {"enabled": False},
            "results_dir": str(root / "results"),
            "statistics": {"resamples": 100},
        }
    )


@pytest.fixture
def params(tmp_path):
    write_cache(tmp_path / "cache", "tool_a", PROBS)
    write_cache(tmp_path / "cache", "tool_b", PROBS[:, ::-1])
    return make_params(tmp_path)


def snapshot(results: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``results``: its bytes and modification time (ns)."""
    return {
        str(p.relative_to(results)): (p.read_bytes(), p.stat().st_mtime_ns) for p in results.rglob("*") if p.is_file()
    }


def leftovers(results: Path) -> list[Path]:
    """Hidden files and folders under ``results`` besides the stage's lock file."""
    return [p for p in results.rglob(".*") if p.name != ".analyze.lock"]


def metrics_of(params) -> dict:
    return json.loads((Path(params.results_dir) / "metrics.json").read_text())


def kept_records(params) -> list[tuple[str, str]]:
    return sorted((r.analysis, r.model_id) for r in load_records(Path(params.results_dir) / "records"))


BOTH = [(a, m) for a in ("accuracy", "calibration") for m in MODELS]


def test_partial_runs_keep_the_other_analyses_records_and_figures(params):
    assert len(analyze(params, ["calibration"])) == 2
    assert len(analyze(params, ["accuracy"])) == 2  # used to wipe the calibration records first
    assert kept_records(params) == BOTH
    figures = Path(params.results_dir) / "figures" / "calibration" / "toy"
    assert sorted(p.name for p in figures.glob("*.png")) == ["all_models.png", "tool_a.png", "tool_b.png"]
    metrics = metrics_of(params)  # rebuilt from every record on disk, not only this run's
    assert metrics["tool_b"][TOP1] == pytest.approx(100 * 2 / 6)
    assert metrics["tool_a"]["calibration/toy/ece"] == pytest.approx(2.36 / 6, abs=1e-6)
    record = json.loads((Path(params.results_dir) / "records/calibration/toy/tool_b.json").read_text())
    assert str(figures / "tool_b.png") in record["artifacts"]  # the final figure path, not the staging folder's
    assert leftovers(Path(params.results_dir)) == []  # no staging folder left behind


def failing(name: str):
    """The registered analysis ``name``, made to write a figure and then fail."""

    def run(section, ctx):
        path = Path(ctx.figures_dir) / name / "toy" / "half_written.png"
        path.parent.mkdir(parents=True)
        path.write_bytes(b"partial")
        raise UserError("analyses.calibration: the test's failure")

    return dataclasses.replace(ANALYSES[name], run=run)


def test_an_error_during_an_analysis_leaves_its_outputs_untouched(params, monkeypatch):
    analyze(params)
    results = Path(params.results_dir)
    before = snapshot(results)
    monkeypatch.setitem(ANALYSES, "calibration", failing("calibration"))
    with pytest.raises(UserError, match="the test's failure"):
        analyze(params, ["calibration"])
    assert snapshot(results) == before  # nothing deleted, nothing half-written, metrics.json as it was
    assert leftovers(results) == []


def test_metrics_follow_the_analyses_that_succeeded_before_an_error(params, monkeypatch, tmp_path):
    analyze(params)
    results = Path(params.results_dir)
    calibration = {k: v for k, v in snapshot(results).items() if k.startswith(("records/calibration", "figures/"))}
    write_cache(tmp_path / "cache", "tool_b", PROBS)  # tool_b now predicts like tool_a: top-1 4/6
    monkeypatch.setitem(ANALYSES, "calibration", failing("calibration"))
    with pytest.raises(UserError):
        analyze(params)  # accuracy runs (and is replaced) first, then calibration fails
    assert {k: v for k, v in snapshot(results).items() if k in calibration} == calibration
    assert kept_records(params) == BOTH
    metrics = metrics_of(params)
    assert metrics["tool_b"][TOP1] == pytest.approx(100 * 4 / 6)  # not the stale 2/6
    assert metrics["tool_b"]["calibration/toy/top1"] == pytest.approx(100 * 2 / 6)  # the kept record's


def test_a_missing_cache_fails_before_anything_is_written(params, tmp_path):
    analyze(params)
    results = Path(params.results_dir)
    before = snapshot(results)
    (cache_path(tmp_path / "cache", "toy", "tool_b") / "meta.json").unlink()
    with pytest.raises(UserError, match=r"analyses.accuracy: no cache of tool_b on dataset 'toy'.*inference.cache_dir"):
        analyze(params)
    assert snapshot(results) == before


def test_a_missing_side_file_is_named_up_front(tmp_path):
    params = make_params(tmp_path, {"imagenet_x": {"dataset": "toy", "annotations_dir": str(tmp_path / "nope")}})
    specs = planned_analyses(params.analyses, None)
    assert [s.name for s in specs] == ["imagenet_x"]
    assert input_problems(specs, params) == [
        "analyses.imagenet_x: no cache of tool_a, tool_b on dataset 'toy'",
        f"analyses.imagenet_x.annotations_dir: {tmp_path / 'nope'} does not exist",
    ]


def test_a_named_analysis_without_datasets_is_refused(params):
    with pytest.raises(UserError, match=r"--analyses pug: params.yaml analyses.pug names no dataset"):
        analyze(params, ["accuracy", "pug"])
    assert not Path(params.results_dir).exists()


def test_a_full_run_removes_analyses_no_longer_configured(params, tmp_path):
    analyze(params)
    results = Path(params.results_dir)
    notes = results / "records" / "notes" / "mine.txt"  # not an analysis: a full run leaves it alone
    notes.parent.mkdir()
    notes.write_text("keep")
    only_accuracy = make_params(tmp_path, {"accuracy": {"datasets": ["toy"]}})
    analyze(only_accuracy, ["accuracy"])  # a partial run touches only accuracy
    assert kept_records(params) == BOTH
    analyze(only_accuracy)  # a full run owns the folder: calibration is no longer configured
    assert kept_records(params) == [("accuracy", m) for m in MODELS]
    assert not (results / "figures" / "calibration").exists()
    assert all(not k.startswith("calibration/") for k in metrics_of(params)["tool_a"])
    assert notes.read_text() == "keep"
