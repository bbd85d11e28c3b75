"""MLflow logging: a parent run per analysis and a run per model with its tags, metrics, intervals and figures."""

from __future__ import annotations

import csv

from PIL import Image

from beyond_imagenet.base.config import TrackingConfig
from beyond_imagenet.base.record import ResultRecord
from beyond_imagenet.tracking.mlflow_logger import log_records


def record(model: str, analysis: str, dataset: str, metrics: dict, artifacts=()) -> ResultRecord:
    return ResultRecord(
        analysis,
        model,
        dataset,
        metrics,
        params={"n_bins": 15},
        provenance={
            "model": {"model_id": model, "family": "vit", "paradigm": "clip", "weights_id": f"w:{model}"},
            "preprocessing": {"resize": 224, "crop": 224, "interpolation": "bicubic"},
            "dataset": {"files_sha256": "abc"},
            "precision": "fp32",
            "n_samples": 6,
            "cache_config_hash": f"h-{model}-{dataset}",
        },
        artifacts=list(artifacts),
    )


def test_one_mlflow_run_per_model_and_analysis_with_tags_metrics_and_figures(tmp_path):
    from mlflow.tracking import MlflowClient

    from beyond_imagenet.tracking.store import local_artifact_dir

    png = tmp_path / "a.png"
    Image.new("RGB", (4, 4)).save(png)
    records = [
        record("a", "calibration", "d1", {"calibration/d1/ece": 0.25}, [str(png)]),
        record("a", "calibration", "d2", {"calibration/d2/ece": 0.5}),
        record("b", "calibration", "d1", {"calibration/d1/ece": 0.125}),
        record("a", "accuracy", "d1", {"accuracy/d1/top1": 80.0}),
    ]
    records[0].intervals["calibration/d1/ece"] = {
        "low": 0.2, "high": 0.3, "level": 0.95, "n": 6, "method": "bootstrap percentile (over images)", "plan": "p1"
    }  # fmt: skip
    config = TrackingConfig(
        experiment="t",
        tracking_uri=f"sqlite:///{tmp_path}/mlruns/mlflow.db",
        artifact_location=str(tmp_path / "mlruns" / "artifacts"),
    )
    run_ids = log_records(records, config, stage="analyze")
    assert len(run_ids) == 5  # two analyses: a parent each, and one child per model
    client = MlflowClient(tracking_uri=config.tracking_uri)
    fetched = [client.get_run(i) for i in run_ids]
    runs = {(r.data.tags["model"], r.data.tags["analysis"]): r for r in fetched if "model" in r.data.tags}
    assert sorted(r.info.run_name for r in fetched if "model" not in r.data.tags) == ["accuracy", "calibration"]
    run = runs[("a", "calibration")]
    assert run.data.metrics == {"calibration/d1/ece": 0.25, "calibration/d2/ece": 0.5}
    assert run.data.tags["paradigm"] == "clip" and run.data.tags["dvc_stage"] == "analyze"
    assert run.data.params["weights_id"] == "w:a" and "git_sha" in run.data.tags
    assert run.data.params["analysis.n_bins"] == "15"
    assert run.info.status == "FINISHED"
    folder = local_artifact_dir(config, run.info.artifact_uri)
    assert [p.name for p in (folder / "figures/d1").iterdir()] == ["calibration.png"]
    # the intervals: one CSV per run, so the metric list stays one entry per metric
    with (folder / "intervals.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["dataset"], r["metric"], r["low"], r["high"], r["plan"]) for r in rows] == [
        ("d1", "calibration/d1/ece", "0.2", "0.3", "p1"),
        ("d2", "calibration/d2/ece", "", "", ""),
    ]
    assert runs[("b", "calibration")].data.metrics == {"calibration/d1/ece": 0.125}


def test_disabled_tracking_logs_nothing(tmp_path):
    config = TrackingConfig(tracking_uri=f"sqlite:///{tmp_path}/x.db", enabled=False)
    assert log_records([record("a", "accuracy", "d", {"accuracy/d/top1": 1.0})], config) == []
    assert not (tmp_path / "x.db").exists()
