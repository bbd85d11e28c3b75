"""Stage ``results``: the records of the stages -> results.parquet/.csv, comparisons.csv, rankings.csv."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pandas as pd
import pytest
import yaml

from beyond_imagenet.base.config import parse_params
from beyond_imagenet.base.errors import UserError
from beyond_imagenet.base.record import ResultRecord
from beyond_imagenet.records import write_records
from beyond_imagenet.results.comparisons import COMPARISON_COLUMNS, RANKING_COLUMNS
from beyond_imagenet.results.tidy import COLUMNS
from beyond_imagenet.stages.paths import stage_paths
from beyond_imagenet.stages.results import build_tables, run_results, summary_lines, write_tables

MODELS = ["vit_sup", "convnext_sup", "vit_clip"]
TOP1, ECE = "accuracy/imagenet_val/top1", "calibration/imagenet_val/ece"


def _params(tmp_path, models=MODELS) -> dict:
    return {
        "models": list(models),
        "datasets": {},
        "tracking": {"enabled": False},
        "results_dir": str(tmp_path / "results"),
        "reports_dir": str(tmp_path / "reports"),
        "outputs": {"headline": str(tmp_path / "metrics" / "headline.json")},  # never the repository's own
        "statistics": {"resamples": 200},
    }


def _records(seed: int = 0) -> list[ResultRecord]:
    """Three models' top-1 (2 points apart, on the same resamples) and ECE, one model's CKA-like record."""
    rng = np.random.default_rng(seed)
    shared = rng.normal(0.0, 1.0, 200)
    records = []
    for i, model in enumerate(MODELS):
        top1, ece = 84.0 - 2 * i, 0.02 + 0.02 * i
        accuracy = ResultRecord("accuracy", model, "imagenet_val", {TOP1: top1, "accuracy/imagenet_val/n_samples": 500})
        calibration = ResultRecord("calibration", model, "imagenet_val", {ECE: ece})
        for record, name, value, sd in ((accuracy, TOP1, top1, 0.3), (calibration, ECE, ece, 0.001)):
            replicates = value + sd * shared + rng.normal(0.0, sd, 200)
            low, high = np.percentile(replicates, [2.5, 97.5])
            record.intervals[name] = {"low": float(low), "high": float(high), "level": 0.95, "n": 500,
                                      "method": "percentile", "plan": "imagenet_val/images"}  # fmt: skip
            record.replicates[name] = replicates
        records += [accuracy, calibration]
    return records


def _csv_equal(path, expected: pd.DataFrame) -> None:
    """A CSV written by the stage reads back as ``expected`` (empty strings come back as NaN: undone here)."""
    got = pd.read_csv(path)
    for column in expected.columns:
        if not pd.api.types.is_numeric_dtype(expected[column]):
            got[column] = got[column].astype(object).where(got[column].notna(), "").astype(str)
            expected = expected.assign(**{column: expected[column].astype(str)})
    pd.testing.assert_frame_equal(got, expected, check_dtype=False, rtol=1e-12, atol=0)


def test_write_tables_writes_parquet_and_csv_that_read_back_equal(tmp_path):
    params = parse_params(_params(tmp_path))
    paths = stage_paths(params)
    write_records(_records(), paths.analyze.records)
    tables = build_tables(params)
    assert len(tables["results"]) == 9  # 3 models x (top1, n_samples, ece)
    assert len(tables["comparisons"]) == 6  # 3 pairs x 2 metrics
    assert len(tables["rankings"]) == 6

    written = write_tables(tables, paths)
    assert written == [paths.results_parquet, paths.results_csv, paths.comparisons, paths.rankings]
    assert all(p.exists() for p in written)
    assert not [p for p in paths.results_parquet.parent.iterdir() if p.name.startswith(".") or "tmp" in p.name]

    parquet = pd.read_parquet(paths.results_parquet)
    pd.testing.assert_frame_equal(parquet, tables["results"])
    assert list(parquet.columns) == list(COLUMNS)
    _csv_equal(paths.results_csv, tables["results"])
    _csv_equal(paths.comparisons, tables["comparisons"])
    _csv_equal(paths.rankings, tables["rankings"])
    assert list(pd.read_csv(paths.comparisons).columns) == list(COMPARISON_COLUMNS)
    assert list(pd.read_csv(paths.rankings).columns) == list(RANKING_COLUMNS)
    assert pd.read_csv(paths.comparisons)["real"].dtype == bool


def test_run_results_writes_the_tables_and_says_what_is_real(tmp_path, capsys):
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(_params(tmp_path)))
    paths = stage_paths(parse_params(_params(tmp_path)))
    records = _records()
    # a model that is not in params.models is left out
    records.append(ResultRecord("accuracy", "convnext_clip", "imagenet_val", {TOP1: 99.0}))
    write_records(records, paths.analyze.records)

    run_results(argparse.Namespace(params=str(params_file), no_mlflow=True))

    results = pd.read_parquet(paths.results_parquet)
    assert set(results["model"]) == set(MODELS)
    comparisons = pd.read_csv(paths.comparisons)
    assert len(comparisons) == 6 and comparisons["real"].all()
    # records are read in path order: convnext_sup, vit_clip, vit_sup
    ece = comparisons[comparisons["metric"] == "ece"].set_index(["model_a", "model_b"])
    assert ece.loc[("convnext_sup", "vit_sup"), "better"] == "vit_sup"  # the lower ECE
    assert ece.loc[("convnext_sup", "vit_clip"), "better"] == "convnext_sup"
    assert ece.loc[("convnext_sup", "vit_clip"), "difference"] == pytest.approx(-0.02)
    top1 = comparisons[comparisons["metric"] == "top1"].set_index(["model_a", "model_b"])
    assert top1.loc[("vit_clip", "vit_sup"), "difference"] == pytest.approx(-4.0)
    assert top1.loc[("vit_clip", "vit_sup"), "better"] == "vit_sup"
    rankings = pd.read_csv(paths.rankings).set_index(["metric", "model"])
    assert [rankings.loc[("top1", m), "rank"] for m in MODELS] == [1, 2, 3]
    assert [rankings.loc[("ece", m), "rank"] for m in MODELS] == [1, 2, 3]
    out = capsys.readouterr().out
    summary = "9 metric values (6 with an interval), 6 paired comparisons, 6 real (Holm-adjusted p < 0.05, interval"
    assert f"{summary} without 0)" in out
    assert str(paths.results_parquet) in out and str(paths.rankings) in out and str(paths.headline) in out
    # the headline file: ImageNet val top-1 and ECE of each model (no dataset kinds in params: the name is the kind)
    headline = json.loads(paths.headline.read_text())
    assert headline == {
        **{f"imagenet_top1/{m}": pytest.approx(84.0 - 2 * i) for i, m in enumerate(MODELS)},
        **{f"ece_val/{m}": pytest.approx(0.02 + 0.02 * i) for i, m in enumerate(MODELS)},
    }


def test_run_results_without_records_raises_a_user_error(tmp_path):
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(_params(tmp_path)))
    with pytest.raises(UserError, match=r"no result records under .*records; run `dvc repro analyze` first"):
        run_results(argparse.Namespace(params=str(params_file), no_mlflow=True))
    assert not (tmp_path / "results" / "results.parquet").exists()


def test_records_of_other_models_only_count_as_missing(tmp_path):
    params = parse_params(_params(tmp_path, models=["convnext_clip"]))
    write_records(_records(), stage_paths(params).analyze.records)
    with pytest.raises(UserError, match="no result records"):
        build_tables(params)


def test_summary_lines_list_the_real_differences_best_first():
    comparisons = pd.DataFrame(
        [
            {"analysis": "accuracy", "dataset": "d", "name": "accuracy/d/top1", "model_a": "a", "model_b": "b",
             "difference": 2.0, "ci_low": 1.25, "ci_high": 2.75, "p_holm": 0.004, "real": True},
            {"analysis": "accuracy", "dataset": "d", "name": "accuracy/d/top5", "model_a": "a", "model_b": "b",
             "difference": 0.1, "ci_low": -0.5, "ci_high": 0.7, "p_holm": 0.6, "real": False},
            {"analysis": "calibration", "dataset": "d", "name": "calibration/d/ece", "model_a": "a", "model_b": "b",
             "difference": -0.02, "ci_low": -0.03, "ci_high": -0.01, "p_holm": 0.0001, "real": True},
        ]
    )  # fmt: skip
    results = pd.DataFrame({"ci_low": [1.0, np.nan, 0.5]})
    lines = summary_lines({"results": results, "comparisons": comparisons}, 0.05)
    assert lines == [
        "3 metric values (2 with an interval), 3 paired comparisons, 2 real "
        "(Holm-adjusted p < 0.05, interval without 0)",
        "  calibration/d calibration/d/ece: a - b = -0.02 [-0.03, -0.01], p_holm=0.0001",
        "  accuracy/d accuracy/d/top1: a - b = 2 [1.25, 2.75], p_holm=0.004",
    ]
