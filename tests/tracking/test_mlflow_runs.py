"""MLflow runs that open on the answer: parents and model children, names, colours, sweeps, params vs tags,
dataset inputs, no duplicates on a rerun, artifacts a copied store serves, git_dirty, deep links."""

from __future__ import annotations

import csv
import json
import subprocess
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from PIL import Image

from beyond_imagenet.base.config import TrackingConfig
from beyond_imagenet.base.provenance import changed_paths, git_state
from beyond_imagenet.base.record import ResultRecord
from beyond_imagenet.models.display import display_map
from beyond_imagenet.tracking.links import children_filter, deep_links, runs_url
from beyond_imagenet.tracking.mlflow_logger import log_files, log_records
from beyond_imagenet.tracking.runs import sweep_metrics
from beyond_imagenet.tracking.store import local_artifact_dir

MODELS = ["demo_random_vit_sup", "demo_random_convnext_clip"]


def record(model: str, analysis: str, dataset: str, metrics: dict, artifacts=()) -> ResultRecord:
    return ResultRecord(
        analysis,
        model,
        dataset,
        metrics,
        params={"n_bins": 15},
        provenance={
            "model": {"model_id": model, "family": "vit", "paradigm": "clip", "weights_id": f"w:{model}"},
            "preprocessing": {"resize": 224, "crop": 224, "key": "abc123"},
            "dataset": {"name": dataset, "root": f"data/{dataset}", "n_images": 6, "files_sha256": "f" * 64},
            "precision": "fp32",
            "cache_config_hash": f"h-{model}-{dataset}",
        },
        artifacts=list(artifacts),
    )


def config_in(root: Path) -> TrackingConfig:
    return TrackingConfig(
        experiment="t",
        tracking_uri=f"sqlite:///{root}/mlruns/mlflow.db",
        artifact_location=str(root / "mlruns" / "artifacts"),
    )


def calibration_records(tmp_path: Path) -> list[ResultRecord]:
    shared = tmp_path / "all_models.png"
    Image.new("RGB", (4, 4)).save(shared)
    records = []
    for i, model in enumerate(MODELS):
        own = tmp_path / f"{model}.png"
        Image.new("RGB", (4, 4), (i, 0, 0)).save(own)
        records.append(record(model, "calibration", "val", {"calibration/val/ece": 0.1 * (i + 1)}, [own, shared]))
    return records


def runs_of(config: TrackingConfig):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=config.tracking_uri)
    experiment = client.get_experiment_by_name(config.experiment).experiment_id
    return client, client.search_runs([experiment], max_results=1000)


def test_parent_per_analysis_children_named_and_coloured_like_the_figures(tmp_path):
    config = config_in(tmp_path)
    ids = log_records(calibration_records(tmp_path), config, manifests=tmp_path)
    _, runs = runs_of(config)
    assert len(ids) == 3 and len(runs) == 3
    (parent,) = [r for r in runs if r.data.tags["run_role"] == "analysis"]
    children = {r.data.tags["model"]: r for r in runs if r.data.tags["run_role"] == "model"}
    assert parent.info.run_name == "calibration"
    assert {m: r.info.run_name for m, r in children.items()} == {
        "demo_random_vit_sup": "ViT-sup (demo)",
        "demo_random_convnext_clip": "ConvNeXt-clip (demo)",
    }
    palette = display_map(MODELS)
    assert {m: r.data.tags["mlflow.runColor"] for m, r in children.items()} == {m: palette[m].colour for m in MODELS}
    assert {r.data.tags["mlflow.parentRunId"] for r in children.values()} == {parent.info.run_id}
    # figures: the model's own under one shared name, the all-model one on the parent
    for run in [parent, *children.values()]:
        assert run.info.artifact_uri.startswith("mlflow-artifacts:/t/")
    for model, run in children.items():
        folder = local_artifact_dir(config, run.info.artifact_uri)
        assert (folder / "figures/val/calibration.png").read_bytes() == (tmp_path / f"{model}.png").read_bytes()
        assert {p.name for p in folder.iterdir()} == {"figures", "intervals.csv", "provenance.json", "records"}
    shared = local_artifact_dir(config, parent.info.artifact_uri).glob("figures/*/all_models.png")
    assert [p.name for p in shared] == ["all_models.png"]


