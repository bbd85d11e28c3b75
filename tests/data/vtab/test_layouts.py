"""VTAB on-disk layouts, readers and writers (docs/transfer.md §3.5): tfds_parquet and wds round trips, dSprites
x255, layout errors, labels on both layouts (§3.2), the stratified val carve (§4, §8.12), task split rows, and the
demo data of every task of both presets. Small generated files only."""

from __future__ import annotations

import pickle
import subprocess
import sys
from collections import Counter
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from beyond_imagenet.base.errors import DatasetLayoutError, ImageDecodeError, UserError
from beyond_imagenet.data.demo.vtab import DEMO_MAX_CLASSES, make_demo_vtab
from beyond_imagenet.data.vtab.carve import carve_val, val_fraction
from beyond_imagenet.data.vtab.layouts import get_layout
from beyond_imagenet.data.vtab.layouts.tfds_parquet import read_parquet_split
from beyond_imagenet.data.vtab.layouts.wds import mirror_name, read_classnames, read_wds_split
from beyond_imagenet.data.vtab.samples import SourceSplit, VtabSample, check_split_count
from beyond_imagenet.data.vtab.sources import SOURCES
from beyond_imagenet.data.vtab.split_rules import check_disjoint
from beyond_imagenet.data.vtab.tasks import PRESETS, get_task
from beyond_imagenet.data.vtab.writers import encode_png, write_classnames, write_parquet_split, write_wds_split

PARQUET, WDS = get_layout("tfds_parquet"), get_layout("wds")
ALL_TASKS = [(p, n) for p in ("vtab19", "clipbench19") for n in PRESETS[p].names]


def _rgb_images(n: int, seed: int = 0, size: tuple[int, int] = (6, 8)) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (*size, 3), dtype=np.uint8) for _ in range(n)]


def _pixels(sample: VtabSample) -> np.ndarray:
    image = sample.decode()
    assert image.mode == "RGB"
    return np.asarray(image)


def _clevr_record(i: int) -> dict:
    n = 3 + i % 8
    return {"file_name": f"f{i}.png", "objects/pixel_coords": [[1.0 * k, 2.0, 8.0 + 0.25 * i + k] for k in range(n)]}


# ------------------------------------------------------------------------------------------------ tfds_parquet


def test_parquet_round_trip_shards_row_groups_and_struct_flattening(tmp_path):
    images = _rgb_images(11)
    records = [_clevr_record(i) for i in range(11)]
    files = write_parquet_split(tmp_path, "clevr", "train", images, records, shards=3, row_group_size=2)
    assert [f.name for f in files] == [f"train-0000{i}-of-00003.parquet" for i in range(3)]
    split = read_parquet_split(SOURCES["clevr"], tmp_path, "train")
    assert (split.name, split.layout, split.split, len(split)) == ("clevr", "tfds_parquet", "train", 11)
    assert [s.sample_id for s in split.samples] == [f"train/{i:07d}" for i in range(11)]
    assert [s.path for s in split.samples] == [files[0]] * 4 + [files[1]] * 3 + [files[2]] * 4
    assert [s.locator for s in split.samples[:5]] == [(0, 0), (0, 1), (1, 0), (1, 1), (0, 0)]
    assert list(split.records) == records  # struct column `objects` flattened back to objects/pixel_coords
    for sample, image in zip(split.samples, images, strict=True):
        assert sample.kind == "parquet" and not sample.binary_to_255
        np.testing.assert_array_equal(_pixels(sample), image)
    assert [f["path"] for f in split.files] == [str(f) for f in files]
    assert [f["bytes"] for f in split.files] == [f.stat().st_size for f in files]


def test_parquet_rewrite_with_fewer_shards_removes_stale_files(tmp_path):
    write_parquet_split(tmp_path, "cifar10", "train", _rgb_images(6), [{"label": i} for i in range(6)], shards=3)
    write_parquet_split(tmp_path, "cifar10", "train", _rgb_images(4, 1), [{"label": 9}] * 4, shards=2)
    split = read_parquet_split(SOURCES["cifar10"], tmp_path, "train")
    assert len(split) == 4 and [r["label"] for r in split.records] == [9] * 4
    assert sorted(p.name for p in (tmp_path / "cifar10").iterdir()) == [
        "train-00000-of-00002.parquet",
        "train-00001-of-00002.parquet",
    ]


