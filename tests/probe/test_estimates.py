"""Intervals on the VTAB probe results (paper §6, Table 3; probe.estimates): exact top-1 intervals, bootstrap
mean per-class recall, paired task resamples, and the Table 3 summary record with replicate-wise group means.

Synthetic test predictions for all 19 clipbench19 tasks of two models, records as the probe stage writes them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.stats import binomtest

from beyond_imagenet.base.config import StatisticsConfig, TransferConfig
from beyond_imagenet.base.errors import UserError
from beyond_imagenet.base.record import ResultRecord, read_record, replicates_path, save_record
from beyond_imagenet.data.vtab.tasks import PRESETS, get_preset
from beyond_imagenet.metrics.probe import evaluate
from beyond_imagenet.metrics.vtab import GROUPS
from beyond_imagenet.probe.aggregate import AggregateOutputs, aggregate
from beyond_imagenet.probe.estimates import (
    recall_statistic,
    resample_plan,
    summary_path,
)
from beyond_imagenet.probe.run import read_record as read_probe_record
from beyond_imagenet.probe.tasks import TransferPlan

MODELS = ["demo_random_vit_sup", "demo_random_convnext_clip"]
PRESET = "clipbench19"
STATS = StatisticsConfig(resamples=300, seed=5)
N_TEST = 48


def _source(task: str) -> str:
    """The tfds source: the CLEVR, dSprites and smallNORB tasks share their images."""
    return task.split("_")[0] if task.split("_")[0] in ("clevr", "dsprites", "smallnorb") else task


def _predictions(task: str, model: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Test sample ids, targets (a few classes, one of them rare) and ~70%-correct predictions."""
    rng = np.random.default_rng([model, len(task), ord(task[0])])
    classes = min(5, get_preset(PRESET).task(task).num_classes)
    targets = rng.integers(0, classes - 1, N_TEST)
    targets[:2] = classes - 1  # a rare class: many resamples lack it
    wrong = (targets + rng.integers(1, classes, N_TEST)) % classes
    predictions = np.where(rng.random(N_TEST) < 0.7, targets, wrong)
    ids = np.array([f"test/{i:07d}" for i in range(N_TEST)])
    return ids, targets, predictions


def _probe_record(root: Path, model_index: int, task: str) -> ResultRecord:
    """A ``vtab_probe`` record with its metrics from ``metrics.probe.evaluate`` and its saved test predictions."""
    model = MODELS[model_index]
    ids, targets, predictions = _predictions(task, model_index)
    path = root / "predictions" / model / f"{task}.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, sample_ids=ids, targets=targets, predictions=predictions)
    n_classes = get_preset(PRESET).task(task).num_classes
    logits = torch.nn.functional.one_hot(torch.from_numpy(predictions), n_classes).double()
    scores = evaluate(logits, torch.from_numpy(targets), n_classes)
    source = _source(task)
    return ResultRecord(
        "vtab_probe", model, task, {f"vtab/{task}/{k}": v for k, v in scores.items()},
        params={"preset": PRESET, "rows_sha256": "r", "features": {f"{source}/test": "h", f"{source}/train": "h"}},
        details={"preset": PRESET}, provenance={"protocol_hash": f"hash-{model}-{task}"}, artifacts=[str(path)],
    )  # fmt: skip


def _plan() -> TransferPlan:
    return TransferPlan(get_preset(PRESET), TransferConfig(preset=PRESET), Path("."), [])


def _outputs(root: Path) -> AggregateOutputs:
    return AggregateOutputs(root / "metrics.json", root / "table3.md", root / "figures", root / "records")


@pytest.fixture(scope="module")
def aggregated(tmp_path_factory):
    """Both models on every task, except model 1 lacks ``kitti_closest_vehicle_distance`` (structured, Overall).

    Model 0's records were written by an earlier run (no intervals) and are read back from disk, as reused ones.
    """
    root = tmp_path_factory.mktemp("vtab")
    tasks = get_preset(PRESET).names
    records = []
    for task in tasks:
        stored = root / "records" / MODELS[0] / f"{task}.json"
        save_record(_probe_record(root, 0, task), stored)
        records.append(read_probe_record(stored))
    records += [_probe_record(root, 1, t) for t in tasks if t != "kitti_closest_vehicle_distance"]
    result = aggregate(_plan(), records, MODELS, _outputs(root), STATS)
    return {"root": root, "records": records, "result": result}


