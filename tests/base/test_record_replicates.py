"""A result record and its bootstrap replicates on disk: ``<name>.json`` plus ``<name>.replicates.npz``."""

from __future__ import annotations

import json

import numpy as np

from beyond_imagenet.base.record import (
    REPLICATES_SUFFIX,
    ResultRecord,
    read_record,
    replicates_path,
    save_record,
)
from beyond_imagenet.records import load_model_records, load_records, record_path, write_records

TOP1, ECE = "accuracy/imagenet_val/top1", "calibration/imagenet_val/ece"


def _record(model: str = "vit_sup", seed: int = 0, with_replicates: bool = True) -> ResultRecord:
    rng = np.random.default_rng(seed)
    record = ResultRecord(
        "accuracy",
        model,
        "imagenet_val",
        {TOP1: 81.25, ECE: 0.0375, "accuracy/imagenet_val/n_samples": 400.0},
        params={"k": 1},
        provenance={"model": {"model_id": model}},
        intervals={
            TOP1: {"low": 77.1, "high": 84.9, "level": 0.95, "n": 400, "method": "exact", "plan": "p/images"},
            ECE: {"low": 0.021, "high": 0.055, "level": 0.95, "n": 400, "method": "percentile", "plan": "p/images"},
        },
    )
    if with_replicates:
        record.replicates = {TOP1: rng.normal(81.25, 2.0, 257), ECE: rng.gamma(4.0, 0.01, 257)}
    return record


def test_replicates_path_sits_beside_the_json():
    assert REPLICATES_SUFFIX == ".replicates.npz"
    assert replicates_path("a/b/vit_sup.json") == replicates_path("a/b/vit_sup.json").parent / "vit_sup.replicates.npz"
    assert str(replicates_path("a/b/flowers.v2.json")).endswith("a/b/flowers.v2.replicates.npz")


def test_round_trip_keeps_metrics_intervals_and_replicates_exactly(tmp_path):
    record = _record()
    path = tmp_path / "r" / "vit_sup.json"
    assert save_record(record, path) == path
    assert replicates_path(path).exists()
    # the replicates are not in the JSON
    assert "replicates" not in json.loads(path.read_text())

    back = read_record(path, with_replicates=True)
    assert back == record  # compares every field except the replicates
    assert back.metrics == record.metrics and back.intervals == record.intervals
    assert sorted(back.replicates) == sorted(record.replicates)
    for name, values in record.replicates.items():
        assert back.replicates[name].dtype == np.float64
        assert back.replicates[name].shape == (257,)
        assert np.array_equal(back.replicates[name], values)


def test_reading_without_replicates_leaves_them_empty(tmp_path):
    path = save_record(_record(), tmp_path / "vit_sup.json")
    back = read_record(path)
    assert back.replicates == {}
    assert back.intervals[TOP1]["plan"] == "p/images"


def test_a_record_without_replicates_writes_no_npz(tmp_path):
    path = save_record(_record(with_replicates=False), tmp_path / "vit_sup.json")
    assert path.exists()
    assert not replicates_path(path).exists()
    assert list(tmp_path.iterdir()) == [path]
    assert read_record(path, with_replicates=True).replicates == {}


def test_rewriting_with_fewer_replicates_replaces_the_npz(tmp_path):
    path = tmp_path / "vit_sup.json"
    save_record(_record(seed=1), path)
    smaller = _record(seed=2)
    del smaller.replicates[ECE]
    save_record(smaller, path)
    back = read_record(path, with_replicates=True)
    assert list(back.replicates) == [TOP1]
    assert np.array_equal(back.replicates[TOP1], smaller.replicates[TOP1])


def test_overwriting_with_a_record_without_replicates_removes_the_stale_npz(tmp_path):
    path = tmp_path / "vit_sup" / "flowers.json"
    save_record(_record(), path)
    assert replicates_path(path).exists()
    save_record(_record(with_replicates=False), path)
    assert path.exists()
    assert not replicates_path(path).exists()
    assert read_record(path, with_replicates=True).replicates == {}
    # and a record with replicates written again brings them back
    save_record(_record(seed=3), path)
    assert np.array_equal(read_record(path, with_replicates=True).replicates[ECE], _record(seed=3).replicates[ECE])


def test_load_records_reads_replicates_when_asked(tmp_path):
    records = [_record("vit_sup", seed=4), _record("convnext_clip", seed=5, with_replicates=False)]
    paths = write_records(records, tmp_path)
    assert paths == [record_path(tmp_path, r) for r in records]
    assert replicates_path(paths[0]).exists() and not replicates_path(paths[1]).exists()

    plain = {r.model_id: r for r in load_records(tmp_path)}
    assert set(plain) == {"vit_sup", "convnext_clip"}
    assert all(r.replicates == {} for r in plain.values())

    loaded = {r.model_id: r for r in load_records(tmp_path, with_replicates=True)}
    assert loaded["convnext_clip"].replicates == {}
    assert sorted(loaded["vit_sup"].replicates) == [TOP1, ECE]
    assert np.array_equal(loaded["vit_sup"].replicates[TOP1], records[0].replicates[TOP1])
    assert loaded["vit_sup"].intervals == records[0].intervals


def test_load_model_records_reads_replicates_when_asked(tmp_path):
    record = _record("vit_clip", seed=6)
    save_record(record, tmp_path / "vit_clip" / "dtd.json")
    assert load_model_records(tmp_path, ["vit_clip", "vit_sup"], ["dtd", "eurosat"])[0].replicates == {}
    loaded = load_model_records(tmp_path, ["vit_clip", "vit_sup"], ["dtd", "eurosat"], with_replicates=True)
    assert len(loaded) == 1
    assert np.array_equal(loaded[0].replicates[ECE], record.replicates[ECE])