def test_parquet_grayscale_is_tiled_to_three_identical_channels(tmp_path):
    gray = np.arange(48, dtype=np.uint8).reshape(6, 8) * 5
    write_parquet_split(tmp_path, "smallnorb", "test", [gray], [{"label_azimuth": 3, "label_elevation": 2}])
    pixels = _pixels(read_parquet_split(SOURCES["smallnorb"], tmp_path, "test").samples[0])
    assert pixels.shape == (6, 8, 3)
    for c in range(3):
        np.testing.assert_array_equal(pixels[..., c], gray)


def test_dsprites_binary_images_become_0_255(tmp_path):
    binary = (np.indices((8, 8)).sum(axis=0) % 2).astype(np.uint8)  # values 0 / 1
    already = binary * 255
    records = [{"label_x_position": 0, "label_orientation": 0}] * 2
    write_parquet_split(tmp_path, "dsprites", "train", [binary, already], records)
    write_parquet_split(tmp_path, "cifar10", "train", [np.stack([binary] * 3, axis=-1)], [{"label": 0}])
    dsprites = read_parquet_split(SOURCES["dsprites"], tmp_path, "train")
    assert all(s.binary_to_255 for s in dsprites.samples)
    for sample in dsprites.samples:
        np.testing.assert_array_equal(_pixels(sample), np.stack([already] * 3, axis=-1))
    other = read_parquet_split(SOURCES["cifar10"], tmp_path, "train").samples[0]
    assert not other.binary_to_255 and set(np.unique(_pixels(other))) == {0, 1}