def _stored(root: Path, model: str, name: str) -> ResultRecord:
    return read_record(root / "records" / model / f"{name}.json", with_replicates=True)


def test_top1_interval_is_clopper_pearson(aggregated):
    for record in aggregated["records"]:
        _, targets, predictions = _predictions(record.dataset, MODELS.index(record.model_id))
        k, n = int((targets == predictions).sum()), len(targets)
        interval = record.intervals[f"vtab/{record.dataset}/top1"]
        expected = binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
        assert interval["method"] == "clopper-pearson" and interval["n"] == n
        assert interval["low"] == pytest.approx(100 * expected.low, abs=1e-9)
        assert interval["high"] == pytest.approx(100 * expected.high, abs=1e-9)
        assert record.replicates[f"vtab/{record.dataset}/top1"].shape == (STATS.resamples,)


def test_recall_replicates_equal_the_recall_of_each_resample(aggregated):
    """Replicate b = ``evaluate`` on the rows resample b draws (a class it lacks is left out of the mean)."""
    record = _stored(aggregated["root"], MODELS[0], "dtd")
    ids, targets, predictions = _predictions("dtd", 0)
    plan = resample_plan(record, ids.tolist(), STATS)
    counts = np.concatenate(list(plan.counts())).astype(np.int64)
    replicates = record.replicates["vtab/dtd/mean_per_class_recall"]
    lacking = 0
    for b in range(0, STATS.resamples, 7):
        rows = np.repeat(np.arange(N_TEST), counts[b])
        lacking += len(np.unique(targets[rows])) < len(np.unique(targets))
        logits = torch.nn.functional.one_hot(torch.from_numpy(predictions[rows]), 47).double()
        direct = evaluate(logits, torch.from_numpy(targets[rows]), 47)["mean_per_class_recall"]
        assert replicates[b] == pytest.approx(direct, abs=1e-9)
    assert lacking > 0  # the rule for an absent class was exercised
    interval = record.intervals["vtab/dtd/mean_per_class_recall"]
    assert (
        interval["method"].startswith("bootstrap")
        and interval["low"] <= record.metrics["vtab/dtd/mean_per_class_recall"]
    )


def test_recall_statistic_on_a_constructed_count_vector():
    targets = np.array([0, 0, 1, 1, 1, 2, 3, 3])
    predictions = np.array([0, 1, 1, 1, 0, 2, 3, 0])
    statistic = recall_statistic(targets, predictions == targets)
    weights = np.array([[2, 1, 0, 3, 1, 0, 1, 2]], dtype=np.float64)  # class 2 (row 5) is not drawn
    rows = np.repeat(np.arange(len(targets)), weights[0].astype(int))
    logits = torch.nn.functional.one_hot(torch.from_numpy(predictions[rows]), 4).double()
    direct = evaluate(logits, torch.from_numpy(targets[rows]), 4)["mean_per_class_recall"]
    # classes 0, 1, 3 drawn: recalls 2/3, 3/4, 1/3
    assert statistic.reduce(weights @ statistic.columns)[0] == pytest.approx(direct)
    assert direct == pytest.approx(100 * (2 / 3 + 3 / 4 + 1 / 3) / 3)
    everything = evaluate(torch.nn.functional.one_hot(torch.from_numpy(predictions), 4).double(),
                          torch.from_numpy(targets), 4)["mean_per_class_recall"]  # fmt: skip
    assert statistic.value() == pytest.approx(everything)


def test_summary_values_equal_table3(aggregated):
    table = aggregated["result"]["table"]
    summaries = {r.model_id: r for r in aggregated["result"]["records"]}
    for model in MODELS:
        row, stored = table.rows[model], _stored(aggregated["root"], model, PRESET)
        expected = {f"vtab/{g}": row.groups[g] for g in GROUPS if row.groups[g] is not None}
        if row.overall is not None:
            expected["vtab/overall"] = row.overall
        assert stored.metrics == expected == summaries[model].metrics  # exactly the Table 3 numbers
        assert stored.analysis == "vtab" and stored.dataset == PRESET and set(stored.intervals) == set(expected)
        assert stored.provenance["tasks"] == list(row.tasks)
        assert stored.provenance["model"] == {"id": model}  # a dict like every record's (the task records have none)
        assert stored.provenance["protocol_hashes"] == {t: f"hash-{model}-{t}" for t in row.tasks}
    assert set(summaries[MODELS[0]].metrics) == {"vtab/natural", "vtab/specialized", "vtab/structured", "vtab/overall"}
    assert set(summaries[MODELS[1]].metrics) == {"vtab/natural", "vtab/specialized"}  # kitti missing: left out


