"""The VTAB task catalogue (docs/transfer.md §3): presets, groups, split sizes and disjointness on index ranges, the
derived-label rules at every bin boundary, shared image sources, and the missing-on-disk error. No data needed."""

from __future__ import annotations

import dataclasses

import pytest

from beyond_imagenet.base.errors import DatasetLayoutError, UnknownNameError, UserError
from beyond_imagenet.data.vtab.labels import (
    clevr_count_label,
    clevr_distance_label,
    dsprites_label,
    kitti_distance_label,
    smallnorb_azimuth_label,
    smallnorb_elevation_label,
    threshold_label,
)
from beyond_imagenet.data.vtab.layouts import check_task_on_disk
from beyond_imagenet.data.vtab.slices import SourceRange
from beyond_imagenet.data.vtab.sources import SOURCES
from beyond_imagenet.data.vtab.split_rules import (
    check_disjoint,
    image_sources,
    sample_ids,
    source_images_used,
    split_indices,
    split_sizes,
)
from beyond_imagenet.data.vtab.tasks import PRESETS, get_preset, get_task

# docs/transfer.md §3.1, copied by hand: task -> (train, val, test), classes (vtab19; dSprites 32/40 in clipbench19).
SPEC_SIZES = {
    "caltech101": ((2754, 306, 6084), 102),
    "cifar100": ((45000, 5000, 10000), 100),
    "dtd": ((1880, 1880, 1880), 47),
    "flowers": ((1020, 1020, 6149), 102),
    "pets": ((2944, 736, 3669), 37),
    "svhn": ((65931, 7326, 26032), 10),
    "sun397": ((76128, 10875, 21750), 397),
    "cifar10": ((45000, 5000, 10000), 10),
    "pcam": ((262144, 32768, 32768), 2),
    "eurosat": ((16200, 5400, 5400), 10),
    "resisc45": ((18900, 6300, 6300), 45),
    "diabetic_retinopathy": ((35126, 10906, 42670), 5),
    "clevr_count_all": ((63000, 7000, 15000), 8),
    "clevr_closest_object_distance": ((63000, 7000, 15000), 6),
    "dmlab": ((65550, 22628, 22735), 6),
    "kitti_closest_vehicle_distance": ((6347, 423, 711), 4),
    "dsprites_label_x_position": ((589824, 73728, 73728), 16),
    "dsprites_label_orientation": ((589824, 73728, 73728), 16),
    "smallnorb_label_azimuth": ((24300, 12150, 12150), 18),
    "smallnorb_label_elevation": ((24300, 12150, 12150), 9),
}
NATURAL_VTAB = ["caltech101", "cifar100", "dtd", "flowers", "pets", "svhn", "sun397"]
NATURAL_CLIPBENCH = ["caltech101", "cifar10", "cifar100", "dtd", "flowers", "pets", "svhn"]
SPECIALIZED = ["pcam", "eurosat", "resisc45", "diabetic_retinopathy"]
STRUCTURED = [
    "clevr_count_all",
    "clevr_closest_object_distance",
    "dmlab",
    "kitti_closest_vehicle_distance",
    "dsprites_label_x_position",
    "dsprites_label_orientation",
    "smallnorb_label_azimuth",
    "smallnorb_label_elevation",
]
ALL_TASKS = [(p, n) for p in ("vtab19", "clipbench19") for n in PRESETS[p].names]


# ---------------------------------------------------------------------------------------------------- presets


@pytest.mark.parametrize(
    ("preset", "natural"), [("vtab19", NATURAL_VTAB), ("clipbench19", NATURAL_CLIPBENCH)], ids=["vtab19", "clip"]
)
def test_preset_tasks_and_groups(preset, natural):
    p = get_preset(preset)
    assert len(p.tasks) == 19
    assert list(p.names) == natural + SPECIALIZED + STRUCTURED
    assert {g: list(v) for g, v in p.groups.items()} == {
        "natural": natural,
        "specialized": SPECIALIZED,
        "structured": STRUCTURED,
    }
    assert [len(p.groups[g]) for g in ("natural", "specialized", "structured")] == [7, 4, 8]
    assert all(t.group == g for g, names in p.groups.items() for t in p.tasks if t.name in names)