def test_params_are_protocol_knobs_and_provenance_is_in_tags(tmp_path):
    config = config_in(tmp_path)
    log_records(calibration_records(tmp_path), config)
    _, runs = runs_of(config)
    run = next(r for r in runs if r.data.tags.get("model") == "demo_random_vit_sup")
    assert run.data.params == {
        "model_id": "demo_random_vit_sup",
        "weights_id": "w:demo_random_vit_sup",
        "analysis.n_bins": "15",
        "preprocessing.resize": "224",
        "preprocessing.crop": "224",
        "precision": "fp32",
    }
    assert {"git_sha", "git_dirty", "config_hash", "content_key", "dvc_stage"} <= set(run.data.tags)
    folder = local_artifact_dir(config, run.info.artifact_uri)
    saved = json.loads((folder / "provenance.json").read_text())
    assert saved["records"]["val"]["cache_config_hash"] == "h-demo_random_vit_sup-val"
    assert "torch" in saved["versions"]


def test_datasets_are_inputs_with_the_manifest_digest(tmp_path):
    config = config_in(tmp_path)
    (tmp_path / "val.json").write_text("{}")
    log_records(calibration_records(tmp_path), config, manifests=tmp_path)
    _, runs = runs_of(config)
    run = next(r for r in runs if r.data.tags.get("model") == "demo_random_vit_sup")
    (dataset_input,) = run.inputs.dataset_inputs
    assert dataset_input.dataset.name == "val"
    assert dataset_input.dataset.digest == "f" * 32
    assert json.loads(dataset_input.dataset.profile)["files_sha256"] == "f" * 64
    assert json.loads(dataset_input.dataset.source)["uri"] == str(tmp_path / "val.json")


def test_sweeps_are_one_key_per_sweep_with_the_value_as_step(tmp_path):
    metrics = {
        "invariance/scale/1.25/top1": 50.0,
        "invariance/scale/2/top1": 40.0,
        "invariance/shift/30/top1": 45.0,
        "invariance/resolution/336/consistency": 0.5,
        "accuracy/val/top1": 1.0,
    }
    assert sweep_metrics(metrics) == [
        ("invariance/scale/top1", 50.0, 125),
        ("invariance/scale/top1", 40.0, 200),
        ("invariance/shift/top1", 45.0, 30),
        ("invariance/resolution/consistency", 0.5, 336),
        ("accuracy/val/top1", 1.0, 0),
    ]
    config = config_in(tmp_path)
    log_records([record("demo_random_vit_sup", "invariance", "val", metrics)], config)
    client, runs = runs_of(config)
    child = next(r for r in runs if r.data.tags["run_role"] == "model")
    history = client.get_metric_history(child.info.run_id, "invariance/scale/top1")
    assert sorted((m.step, m.value) for m in history) == [(125, 50.0), (200, 40.0)]


def test_an_unchanged_rerun_adds_no_runs_and_a_change_adds_a_new_set(tmp_path):
    config = config_in(tmp_path)
    records = calibration_records(tmp_path)
    assert len(log_records(records, config)) == 3
    assert log_records(records, config) == []
    files = [tmp_path / "all_models.png"]
    first = log_files(files, config, "report", {"dvc_stage": "report"})
    assert log_files(files, config, "report", {"dvc_stage": "report"}) == first
    assert len(runs_of(config)[1]) == 4
    records[0].metrics["calibration/val/ece"] = 0.9
    assert len(log_records(records, config)) == 3
    assert len(runs_of(config)[1]) == 7


def test_records_reloaded_in_another_order_are_the_same_runs(tmp_path):
    """The stage logs its records in its own order; ``load_records`` returns them in file order."""
    config = config_in(tmp_path)
    records = [
        record(model, "calibration", dataset, {f"calibration/{dataset}/ece": 0.1 * (i + 1)})
        for i, model in enumerate(MODELS)
        for dataset in ("val", "r")
    ]
    for r in records:  # params that differ per dataset (accuracy's n_classes: 10 on a val subset, 200 on IN-R)
        r.params = {"n_bins": 15, "n_classes": 10 if r.dataset == "val" else 200}
    assert len(log_records(records, config)) == 3
    assert log_records(list(reversed(records)), config) == []
    _, runs = runs_of(config)
    child = next(r for r in runs if r.data.tags.get("run_role") == "model")
    assert child.data.params["analysis.n_bins"] == "15"
    assert (child.data.params["analysis.r.n_classes"], child.data.params["analysis.val.n_classes"]) == ("200", "10")


