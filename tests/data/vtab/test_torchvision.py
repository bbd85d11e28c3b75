"""VTAB layout ``torchvision`` (docs/transfer.md §3.5, §4): tiny files in torchvision's on-disk formats (CIFAR pickles,
SVHN .mat, DTD / Flowers / Pets folders) written here; pixels and label mappings, official and carved splits,
layout errors, the on-disk check and picklable samples."""

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
from scipy.io import savemat

from beyond_imagenet.base.errors import DatasetLayoutError, ImageDecodeError, UserError
from beyond_imagenet.data.vtab import readers
from beyond_imagenet.data.vtab.carve import carve_val
from beyond_imagenet.data.vtab.layouts import LAYOUTS, check_task_on_disk, expected_layout, get_layout
from beyond_imagenet.data.vtab.layouts.torchvision import (
    TORCHVISION_SOURCES,
    read_torchvision_split,
    torchvision_expected,
    torchvision_expected_count,
    torchvision_missing,
)
from beyond_imagenet.data.vtab.samples import SourceSplit, VtabSample
from beyond_imagenet.data.vtab.sources import SOURCES
from beyond_imagenet.data.vtab.tasks import get_task

TORCHVISION = get_layout("torchvision")


def _images(n: int, seed: int, size: tuple[int, int] = (32, 32)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, *size, 3), dtype=np.uint8)


def _pixels(sample: VtabSample) -> np.ndarray:
    image = sample.decode()
    assert image.mode == "RGB"
    return np.asarray(image)


def _labels(split: SourceSplit) -> list[int]:
    return [r["label"] for r in split.records]


def _as_lists(rows: dict) -> dict:
    return {name: {split: ix.tolist() for split, ix in m.items()} for name, m in rows.items()}


# ------------------------------------------------------------------------------------------------- writers


def _cifar_rows(images: np.ndarray) -> np.ndarray:
    """torchvision's CIFAR ``data``: per row the R, G, B planes of 32x32, each row-major (CHW flattened)."""
    return images.transpose(0, 3, 1, 2).reshape(len(images), -1)


def _write_pickle(path: Path, batch: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(batch, protocol=2))


def write_cifar10(root: Path, per_batch: int = 4, n_test: int = 3) -> tuple[np.ndarray, list[int], np.ndarray]:
    images = _images(5 * per_batch, seed=1)
    labels = [(3 * i) % 10 for i in range(len(images))]
    for b in range(5):
        part = slice(b * per_batch, (b + 1) * per_batch)
        batch = {"data": _cifar_rows(images[part]), "labels": labels[part], "batch_label": f"batch {b + 1}"}
        _write_pickle(root / "cifar-10-batches-py" / f"data_batch_{b + 1}", batch)
    test = _images(n_test, seed=2)
    _write_pickle(root / "cifar-10-batches-py" / "test_batch", {"data": _cifar_rows(test), "labels": [9] * n_test})
    return images, labels, test


def write_svhn(root: Path, split: str, labels: list[int], seed: int) -> np.ndarray:
    images = _images(len(labels), seed)
    x = np.ascontiguousarray(images.transpose(1, 2, 3, 0))  # [32, 32, 3, N]
    savemat(root / f"{split}_32x32.mat", {"X": x, "y": np.asarray(labels, dtype=np.uint8).reshape(-1, 1)})
    return images