def test_presets_differ_only_in_sun397_cifar10_and_dsprites_classes():
    vtab, clip = PRESETS["vtab19"], PRESETS["clipbench19"]
    assert set(vtab.names) - set(clip.names) == {"sun397"}
    assert set(clip.names) - set(vtab.names) == {"cifar10"}
    assert "sun397" not in clip.names
    classes = {
        p: (p.task("dsprites_label_x_position").num_classes, p.task("dsprites_label_orientation").num_classes)
        for p in (vtab, clip)
    }
    assert classes == {vtab: (16, 16), clip: (32, 40)}
    for name in set(vtab.names) & set(clip.names):
        if not name.startswith("dsprites"):
            assert vtab.task(name).num_classes == clip.task(name).num_classes
            assert vtab.task(name).splits == clip.task(name).splits


def test_get_task_names_prefix_default_and_unknown():
    assert get_task("vtab/pets").name == "pets"
    assert get_task("pets").clip_benchmark_name == "vtab/pets"
    assert get_task("dsprites_label_orientation").num_classes == 40  # default preset = clipbench19
    with pytest.raises(UnknownNameError, match="Did you mean 'sun397'"):
        get_task("sun398", "vtab19")
    with pytest.raises(UnknownNameError, match="cifar100"):
        get_task("sun397", "clipbench19")  # not in the CLIP_benchmark list
    with pytest.raises(UnknownNameError):
        get_preset("vtab20")


def test_task_spec_is_frozen():
    t = get_task("dtd")
    with pytest.raises(dataclasses.FrozenInstanceError):
        t.num_classes = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        t.splits["train"] = ()  # type: ignore[index]


# ----------------------------------------------------------------------------------------------------- splits


@pytest.mark.parametrize(("preset", "name"), ALL_TASKS)
def test_split_sizes_match_spec_and_are_disjoint(preset, name):
    task = get_task(name, preset)
    (train, val, test), classes = SPEC_SIZES[name]
    if preset == "clipbench19" and name.startswith("dsprites"):
        classes = {"dsprites_label_x_position": 32, "dsprites_label_orientation": 40}[name]
    assert task.num_classes == classes
    sizes = split_sizes(task)
    assert sizes == {"train": train, "val": val, "test": test, "trainval": train + val}
    assert dict(task.expected_sizes) == {"train": train, "val": val, "test": test}

    if task.source.name == "dsprites":
        return  # 737k ids: covered by the small-fixture test below
    idx = split_indices(task)
    ids = {k: sample_ids(v) for k, v in idx.items()}
    check_disjoint({k: ids[k] for k in ("train", "val", "test")})
    assert set(ids["trainval"]) == set(ids["train"]) | set(ids["val"])
    assert len(ids["trainval"]) == len(ids["train"]) + len(ids["val"])
    for ranges in idx.values():  # every range lies inside its source split
        for r in ranges:
            assert 0 <= r.start <= r.stop <= task.source.split_sizes[r.split]


def test_split_rules_on_small_generated_sizes():
    # train[:90%] / train[90%:] / test; tfds rounds percent boundaries to the closest index
    assert split_indices(get_task("cifar100"), {"train": 55, "test": 7}) == {
        "train": (SourceRange("train", 0, 50),),  # round(49.5) = 50 (half to even, as tfds)
        "val": (SourceRange("train", 50, 55),),
        "test": (SourceRange("test", 0, 7),),
        "trainval": (SourceRange("train", 0, 50), SourceRange("train", 50, 55)),
    }
    # single-split 80/10/10 (dSprites) and 60/20/20 (EuroSAT)
    ds = split_indices(get_task("dsprites_label_x_position", "vtab19"), {"train": 100})
    assert [ds[k] for k in ("train", "val", "test")] == [
        (SourceRange("train", 0, 80),),
        (SourceRange("train", 80, 90),),
        (SourceRange("train", 90, 100),),
    ]
    check_disjoint({k: sample_ids(ds[k]) for k in ("train", "val", "test")})
    eu = split_sizes(get_task("eurosat"), {"train": 10})
    assert eu == {"train": 6, "val": 2, "test": 2, "trainval": 8}
    # CLEVR: test is tfds *validation*; tfds test is never read
    clevr = split_indices(get_task("clevr_count_all"), {"train": 10, "validation": 4})
    assert clevr["test"] == (SourceRange("validation", 0, 4),)
    assert get_task("clevr_count_all").source_splits() == ("train", "validation")
    # smallNORB: val = test[:50 %], test = test[50 %:]
    norb = split_indices(get_task("smallnorb_label_azimuth"), {"train": 6, "test": 8})
    assert norb["val"] == (SourceRange("test", 0, 4),) and norb["test"] == (SourceRange("test", 4, 8),)
    check_disjoint({k: sample_ids(norb[k]) for k in ("train", "val", "test")})
    # official splits: trainval spans two source splits
    dtd = split_indices(get_task("dtd"), {"train": 3, "validation": 2, "test": 5})
    assert dtd["trainval"] == (SourceRange("train", 0, 3), SourceRange("validation", 0, 2))
    with pytest.raises(UserError, match="validation"):
        split_indices(get_task("dtd"), {"train": 3, "test": 5})


