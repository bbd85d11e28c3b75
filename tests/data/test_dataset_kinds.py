"""The registered test-set kinds on generated fixtures in their real layouts, including the PROTOCOL §14 traps."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from beyond_imagenet.base.config import DatasetConfig, Params, parse_params
from beyond_imagenet.base.errors import DatasetLayoutError, UserError
from beyond_imagenet.data.cue_conflict import CATEGORIES, CATEGORY_INDICES
from beyond_imagenet.data.kinds import IMAGENET_C_CORRUPTIONS, IMAGENET_C_SEVERITIES
from beyond_imagenet.data.label_space import imagenet_wnids
from beyond_imagenet.data.pug import PUG_FACTORS
from beyond_imagenet.data.registry import resolve_datasets
from beyond_imagenet.inference.cache import cache_path, load_cache
from beyond_imagenet.inference.jobs import plan_jobs
from beyond_imagenet.inference.run import run_inference
from helpers import CUE_CONFLICT_SAMPLE


def write_image(path: Path, size=(40, 30), fmt="JPEG", value=128) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (value, 255 - value, 60)).save(path, fmt)
    return path


def run_all(params: Params) -> list:
    """One cached pass over every dataset (all variants) and model of ``params``."""
    datasets = [d for name, config in params.datasets.items() for d in resolve_datasets(name, config)]
    return run_inference(datasets, params.models, params.inference)


def official_wnids(kind: str) -> list[str]:
    import timm.data

    return (Path(timm.data.__file__).parent / "_info" / f"{kind}_synsets.txt").read_text().split()


def test_imagenet_v2_labels_are_the_folder_integers_not_their_sort_rank(tmp_path):
    for k in (0, 1, 2, 10, 100, 999):
        write_image(tmp_path / "v2" / str(k) / f"img{k}.jpeg")
    (dataset,) = resolve_datasets("v2", DatasetConfig(path=str(tmp_path / "v2"), kind="imagenet_v2", check_size=False))
    labels = {s.class_id: int(t) for s, t in zip(dataset.samples, dataset.targets, strict=True)}
    assert labels == {"0": 0, "1": 1, "2": 2, "10": 10, "100": 100, "999": 999}
    assert not dataset.complete  # 6 of 1000 classes
    with pytest.raises(DatasetLayoutError, match="found 6 class folders, imagenet_v2 has 1000"):
        resolve_datasets("v2", DatasetConfig(path=str(tmp_path / "v2"), kind="imagenet_v2"))


@pytest.mark.parametrize("kind", ["imagenet_a", "imagenet_r"])
def test_200_class_sets_map_their_wnids_in_sorted_order_and_reject_foreign_classes(tmp_path, kind):
    chosen = official_wnids(kind)[::50]  # 4 of the official 200
    for wnid in reversed(chosen):
        write_image(tmp_path / kind / wnid / "a.jpg")
    (dataset,) = resolve_datasets(kind, DatasetConfig(path=str(tmp_path / kind), kind=kind, check_size=False))
    index = {w: i for i, w in enumerate(imagenet_wnids())}
    # the official 200-class mask, not the 4 folders present (docs/protocol.md §2.2)
    official = sorted(official_wnids(kind))
    assert list(dataset.label_space.class_ids) == official
    assert dataset.label_space.one_to_one_imagenet_columns().tolist() == [index[w] for w in official]
    assert dataset.targets.tolist() == [official.index(w) for w in sorted(chosen)]
    foreign = next(w for w in imagenet_wnids() if w not in set(official_wnids(kind)))
    write_image(tmp_path / kind / foreign / "b.jpg")
    config = DatasetConfig(path=str(tmp_path / kind), kind=kind)
    with pytest.raises(DatasetLayoutError, match=f"outside the official {kind} classes: {foreign}"):
        resolve_datasets(kind, config)


def make_imagenet_c(root: Path, wnids: list[str], skip: tuple[str, int] | None = None) -> None:
    for corruption in IMAGENET_C_CORRUPTIONS:
        for severity in IMAGENET_C_SEVERITIES:
            if (corruption, severity) != skip:
                for wnid in wnids:
                    write_image(root / corruption / str(severity) / wnid / "ILSVRC2012_val_00000001.JPEG", (224, 224))


def test_imagenet_c_expands_into_75_variants_and_names_missing_ones(tmp_path):
    wnids = list(imagenet_wnids()[:2])
    make_imagenet_c(tmp_path / "c", wnids, skip=("fog", 3))
    config = DatasetConfig(path=str(tmp_path / "c"), kind="imagenet_c")
    with pytest.raises(DatasetLayoutError, match=r"1 of 75 sub-folders missing, e\.g\. fog/3"):
        resolve_datasets("c", config)
    datasets = resolve_datasets("c", DatasetConfig(path=str(tmp_path / "c"), kind="imagenet_c", check_size=False))
    assert len(datasets) == 74 and "fog/3" not in {d.variant for d in datasets}
    assert {d.geometry for d in datasets} == {"none"}  # native 224 px, no resize (PROTOCOL §7.8 default)
    assert datasets[0].variant == "brightness/1" and datasets[0].targets.tolist() == [0, 1]


def test_geometry_none_feeds_224_images_unresized_and_rejects_other_sizes(tmp_path):
    wnids = list(imagenet_wnids()[:2])
    root = tmp_path / "c"
    make_imagenet_c(root, wnids)
    params = parse_params(
        {
            "models": ["demo_random_vit_sup"],
            "datasets": {"c": {"path": str(root), "kind": "imagenet_c", "check_size": False}},
            "inference": {"num_workers": 0, "cache_dir": str(tmp_path / "cache"), "batch_size": 2},
            "tracking": {"enabled": False},
        }
    )
    jobs = plan_jobs(resolve_datasets("c", params.datasets["c"]), ["demo_random_vit_sup"], params.inference)
    assert len(jobs) == 75 and {j.preprocessing.resize_mode for j in jobs} == {"none"}
    assert jobs[0].path == cache_path(tmp_path / "cache", "c", "demo_random_vit_sup", "brightness/1")
    write_image(root / "fog" / "3" / wnids[0] / "ILSVRC2012_val_00000002.JPEG", (300, 224))
    with pytest.raises(UserError, match=r"image is 300x224, but geometry 'none'"):
        run_all(params)
    cache = load_cache(cache_path(tmp_path / "cache", "c", "demo_random_vit_sup", "brightness/1"))
    assert cache.meta["dataset"]["variant"] == "brightness/1" and cache.meta["preprocessing"]["resize_mode"] == "none"


def make_pug(root: Path, class_map: dict, classes_on_disk: list[str]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "class_to_imagenet_idx.json").write_text(json.dumps(class_map))
    for factor in PUG_FACTORS:
        for name in classes_on_disk:
            write_image(root / factor / name / "render_0.png", fmt="PNG")


def test_pug_layout_uses_the_class_map_order_and_requires_its_side_file(tmp_path):
    class_map = {"Wolf": [269, 270], "Shirt": [841, 610], "Sweatshirt": [841], "Goldfish": [1]}
    make_pug(tmp_path / "pug", class_map, ["Sweatshirt", "Wolf"])  # a factor folder may lack classes
    datasets = resolve_datasets("pug", DatasetConfig(path=str(tmp_path / "pug"), kind="pug_imagenet"))
    assert [d.variant for d in datasets] == list(PUG_FACTORS)
    # targets index the full sorted key list (Goldfish, Shirt, Sweatshirt, Wolf), not the folders present
    assert datasets[0].targets.tolist() == [2, 3]
    assert datasets[0].label_space.imagenet_indices[1] == (841, 610)
    (tmp_path / "pug" / "class_to_imagenet_idx.json").unlink()
    with pytest.raises(DatasetLayoutError, match=r"required side file .*class_to_imagenet_idx\.json is missing"):
        resolve_datasets("pug", DatasetConfig(path=str(tmp_path / "pug"), kind="pug_imagenet"))


def test_pug_folder_names_must_match_the_class_map_exactly(tmp_path):
    make_pug(tmp_path / "pug", {"Kangarou": [104]}, ["Kangaroo"])  # the official key is spelled 'Kangarou'
    with pytest.raises(DatasetLayoutError, match=r"not in class_to_imagenet_idx\.json: Kangaroo"):
        resolve_datasets("pug", DatasetConfig(path=str(tmp_path / "pug"), kind="pug_imagenet"))


def test_cue_conflict_targets_are_shape_classes_and_the_label_space_maps_to_207_indices(tmp_path):
    for shape, texture in (("cat", "dog"), ("dog", "dog"), ("knife", "cat")):
        write_image(tmp_path / "cc" / shape / f"{shape}1-{texture}2.png", (224, 224), "PNG")
    (dataset,) = resolve_datasets("cc", DatasetConfig(path=str(tmp_path / "cc"), kind="cue_conflict", check_size=False))
    assert dataset.geometry == "none"
    assert [CATEGORIES[t] for t in dataset.targets] == ["cat", "dog", "knife"]
    assert sum(len(ix) for ix in dataset.label_space.imagenet_indices) == 207
    assert dataset.label_space.imagenet_indices[CATEGORIES.index("knife")] == CATEGORY_INDICES["knife"]
    write_image(tmp_path / "cc" / "horse" / "horse1-cat1.png", (224, 224), "PNG")
    with pytest.raises(DatasetLayoutError, match=r"16 categories .* found horse"):
        resolve_datasets("cc", DatasetConfig(path=str(tmp_path / "cc"), kind="cue_conflict", check_size=False))


def test_sketch_and_val_counts_are_checked(tmp_path):
    write_image(tmp_path / "s" / imagenet_wnids()[0] / "x.JPEG")
    with pytest.raises(DatasetLayoutError, match="imagenet_sketch has 1000"):
        resolve_datasets("s", DatasetConfig(path=str(tmp_path / "s"), kind="imagenet_sketch"))
    (partial,) = resolve_datasets(
        "s", DatasetConfig(path=str(tmp_path / "s"), kind="imagenet_sketch", check_size=False)
    )
    assert partial.manifest()["complete"] is False and np.array_equal(partial.targets, [0])


def make_hard(root: Path, labels: list[list[int]], broken_row: int | None = None) -> Path:
    """A parquet file in the layout of HF taesiri/imagenet-hard (image struct, label list, origin)."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    images = []
    for i in range(len(labels)):
        buffer = io.BytesIO()
        Image.new("RGB", (50 + i, 40), (10 * i, 100, 200)).save(buffer, "JPEG")
        data = b"not an image" if i == broken_row else buffer.getvalue()
        images.append({"bytes": data, "path": f"img{i}.JPEG"})
    path = root / "data" / "validation-00000-of-00001.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"image": images, "label": labels, "origin": ["x"] * len(labels)}), path)
    return path