def test_report_run_is_short_named_and_holds_the_html(tmp_path):
    config = config_in(tmp_path)
    html = tmp_path / "report.html"
    html.write_text("<html><body>report</body></html>")
    run_id = log_files([html], config, "report", {"dvc_stage": "report"})
    client, _ = runs_of(config)
    run = client.get_run(run_id)
    assert run.info.run_name == "report" and run.data.tags["analysis"] == "report"
    assert (local_artifact_dir(config, run.info.artifact_uri) / "report/report.html").read_text() == html.read_text()


def test_deep_links_select_the_newest_parents_children(tmp_path):
    config = config_in(tmp_path)
    assert deep_links(config) == {}
    log_records(calibration_records(tmp_path), config)
    _, runs = runs_of(config)
    (parent,) = [r for r in runs if r.data.tags["run_role"] == "analysis"]
    links = deep_links(config, "http://h:1")
    assert links == {
        "calibration": runs_url("http://h:1", parent.info.experiment_id, children_filter(parent.info.run_id), "CHART")
    }
    assert links["calibration"].startswith(f"http://h:1/#/experiments/{parent.info.experiment_id}/runs?")
    assert "workflowType=machine_learning" in links["calibration"]
    assert "searchFilter=tags.%60mlflow.parentRunId%60%20%3D%20%27" in links["calibration"]


def test_deep_links_follow_the_current_content_after_a_change_is_reverted(tmp_path):
    config = config_in(tmp_path)
    records = calibration_records(tmp_path)
    log_records(records, config)
    original = records[0].metrics["calibration/val/ece"]
    records[0].metrics["calibration/val/ece"] = 0.9  # a params change: a new set of runs
    log_records(records, config)
    records[0].metrics["calibration/val/ece"] = original  # reverted: the first set is current again, no new runs
    assert log_records(records, config) == []
    client, runs = runs_of(config)
    parents = [r for r in runs if r.data.tags["run_role"] == "analysis"]
    assert len(parents) == 2
    query = parse_qs(urlsplit(deep_links(config)["calibration"]).fragment.partition("?")[2])
    selected = client.search_runs([parents[0].info.experiment_id], query["searchFilter"][0])
    ece = {r.data.tags["model"]: r.data.metrics["calibration/val/ece"] for r in selected}
    assert ece[records[0].model_id] == original


def test_git_dirty_ignores_what_the_pipeline_writes(tmp_path, monkeypatch):
    status = " M dvc.lock\n M metrics/headline.json\n M results/results.csv\n M reports/report.md\n M mlruns/x"
    assert changed_paths(status.strip()) == []
    assert changed_paths(status + "\n M src/beyond_imagenet/cli.py") == ["src/beyond_imagenet/cli.py"]
    monkeypatch.chdir(tmp_path)
    git = ["git", "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], check=True)
    for name in ("dvc.lock", "code.py", "results/a.csv"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text("1")
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "x"], check=True)
    (tmp_path / "dvc.lock").write_text("2")
    (tmp_path / "results/a.csv").write_text("2")
    git_state.cache_clear()
    try:
        assert git_state()["git_dirty"] is False
        (tmp_path / "code.py").write_text("2")
        git_state.cache_clear()
        assert git_state()["git_dirty"] is True
    finally:
        git_state.cache_clear()


@pytest.mark.parametrize("value", ["ARTIFACT", "TABLE"])
def test_runs_url_mode(value):
    assert runs_url("http://x", "3", "a = 'b'", value).endswith(f"compareRunsMode={value}")


def test_one_mlflow_run_per_model_and_analysis_with_tags_metrics_and_figures(tmp_path):
    from mlflow.tracking import MlflowClient

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
