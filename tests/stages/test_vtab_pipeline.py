"""The VTAB transfer stages end to end on generated stand-ins: features through the inference engine, probes with
the search, MLflow runs, Table 3 with missing tasks named (paper §6; TRANSFER.md §2, §4, §6)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from beyond_imagenet.base.config import parse_params
from beyond_imagenet.base.errors import ParamsError
from beyond_imagenet.stages.paths import stage_paths

MODELS = ["demo_random_vit_sup", "demo_random_convnext_clip"]
TASKS = ["dtd", "clevr_count_all", "clevr_closest_object_distance", "dsprites_label_orientation"]


@pytest.fixture(scope="module")
def vtab_root(tmp_path_factory) -> Path:
    from beyond_imagenet.data.demo.vtab import make_demo_vtab

    root = tmp_path_factory.mktemp("vtab")
    make_demo_vtab(root, seed=3)
    return root


def _params(tmp: Path, vtab_root: Path, tasks=TASKS, **transfer) -> object:
    data = {
        "models": MODELS,
        "datasets": {},
        "inference": {"batch_size": 16, "num_workers": 0, "device": "cpu", "chunk_size": 24},
        "transfer": {
            "root": str(vtab_root),
            "check_size": False,
            "tasks": tasks,
            "features_dir": str(tmp / "features"),
            "device": "cpu",
            "probe": {"epochs": 3, "batch_size": 16, "engine": "loop"},
            "search": {"n_trials": 2, "n_startup_trials": 1},
            **transfer,
        },
        "tracking": {
            "tracking_uri": f"sqlite:///{tmp / 'mlruns' / 'mlflow.db'}",
            "artifact_location": str(tmp / "mlruns" / "artifacts"),
        },
        "results_dir": str(tmp / "results"),
        "reports_dir": str(tmp / "reports"),
    }
    return parse_params(data)


@pytest.fixture(scope="module")
def extracted(tmp_path_factory, vtab_root):
    """Features of two models on the sources of TASKS, with a counting builder."""
    from beyond_imagenet.models.build import build_image_towers
    from beyond_imagenet.probe.features import extract_features
    from beyond_imagenet.probe.tasks import plan_transfer

    tmp = tmp_path_factory.mktemp("run")
    params = _params(tmp, vtab_root)
    plan = plan_transfer(params.transfer)
    built: list[list[str]] = []

    def counting_build(specs):
        built.append([s.id for s in specs])
        return build_image_towers(specs)

    jobs = extract_features(plan, MODELS, params.inference, build=counting_build)
    return {"tmp": tmp, "params": params, "plan": plan, "jobs": jobs, "built": built, "build": counting_build}


def test_shared_sources_are_featurised_once_per_model(extracted):
    plan, jobs = extracted["plan"], extracted["jobs"]
    assert [t.task.name for t in plan.tasks] == TASKS
    # dtd (3 tfds splits), clevr (train + validation, shared by 2 tasks), dsprites (1 split)
    keys = sorted(jobs[MODELS[0]])
    assert keys == [("clevr", "train"), ("clevr", "validation"), ("dsprites", "train"),
                    ("dtd", "test"), ("dtd", "train"), ("dtd", "validation")]  # fmt: skip
    assert extracted["built"] == [MODELS]  # each model built once for all source splits
    for model in MODELS:
        for (source, split), job in jobs[model].items():
            assert job.path == Path(extracted["params"].transfer.features_dir) / model / source / split
            assert (job.path / "meta.json").exists() and not (job.path / "partial").exists()


def test_features_equal_a_direct_forward(extracted):
    """Cached float16 rows = the backbone's pooled features on the model's eval transform of the decoded image."""
    from beyond_imagenet.inference.features import load_features
    from beyond_imagenet.models.build import build_backbone
    from beyond_imagenet.models.catalogue import resolve_model
    from beyond_imagenet.models.preprocessing import build_transform, resolve_preprocessing

    plan = extracted["plan"]
    split = next(t for t in plan.tasks if t.task.name == "dsprites_label_orientation").splits["train"]
    for model in MODELS:
        spec = resolve_model(model)
        job = extracted["jobs"][model][("dsprites", "train")]
        cache = load_features(job.path, job.hash)
        assert cache.features.dtype == np.float16 and len(cache.features) == len(split)
        assert cache.sample_ids == [s.sample_id for s in split.samples]
        backbone, _ = build_backbone(spec)
        transform = build_transform(resolve_preprocessing(spec, "paper"))
        rows = [0, len(split) // 2, len(split) - 1]
        images = torch.stack([transform(split.samples[i].decode()) for i in rows])
        with torch.inference_mode():
            direct = backbone.features(images).float().numpy()
        np.testing.assert_allclose(cache.features[rows].astype(np.float32), direct, rtol=2e-3, atol=2e-3)
        assert cache.meta["preprocessing"]["resize_mode"] == resolve_preprocessing(spec, "paper").resize_mode
        assert cache.meta["source"]["files_sha256"] and cache.meta["environment"]["versions"]


def test_rerun_builds_nothing(extracted):
    from beyond_imagenet.probe.features import extract_features

    before = len(extracted["built"])
    extract_features(extracted["plan"], MODELS, extracted["params"].inference, build=extracted["build"])
    assert len(extracted["built"]) == before


@pytest.fixture(scope="module")
def probed(extracted):
    from beyond_imagenet.probe.aggregate import aggregate
    from beyond_imagenet.probe.run import collect_records, probe_models

    params, plan = extracted["params"], extracted["plan"]
    paths = stage_paths(params)
    trials: list = []

    class Recorder:
        def __init__(self, **kwargs):
            self.kwargs = kwargs

        def log_trial(self, trial):
            trials.append((self.kwargs["model_id"], self.kwargs["task"].name, trial))

        def finish(self, record):
            trials.append(("finished", record.model_id, record.dataset))

        def fail(self):
            raise AssertionError("no fit should fail here")

    records = probe_models(plan, extracted["jobs"], MODELS, paths.probe_outputs, Recorder)
    collected = collect_records(plan, MODELS, paths.vtab.records)
    result = aggregate(plan, collected, MODELS, paths.aggregate_outputs)
    return {**extracted, "records": records, "trials": trials, "result": result}


def test_probe_records_and_disjoint_splits(probed):
    params, plan = probed["params"], probed["plan"]
    assert len(probed["records"]) == len(MODELS) * len(TASKS)
    for record in probed["records"]:
        top1 = record.metrics[f"vtab/{record.dataset}/top1"]
        assert 0 <= top1 <= 100 and 0 <= record.metrics[f"vtab/{record.dataset}/mean_per_class_recall"] <= 100
        assert record.details["search"]["n_trials"] == 2
        (predictions,) = [a for a in record.artifacts if a.endswith(".npz")]
        saved = np.load(predictions)
        # the reported test top-1 is the accuracy of the saved test predictions
        assert top1 == pytest.approx(100 * np.mean(saved["predictions"] == saved["targets"]))
    for task_plan in plan.tasks:
        ids = {name: {f"{s}/{i}" for s, idx in task_plan.rows[name].items() for i in idx} for name in task_plan.rows}
        assert not ids["train"] & ids["val"] and not ids["train"] & ids["test"] and not ids["val"] & ids["test"]
        saved = np.load(Path(params.results_dir) / "vtab" / "splits" / "clipbench19" / f"{task_plan.task.name}.npz")
        for key in saved.files:
            split, source = key.split("/", 1)
            np.testing.assert_array_equal(saved[key], task_plan.rows[split][source])
    # the CLEVR pair reads one source: the same rows, different labels
    count, dist = (next(t for t in plan.tasks if t.task.name == n) for n in TASKS[1:3])
    assert count.splits["train"] is dist.splits["train"]
    assert not np.array_equal(count.labels["train"], dist.labels["train"])


def test_each_trial_and_result_reaches_the_tracker(probed):
    trial_events = [t for t in probed["trials"] if t[0] != "finished"]
    finished = [t for t in probed["trials"] if t[0] == "finished"]
    assert len(trial_events) == 2 * len(MODELS) * len(TASKS)
    assert sorted((m, t) for _, m, t in finished) == sorted((m, t) for m in MODELS for t in TASKS)
    assert all(t[2].val_metrics and t[2].score is not None for t in trial_events)


def test_records_are_reused_and_a_changed_protocol_refits(probed, tmp_path):
    from beyond_imagenet.probe.run import probe_models

    params, plan = probed["params"], probed["plan"]
    again = probe_models(plan, probed["jobs"], MODELS[:1], stage_paths(params).probe_outputs)
    created = [r.provenance["created_at"] for r in probed["records"][: len(TASKS)]]
    assert [r.provenance["created_at"] for r in again] == created
    changed = _params(probed["tmp"], Path(params.transfer.root), tasks=["dtd"], search={"n_trials": 3})
    from beyond_imagenet.probe.tasks import plan_transfer

    redo = probe_models(plan_transfer(changed.transfer), probed["jobs"], MODELS[:1], stage_paths(changed).probe_outputs)
    first_hash = probed["records"][0].provenance["protocol_hash"]
    assert redo[0].details["search"]["n_trials"] == 3 and redo[0].provenance["protocol_hash"] != first_hash


def test_aggregate_names_the_tasks_not_run(probed):
    summary = probed["result"]["summary"]
    for model in MODELS:
        entry = summary["models"][model]
        assert entry["overall"] is None  # 4 of 19 tasks: never averaged over fewer tasks
        assert set(entry["missing"]) == set(summary["excluded_by_params"])
        assert set(entry["tasks"]) >= set(TASKS)
    assert probed["result"]["figure"].exists() and probed["result"]["markdown"].exists()
    assert "missing" in probed["result"]["markdown"].read_text().lower()


def test_missing_task_is_reported_and_the_others_run(tmp_path, vtab_root):
    """A task whose files are absent: message with the layout and download instructions; the rest still plans."""
    import shutil

    from beyond_imagenet.probe.tasks import plan_transfer

    root = tmp_path / "vtab"
    shutil.copytree(vtab_root / "dtd", root / "dtd")
    params = _params(tmp_path, root, tasks=["dtd", "pcam"])
    plan = plan_transfer(params.transfer)
    assert [t.task.name for t in plan.tasks] == ["dtd"]
    message = plan.not_run["pcam"]
    assert "patch_camelyon" in message and "parquet" in message and "How to get it" in message


def test_probe_cli_end_to_end_with_mlflow(tmp_path, vtab_root):
    """`beyond-imagenet probe` on one task: exit 0, Table 3 files, MLflow parent + child runs."""
    from mlflow.tracking import MlflowClient

    from beyond_imagenet.cli import main

    params = _params(tmp_path, vtab_root, tasks=["eurosat"])
    raw = yaml.safe_load(json.dumps(_as_dict(params)))
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    assert main(["probe", "--params", str(tmp_path / "params.yaml"), "--models", MODELS[0]]) == 0
    metrics = json.loads((tmp_path / "results" / "vtab" / "metrics.json").read_text())
    assert metrics["models"][MODELS[0]]["tasks"]["eurosat"]["top1"] is not None
    client = MlflowClient(tracking_uri=params.tracking.tracking_uri)
    trials = client.search_runs([client.get_experiment_by_name("beyond-imagenet-probe-trials").experiment_id])
    parents = [r for r in trials if r.data.tags.get("analysis") == "vtab_probe"]
    children = [r for r in trials if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    assert len(parents) == 1 and len(children) == 2
    assert parents[0].info.run_name == "ViT-sup (demo) / eurosat"
    assert "test/top1" in parents[0].data.metrics and "val/top1" in children[0].data.metrics
    assert all("test/top1" not in c.data.metrics for c in children)
    runs = client.search_runs([client.get_experiment_by_name("beyond-imagenet").experiment_id])
    assert not [r for r in runs if r.data.tags.get("analysis") in ("vtab_probe", "vtab_trial")]
    (parent,) = [r for r in runs if r.data.tags.get("run_role") == "analysis"]
    (summary,) = [r for r in runs if r.data.tags.get("run_role") == "model"]
    assert parent.info.run_name == "vtab" and summary.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert "eurosat" not in summary.data.tags["missing_tasks"]


def test_probe_without_root_leaves_empty_outputs(tmp_path):
    from beyond_imagenet.cli import main

    params = _params(tmp_path, tmp_path, root=None)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(_as_dict(params)))
    assert main(["probe", "--params", str(tmp_path / "params.yaml"), "--no-mlflow"]) == 0
    assert json.loads((tmp_path / "results" / "vtab" / "metrics.json").read_text())["skipped"]


@pytest.mark.parametrize(
    ("transfer", "match"),
    [
        ({"tasks": ["dtd", "imagenet"]}, "unknown: \\['imagenet'\\]"),
        ({"preset": "vtab19", "tasks": ["cifar10"]}, "cifar10"),
        ({"search": {"method": "grid", "lr": [0.01, 1.0]}}, "grid tunes weight decay only"),
        ({"search": {"lr": [1.0, 0.1]}}, "0 < low < high"),
        ({"probe": {"epochs": 0}}, "epochs >= 1"),
        ({"layout": "tfds"}, "transfer.layout"),
    ],
)
def test_bad_transfer_params_fail_early(tmp_path, transfer, match):
    """Every stage loads params.yaml through ``load_stage_params``: the schema's checks plus the layout and task
    names against the data layer's tables."""
    from beyond_imagenet.stages.params import load_stage_params

    base = {"models": ["demo_random_vit_sup"], "datasets": {}, "transfer": {"root": "x", **transfer}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(base))
    with pytest.raises(ParamsError, match=match):
        load_stage_params(tmp_path / "params.yaml")