def test_imagenet_hard_needs_a_pinned_revision_and_keeps_every_label(tmp_path):
    make_hard(tmp_path / "hard", [[5], [7, 9], [999]])
    with pytest.raises(DatasetLayoutError, match="set `revision:`"):
        resolve_datasets("hard", DatasetConfig(path=str(tmp_path / "hard"), kind="imagenet_hard", check_size=False))
    config = DatasetConfig(path=str(tmp_path / "hard"), kind="imagenet_hard", revision="abc123", check_size=False)
    (dataset,) = resolve_datasets("hard", config)
    assert dataset.label_lists == ((5,), (7, 9), (999,)) and dataset.targets.tolist() == [5, 7, 999]
    assert dataset.sample_ids == ["hard_00000", "hard_00001", "hard_00002"]
    assert dataset.manifest()["revision"] == "abc123" and dataset.manifest()["multi_label"] is True
    strict = DatasetConfig(path=str(tmp_path / "hard"), kind="imagenet_hard", revision="abc123")
    with pytest.raises(DatasetLayoutError, match="found 3 images, imagenet_hard has 10980"):
        resolve_datasets("hard", strict)


def test_imagenet_hard_snapshot_folder_must_match_the_pinned_revision(tmp_path):
    sha = "0123456789abcdef0123456789abcdef01234567"
    root = tmp_path / "datasets--taesiri--imagenet-hard" / "snapshots" / sha
    make_hard(root, [[1]])
    other = DatasetConfig(path=str(root), kind="imagenet_hard", revision="f" * 40, check_size=False)
    with pytest.raises(DatasetLayoutError, match=f"is snapshot {sha}, but params pin f{{40}}"):
        resolve_datasets("hard", other)
    same = DatasetConfig(path=str(root), kind="imagenet_hard", revision=sha, check_size=False)
    assert len(resolve_datasets("hard", same)[0]) == 1