def test_vtab1k_splits():
    svhn = split_indices(get_task("svhn"), protocol="1k")
    assert svhn["train800"] == (SourceRange("train", 0, 800),)
    assert svhn["val200"] == (SourceRange("train", 65931, 66131),)  # train[n_train : n_train + 200]
    assert svhn["train800val200"] == svhn["train800"] + svhn["val200"]
    assert svhn["test"] == (SourceRange("test", 0, 26032),)
    assert split_indices(get_task("dtd"), protocol="1k")["val200"] == (SourceRange("validation", 0, 200),)
    assert split_indices(get_task("smallnorb_label_elevation"), protocol="1k")["val200"] == (
        SourceRange("test", 0, 200),
    )
    for name in ("pets", "clevr_closest_object_distance", "kitti_closest_vehicle_distance", "caltech101"):
        idx = split_indices(get_task(name), protocol="1k")
        assert split_sizes(get_task(name), protocol="1k")["train800val200"] == 1000
        check_disjoint({k: sample_ids(idx[k]) for k in ("train800", "val200", "test")})
    with pytest.raises(UserError, match="fewer than the 800"):
        split_indices(get_task("cifar10"), {"train": 100, "test": 10}, protocol="1k")


# ------------------------------------------------------------------------------------------------ image sources


def test_shared_image_sources_deduplicate():
    for preset in ("vtab19", "clipbench19"):
        p = PRESETS[preset]
        sources = image_sources(p.tasks)
        assert len(sources) == 16
        assert sources["clevr"] == ["clevr_count_all", "clevr_closest_object_distance"]
        assert sources["dsprites"] == ["dsprites_label_x_position", "dsprites_label_orientation"]
        assert sources["smallnorb"] == ["smallnorb_label_azimuth", "smallnorb_label_elevation"]
        assert p.task("clevr_count_all").source is p.task("clevr_closest_object_distance").source
        # the two tasks of a source read exactly the same examples
        for a, b in (sources["clevr"], sources["dsprites"], sources["smallnorb"]):
            assert split_indices(p.task(a)) == split_indices(p.task(b))
    # docs/transfer.md §6: unique images per backbone (shared sources counted once; CLEVR test, SVHN extra unused)
    used = source_images_used(PRESETS["vtab19"].tasks)
    assert sum(used.values()) == 1_762_520
    assert used["dsprites"] == 737_280 and used["clevr"] == 85_000 and used["smallnorb"] == 48_600
    assert used["sun397"] == 108_753 and used["svhn_cropped"] == 99_289 and used["caltech101"] == 9_144
    assert sum(source_images_used(PRESETS["clipbench19"].tasks).values()) == 1_762_520 - 108_753 + 60_000
    assert SOURCES["kitti"].tfds_builder == "kitti:3.3.0"


# ------------------------------------------------------------------------------------------------ derived labels


def test_threshold_label_is_largest_threshold_below_value():
    thr = (0.0, 1.0, 2.0)
    assert [threshold_label(v, thr, 2) for v in (1e-9, 1.0, 1.0000001, 2.0)] == [0, 0, 1, 1]
    assert [threshold_label(v, thr, 3) for v in (2.0, 2.0000001, 1e9)] == [1, 2, 2]  # last class open above
    for bad in (0.0, -1.0, 2.0000001, float("nan")):
        with pytest.raises(ValueError, match="outside"):
            threshold_label(bad, thr, 2)