def _save_image(path: Path, pixels: np.ndarray) -> None:
    """PNG bytes under a .jpg name: decoded by content, so pixels compare exactly."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, format="PNG")


DTD_CLASSES = ("banded", "zigzagged", "cracked")  # folder order differs from sorted order
DTD_SPLITS = {
    "train": ["zigzagged/z_1.jpg", "banded/b_1.jpg", "cracked/c_1.jpg"],
    "validation": ["banded/b_2.jpg", "cracked/c_2.jpg"],
    "test": ["cracked/c_3.jpg", "zigzagged/z_2.jpg", "banded/b_3.jpg", "zigzagged/z_3.jpg"],
}


def write_dtd(root: Path) -> dict[str, np.ndarray]:
    base = root / "dtd" / "dtd"
    names = [n for lines in DTD_SPLITS.values() for n in lines]
    pixels = dict(zip(names, _images(len(names), seed=3, size=(5, 7)), strict=True))
    for name, image in pixels.items():
        _save_image(base / "images" / name, image)
    (base / "images" / "notes.txt").write_text("a file, not a class folder")
    (base / "labels").mkdir(parents=True)
    for split, stem in (("train", "train1"), ("validation", "val1"), ("test", "test1")):
        (base / "labels" / f"{stem}.txt").write_text("\n".join(DTD_SPLITS[split]) + "\n")
    (base / "labels" / "train2.txt").write_text("banded/b_3.jpg\n")  # another fold: never read
    return pixels


FLOWER_LABELS = [3, 1, 2, 1, 3, 2, 2, 1, 3]  # image_00001 .. image_00009, 1-based classes
FLOWER_SETS = {"trnid": [2, 5, 9], "valid": [1, 7], "tstid": [8, 3, 6, 4]}


def write_flowers(root: Path) -> np.ndarray:
    base = root / "flowers-102"
    images = _images(len(FLOWER_LABELS), seed=4, size=(6, 4))
    for i, image in enumerate(images, start=1):
        _save_image(base / "jpg" / f"image_{i:05d}.jpg", image)
    savemat(base / "imagelabels.mat", {"labels": np.asarray([FLOWER_LABELS], dtype=np.uint8)})
    savemat(base / "setid.mat", {k: np.asarray([v], dtype=np.uint16) for k, v in FLOWER_SETS.items()})
    return images


PET_COUNTS = {1: 10, 2: 5, 3: 15}  # class_id -> trainval images (the file is sorted by class)


def write_pets(root: Path) -> None:
    base = root / "oxford-iiit-pet"
    trainval = [f"pet{c}_{k} {c} {1 + c % 2} {k}" for c, n in PET_COUNTS.items() for k in range(n)]
    test = ["pet2_t 2 1 1", "pet1_t 1 2 1", "pet37_t 37 1 9"]
    (base / "annotations").mkdir(parents=True)
    (base / "annotations" / "trainval.txt").write_text("\n".join(trainval) + "\n")
    (base / "annotations" / "test.txt").write_text("#Image CLASS-ID SPECIES BREED ID\n" + "\n".join(test) + "\n\n")
    for i, line in enumerate(trainval + test):
        _save_image(base / "images" / f"{line.split()[0]}.jpg", np.full((3, 3, 3), i, dtype=np.uint8))


# ------------------------------------------------------------------------------------------------ formats


def test_formats_cover_exactly_the_six_sources_with_tfds_split_names():
    assert set(TORCHVISION_SOURCES) == {
        "cifar10",
        "cifar100",
        "svhn_cropped",
        "dtd",
        "oxford_flowers102",
        "oxford_iiit_pet",
    }
    assert "torchvision" in LAYOUTS
    for name, fmt in TORCHVISION_SOURCES.items():
        assert set(fmt.splits) == set(SOURCES[name].split_sizes)
        assert fmt.loader.startswith("torchvision.datasets.")
    expected = {("cifar10", "train"): 50000, ("svhn_cropped", "test"): 26032, ("dtd", "validation"): 1880}
    expected |= {("oxford_flowers102", "test"): 6149, ("oxford_iiit_pet", "train"): 3680}
    for (name, split), n in expected.items():
        assert torchvision_expected_count(name, split) == n
    assert torchvision_expected_count(get_task("pets"), "test") == 3669
    assert torchvision_expected_count(SOURCES["cifar100"], "test") == 10000
    with pytest.raises(UserError, match="not 'validation'"):
        torchvision_expected_count("cifar10", "validation")
    with pytest.raises(DatasetLayoutError, match="'patch_camelyon' has no torchvision layout"):
        torchvision_expected_count(get_task("pcam"), "test")


# ----------------------------------------------------------------------------------------------- array files


def test_cifar10_pixels_labels_and_batch_order(tmp_path):
    images, labels, test = write_cifar10(tmp_path)
    split = read_torchvision_split(SOURCES["cifar10"], tmp_path, "train")
    assert (split.name, split.layout, split.split, len(split)) == ("cifar10", "torchvision", "train", 20)
    assert _labels(split) == labels
    assert [s.sample_id for s in split.samples] == [f"train/{i:07d}" for i in range(20)]
    assert [s.path.name for s in split.samples[::4]] == [f"data_batch_{b}" for b in range(1, 6)]
    assert [s.locator for s in split.samples[3:6]] == [(3, 0), (0, 0), (1, 0)]
    assert all(s.kind == "cifar" for s in split.samples)
    assert [Path(f["path"]).name for f in split.files] == [f"data_batch_{b}" for b in range(1, 6)]
    for sample, image in zip(split.samples, images, strict=True):
        np.testing.assert_array_equal(_pixels(sample), image)  # CHW rows back to HWC
    assert _pixels(split.samples[0])[0, 0].tolist() == images[0, 0, 0].tolist()
    test_split = read_torchvision_split(SOURCES["cifar10"], tmp_path, "test")
    assert _labels(test_split) == [9, 9, 9]
    np.testing.assert_array_equal(_pixels(test_split.samples[2]), test[2])
    assert TORCHVISION.labels(get_task("cifar10"), split).tolist() == labels
    with pytest.raises(ImageDecodeError, match="array file, not encoded bytes"):
        split.samples[0].read_bytes()


def test_cifar100_fine_labels_and_bytes_keys(tmp_path):
    images = _images(6, seed=5)
    batch = {b"data": _cifar_rows(images), b"fine_labels": [99, 0, 5, 5, 42, 7], b"coarse_labels": [1] * 6}
    _write_pickle(tmp_path / "cifar-100-python" / "train", batch)
    _write_pickle(tmp_path / "cifar-100-python" / "test", {"data": _cifar_rows(images[:2]), "fine_labels": [1, 2]})
    split = read_torchvision_split(SOURCES["cifar100"], tmp_path, "train")
    assert TORCHVISION.labels(get_task("cifar100"), split).tolist() == [99, 0, 5, 5, 42, 7]
    np.testing.assert_array_equal(_pixels(split.samples[4]), images[4])
    _write_pickle(tmp_path / "cifar-100-python" / "test", {"data": _cifar_rows(images[:2]), "labels": [1, 2]})
    with pytest.raises(DatasetLayoutError, match=r"cifar-100-python/test is not a CIFAR batch.*fine_labels"):
        read_torchvision_split(SOURCES["cifar100"], tmp_path, "test")
    (tmp_path / "cifar-100-python" / "test").write_bytes(b"not a pickle")
    with pytest.raises(DatasetLayoutError, match="CIFAR100\\(root, download=True\\)"):
        read_torchvision_split(SOURCES["cifar100"], tmp_path, "test")


def test_svhn_label_10_is_digit_0_and_pixels(tmp_path):
    raw = [10, 1, 9, 10, 5, 3]
    images = write_svhn(tmp_path, "train", raw, seed=6)
    write_svhn(tmp_path, "test", [2, 10], seed=7)
    split = read_torchvision_split(SOURCES["svhn_cropped"], tmp_path, "train")
    assert _labels(split) == [0, 1, 9, 0, 5, 3]
    assert TORCHVISION.labels(get_task("svhn"), split).tolist() == [0, 1, 9, 0, 5, 3]
    assert all(s.kind == "svhn" for s in split.samples) and [s.locator[0] for s in split.samples] == list(range(6))
    for sample, image in zip(split.samples, images, strict=True):
        np.testing.assert_array_equal(_pixels(sample), image)
    assert _labels(read_torchvision_split(SOURCES["svhn_cropped"], tmp_path, "test")) == [2, 0]


# ------------------------------------------------------------------------------------------------ image files


def test_dtd_sorted_classes_fold_1_and_official_splits(tmp_path):
    pixels = write_dtd(tmp_path)
    task = get_task("dtd")
    splits = {s: read_torchvision_split(task.source, tmp_path, s) for s in ("train", "validation", "test")}
    classes = {"banded": 0, "cracked": 1, "zigzagged": 2}  # sorted folder names; notes.txt is no class
    for name, split in splits.items():
        assert _labels(split) == [classes[line.split("/")[0]] for line in DTD_SPLITS[name]]
        assert [s.path.relative_to(tmp_path / "dtd/dtd/images").as_posix() for s in split.samples] == DTD_SPLITS[name]
        assert all(s.kind == "file" and s.locator == (0, 0) for s in split.samples)
    for sample, line in zip(splits["test"].samples, DTD_SPLITS["test"], strict=True):
        np.testing.assert_array_equal(_pixels(sample), pixels[line])
    files = [Path(f["path"]) for f in splits["validation"].files]
    assert files[0] == tmp_path / "dtd/dtd/labels/val1.txt" and len(files) == 3
    rows = _as_lists(TORCHVISION.split_rows(task, splits, seed=3))
    assert rows == {
        "train": {"train": [0, 1, 2]},
        "val": {"validation": [0, 1]},
        "test": {"test": [0, 1, 2, 3]},
        "trainval": {"train": [0, 1, 2], "validation": [0, 1]},
    }
    assert TORCHVISION.labels(task, splits["train"]).tolist() == [2, 0, 1]


def test_flowers_one_based_labels_and_set_ids(tmp_path):
    images = write_flowers(tmp_path)
    source = SOURCES["oxford_flowers102"]
    for split, key in (("train", "trnid"), ("validation", "valid"), ("test", "tstid")):
        found = read_torchvision_split(source, tmp_path, split)
        ids = FLOWER_SETS[key]
        assert [s.path.name for s in found.samples] == [f"image_{i:05d}.jpg" for i in ids]
        assert _labels(found) == [FLOWER_LABELS[i - 1] - 1 for i in ids]
        for sample, i in zip(found.samples, ids, strict=True):
            np.testing.assert_array_equal(_pixels(sample), images[i - 1])
    assert _labels(read_torchvision_split(source, tmp_path, "test")) == [0, 1, 1, 0]
    splits = {s: read_torchvision_split(source, tmp_path, s) for s in source.split_sizes}
    rows = TORCHVISION.split_rows(get_task("flowers"), splits)
    assert set(rows["val"]) == {"validation"} and rows["test"]["test"].tolist() == [0, 1, 2, 3]
    savemat(tmp_path / "flowers-102" / "setid.mat", {"trnid": [[1, 10]], "valid": [[1]], "tstid": [[2]]})
    with pytest.raises(DatasetLayoutError, match=r"image ids \[10\] outside 1\.\.9"):
        read_torchvision_split(source, tmp_path, "train")


def test_pets_class_ids_and_stratified_carved_val(tmp_path):
    write_pets(tmp_path)
    task = get_task("pets")
    splits = {s: read_torchvision_split(task.source, tmp_path, s) for s in ("train", "test")}
    train_labels = [c - 1 for c, n in PET_COUNTS.items() for _ in range(n)]
    assert _labels(splits["train"]) == train_labels
    assert _labels(splits["test"]) == [1, 0, 36]  # comment and blank lines skipped
    rows = TORCHVISION.split_rows(task, splits, seed=7)
    train, val = rows["train"]["train"], rows["val"]["train"]
    assert set(rows["val"]) == {"train"} and not set(train) & set(val)
    assert sorted([*train, *val]) == list(range(30)) == rows["trainval"]["train"].tolist()
    assert Counter(np.asarray(train_labels)[val].tolist()) == {0: 2, 1: 1, 2: 3}  # 1/5 of 10, 5, 15
    assert val.tolist() != list(range(24, 30))  # not a percent slice of the class-sorted file
    assert rows["test"]["test"].tolist() == [0, 1, 2]
    again = TORCHVISION.split_rows(task, splits, seed=7)
    assert np.array_equal(again["val"]["train"], val)
    assert np.array_equal(carve_val(np.asarray(train_labels), Fraction(1, 5), 7)[1], val)
    assert not np.array_equal(TORCHVISION.split_rows(task, splits, seed=8)["val"]["train"], val)


def test_cifar10_carved_val_and_missing_split(tmp_path):
    _, labels, _ = write_cifar10(tmp_path, per_batch=20)  # 100 rows, 10 per class
    task = get_task("cifar10")
    splits = {s: read_torchvision_split(task.source, tmp_path, s) for s in ("train", "test")}
    rows = TORCHVISION.split_rows(task, splits, seed=0)
    val = rows["val"]["train"]
    assert Counter(np.asarray(labels)[val].tolist()) == dict.fromkeys(range(10), 1)
    assert len(rows["train"]["train"]) == 90 and len(rows["test"]["test"]) == 3
    with pytest.raises(UserError, match=r"\(torchvision\) needs the splits train and test"):
        TORCHVISION.split_rows(task, {"train": splits["train"]})


def test_vtab1k_draws_seeded_subsets_not_the_first_rows():
    pets = get_task("pets")
    labels = np.repeat(np.arange(37), 30)  # class-sorted, like trainval.txt
    fake = {
        s: SourceSplit(pets.source.name, "torchvision", s, (None,) * n, (), (), "oxford_iiit_pet@torchvision")
        for s, n in (("train", 1110), ("test", 4))
    }
    rows = TORCHVISION.split_rows(pets, fake, protocol="1k", seed=2, labels=labels)  # type: ignore[arg-type]
    train, val = carve_val(labels, Fraction(1, 5), 2)
    assert set(rows["train800"]["train"]) <= set(train) and len(rows["train800"]["train"]) == 800
    assert set(rows["val200"]["train"]) <= set(val) and len(rows["val200"]["train"]) == 200
    assert len(set(labels[rows["train800"]["train"]])) == 37  # the first 800 rows would miss the last classes
    assert rows["train800val200"]["train"].tolist() == sorted([*rows["train800"]["train"], *rows["val200"]["train"]])
    assert rows["test"]["test"].tolist() == [0, 1, 2, 3]

    dtd = get_task("dtd")
    sizes = (("train", 1000), ("validation", 300), ("test", 5))
    fake = {s: SourceSplit("dtd", "torchvision", s, (None,) * n, (), (), "dtd@torchvision") for s, n in sizes}
    rows = TORCHVISION.split_rows(dtd, fake, protocol="1k", seed=0)  # type: ignore[arg-type]
    train800, val200 = rows["train800"]["train"], rows["val200"]["validation"]
    assert len(np.unique(train800)) == 800 and train800.max() < 1000 and train800.tolist() != list(range(800))
    assert len(np.unique(val200)) == 200 and val200.max() < 300 and np.all(np.diff(val200) > 0)
    assert _as_lists({"x": rows["train800val200"]})["x"] == {"train": train800.tolist(), "validation": val200.tolist()}
    same = TORCHVISION.split_rows(dtd, fake, protocol="1k", seed=0)  # type: ignore[arg-type]
    assert np.array_equal(same["train800"]["train"], train800)
    with pytest.raises(UserError, match="fewer than the 800"):
        TORCHVISION.split_rows(dtd, {**fake, "train": fake["validation"]}, protocol="1k")


def test_task_labels_range_checked(tmp_path):
    write_pets(tmp_path)
    lines = (tmp_path / "oxford-iiit-pet/annotations/test.txt").read_text().replace("pet37_t 37", "pet37_t 38")
    (tmp_path / "oxford-iiit-pet/annotations/test.txt").write_text(lines)
    split = read_torchvision_split(SOURCES["oxford_iiit_pet"], tmp_path, "test")
    with pytest.raises(UserError, match=r"'pets'.*test/0000002.*outside \[0, 37\)"):
        TORCHVISION.labels(get_task("pets"), split)
    with pytest.raises(UserError, match="reads 'cifar10', not 'oxford_iiit_pet'"):
        TORCHVISION.labels(get_task("cifar10"), split)


# ------------------------------------------------------------------------------------------------- errors


def test_missing_files_name_the_file_and_the_torchvision_call(tmp_path):
    with pytest.raises(DatasetLayoutError) as info:
        read_torchvision_split(SOURCES["cifar10"], tmp_path, "test")
    text = str(info.value)
    assert str(tmp_path / "cifar-10-batches-py" / "test_batch") in text
    assert "torchvision.datasets.CIFAR10(root, download=True)" in text and "'cifar10'" in text
    with pytest.raises(DatasetLayoutError, match=r"train_32x32\.mat.*SVHN\(root, split=s"):
        read_torchvision_split(SOURCES["svhn_cropped"], tmp_path, "train")
    with pytest.raises(UserError, match="splits train, test"):
        read_torchvision_split(SOURCES["oxford_iiit_pet"], tmp_path, "validation")
    with pytest.raises(DatasetLayoutError, match="'patch_camelyon' has no torchvision layout"):
        read_torchvision_split(SOURCES["patch_camelyon"], tmp_path, "test")

    write_dtd(tmp_path)
    (tmp_path / "dtd/dtd/images/cracked/c_3.jpg").unlink()
    with pytest.raises(DatasetLayoutError, match=r"1 listed image file\(s\) are missing: .*cracked/c_3\.jpg.*DTD"):
        read_torchvision_split(SOURCES["dtd"], tmp_path, "test")
    (tmp_path / "dtd/dtd/labels/val1.txt").write_text("woven/w_1.jpg\n")
    with pytest.raises(DatasetLayoutError, match=r"val1\.txt: 'woven/w_1\.jpg' is not `<class>/<file>`"):
        read_torchvision_split(SOURCES["dtd"], tmp_path, "validation")
    (tmp_path / "dtd/dtd/labels/train1.txt").unlink()
    with pytest.raises(DatasetLayoutError, match=r"missing .*dtd/dtd/labels/train1\.txt.*Expected.*images/"):
        read_torchvision_split(SOURCES["dtd"], tmp_path, "train")


def test_check_task_on_disk_and_expected_layout(tmp_path):
    with pytest.raises(DatasetLayoutError, match=r"'pcam'.*has no torchvision layout.*'tfds_parquet' or 'wds'"):
        check_task_on_disk(get_task("pcam"), tmp_path, "torchvision")
    assert "no torchvision layout" in expected_layout(get_task("caltech101"), "<root>", "torchvision")[0]
    assert "use layout 'tfds_parquet' or 'wds'" in TORCHVISION.download_hint(get_task("pcam"))

    task = get_task("flowers")
    expected = torchvision_expected(task.source, tmp_path)
    assert expected == expected_layout(task, tmp_path, "torchvision")
    assert expected == [f"{tmp_path}/flowers-102/{f}" for f in ("jpg/", "imagelabels.mat", "setid.mat")]
    with pytest.raises(DatasetLayoutError) as info:
        check_task_on_disk(task, tmp_path, "torchvision")
    assert "setid.mat" in str(info.value) and "Flowers102(root, download=True)" in str(info.value)
    write_flowers(tmp_path)
    assert torchvision_missing(task.source, tmp_path) == []
    assert check_task_on_disk(task, tmp_path, "torchvision") == tmp_path

    write_cifar10(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_4").unlink()
    assert torchvision_missing(SOURCES["cifar10"], tmp_path) == [str(tmp_path / "cifar-10-batches-py/data_batch_4")]
    with pytest.raises(DatasetLayoutError, match=r"'cifar10'.*Missing: .*data_batch_4\..*CIFAR10\(root"):
        check_task_on_disk("cifar10", tmp_path, "torchvision")


# --------------------------------------------------------------------------------------------- worker decode


def test_new_sample_kinds_pickle_and_decode_in_a_fresh_process(tmp_path):
    images, _, _ = write_cifar10(tmp_path)
    svhn = write_svhn(tmp_path, "train", [1, 2, 10], seed=8)
    dtd = write_dtd(tmp_path)
    samples = [
        (read_torchvision_split(SOURCES["cifar10"], tmp_path, "train").samples[13], images[13]),
        (read_torchvision_split(SOURCES["svhn_cropped"], tmp_path, "train").samples[2], svhn[2]),
        (read_torchvision_split(SOURCES["dtd"], tmp_path, "validation").samples[1], dtd["cracked/c_2.jpg"]),
    ]
    for sample, image in samples:
        clone = pickle.loads(pickle.dumps(sample))
        assert clone == sample
        readers._array_images.cache_clear()
        np.testing.assert_array_equal(_pixels(clone), image)
    blob = tmp_path / "samples.pkl"
    blob.write_bytes(pickle.dumps([s for s, _ in samples]))
    code = (
        "import pickle, sys, numpy as np; ss = pickle.loads(open(sys.argv[1], 'rb').read()); "
        "sys.stdout.buffer.write(b''.join(np.asarray(s.decode()).tobytes() for s in ss))"
    )
    out = subprocess.run([sys.executable, "-c", code, str(blob)], capture_output=True, check=True).stdout
    assert out == b"".join(image.tobytes() for _, image in samples)


def test_changed_or_missing_array_file_raises_image_decode_error(tmp_path):
    write_cifar10(tmp_path)
    sample = read_torchvision_split(SOURCES["cifar10"], tmp_path, "test").samples[2]
    _pixels(sample)  # cached
    _write_pickle(tmp_path / "cifar-10-batches-py/test_batch", {"data": _cifar_rows(_images(1, 9)), "labels": [0]})
    with pytest.raises(ImageDecodeError, match="outside the file's 1 images") as info:
        sample.decode()  # the cache is keyed by mtime and size, so the shorter file is re-read
    assert info.value.path == f"{tmp_path / 'cifar-10-batches-py/test_batch'}#test/0000002"
    (tmp_path / "cifar-10-batches-py/test_batch").unlink()
    with pytest.raises(ImageDecodeError, match="FileNotFoundError"):
        sample.decode()
