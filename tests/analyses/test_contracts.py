"""The per-dataset rules of a cache (analyses.contracts), checked wherever caches are loaded for analyses."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from beyond_imagenet.analyses.common import AnalysisContext
from beyond_imagenet.analyses.contracts import (
    cache_kind,
    check_cache,
    check_imagenet_x_join,
    contract_problems,
    imagenet_x_join,
)
from beyond_imagenet.analyses.registry import ANALYSES
from beyond_imagenet.analyses.shape_bias import run_shape_bias
from beyond_imagenet.analyses.store import CacheStore
from beyond_imagenet.base.config import DatasetConfig, ShapeBiasConfig
from beyond_imagenet.base.errors import CacheFormatError, UserError
from beyond_imagenet.data.cue_conflict import CATEGORIES
from beyond_imagenet.inference.cache import cache_path, load_cache

CUE_IDS = ["cat1-dog1.png", "dog1-cat1.png", "bird1-car1.png"]
CUE_TARGETS = [CATEGORIES.index(c) for c in ("cat", "dog", "bird")]  # 7, 10, 3


def write(path: Path, targets, ids, dataset: dict, label: dict | None = None, n_columns: int = 1000, **meta) -> Path:
    """A cache as docs/cache.md describes it, written with numpy."""
    path.mkdir(parents=True, exist_ok=True)
    np.save(path / "logits.npy", np.zeros((len(ids), n_columns), dtype=np.float32))
    np.save(path / "features.npy", np.zeros((len(ids), 2), dtype=np.float32))
    np.save(path / "targets.npy", np.asarray(targets, dtype=np.int64))
    (path / "sample_ids.json").write_text(json.dumps(ids))
    model = {"model_id": "m", "family": "other", "paradigm": "supervised"}
    label = label or {"kind": "custom", "n_classes": 16}
    content = {"model": model, "dataset": dataset, "output_space": {"kind": "imagenet1k"}, "label_space": label}
    (path / "meta.json").write_text(json.dumps({**content, **meta}))
    return path


def cue(tmp_path: Path, targets=CUE_TARGETS, ids=CUE_IDS, name: str = "cue_conflict"):
    return load_cache(write(tmp_path / "cue", targets, ids, {"name": name}))


def test_cue_conflict_targets_in_another_category_order_are_refused(tmp_path):
    cache = cue(tmp_path, targets=[15 - t for t in CUE_TARGETS])
    with pytest.raises(CacheFormatError) as err:
        check_cache(cache, "cue_conflict")
    message = str(err.value)
    assert str(cache.path / "targets.npy") in message
    assert "3 of 3 rows disagree" in message and "row 0: 'cat1-dog1.png' has target 8 = 'chair'" in message
    assert "0=airplane" in message and "Fix: rewrite targets.npy" in message


def test_cue_conflict_ids_with_or_without_their_shape_folder(tmp_path):
    assert (
        contract_problems(
            cue(tmp_path / "a", ids=["cat/cat1-dog1.png", "dog1-cat1.png", "bird1-car1.png"]), "cue_conflict"
        )
        == []
    )
    problems = contract_problems(
        cue(tmp_path / "b", ids=["dog/cat1-dog1.png", "dog1-cat1.png", "x.png"]), "cue_conflict"
    )
    assert len(problems) == 1 and "2 sample id(s) are not cue-conflict file names (e.g. row 0" in problems[0]


def test_analyze_stage_shape_bias_refuses_a_misordered_cache(tmp_path):
    """The analyze stage's caches: dataset 'cue' of kind cue_conflict in params, nothing about it in meta.json."""
    write(cache_path(tmp_path, "cue", "m"), [15 - t for t in CUE_TARGETS], CUE_IDS, {"name": "cue"})
    ctx = AnalysisContext(
        ["m"], CacheStore(tmp_path), tmp_path / "figures", {"cue": DatasetConfig("x", "cue_conflict")}
    )
    with pytest.raises(CacheFormatError, match="rows disagree with the shape category"):
        run_shape_bias(ShapeBiasConfig(dataset="cue"), ctx)


