"""Records on disk: hidden work-in-progress folders are never read; a folder is replaced whole or not at all."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from beyond_imagenet.base.record import ResultRecord
from beyond_imagenet.records import load_records, replace_folder, write_records


def records(analysis: str, top1: float) -> list[ResultRecord]:
    return [ResultRecord(analysis, m, "toy", {f"{analysis}/toy/top1": top1}) for m in ("a", "b")]


def test_load_records_skips_hidden_folders(tmp_path):
    write_records(records("accuracy", 50.0), tmp_path)
    write_records(records("accuracy", 10.0), tmp_path / "elsewhere")
    (tmp_path / "elsewhere" / "accuracy").rename(tmp_path / ".accuracy.old-1234")  # as moved aside mid-swap
    assert sorted((r.analysis, r.model_id, r.metrics["accuracy/toy/top1"]) for r in load_records(tmp_path)) == [
        ("accuracy", "a", 50.0),
        ("accuracy", "b", 50.0),
    ]


def test_replace_folder_swaps_in_the_new_folder_and_removes_the_old(tmp_path):
    target, staged = tmp_path / "records" / "accuracy", tmp_path / "staged"
    write_records(records("accuracy", 50.0), tmp_path / "records")
    write_records(records("accuracy", 75.0), staged)
    replace_folder(staged / "accuracy", target)
    assert [r.metrics["accuracy/toy/top1"] for r in load_records(tmp_path / "records")] == [75.0, 75.0]
    assert sorted(p.name for p in (tmp_path / "records").iterdir()) == ["accuracy"]  # nothing hidden left
    replace_folder(None, target)
    assert not target.exists() and list((tmp_path / "records").iterdir()) == []


def test_replace_folder_puts_the_old_folder_back_when_the_swap_fails(tmp_path, monkeypatch):
    target = tmp_path / "records" / "accuracy"
    write_records(records("accuracy", 50.0), tmp_path / "records")
    staged = tmp_path / "staged"
    staged.mkdir()
    real_replace = os.replace

    def refuse_staged(src, dst):
        if Path(src) == staged:
            raise OSError("the test refuses this rename")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", refuse_staged)
    with pytest.raises(OSError, match="refuses"):
        replace_folder(staged, target)
    assert [r.metrics["accuracy/toy/top1"] for r in load_records(tmp_path / "records")] == [50.0, 50.0]
    assert sorted(p.name for p in (tmp_path / "records").iterdir()) == ["accuracy"]


def test_a_model_id_with_a_path_is_one_flat_record_file_and_loads_back(tmp_path):
    model = "timm-file:tf_efficientnet_lite0@data/demo/weights/lite0.pth?map=order"
    (path,) = write_records([ResultRecord("accuracy", model, "toy", {"accuracy/toy/top1": 75.0})], tmp_path)
    assert path.parent == tmp_path / "accuracy" / "toy"
    assert path.name == "timm-file_tf_efficientnet_lite0@data_demo_weights_lite0.pth_map_order.json"
    (loaded,) = load_records(tmp_path)
    assert loaded.model_id == model and loaded.metrics == {"accuracy/toy/top1": 75.0}


def test_a_per_model_figure_of_such_an_id_is_placed_under_its_model(tmp_path):
    from beyond_imagenet.analyses.common import figure_path
    from beyond_imagenet.report.catalogue import place

    model = "timm-file:convnext_tiny@ckpt/best.pth?strip=module."
    path = figure_path(tmp_path, "calibration", "val", model)
    assert path.parent == tmp_path / "calibration" / "val"
    assert place(path, tmp_path, ["demo_random_vit_sup", model]).model == model