def test_clevr_count_label():
    assert [clevr_count_label(n) for n in range(3, 11)] == list(range(8))
    for bad in (2, 11):
        with pytest.raises(ValueError):
            clevr_count_label(bad)
    task = get_task("clevr_count_all")
    assert task.label({"objects/pixel_coords": [[1, 2, 9.0]] * 3}) == 0
    assert task.label({"objects/pixel_coords": [[1, 2, 9.0]] * 10}) == 7


@pytest.mark.parametrize(
    ("depth", "label"),
    [(0.01, 0), (8.0, 0), (8.0001, 1), (8.5, 1), (8.5001, 2), (9.0, 2), (9.0001, 3), (9.5, 3), (9.5001, 4),
     (10.0, 4), (10.0001, 5), (100.0, 5)],
)  # fmt: skip
def test_clevr_distance_bins(depth, label):
    # the closest object (minimum depth) decides; pixel_coords rows are (x, y, depth)
    coords = [[10.0, 20.0, 50.0], [5.0, 5.0, depth], [0.0, 0.0, 99.0]]
    assert clevr_distance_label(coords) == label
    assert get_task("clevr_closest_object_distance").label({"objects/pixel_coords": coords}) == label


def test_clevr_distance_out_of_range():
    for coords in ([], [[0, 0, 0.0]], [[0, 0, 100.5]]):
        with pytest.raises(ValueError):
            clevr_distance_label(coords)


@pytest.mark.parametrize(
    ("types", "zs", "label"),
    [
        ([0], [8.0], 0),
        ([1], [-99.0], 0),
        ([2], [8.01], 1),
        ([0], [20.0], 1),
        ([0], [20.01], 2),
        ([0], [999.0], 2),
        ([0], [999.5], 3),  # beyond the last threshold: same bin as the 1000 m sentinel
        ([0], [1500.0], 3),
        ([], [], 3),  # no object at all
        ([3, 4, 5, 6, 7], [1.0, 2.0, 3.0, 4.0, 5.0], 3),  # pedestrians, cyclists, tram, misc are not vehicles
        ([6, 1, 0], [2.0, 30.0, 15.0], 1),  # the closest *vehicle* (Car at 15 m), not the tram at 2 m
        (["Pedestrian", "Truck"], [1.0, 7.0], 0),  # tfds type names are accepted too
    ],
)
def test_kitti_distance_bins(types, zs, label):
    locations = [[0.0, 1.5, z] for z in zs]
    assert kitti_distance_label(types, locations) == label
    task = get_task("kitti_closest_vehicle_distance")
    assert task.label({"objects/type": types, "objects/location": locations}) == label


def test_kitti_errors():
    with pytest.raises(ValueError):
        kitti_distance_label([0], [[0, 0, -100.0]])
    with pytest.raises(ValueError, match="unknown KITTI object type"):
        kitti_distance_label(["Bus"], [[0, 0, 5.0]])
    with pytest.raises(ValueError):
        kitti_distance_label([0, 1], [[0, 0, 5.0]])