def _as_dict(params) -> dict:
    from dataclasses import asdict

    return json.loads(json.dumps(asdict(params)))


def test_vtab_tasks_cli_lists_the_preset_and_what_is_on_disk(tmp_path, vtab_root, capsys):
    import shutil

    from beyond_imagenet.cli import main

    shutil.copytree(vtab_root / "dtd", tmp_path / "dtd")
    assert main(["vtab-tasks", "--preset", "vtab19", "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "sun397" in out and "cifar10 " not in out  # vtab19: SUN397 instead of CIFAR-10
    assert re.search(r"dsprites_label_orientation\s+structured\s+16\s", out)  # 16 classes in vtab19
    assert "dtd: found" in out and "resisc45: MISSING" in out and "MANUAL" in out


def test_report_includes_table3_only_when_the_probe_ran(tmp_path):
    from beyond_imagenet.base.record import ResultRecord
    from beyond_imagenet.records import load_model_records
    from beyond_imagenet.report import vtab_section

    skipped = load_model_records(tmp_path / "records", MODELS, TASKS)  # a skipped probe stage wrote no record
    assert vtab_section([], "clipbench19", MODELS) == "" and vtab_section(skipped, "clipbench19", MODELS) == ""
    metrics = {"vtab/dtd/top1": 80.0, "vtab/dtd/mean_per_class_recall": 75.0}
    record = ResultRecord("vtab_probe", MODELS[0], "dtd", metrics, details={"group": "natural"})
    section = vtab_section([record], "clipbench19", MODELS[:1])
    assert section.startswith("## Transfer: VTAB linear probes (paper Table 3)") and "| 80.0 (75.0) |" in section


def test_torchvision_layout_runs_through_features_and_probe(tmp_path):
    """Layout torchvision: CIFAR-10 pickles -> features (own cache folder) -> a probe with a carved val."""
    from beyond_imagenet.probe.features import extract_features
    from beyond_imagenet.probe.run import probe_models
    from beyond_imagenet.probe.tasks import plan_transfer
    from data.vtab.test_torchvision import write_cifar10

    write_cifar10(tmp_path / "tv", per_batch=8, n_test=6)
    params = _params(tmp_path, tmp_path / "tv", tasks=["cifar10"], layout="torchvision")
    plan = plan_transfer(params.transfer)
    assert plan.not_run == {} and [t.task.name for t in plan.tasks] == ["cifar10"]
    rows = plan.tasks[0].rows
    assert sum(len(v) for v in rows["val"].values()) == 10  # stratified: at least 1 of each of the 10 classes
    jobs = extract_features(plan, MODELS[:1], params.inference)
    assert jobs[MODELS[0]][("cifar10", "train")].path.parent.name == "cifar10@torchvision"
    (record,) = probe_models(plan, jobs, MODELS[:1], stage_paths(params).probe_outputs)
    assert record.params["layout"] == "torchvision" and record.details["search"]["n_test"] == 6