def test_imagenet_hard_rows_run_through_inference_with_label_lists_in_the_cache(tmp_path):
    make_hard(tmp_path / "hard", [[5], [7, 9], [999], [3]], broken_row=2)
    params = parse_params(
        {
            "models": ["demo_random_convnext_sup"],
            "datasets": {
                "hard": {"path": str(tmp_path / "hard"), "kind": "imagenet_hard", "revision": "r1", "check_size": False}
            },
            "inference": {"num_workers": 0, "cache_dir": str(tmp_path / "cache"), "bad_images": "skip"},
            "tracking": {"enabled": False},
        }
    )
    run_all(params)
    cache = load_cache(cache_path(tmp_path / "cache", "hard", "demo_random_convnext_sup"))
    assert cache.sample_ids == ["hard_00000", "hard_00001", "hard_00003"]
    assert cache.label_lists == [[5], [7, 9], [3]]
    (skipped,) = cache.meta["skipped"]
    assert skipped["sample_id"] == "hard_00002" and "#hard_00002" in skipped["path"]


SAMPLE = CUE_CONFLICT_SAMPLE


def test_shape_bias_runs_on_the_real_cue_conflict_sample(tmp_path):
    """48 of the real stimuli (Geirhos et al. 2019, CC BY 4.0) through a model, the cache and the analysis."""
    from beyond_imagenet.analyses.common import AnalysisContext
    from beyond_imagenet.analyses.shape_bias import run_shape_bias
    from beyond_imagenet.analyses.store import CacheStore

    params = parse_params(
        {
            "models": ["demo_random_convnext_sup"],
            "datasets": {"cc": {"path": str(SAMPLE), "kind": "cue_conflict", "check_size": False}},
            "inference": {"num_workers": 0, "cache_dir": str(tmp_path / "cache")},
            "analyses": {"shape_bias": {"dataset": "cc"}},
            "tracking": {"enabled": False},
            "results_dir": str(tmp_path / "results"),
        }
    )
    run_all(params)
    cache = load_cache(cache_path(tmp_path / "cache", "cc", "demo_random_convnext_sup"))
    assert len(cache) == 48 and cache.meta["preprocessing"]["resize_mode"] == "none"  # 224 px PNGs, unresized
    ctx = AnalysisContext(
        list(params.models), CacheStore(tmp_path / "cache"), Path(params.results_dir), params.datasets
    )
    (record,) = run_shape_bias(params.analyses.shape_bias, ctx)
    assert record.details["n_images"] == 48 and record.details["n_conflict"] == 45  # 3 shape == texture images
    n_shape = round(record.metrics["shape_bias/fraction_correct_shape"] * 48)
    n_texture = round(record.metrics["shape_bias/fraction_correct_texture"] * 48)
    if n_shape + n_texture:
        assert record.metrics["shape_bias/overall"] == pytest.approx(n_shape / (n_shape + n_texture))