@pytest.mark.parametrize("bad", [-1, 16])
def test_targets_outside_the_label_space_are_refused_on_load(tmp_path, bad):
    write(cache_path(tmp_path, "cue_conflict", "m"), [7, bad, 3], CUE_IDS, {"name": "cue_conflict"})
    with pytest.raises(CacheFormatError, match=rf"row 1, 'dog1-cat1.png': {bad}\). Rule: targets.npy holds"):
        CacheStore(tmp_path).get("cue_conflict", "m")


def test_duplicate_sample_ids_are_refused_on_load(tmp_path):
    ids = ["a.jpg", "b.jpg", "a.jpg"]
    write(cache_path(tmp_path, "toy", "m"), [0, 1, 0], ids, {"name": "toy"}, {"kind": "custom", "n_classes": 2}, 2)
    with pytest.raises(
        CacheFormatError, match=r"1 sample id\(s\) occur more than once \(e.g. 'a.jpg' at rows \[0, 2\]"
    ):
        CacheStore(tmp_path).get("toy", "m")


def test_label_lists_must_hold_imagenet_indices(tmp_path):
    path = write(tmp_path / "hard", [1, 2], ["a.png", "b.png"], {"name": "imagenet_hard"}, {"kind": "imagenet1k"})
    (path / "label_lists.json").write_text(json.dumps([[1], [2, 1000]]))
    problems = contract_problems(load_cache(path), "imagenet_hard")
    assert len(problems) == 1 and "row 1 ('b.png') is [2, 1000]" in problems[0]


def test_a_malformed_sweep_point_is_refused(tmp_path):
    path = write(tmp_path / "s", [0], ["a.png"], {"name": "v", "variant": "zoom/2"}, config={"sweep": {"kind": "zoom"}})
    with pytest.raises(CacheFormatError, match=r"config.sweep is \{'kind': 'zoom'\}"):
        check_cache(load_cache(path), None)


def test_sweep_caches_are_found_by_their_point_whatever_the_value_spelling(tmp_path):
    dataset = {"name": "imagenet_val", "variant": "per_class5/scale/1.0"}
    path = write(
        tmp_path / "s",
        [0],
        ["a.png"],
        dataset,
        {"kind": "imagenet1k"},
        config={"sweep": {"kind": "scale", "value": 1.0}},
    )
    store = CacheStore.of_caches([load_cache(path)], {})
    assert store.has("imagenet_val", "m", "per_class5/scale/1") and not store.has("imagenet_val", "m")


def test_a_cache_without_model_or_dataset_name_is_refused_naming_meta_json(tmp_path):
    path = write(tmp_path / "c", [0], ["a.png"], {"variant": None})
    with pytest.raises(CacheFormatError, match=r"c/meta.json lacks dataset.name. Rule: every cache names"):
        CacheStore.of_caches([load_cache(path)], {})


def test_the_dataset_kind_is_dataset_kind_else_the_name():
    assert cache_kind({"dataset": {"name": "cue", "kind": "cue_conflict"}}) == "cue_conflict"
    assert cache_kind({"dataset": {"name": "imagenet_val"}}) == "imagenet_val"
    assert cache_kind({"dataset": {"name": "mine", "kind": "something"}}) is None


def annotations(classes: dict[int, int]) -> pd.DataFrame:
    return pd.DataFrame(
        {"file_name": [f"ILSVRC2012_val_{n:08d}.JPEG" for n in classes], "class": list(classes.values())}
    )


def val_cache(tmp_path: Path, numbers, targets):
    ids = [f"ILSVRC2012_val_{n:08d}.JPEG" for n in numbers]
    return load_cache(write(tmp_path / "val", targets, ids, {"name": "imagenet_val"}, {"kind": "imagenet1k"}))


