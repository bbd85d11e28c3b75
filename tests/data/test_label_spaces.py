"""Label spaces, the dataset registry and logits restricted to a dataset's classes (PROTOCOL.md §2.1-§2.2)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from beyond_imagenet.base.config import DatasetConfig
from beyond_imagenet.base.errors import CacheFormatError, DatasetLayoutError, UnknownNameError, UserError
from beyond_imagenet.data.label_space import (
    custom_space,
    imagenet1k_space,
    imagenet_names,
    imagenet_subset_space,
    imagenet_wnids,
)
from beyond_imagenet.data.registry import resolve_dataset
from beyond_imagenet.inference.cache import InferenceCache, label_space_logits

# standard indices of a few wnids (sorted-wnid order)
TENCH, GOLDFISH, BRAMBLING, CHIHUAHUA, TOILET_TISSUE = (
    "n01440764",
    "n01443537",
    "n01530575",
    "n02085620",
    "n15075141",
)
INDEX = {TENCH: 0, GOLDFISH: 1, BRAMBLING: 10, CHIHUAHUA: 151, TOILET_TISSUE: 999}


def write_jpeg(path: Path, seed: int, size: int = 8) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, size=(size, size, 3), dtype=np.uint8)
    Image.fromarray(pixels, "RGB").save(path, format="JPEG", quality=90)


def make_folders(root: Path, classes: list[str], per_class: int = 2, ext: str = "JPEG") -> Path:
    """``root/<class>/<class>_<i>.<ext>``: file names are unique across classes (they are sample ids)."""
    seed = 0
    for cls in classes:
        for i in range(per_class):
            write_jpeg(root / cls / f"img_{cls}_{i}.{ext}", seed)
            seed += 1
    return root


# ----------------------------------------------------------------------------------------------------------
# Label spaces


def test_imagenet1k_space_is_the_standard_sorted_order():
    wnids = imagenet_wnids()
    assert len(wnids) == 1000 and len(set(wnids)) == 1000
    assert list(wnids) == sorted(wnids)
    assert wnids[0] == TENCH and wnids[999] == TOILET_TISSUE
    for wnid, index in INDEX.items():
        assert wnids[index] == wnid
    space = imagenet1k_space()
    assert space.kind == "imagenet1k" and space.n_classes == 1000
    assert space.class_ids == wnids
    assert space.class_names[0] == "tench" and space.class_names[999] == "toilet tissue"
    np.testing.assert_array_equal(space.one_to_one_imagenet_columns(), np.arange(1000))


def test_subset_space_sorts_and_maps_to_standard_indices():
    space = imagenet_subset_space([TOILET_TISSUE, BRAMBLING, TENCH, CHIHUAHUA, BRAMBLING])
    assert space.kind == "imagenet_subset"
    assert space.class_ids == (TENCH, BRAMBLING, CHIHUAHUA, TOILET_TISSUE)  # sorted, duplicates removed
    assert space.imagenet_indices == ((0,), (10,), (151,), (999,))
    np.testing.assert_array_equal(space.one_to_one_imagenet_columns(), [0, 10, 151, 999])
    names = imagenet_names()
    assert space.class_names == (names[0], names[10], names[151], names[999])
    assert space.class_names[1] == "brambling"
    # the same set in another order is the same space
    assert imagenet_subset_space([CHIHUAHUA, TENCH, TOILET_TISSUE, BRAMBLING]) == space
    assert space.digest() != imagenet1k_space().digest()


def test_subset_space_rejects_unknown_wnids():
    with pytest.raises(UserError) as info:
        imagenet_subset_space([TENCH, "n99999999", "cat"])
    message = str(info.value)
    assert "2 class folder(s)" in message and "n99999999" in message and "cat" in message
    assert "label_space: custom" in message


def test_custom_space_with_names_and_imagenet_map():
    space = custom_space(
        ["cat", "dog", "fish_tank"],
        names={"cat": "a cat", "dog": "a dog", "fish_tank": "aquarium"},
        imagenet_map={"cat": [281, 282], "dog": [151], "fish_tank": [0]},
    )
    assert space.kind == "custom"
    assert space.class_ids == ("cat", "dog", "fish_tank")  # order as given, not re-sorted
    assert space.class_names == ("a cat", "a dog", "aquarium")
    assert space.imagenet_indices == ((281, 282), (151,), (0,))
    assert space.maps_to_imagenet
    assert space.one_to_one_imagenet_columns() is None  # 'cat' maps to two classes

    one_to_one = custom_space(["dog", "fish_tank"], imagenet_map={"dog": [151], "fish_tank": [0]})
    np.testing.assert_array_equal(one_to_one.one_to_one_imagenet_columns(), [151, 0])
    assert one_to_one.class_names == ("dog", "fish tank")  # default name: id with '_' as space


def test_custom_space_without_map():
    space = custom_space(["a_b", "c"])
    assert space.class_names == ("a b", "c")
    assert space.imagenet_indices is None and not space.maps_to_imagenet
    assert space.one_to_one_imagenet_columns() is None


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"names": {"cat": "a cat"}}, "lacks names for classes: dog"),
        ({"imagenet_map": {"cat": [1]}}, "lacks classes: dog"),
        ({"imagenet_map": {"cat": [1], "dog": [1000]}}, "outside 0..999 for classes: dog"),
        ({"imagenet_map": {"cat": [-1], "dog": [2]}}, "outside 0..999 for classes: cat"),
    ],
)
def test_custom_space_rejects_incomplete_files(kwargs, pattern):
    with pytest.raises(UserError, match=pattern):
        custom_space(["cat", "dog"], **kwargs)


# ----------------------------------------------------------------------------------------------------------
# Dataset registry on generated folders


def test_wnid_subset_targets_follow_sorted_wnids(tmp_path):
    root = make_folders(tmp_path / "imagenet-r", [TOILET_TISSUE, CHIHUAHUA, TENCH], per_class=3)
    dataset = resolve_dataset("imagenet_r_small", DatasetConfig(path=str(root), kind="image_folder"))
    assert dataset.kind == "image_folder" and len(dataset) == 9
    assert dataset.label_space.kind == "imagenet_subset"
    assert dataset.label_space.class_ids == (TENCH, CHIHUAHUA, TOILET_TISSUE)
    np.testing.assert_array_equal(dataset.label_space.one_to_one_imagenet_columns(), [0, 151, 999])
    np.testing.assert_array_equal(dataset.targets, [0, 0, 0, 1, 1, 1, 2, 2, 2])
    for sample, target in zip(dataset.samples, dataset.targets, strict=True):
        assert sample.path.parent.name == dataset.label_space.class_ids[target]
        assert sample.sample_id == sample.path.name  # original file names are kept
    assert dataset.sample_ids[0] == f"img_{TENCH}_0.JPEG"
    manifest = dataset.manifest()
    assert (manifest["n_images"], manifest["n_classes"]) == (9, 3)
    assert manifest["label_space"]["kind"] == "imagenet_subset"


def test_imagenet1k_label_space_on_a_folder_uses_standard_indices(tmp_path):
    root = make_folders(tmp_path / "sketch", [GOLDFISH, TOILET_TISSUE], per_class=1)
    config = DatasetConfig(path=str(root), kind="image_folder", label_space="imagenet1k")
    dataset = resolve_dataset("sketch_small", config)
    assert dataset.label_space.n_classes == 1000
    np.testing.assert_array_equal(dataset.targets, [1, 999])


@pytest.mark.parametrize(
    "folders",
    [
        ["0", "1", "2", "10", "100"],  # official ImageNetV2 tarball: not zero-padded
        ["0000", "0002", "0010", "0100"],  # easyrobust repackaging: zero-padded
        ["999", "7", "42"],
    ],
)
def test_integer_folders_are_imagenet_indices_not_sort_ranks(tmp_path, folders):
    root = make_folders(tmp_path / "imagenetv2", folders, per_class=2)
    config = DatasetConfig(path=str(root), kind="image_folder", class_folders="integer")
    dataset = resolve_dataset("imagenet_v2", config)
    assert dataset.label_space.kind == "imagenet1k" and dataset.label_space.n_classes == 1000
    by_folder = {s.path.parent.name: int(t) for s, t in zip(dataset.samples, dataset.targets, strict=True)}
    assert by_folder == {f: int(f) for f in folders}
    # samples are in numeric folder order
    expected = [int(f) for f in sorted(folders, key=int) for _ in range(2)]
    np.testing.assert_array_equal(dataset.targets, expected)


def test_integer_folders_above_999_are_rejected(tmp_path):
    root = make_folders(tmp_path / "v2", ["0", "1000"], per_class=1)
    config = DatasetConfig(path=str(root), kind="image_folder", class_folders="integer")
    with pytest.raises(DatasetLayoutError, match=r"0\.\.999"):
        resolve_dataset("v2", config)


def test_custom_label_space_from_files(tmp_path):
    root = make_folders(tmp_path / "pets", ["dog", "cat"], per_class=2)
    names = tmp_path / "names.json"
    names.write_text(json.dumps({"cat": "a cat", "dog": "a dog"}))
    imap = tmp_path / "map.json"
    imap.write_text(json.dumps({"cat": [281], "dog": [151]}))  # one-to-one; many-to-one is refused (see below)
    config = DatasetConfig(
        path=str(root),
        kind="image_folder",
        label_space="custom",
        class_folders="any",
        classnames_file=str(names),
        imagenet_map_file=str(imap),
    )
    dataset = resolve_dataset("pets", config)
    assert dataset.label_space.class_ids == ("cat", "dog")
    assert dataset.label_space.class_names == ("a cat", "a dog")
    assert dataset.label_space.imagenet_indices == ((281,), (151,))
    np.testing.assert_array_equal(dataset.targets, [0, 0, 1, 1])


def test_imagenet_val_with_wrong_class_count(tmp_path):
    root = make_folders(tmp_path / "val", [TENCH, GOLDFISH, BRAMBLING], per_class=1)
    with pytest.raises(DatasetLayoutError) as info:
        resolve_dataset("imagenet_val", DatasetConfig(path=str(root)))
    message = str(info.value)
    assert "found 3 class folders" in message and "1000" in message
    assert "check_size: false" in message


def test_unknown_dataset_name_without_kind(tmp_path):
    root = make_folders(tmp_path / "val", [TENCH], per_class=1)
    with pytest.raises(UnknownNameError) as info:
        resolve_dataset("imagenet_vla", DatasetConfig(path=str(root)))
    assert "imagenet_val" in info.value.close_matches
    assert "Did you mean 'imagenet_val'" in str(info.value)


def test_unknown_dataset_kind(tmp_path):
    root = make_folders(tmp_path / "val", [TENCH], per_class=1)
    with pytest.raises(UnknownNameError) as info:
        resolve_dataset("mine", DatasetConfig(path=str(root), kind="image_foldr"))
    assert info.value.kind == "dataset kind"
    assert "image_folder" in info.value.close_matches


def test_manifest_sha_tracks_files_and_labels(tmp_path):
    root = make_folders(tmp_path / "data", [TENCH, GOLDFISH], per_class=2)
    config = DatasetConfig(path=str(root), kind="image_folder")
    first = resolve_dataset("d", config).manifest_sha256()
    assert len(first) == 64
    assert resolve_dataset("d", config).manifest_sha256() == first  # nothing changed

    target = root / TENCH / f"img_{TENCH}_0.JPEG"
    write_jpeg(target, seed=0)  # rewritten with identical bytes: same manifest
    assert resolve_dataset("d", config).manifest_sha256() == first

    write_jpeg(target, seed=0, size=32)  # a different image (different size on disk)
    changed = resolve_dataset("d", config).manifest_sha256()
    assert changed != first

    write_jpeg(target, seed=0)  # restored
    assert resolve_dataset("d", config).manifest_sha256() == first

    target.rename(root / GOLDFISH / target.name)  # same file, other label
    assert resolve_dataset("d", config).manifest_sha256() not in {first, changed}


def test_manifest_sha_changes_when_a_file_is_added(tmp_path):
    root = make_folders(tmp_path / "data", [TENCH, GOLDFISH], per_class=2)
    config = DatasetConfig(path=str(root), kind="image_folder")
    before = resolve_dataset("d", config).manifest_sha256()
    write_jpeg(root / GOLDFISH / "extra.JPEG", seed=99)
    assert resolve_dataset("d", config).manifest_sha256() != before


# ----------------------------------------------------------------------------------------------------------
# label_space_logits on hand-built caches


def make_cache(logits: np.ndarray, output_space: dict, label_space: dict) -> InferenceCache:
    n = logits.shape[0]
    return InferenceCache(
        path=Path("hand-built"),
        logits=logits,
        features=np.zeros((n, 4), dtype=np.float32),
        targets=np.zeros(n, dtype=np.int64),
        sample_ids=[f"s{i}" for i in range(n)],
        meta={
            "model": {"model_id": "m"},
            "dataset": {"name": "d"},
            "output_space": output_space,
            "label_space": label_space,
        },
    )


@pytest.fixture
def imagenet_logits() -> np.ndarray:
    return np.random.default_rng(4).standard_normal((5, 1000)).astype(np.float32)


def test_subset_keeps_exactly_its_columns_in_order(imagenet_logits):
    cache = make_cache(
        imagenet_logits,
        {"kind": "imagenet1k", "n_classes": 1000},
        {"kind": "imagenet_subset", "n_classes": 3, "imagenet_columns": [3, 7, 900]},
    )
    out = label_space_logits(cache)
    assert out.shape == (5, 3)
    np.testing.assert_array_equal(
        out, np.stack([imagenet_logits[:, 3], imagenet_logits[:, 7], imagenet_logits[:, 900]], 1)
    )


def test_column_order_follows_the_label_space(imagenet_logits):
    cache = make_cache(imagenet_logits, {"kind": "imagenet1k"}, {"kind": "custom", "imagenet_columns": [900, 3]})
    np.testing.assert_array_equal(label_space_logits(cache), imagenet_logits[:, [900, 3]])


def test_imagenet1k_label_space_is_unchanged(imagenet_logits):
    cache = make_cache(imagenet_logits, {"kind": "imagenet1k"}, {"kind": "imagenet1k"})
    np.testing.assert_array_equal(label_space_logits(cache), imagenet_logits)


def test_label_space_output_is_unchanged():
    logits = np.random.default_rng(5).standard_normal((4, 3)).astype(np.float32)
    cache = make_cache(logits, {"kind": "label_space", "n_classes": 3}, {"kind": "custom", "n_classes": 3})
    out = label_space_logits(cache)
    np.testing.assert_array_equal(out, logits)
    assert out.shape == (4, 3)


@pytest.mark.parametrize("label_space", [{"kind": "imagenet_subset"}, {"kind": "custom", "imagenet_columns": []}])
def test_subset_without_columns_is_a_cache_format_error(imagenet_logits, label_space):
    cache = make_cache(imagenet_logits, {"kind": "imagenet1k"}, label_space)
    with pytest.raises(CacheFormatError, match="imagenet_columns"):
        label_space_logits(cache)


@pytest.mark.parametrize("columns", [[3, -1], [3, 1000]])
def test_out_of_range_columns_are_a_cache_format_error(imagenet_logits, columns):
    cache = make_cache(
        imagenet_logits, {"kind": "imagenet1k"}, {"kind": "imagenet_subset", "imagenet_columns": columns}
    )
    with pytest.raises(CacheFormatError):
        label_space_logits(cache)


def test_imagenet_output_needs_1000_columns():
    cache = make_cache(np.zeros((2, 999), dtype=np.float32), {"kind": "imagenet1k"}, {"kind": "imagenet1k"})
    with pytest.raises(CacheFormatError, match="1000 logit columns"):
        label_space_logits(cache)


def test_unknown_output_space_kind():
    cache = make_cache(np.zeros((2, 3), dtype=np.float32), {"kind": "wordnet"}, {"kind": "custom"})
    with pytest.raises(CacheFormatError, match="unknown output_space kind 'wordnet'"):
        label_space_logits(cache)


def test_registry_subset_columns_select_the_right_logits(tmp_path, imagenet_logits):
    # end to end: the columns a scanned IN-R style folder declares pick the logits of its own classes
    root = make_folders(tmp_path / "r", [TOILET_TISSUE, BRAMBLING, CHIHUAHUA], per_class=1)
    dataset = resolve_dataset("r", DatasetConfig(path=str(root), kind="image_folder"))
    columns = dataset.label_space.one_to_one_imagenet_columns().tolist()
    cache = make_cache(
        imagenet_logits, {"kind": "imagenet1k"}, {"kind": "imagenet_subset", "imagenet_columns": columns}
    )
    out = label_space_logits(cache)
    for k, wnid in enumerate(dataset.label_space.class_ids):
        np.testing.assert_array_equal(out[:, k], imagenet_logits[:, INDEX[wnid]])


def _custom(root: Path, tmp_path: Path, names=None, imap=None):
    files = {}
    for key, content in (("classnames_file", names), ("imagenet_map_file", imap)):
        if content is not None:
            (tmp_path / f"{key}.json").write_text(json.dumps(content))
            files[key] = str(tmp_path / f"{key}.json")
    config = DatasetConfig(path=str(root), kind="image_folder", label_space="custom", class_folders="any", **files)
    return resolve_dataset("pets", config)


def test_many_to_one_imagenet_map_in_the_readme_format_is_refused_at_scan_time(tmp_path):
    root = make_folders(tmp_path / "pets", ["dog", "cat"], per_class=1)
    with pytest.raises(UserError) as info:
        _custom(root, tmp_path, imap={"cat": [281, 282], "dog": [151]})
    message = str(info.value)
    assert (
        "imagenet_map_file" in message and "exactly one ImageNet index" in message and "'cat' -> [281, 282]" in message
    )
    with pytest.raises(UserError, match=r"ImageNet index 151 is mapped by 2 classes \(cat, dog\)"):
        _custom(root, tmp_path, imap={"cat": [151], "dog": [151]})
    assert _custom(root, tmp_path, imap={"cat": 281, "dog": [151]}).label_space.imagenet_indices == ((281,), (151,))


def test_class_names_without_a_folder_are_refused(tmp_path):
    root = make_folders(tmp_path / "pets", ["dog", "cat"], per_class=1)
    with pytest.raises(UserError) as info:
        _custom(root, tmp_path, names={"cat": "a cat", "dog": "a dog", "bird": "a bird"})
    message = str(info.value)
    assert "classnames_file" in message and "'bird'" in message and str(root / "bird") in message
    with pytest.raises(UserError, match=r"imagenet_map_file .* no class folder: 'bird'"):
        _custom(root, tmp_path, imap={"cat": [281], "dog": [151], "bird": [10]})


def test_a_names_file_as_a_json_list_says_which_format_is_expected(tmp_path):
    root = make_folders(tmp_path / "pets", ["dog", "cat"], per_class=1)
    with pytest.raises(UserError) as info:
        _custom(root, tmp_path, names=["a cat", "a dog"])
    message = str(info.value)
    assert "holds a JSON list" in message and "one JSON object keyed by class folder name" in message
    assert '{"cat": "tabby cat"' in message