def test_verify_command_lists_every_undecodable_image(tmp_path, capsys):
    from beyond_imagenet.cli import main

    for i, wnid in enumerate(imagenet_wnids()[:2]):
        write_image(tmp_path / "val" / wnid / f"ILSVRC2012_val_0000000{i + 1}.JPEG")
    (tmp_path / "val" / imagenet_wnids()[0] / "ILSVRC2012_val_00000009.JPEG").write_bytes(b"")
    params = tmp_path / "params.yaml"
    params.write_text(
        json.dumps(
            {
                "models": ["demo_random_vit_sup"],
                "datasets": {"v": {"path": str(tmp_path / "val"), "kind": "image_folder"}},
            }
        )
    )
    assert main(["verify", "--params", str(params)]) == 2
    out = capsys.readouterr()
    assert "ILSVRC2012_val_00000009.JPEG: empty file (0 bytes)" in out.out and "3 images" in out.out
    assert main(["verify", "--params", str(params), "--no-decode"]) == 0


def test_imagenet_r_with_3_class_folders_keeps_the_official_200_class_mask(tmp_path):
    """3 folders of IN-R must not make a 3-way problem (where top-5 is always 100%): the mask is the official 200."""
    from beyond_imagenet.metrics.accuracy import topk_accuracy

    chosen = official_wnids("imagenet_r")[:3]
    for i, wnid in enumerate(chosen):
        for j in range(4):
            write_image(tmp_path / "r" / wnid / f"{i}_{j}.jpg")
    (dataset,) = resolve_datasets("r", DatasetConfig(path=str(tmp_path / "r"), kind="imagenet_r", check_size=False))
    assert dataset.label_space.n_classes == 200 and not dataset.complete
    columns = dataset.label_space.one_to_one_imagenet_columns()
    logits = np.random.default_rng(0).normal(size=(len(dataset), 1000))[:, columns]
    assert topk_accuracy(logits, dataset.targets, 5) < 100.0


def test_imagenet_subset_is_honoured_on_integer_folders(tmp_path):
    for folder in ("7", "0", "999"):
        write_image(tmp_path / "v2" / folder / f"{folder}.jpeg")
    plain = DatasetConfig(path=str(tmp_path / "v2"), kind="imagenet_v2", check_size=False)
    (full,) = resolve_datasets("v2", plain)
    assert full.label_space.n_classes == 1000 and full.targets.tolist() == [0, 7, 999]
    subset = DatasetConfig(
        path=str(tmp_path / "v2"), kind="imagenet_v2", check_size=False, label_space="imagenet_subset"
    )
    (dataset,) = resolve_datasets("v2", subset)
    assert dataset.label_space.kind == "imagenet_subset"
    assert dataset.label_space.one_to_one_imagenet_columns().tolist() == [0, 7, 999]
    assert dataset.targets.tolist() == [0, 1, 2]