def test_dsprites_bins():
    # x position: 32 -> 16 is raw // 2; orientation: 40 -> 16 is floor(raw / 2.5)
    assert [dsprites_label(x, 32, 16) for x in range(32)] == [x // 2 for x in range(32)]
    assert [dsprites_label(o, 40, 16) for o in (0, 2, 3, 4, 5, 7, 8, 37, 38, 39)] == [0, 0, 1, 1, 2, 2, 3, 14, 15, 15]
    assert [sum(dsprites_label(o, 40, 16) == c for o in range(40)) for c in range(16)] == [3, 2] * 8
    assert [dsprites_label(o, 40, 40) for o in range(40)] == list(range(40))
    for raw, n in ((-1, 32), (32, 32), (40, 40)):
        with pytest.raises(ValueError):
            dsprites_label(raw, n, 16)
    rec = {"label_x_position": 31, "label_orientation": 39}
    assert get_task("dsprites_label_x_position", "vtab19").label(rec) == 15
    assert get_task("dsprites_label_x_position", "clipbench19").label(rec) == 31
    assert get_task("dsprites_label_orientation", "vtab19").label(rec) == 15
    assert get_task("dsprites_label_orientation", "clipbench19").label(rec) == 39


def test_smallnorb_labels():
    assert [smallnorb_azimuth_label(d) for d in (0, 20, 180, 340)] == [0, 1, 9, 17]
    assert [smallnorb_elevation_label(d) for d in (30, 35, 50, 70)] == [0, 1, 4, 8]
    for bad in (10, 360, -20):
        with pytest.raises(ValueError):
            smallnorb_azimuth_label(bad)
    for bad in (25, 32, 75):
        with pytest.raises(ValueError):
            smallnorb_elevation_label(bad)
    assert get_task("smallnorb_label_azimuth").label({"label_azimuth": 17, "label_elevation": 8}) == 17
    assert get_task("smallnorb_label_elevation").label({"label_azimuth": 17, "label_elevation": 8}) == 8
    with pytest.raises(ValueError):
        get_task("smallnorb_label_elevation").label({"label_elevation": 9})


def test_native_labels_range_checked():
    assert get_task("diabetic_retinopathy").label({"label": 4}) == 4
    assert get_task("dmlab").label({"label": 5}) == 5
    with pytest.raises(ValueError):
        get_task("diabetic_retinopathy").label({"label": 5})
    with pytest.raises(KeyError, match="label"):
        get_task("dmlab").label({"image": None})


# ------------------------------------------------------------------------------------------------ on disk


def test_missing_task_names_layout_and_instructions(tmp_path):
    with pytest.raises(DatasetLayoutError) as err:
        check_task_on_disk("clevr_closest_object_distance", tmp_path)
    msg = str(err.value)
    assert isinstance(err.value, UserError)
    assert "'clevr_closest_object_distance'" in msg and "'clevr'" in msg and "clevr:3.*" in msg
    assert str(tmp_path / "clevr" / "[**/]train-*.parquet") in msg
    assert "validation-*.parquet" in msg and "test-*.parquet" not in msg  # CLEVR test is not read
    assert "record order" in msg and "70000" in msg  # how to build it, and the counts to check
    assert "MANUAL" not in msg

    with pytest.raises(DatasetLayoutError) as err:
        check_task_on_disk(get_task("resisc45"), tmp_path, layout="wds")
    msg = str(err.value)
    assert str(tmp_path / "wds_vtab-resisc45" / "train" / "*.tar") in msg
    assert "clip-benchmark/wds_vtab-resisc45" in msg and "MANUAL" in msg and "OneDrive" in msg

    with pytest.raises(DatasetLayoutError, match="Kaggle"):
        check_task_on_disk("diabetic_retinopathy", tmp_path)
    with pytest.raises(UserError, match="unknown dataset layout"):
        check_task_on_disk("dtd", tmp_path, layout="lmdb")  # type: ignore[arg-type]


def test_present_task_passes_and_partial_names_only_the_missing_split(tmp_path):
    base = tmp_path / "smallnorb" / "data"
    base.mkdir(parents=True)
    (base / "train-00000-of-00001.parquet").touch()
    with pytest.raises(DatasetLayoutError) as err:
        check_task_on_disk("smallnorb_label_azimuth", tmp_path)
    missing = str(err.value).split("Missing: ")[1].split(" How to get it")[0]
    assert "test-*" in missing and "train-*" not in missing
    (base / "test.parquet").touch()
    assert check_task_on_disk("smallnorb_label_azimuth", tmp_path) == tmp_path / "smallnorb"
    assert check_task_on_disk("smallnorb_label_elevation", tmp_path) == tmp_path / "smallnorb"  # same source

    wds = tmp_path / "wds_vtab-dmlab"
    for split in ("train", "test"):
        (wds / split).mkdir(parents=True)
        (wds / split / "0.tar").touch()
    with pytest.raises(DatasetLayoutError, match=r"classnames\.txt"):
        check_task_on_disk("dmlab", tmp_path, layout="wds")
    (wds / "classnames.txt").write_text("a\n")
    assert check_task_on_disk("dmlab", tmp_path, layout="wds") == wds