def test_parquet_hand_written_variants(tmp_path):
    """Plain binary image, list-of-struct objects, literal `objects/...` names, `<split>.parquet`, image2 skipped."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    images = _rgb_images(3)
    objects = [[{"type": 0, "location": [0.0, 1.6, 5.0]}], [], [{"type": 4, "location": [1.0, 1.7, 3.0]}]]
    table = pa.table(
        {
            "image": pa.array([encode_png(i) for i in images], type=pa.binary()),
            "image2": pa.array([encode_png(i) for i in images], type=pa.binary()),
            "objects": pa.array(objects),
            "objects/extra": pa.array([1, 2, 3]),
        }
    )
    (tmp_path / "kitti" / "data").mkdir(parents=True)
    pq.write_table(table, tmp_path / "kitti" / "data" / "validation.parquet")
    split = read_parquet_split(SOURCES["kitti"], tmp_path, "validation")
    assert list(split.records) == [
        {"objects/type": [0], "objects/location": [[0.0, 1.6, 5.0]], "objects/extra": 1},
        {"objects/type": [], "objects/location": [], "objects/extra": 2},
        {"objects/type": [4], "objects/location": [[1.0, 1.7, 3.0]], "objects/extra": 3},
    ]
    np.testing.assert_array_equal(_pixels(split.samples[2]), images[2])
    labels = PARQUET.labels(get_task("kitti_closest_vehicle_distance"), split)
    assert labels.tolist() == [0, 3, 3]  # a pedestrian is no vehicle


def test_parquet_missing_files_and_image_column(tmp_path):
    with pytest.raises(DatasetLayoutError, match=r"cifar100.*\[\*\*/\]train-\*\.parquet \(or train\.parquet\)"):
        read_parquet_split(SOURCES["cifar100"], tmp_path, "train")
    write_parquet_split(tmp_path, "cifar100", "train", _rgb_images(2), [{"label": 0}] * 2)
    with pytest.raises(DatasetLayoutError, match=r"split 'test'.*tfds downloads it"):
        read_parquet_split(SOURCES["cifar100"], tmp_path, "test")

    import pyarrow as pa
    import pyarrow.parquet as pq

    bad = tmp_path / "cifar100" / "test-00000-of-00001.parquet"
    pq.write_table(pa.table({"img": pa.array([b"x"]), "label": pa.array([1])}), bad)
    with pytest.raises(DatasetLayoutError, match=r"test-00000-of-00001\.parquet has no `image` column.*Expected"):
        read_parquet_split(SOURCES["cifar100"], tmp_path, "test")


def test_undecodable_image_names_path_and_sample(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "dtd").mkdir()
    path = tmp_path / "dtd" / "test.parquet"
    pq.write_table(pa.table({"image": pa.array([b"not a png", None], type=pa.binary()), "label": [1, 2]}), path)
    samples = read_parquet_split(SOURCES["dtd"], tmp_path, "test").samples
    for sample in samples:
        with pytest.raises(ImageDecodeError) as info:
            sample.decode()
        assert info.value.path == f"{path}#{sample.sample_id}"


# --------------------------------------------------------------------------------------------------------- wds


def test_wds_round_trip_numeric_shard_order_and_pickled_decode(tmp_path):
    task = get_task("cifar10")
    images = _rgb_images(22, seed=3)
    labels = [i % 10 for i in range(22)]
    shards = write_wds_split(tmp_path, mirror_name(task), "train", images, labels, shards=11)
    assert [p.name for p in shards] == [f"{i}.tar" for i in range(11)]
    split = read_wds_split(task, tmp_path, "train")
    assert (split.name, split.layout, split.split) == ("wds_vtab-cifar10", "wds", "train")
    assert [s.path.name for s in split.samples[::2]] == [f"{i}.tar" for i in range(11)]  # 10.tar after 2.tar
    assert [s.sample_id for s in split.samples] == [f"train/{i:07d}" for i in range(22)]
    assert list(split.records) == [{"cls": c} for c in labels]
    assert [f["path"] for f in split.files] == [str(p) for p in shards]
    for sample, image in zip(split.samples, images, strict=True):
        assert sample.kind == "tar"
        np.testing.assert_array_equal(_pixels(sample), image)
    clone = pickle.loads(pickle.dumps(split.samples[21]))
    assert clone == split.samples[21]
    np.testing.assert_array_equal(_pixels(clone), images[21])

    blob = tmp_path / "sample.pkl"
    blob.write_bytes(pickle.dumps(split.samples[13]))
    code = (
        "import pickle, sys, numpy as np; s = pickle.loads(open(sys.argv[1], 'rb').read()); "
        "sys.stdout.buffer.write(np.asarray(s.decode()).tobytes())"
    )
    out = subprocess.run([sys.executable, "-c", code, str(blob)], capture_output=True, check=True).stdout
    np.testing.assert_array_equal(np.frombuffer(out, dtype=np.uint8).reshape(images[13].shape), images[13])


def test_wds_classnames_and_truncated_shard(tmp_path):
    task = get_task("pcam")
    write_classnames(tmp_path, mirror_name(task), ["lymph node", "lymph node with tumor"])
    assert read_classnames(task, tmp_path) == ["lymph node", "lymph node with tumor"]
    (shard,) = write_wds_split(tmp_path, mirror_name(task), "test", _rgb_images(3), [0, 1, 0])
    samples = read_wds_split(task, tmp_path, "test").samples
    shard.write_bytes(shard.read_bytes()[: samples[2].locator[0] + 5])
    with pytest.raises(ImageDecodeError, match="truncated shard") as info:
        samples[2].decode()
    assert info.value.path == f"{shard}#test/0000002"


def _tar(path: Path, members: dict[str, bytes]) -> None:
    import io
    import tarfile

    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_wds_layout_errors(tmp_path):
    task = get_task("svhn")
    expected = str(tmp_path / "wds_vtab-svhn" / "train" / "*.tar")
    with pytest.raises(DatasetLayoutError, match="no tar shard") as info:
        read_wds_split(task, tmp_path, "train")
    assert expected in str(info.value) and "clip-benchmark/wds_vtab-svhn" in str(info.value)
    with pytest.raises(DatasetLayoutError, match=r"classnames\.txt"):
        read_classnames(task, tmp_path)

    png = encode_png(_rgb_images(1)[0])
    _tar(tmp_path / "wds_vtab-svhn" / "train" / "0.tar", {"a.png": png, "a.cls": b"3", "b.webp": png, "b.txt": b"x"})
    with pytest.raises(DatasetLayoutError, match=r"0\.tar key 'b' lacks its \.cls label member") as info:
        read_wds_split(task, tmp_path, "train")
    assert expected in str(info.value)
    _tar(tmp_path / "wds_vtab-svhn" / "train" / "0.tar", {"a.png": png, "a.cls": b"3", "c.cls": b"1"})
    with pytest.raises(DatasetLayoutError, match=r"key 'c' lacks its image member"):
        read_wds_split(task, tmp_path, "train")
    _tar(tmp_path / "wds_vtab-svhn" / "train" / "0.tar", {"a.jpg": png, "a.cls": b"three"})
    with pytest.raises(DatasetLayoutError, match="not an integer"):
        read_wds_split(task, tmp_path, "train")
    _tar(tmp_path / "wds_vtab-svhn" / "train" / "0.tar", {"x/a.PNG": png, "x/a.cls": b" 7\n", "x/b.txt": b""})
    split = read_wds_split(task, tmp_path, "train")
    assert list(split.records) == [{"cls": 7}]  # key "x/a", extensions matched case-insensitively


# ------------------------------------------------------------------------------------------------------ counts


def test_check_split_count():
    split = SourceSplit("cifar100", "tfds_parquet", "train", (), (), (), "cifar100")
    check_split_count(split, 0, check_size=True)
    check_split_count(split, 50000, check_size=False)
    with pytest.raises(DatasetLayoutError, match=r"cifar100.*'train' has 0 rows on disk but 50000.*check_size: false"):
        check_split_count(split, 50000, check_size=True)


# ------------------------------------------------------------------------------------------------------ labels


def _parquet(tmp_path: Path, source: str, split: str, records: list[dict]) -> SourceSplit:
    images = [np.zeros((4, 4), np.uint8)] * len(records)
    write_parquet_split(tmp_path, source, split, images, records)
    return read_parquet_split(SOURCES[source], tmp_path, split)


def test_task_labels_clevr_count_and_distance(tmp_path):
    depths = [6.0, 8.25, 8.5, 9.75, 10.0, 50.0, 100.0]
    records = [{"objects/pixel_coords": [[0.0, 0.0, d]] + [[0.0, 0.0, 99.0]] * (2 + i)} for i, d in enumerate(depths)]
    split = _parquet(tmp_path, "clevr", "validation", records)
    assert PARQUET.labels(get_task("clevr_count_all"), split).tolist() == [0, 1, 2, 3, 4, 5, 6]
    labels = PARQUET.labels(get_task("clevr_closest_object_distance"), split)
    assert labels.dtype == np.int64 and labels.tolist() == [0, 1, 1, 4, 4, 5, 5]


def test_task_labels_kitti(tmp_path):
    records = [
        {"objects/type": [0, 3], "objects/location": [[0, 0, 7.5], [0, 0, 1.0]]},
        {"objects/type": [1, 2], "objects/location": [[0, 0, 30.0], [0, 0, 8.5]]},
        {"objects/type": [2], "objects/location": [[0, 0, 25.0]]},
        {"objects/type": [5, 7], "objects/location": [[0, 0, 2.0], [0, 0, 3.0]]},
        {"objects/type": [], "objects/location": []},
    ]
    split = _parquet(tmp_path, "kitti", "test", records)
    assert PARQUET.labels(get_task("kitti_closest_vehicle_distance"), split).tolist() == [0, 1, 2, 3, 3]


def test_task_labels_dsprites_parquet_and_wds(tmp_path):
    raw = [(0, 0), (1, 2), (2, 3), (31, 39), (17, 25)]
    split = _parquet(tmp_path, "dsprites", "train", [{"label_x_position": x, "label_orientation": o} for x, o in raw])
    expect = {
        ("vtab19", "dsprites_label_x_position"): [0, 0, 1, 15, 8],
        ("vtab19", "dsprites_label_orientation"): [0, 0, 1, 15, 10],
        ("clipbench19", "dsprites_label_x_position"): [0, 1, 2, 31, 17],
        ("clipbench19", "dsprites_label_orientation"): [0, 2, 3, 39, 25],
    }
    for (preset, name), labels in expect.items():
        task = get_task(name, preset)
        assert PARQUET.labels(task, split).tolist() == labels
        column = 0 if name.endswith("x_position") else 1
        images = [np.zeros((4, 4), np.uint8)] * len(raw)
        write_wds_split(tmp_path, mirror_name(task), "train", images, [r[column] for r in raw])
        wds = read_wds_split(task, tmp_path, "train")
        assert all(s.binary_to_255 for s in wds.samples)
        assert WDS.labels(task, wds).tolist() == labels


def test_task_labels_errors_name_the_sample(tmp_path):
    split = _parquet(tmp_path, "cifar10", "test", [{"label": 3}, {"label": 10}])
    with pytest.raises(UserError, match=r"'cifar10'.*test/0000001.*outside \[0, 10\)"):
        PARQUET.labels(get_task("cifar10"), split)
    with pytest.raises(UserError, match=r"'clevr_count_all'.*test/0000000.*lacks field"):
        PARQUET.labels(get_task("clevr_count_all"), _parquet(tmp_path, "clevr", "test", [{"label": 1}]))
    with pytest.raises(UserError, match="reads 'cifar100', not 'cifar10'"):
        PARQUET.labels(get_task("cifar100"), split)
    task = get_task("dsprites_label_orientation", "vtab19")
    write_wds_split(tmp_path, mirror_name(task), "test", [np.zeros((4, 4), np.uint8)] * 2, [39, 40])
    with pytest.raises(UserError, match=r"test/0000001.*outside \[0, 40\)"):
        WDS.labels(task, read_wds_split(task, tmp_path, "test"))


# -------------------------------------------------------------------------------------------------- val carve


def test_val_fraction():
    assert val_fraction(get_task("cifar100")) == Fraction(1, 10)
    assert val_fraction(get_task("cifar10")) == Fraction(1, 10)
    assert val_fraction(get_task("svhn")) == Fraction(7326, 73257)  # VTAB's exact 65931 / 7326 counts
    assert val_fraction(get_task("pets")) == Fraction(1, 5)
    assert val_fraction(get_task("eurosat")) == Fraction(1, 4)
    assert val_fraction(get_task("resisc45")) == Fraction(1, 4)
    assert val_fraction(get_task("dsprites_label_x_position", "vtab19")) == Fraction(1, 9)
    assert val_fraction(get_task("caltech101")) == Fraction(1, 10)


def test_carve_val_is_stratified_deterministic_and_exact():
    counts = {0: 40, 1: 25, 2: 3, 3: 1, 4: 2, 7: 15}
    labels = np.random.default_rng(5).permutation(np.repeat(list(counts), list(counts.values())))
    train, val = carve_val(labels, Fraction(1, 10), seed=3)
    assert train.dtype == val.dtype == np.int64
    assert np.all(np.diff(train) > 0) and np.all(np.diff(val) > 0)
    assert not set(train) & set(val) and sorted({*train, *val}) == list(range(len(labels)))
    # round(n / 10), at least 1 for classes with >= 2 rows, none for a single row (round half to even: 25 -> 2)
    assert Counter(labels[val].tolist()) == {0: 4, 1: 2, 2: 1, 4: 1, 7: 2}
    again = carve_val(labels, Fraction(1, 10), seed=3)
    assert np.array_equal(again[0], train) and np.array_equal(again[1], val)
    other = carve_val(labels, Fraction(1, 10), seed=4)[1]
    assert not np.array_equal(other, val) and len(other) == len(val)
    assert Counter(labels[carve_val(labels, Fraction(1, 2), seed=0)[1]].tolist()) == {0: 20, 1: 12, 2: 2, 4: 1, 7: 8}
    with pytest.raises(UserError, match=r"\[0, 1\)"):
        carve_val(labels, Fraction(1), seed=0)


# -------------------------------------------------------------------------------------------- task split rows


def _as_lists(rows: dict) -> dict:
    return {name: {split: ix.tolist() for split, ix in m.items()} for name, m in rows.items()}


def test_task_split_rows_parquet_cifar100_and_smallnorb(tmp_path):
    splits = {
        "train": _parquet(tmp_path, "cifar100", "train", [{"label": i % 100} for i in range(50)]),
        "test": _parquet(tmp_path, "cifar100", "test", [{"label": 1}] * 10),
    }
    rows = _as_lists(PARQUET.split_rows(get_task("cifar100"), splits))
    assert rows == {
        "train": {"train": list(range(45))},
        "val": {"train": list(range(45, 50))},
        "test": {"test": list(range(10))},
        "trainval": {"train": list(range(50))},
    }
    norb = {
        "train": _parquet(tmp_path, "smallnorb", "train", [{"label_azimuth": 0, "label_elevation": 0}] * 6),
        "test": _parquet(tmp_path, "smallnorb", "test", [{"label_azimuth": 0, "label_elevation": 0}] * 8),
    }
    rows = _as_lists(PARQUET.split_rows(get_task("smallnorb_label_elevation"), norb))
    assert rows == {
        "train": {"train": list(range(6))},
        "val": {"test": [0, 1, 2, 3]},
        "test": {"test": [4, 5, 6, 7]},
        "trainval": {"train": list(range(6)), "test": [0, 1, 2, 3]},
    }
    with pytest.raises(UserError, match="fewer than the 800"):
        PARQUET.split_rows(get_task("cifar100"), splits, protocol="1k")


def test_task_split_rows_wds(tmp_path):
    task = get_task("pets")
    labels = [i % 37 for i in range(37 * 5)]  # 5 per class -> round(5 / 5) = 1 val row per class
    write_wds_split(tmp_path, mirror_name(task), "train", [np.zeros((4, 4, 3), np.uint8)] * len(labels), labels)
    write_wds_split(tmp_path, mirror_name(task), "test", [np.zeros((4, 4, 3), np.uint8)] * 7, [0] * 7)
    splits = {s: read_wds_split(task, tmp_path, s) for s in ("train", "test")}
    rows = WDS.split_rows(task, splits, seed=1)
    train, val = rows["train"]["train"], rows["val"]["train"]
    assert set(rows) == {"train", "val", "test", "trainval"} and set(rows["val"]) == {"train"}
    assert len(val) == 37 and sorted(np.asarray(labels)[val].tolist()) == list(range(37))
    assert sorted([*train, *val]) == list(range(len(labels))) == rows["trainval"]["train"].tolist()
    assert _as_lists({"test": rows["test"]}) == {"test": {"test": list(range(7))}}
    again = WDS.split_rows(task, splits, seed=1, labels=np.asarray(labels))
    assert np.array_equal(again["val"]["train"], val)
    assert not np.array_equal(WDS.split_rows(task, splits, seed=2)["val"]["train"], val)
    with pytest.raises(UserError, match="fewer than the 800"):
        WDS.split_rows(task, splits, protocol="1k")


def test_task_split_rows_wds_vtab1k():
    task = get_task("cifar10")
    labels = np.arange(3000) % 10
    name = mirror_name(task)
    fake = {s: SourceSplit(name, "wds", s, (None,) * n, (), (), name) for s, n in (("train", 3000), ("test", 5))}
    rows = WDS.split_rows(task, fake, protocol="1k", labels=labels)  # type: ignore[arg-type]
    train, val = carve_val(labels, Fraction(1, 10), 0)
    assert np.array_equal(rows["train800"]["train"], train[:800])
    assert np.array_equal(rows["val200"]["train"], val[:200])
    assert np.array_equal(rows["train800val200"]["train"], np.sort(np.concatenate([train[:800], val[:200]])))
    assert rows["test"]["test"].tolist() == list(range(5))


# --------------------------------------------------------------------------------------------------- demo data


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("demo_vtab")
    summary = make_demo_vtab(root, seed=0)
    assert set(summary) == set(SOURCES)
    assert {name: set(sizes) for name, sizes in summary.items()} == {n: set(s.split_sizes) for n, s in SOURCES.items()}
    assert sum(sum(sizes.values()) for sizes in summary.values()) < 1500
    return root


@pytest.fixture(scope="module")
def demo_splits(demo_root) -> dict[str, dict[str, SourceSplit]]:
    return {n: {s: read_parquet_split(src, demo_root, s) for s in src.split_sizes} for n, src in SOURCES.items()}


def test_demo_is_deterministic(demo_root, tmp_path):
    make_demo_vtab(tmp_path, seed=0, sources=["dsprites", "kitti"])
    for name in ("dsprites", "kitti"):
        for path in sorted((tmp_path / name).iterdir()):
            assert path.read_bytes() == (demo_root / name / path.name).read_bytes()
    make_demo_vtab(tmp_path, seed=1, sources=["kitti"])
    assert (tmp_path / "kitti" / "train-00000-of-00001.parquet").read_bytes() != (
        demo_root / "kitti" / "train-00000-of-00001.parquet"
    ).read_bytes()


def test_demo_image_modes(demo_splits):
    import io

    def stored(sample: VtabSample) -> Image.Image:
        return Image.open(io.BytesIO(sample.read_bytes()))

    sprite = demo_splits["dsprites"]["train"].samples[0]
    raw = stored(sprite)
    assert raw.mode == "L" and raw.size == (64, 64) and set(np.unique(np.asarray(raw))) == {0, 1}
    assert set(np.unique(_pixels(sprite))) == {0, 255}
    assert stored(demo_splits["smallnorb"]["test"].samples[0]).mode == "L"
    for name in ("cifar10", "clevr", "kitti", "eurosat_rgb"):
        image = stored(demo_splits[name]["train"].samples[0])
        assert image.mode == "RGB" and min(image.size) >= 20 and max(image.size) <= 64


@pytest.mark.parametrize(("preset", "name"), ALL_TASKS)
def test_demo_task_splits_disjoint_and_labels_in_range(demo_splits, preset, name):
    task = get_task(name, preset)
    splits = demo_splits[task.source.name]
    rows = PARQUET.split_rows(task, splits)
    labels = {s: PARQUET.labels(task, split) for s, split in splits.items()}
    ids = {k: [splits[s].samples[i].sample_id for s, ix in m.items() for i in ix] for k, m in rows.items()}
    check_disjoint({k: ids[k] for k in ("train", "val", "test")})
    assert sorted(ids["trainval"]) == sorted(ids["train"] + ids["val"])
    for k in ("train", "val", "test"):
        y = np.concatenate([labels[s][ix] for s, ix in rows[k].items()])
        assert len(y) >= 10 and y.min() >= 0 and y.max() < task.num_classes
        if task.num_classes <= DEMO_MAX_CLASSES:  # every class in every split
            assert set(y.tolist()) == set(range(task.num_classes)), (k, Counter(y.tolist()))


def _features(split: SourceSplit) -> np.ndarray:
    return np.stack(
        [np.asarray(s.decode().resize((8, 8), Image.Resampling.BILINEAR), dtype=float).ravel() for s in split.samples]
    )


@pytest.mark.parametrize(
    ("preset", "name"),
    [
        ("clipbench19", "cifar10"),
        ("clipbench19", "clevr_closest_object_distance"),
        ("vtab19", "smallnorb_label_elevation"),
    ],
)
def test_demo_labels_are_visible_in_pixels(demo_splits, preset, name):
    """Nearest class mean on 8x8 thumbnails beats chance by far on VTAB test."""
    task = get_task(name, preset)
    splits = demo_splits[task.source.name]
    rows = PARQUET.split_rows(task, splits)
    feats = {s: _features(split) for s, split in splits.items()}
    labels = {s: PARQUET.labels(task, split) for s, split in splits.items()}

    def gather(k: str) -> tuple[np.ndarray, np.ndarray]:
        return (
            np.concatenate([feats[s][ix] for s, ix in rows[k].items()]),
            np.concatenate([labels[s][ix] for s, ix in rows[k].items()]),
        )

    (x_train, y_train), (x_test, y_test) = gather("trainval"), gather("test")
    classes = np.unique(y_train)
    means = np.stack([x_train[y_train == c].mean(axis=0) for c in classes])
    predicted = classes[np.argmin(((x_test[:, None, :] - means[None]) ** 2).sum(axis=-1), axis=1)]
    assert (predicted == y_test).mean() >= 0.8 > 2.0 / task.num_classes