def test_summary_replicates_are_the_mean_of_the_task_replicates(aggregated):
    root, table = aggregated["root"], aggregated["result"]["table"]
    for model in MODELS:
        summary = _stored(root, model, PRESET)
        tasks = {t: _stored(root, model, t).replicates[f"vtab/{t}/top1"] for t in table.rows[model].tasks}
        for metric, replicates in summary.replicates.items():
            names = table.tasks if metric == "vtab/overall" else table.task_groups[metric.removeprefix("vtab/")]
            np.testing.assert_allclose(replicates, np.mean([tasks[t] for t in names], axis=0), rtol=1e-12)
            assert summary.intervals[metric]["low"] <= summary.metrics[metric] <= summary.intervals[metric]["high"]


def test_models_share_each_tasks_resamples(aggregated):
    """Paired: both models' replicates of a task on one plan; tasks on the same images share it too."""
    root = aggregated["root"]
    plans = {m: {t: _stored(root, m, t).intervals[f"vtab/{t}/top1"]["plan"] for t in ("dtd", "clevr_count_all",
             "clevr_closest_object_distance", "eurosat")} for m in MODELS}  # fmt: skip
    assert plans[MODELS[0]] == plans[MODELS[1]]
    assert plans[MODELS[0]]["clevr_count_all"] == plans[MODELS[0]]["clevr_closest_object_distance"]
    assert len(set(plans[MODELS[0]].values())) == 3  # dtd and eurosat: same sample ids, other images
    natural = [_stored(root, m, PRESET).intervals["vtab/natural"]["plan"] for m in MODELS]
    assert natural[0] == natural[1]


def test_reused_records_get_intervals_and_replicates_files_sit_beside_them(aggregated):
    """Model 0's records came from disk without intervals; now each JSON and its replicates are on disk."""
    root = aggregated["root"]
    for model in MODELS:
        for name in [*get_preset(PRESET).names, PRESET]:
            path = root / "records" / model / f"{name}.json"
            if name == "kitti_closest_vehicle_distance" and model == MODELS[1]:
                assert not path.exists()
                continue
            record = read_record(path, with_replicates=True)
            assert replicates_path(path).exists() and set(record.replicates) == set(record.intervals)
            assert record.intervals and all(len(v) == STATS.resamples for v in record.replicates.values())
    assert read_probe_record(root / "records" / MODELS[0] / "dtd.json") is not None  # still a probe record


def test_no_task_is_named_like_a_preset():
    tasks = {t for spec in PRESETS.values() for t in spec.names}
    assert not tasks & set(PRESETS)
    with pytest.raises(UserError, match="also a task name"):
        summary_path(Path("records"), MODELS[0], "dtd")
    assert summary_path(Path("records"), MODELS[0], PRESET) == Path("records") / MODELS[0] / f"{PRESET}.json"


def test_write_record_drops_stale_replicates(tmp_path):
    path = tmp_path / "dtd.json"
    record = ResultRecord("vtab_probe", MODELS[0], "dtd", {"vtab/dtd/top1": 50.0})
    record.replicates = {"vtab/dtd/top1": np.zeros(3)}
    save_record(record, path)
    assert replicates_path(path).exists()
    record.replicates = {}
    save_record(record, path)  # a refit: its replicates come with the next aggregate
    assert path.exists() and not replicates_path(path).exists()


def test_aggregate_without_records_folder_writes_no_record(tmp_path):
    records = [_probe_record(tmp_path, 0, t) for t in ("dtd", "eurosat")]
    out = AggregateOutputs(tmp_path / "metrics.json", tmp_path / "table3.md", tmp_path / "figures")
    result = aggregate(_plan(), records, MODELS[:1], out)
    assert not (tmp_path / "records").exists() and result["records"][0].metrics == {}
    assert "vtab/dtd/top1" in records[0].intervals  # intervals with the default statistics, in memory