def test_imagenet_x_join_reports_both_fractions_and_refuses_a_partial_one(tmp_path):
    cache = val_cache(tmp_path, [1, 2, 3, 9], [5, 6, 7, 0])  # file 9 is not annotated
    join = imagenet_x_join(cache, annotations({1: 5, 2: 6, 3: 7, 4: 8}))
    assert (join.id_fraction, join.coverage) == (0.75, 0.75)
    assert join.describe().startswith("3 of 4 sample ids (75.0%) are in the ImageNet-X annotations")
    with pytest.raises(UserError, match=r"cover 3 of 4 annotated images \(75.0%\).*allow_partial: true"):
        check_imagenet_x_join(cache, join, allow_partial=False)
    check_imagenet_x_join(cache, join, allow_partial=True)


def test_imagenet_x_refuses_labels_in_another_class_order(tmp_path):
    cache = val_cache(tmp_path, [1, 2], [5, 9])
    join = imagenet_x_join(cache, annotations({1: 5, 2: 6}))
    with pytest.raises(UserError, match=r"row 1, 'ILSVRC2012_val_00000002.JPEG': target 9, ImageNet-X class 6"):
        check_imagenet_x_join(cache, join, allow_partial=False)


def test_imagenet_x_compares_subset_targets_through_their_imagenet_columns(tmp_path):
    """A val subset (label_space imagenet_subset) stores subset indices; ImageNet-X's classes are 1000-way."""
    ids = [f"ILSVRC2012_val_{n:08d}.JPEG" for n in (1, 2)]
    label = {"kind": "imagenet_subset", "n_classes": 2, "imagenet_columns": [5, 6]}
    cache = load_cache(write(tmp_path / "sub", [0, 1], ids, {"name": "imagenet_val"}, label))
    check_imagenet_x_join(cache, imagenet_x_join(cache, annotations({1: 5, 2: 6})), allow_partial=False)
    swapped = load_cache(write(tmp_path / "swapped", [1, 0], ids, {"name": "imagenet_val"}, label))
    with pytest.raises(UserError, match=r"row 0, 'ILSVRC2012_val_00000001.JPEG': target 6, ImageNet-X class 5"):
        check_imagenet_x_join(swapped, imagenet_x_join(swapped, annotations({1: 5, 2: 6})), allow_partial=False)


def test_every_analysis_has_an_input_contract():
    assert {name: spec.inputs.takes for name, spec in ANALYSES.items()} == {
        "accuracy": "a single-label cache",
        "calibration": "a single-label cache",
        "robustness": "cache of a robustness set",
        "imagenet_x": "ImageNet val cache",
        "pug": "PUG-ImageNet cache",
        "shape_bias": "cue-conflict cache",
        "invariance": "invariance sweep cache",
    }
    assert ANALYSES["shape_bias"].inputs.kinds == ("cue_conflict",) and ANALYSES["invariance"].inputs.sweep


def test_invariance_is_configured_from_the_sweep_caches_found(tmp_path):
    from beyond_imagenet.analyses.foreign import load_store, plan_analyses
    from beyond_imagenet.analyses.inputs import ToolOptions

    points = [("scale", 1.0), ("scale", 2), ("shift", 0), ("shift", 30), ("resolution", 224)]
    for kind, value in points:
        dataset = {"name": "imagenet_val", "variant": f"per_class5/{kind}/{value}"}
        label = {"kind": "imagenet1k"}
        write(
            tmp_path / f"{kind}{value}",
            [0],
            ["a.png"],
            dataset,
            label,
            config={"sweep": {"kind": kind, "value": value}},
        )
    _, entries = load_store([tmp_path])
    (run,) = plan_analyses(entries, ToolOptions(), ["invariance"]).runs
    section = run.section
    assert (section.dataset, section.images_per_class) == ("imagenet_val", 5)
    assert (section.scales, section.shifts, section.resolutions) == ([1.0, 2.0], [0, 30], [224])
