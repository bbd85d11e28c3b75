"""``beyond-imagenet analyze-cache`` on caches another tool wrote: every analysis, from the caches alone.

The caches are written with numpy exactly as docs/cache.md tells an outside user (not with the project's writer),
for two models on ImageNet val (+ its sweep points), ImageNetV2, cue-conflict and PUG; ImageNet-X annotations, ReaL
labels and the PUG class map are generated too.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from beyond_imagenet.cli import main
from beyond_imagenet.data.cue_conflict import CATEGORIES, CATEGORY_INDICES
from beyond_imagenet.data.imagenet_x import FACTORS
from beyond_imagenet.data.pug import PUG_FACTORS

A, B = "tool_a", "tool_b"
IMAGENET1K = {"kind": "imagenet1k", "n_classes": 1000}

# ImageNet val: six images, the first factor each is annotated with, and each model's top-1 class
VAL_TARGETS = [0, 1, 2, 3, 4, 5]
VAL_FACTORS = ["pose", "pose", "background", "background", "color", "color"]
VAL_PRED = {A: [0, 1, 2, 3, 9, 9], B: [0, 9, 2, 9, 4, 9]}  # A 4/6, B 3/6 right
REAL = {1: [0], 2: [1], 3: [2], 4: [3], 5: [4], 6: [5, 9]}  # A: 5/6 (file 6 also accepts 9); B: 3/6
V2_TARGETS, V2_PRED = [10, 20, 30, 40], {A: [10, 20, 30, 41], B: [10, 0, 0, 0]}
# cue-conflict: (file name, decision of A); B always decides for the texture
CUE = [
    ("cat1-dog1.png", "cat"),  # shape
    ("cat2-elephant1.png", "elephant"),  # texture
    ("dog1-cat1.png", "dog"),  # shape
    ("dog2-bird1.png", "bird"),  # texture
    ("bird1-car1.png", "bird"),  # shape
    ("car1-clock1.png", "oven"),  # neither
    ("bear1-bear2.png", "bear"),  # shape == texture: not a cue conflict
    ("clock1-knife1.png", "clock"),  # shape
]
PUG_MAP = {"Goldfish": [1], "Wolf": [269, 270]}  # labels: Goldfish 0, Wolf 1 (sorted names)
PUG_PRED = {A: [1, 270], B: [1, 0]}  # A right on both, B on the goldfish only
SCALE2_PRED_A = [0, 1, 9, 9, 9, 9]  # A at scale 2: 2/6 right, 4/6 as at scale 1


def shape_texture(name: str) -> tuple[str, str]:
    """The categories of a cue-conflict file name ``<shape><i>-<texture><j>.png``."""
    shape, texture = re.fullmatch(r"([a-z]+)\d+-([a-z]+)\d+\.png", name).groups()
    return shape, texture


def val_name(number: int) -> str:
    return f"ILSVRC2012_val_{number:08d}.JPEG"


def top1_logits(predicted: list[int]) -> np.ndarray:
    logits = np.zeros((len(predicted), 1000), dtype=np.float32)
    logits[np.arange(len(predicted)), predicted] = 10.0
    return logits


def category_logits(decisions: list[str]) -> np.ndarray:
    logits = np.zeros((len(decisions), 1000), dtype=np.float32)
    for row, category in enumerate(decisions):
        logits[row, list(CATEGORY_INDICES[category])] = 10.0
    return logits


def write_foreign_cache(folder: Path, logits, targets, ids, model: str, dataset: dict, label: dict, **meta) -> Path:
    """The five files of docs/cache.md, written with numpy and json only."""
    folder.mkdir(parents=True)
    np.save(folder / "logits.npy", np.asarray(logits, dtype=np.float32))
    np.save(folder / "features.npy", np.zeros((len(ids), 8), dtype=np.float32))
    np.save(folder / "targets.npy", np.asarray(targets, dtype=np.int64))
    (folder / "sample_ids.json").write_text(json.dumps(ids))
    model_meta = {"model_id": model, "family": "convnet", "paradigm": "supervised"}
    content = {"model": model_meta, "dataset": dataset, "output_space": IMAGENET1K, "label_space": label, **meta}
    (folder / "meta.json").write_text(json.dumps(content))
    return folder


def write_side_files(root: Path) -> dict[str, Path]:
    """ImageNet-X annotations, ReaL labels and the PUG class map, in their published formats."""
    annotations = root / "imagenet_x"
    annotations.mkdir()
    with (annotations / "imagenet_x_val_top_factor.jsonl").open("w") as handle:
        for number, (label, factor) in enumerate(zip(VAL_TARGETS, VAL_FACTORS, strict=True), start=1):
            flags = {f: int(f == factor) for f in FACTORS}
            handle.write(json.dumps({"file_name": val_name(number), "class": label, **flags}) + "\n")
    (annotations / "prototypical_paths.csv").write_text(f"file_name\n{val_name(7)}\n")
    real = [REAL.get(i + 1, []) for i in range(50_000)]
    (root / "real.json").write_text(json.dumps(real))
    pug = root / "pug"
    pug.mkdir()
    (pug / "class_to_imagenet_idx.json").write_text(json.dumps(PUG_MAP))
    return {"annotations": annotations, "real": root / "real.json", "pug": pug / "class_to_imagenet_idx.json"}


def write_model_caches(root: Path, model: str) -> None:
    """One model's caches on every dataset: val (+ 6 sweep points), V2, cue-conflict, 10 PUG subsets."""
    base = root / "caches" / model
    val_ids = [val_name(i) for i in range(1, 7)]
    write_foreign_cache(
        base / "val", top1_logits(VAL_PRED[model]), VAL_TARGETS, val_ids, model, {"name": "imagenet_val"}, IMAGENET1K
    )
    for kind, value in (
        ("scale", 1),
        ("scale", 2),
        ("shift", 0),
        ("shift", 30),
        ("resolution", 224),
        ("resolution", 336),
    ):
        predicted = SCALE2_PRED_A if (model, kind, value) == (A, "scale", 2) else VAL_PRED[model]
        dataset = {"name": "imagenet_val", "variant": f"{kind}/{value}"}
        sweep = {"sweep": {"kind": kind, "value": value}}
        write_foreign_cache(
            base / f"val_{kind}{value}", top1_logits(predicted), VAL_TARGETS, val_ids, model, dataset, IMAGENET1K,
            config=sweep,
        )  # fmt: skip
    v2_ids = [f"{t}/v2_{i}.jpeg" for i, t in enumerate(V2_TARGETS)]
    write_foreign_cache(
        base / "v2", top1_logits(V2_PRED[model]), V2_TARGETS, v2_ids, model, {"name": "imagenet_v2"}, IMAGENET1K
    )
    names = [name for name, _ in CUE]
    decisions = [d for _, d in CUE] if model == A else [shape_texture(n)[1] for n in names]
    targets = [CATEGORIES.index(shape_texture(n)[0]) for n in names]
    cue_label = {"kind": "custom", "n_classes": 16}
    cue_dataset = {"name": "cue_conflict"}
    write_foreign_cache(base / "cue", category_logits(decisions), targets, names, model, cue_dataset, cue_label)
    for factor in PUG_FACTORS:
        dataset = {"name": "pug_imagenet", "variant": factor}
        ids = [f"{factor}/Goldfish/0.png", f"{factor}/Wolf/0.png"]
        label = {"kind": "custom", "n_classes": 2}
        write_foreign_cache(base / f"pug_{factor}", top1_logits(PUG_PRED[model]), [0, 1], ids, model, dataset, label)


@pytest.fixture(scope="module")
def foreign_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("foreign")
    side = write_side_files(root)
    for model in (A, B):
        write_model_caches(root, model)
    out = root / "out"
    argv = ["analyze-cache", str(root / "caches"), "--out", str(out), "--real-labels", str(side["real"])]
    argv += ["--imagenet-x-annotations", str(side["annotations"]), "--pug-class-map", str(side["pug"])]
    return root, out, argv


@pytest.fixture(scope="module")
def ran(foreign_run):
    """The one run of the module: exit code, output folder, console output."""
    _, out, argv = foreign_run
    console = io.StringIO()
    with contextlib.redirect_stdout(console):
        code = main(argv)
    return code, out, console.getvalue()


def records(out: Path) -> dict[tuple[str, str, str], dict]:
    found = {}
    for path in sorted((out / "records").glob("*/*/*.json")):
        record = json.loads(path.read_text())
        found[(record["analysis"], record["dataset"], record["model_id"])] = record
    return found


def test_every_analysis_runs_from_the_caches_alone(ran):
    code, out, _ = ran
    assert code == 0
    expected = {
        ("accuracy", "imagenet_val"),
        ("accuracy", "imagenet_v2"),
        ("calibration", "imagenet_val"),
        ("calibration", "imagenet_v2"),
        ("robustness", "table2"),
        ("imagenet_x", "imagenet_val"),
        ("pug", "pug_imagenet"),
        ("shape_bias", "cue_conflict"),
        ("invariance", "imagenet_val"),
    }
    assert set(records(out)) == {(a, d, m) for a, d in expected for m in (A, B)}


def test_values_of_the_constructed_caches(ran):
    _, out, _ = ran
    found = records(out)

    def metric(analysis, dataset, model, name):
        return found[(analysis, dataset, model)]["metrics"][name]

    # shape decisions cat1, dog1, bird1, clock1 (4), texture cat2, dog2 (2): 4 / 6; B only texture decisions
    assert metric("shape_bias", "cue_conflict", A, "shape_bias/overall") == pytest.approx(4 / 6)
    assert metric("shape_bias", "cue_conflict", B, "shape_bias/overall") == pytest.approx(0.0)
    assert metric("accuracy", "imagenet_val", A, "accuracy/imagenet_val/top1") == pytest.approx(100 * 4 / 6)
    confidence = math.exp(10) / (math.exp(10) + 999)  # every row: logit 10 on one class, 0 on 999
    assert metric("calibration", "imagenet_v2", B, "calibration/imagenet_v2/ece") == pytest.approx(
        confidence - 0.25, abs=1e-6
    )
    assert metric("robustness", "table2", A, "robustness/imagenet_v2/top1") == pytest.approx(75.0)
    assert metric("robustness", "table2", A, "robustness/imagenet_real/top1") == pytest.approx(100 * 5 / 6)
    # ImageNet-X, A: pose and background right, color wrong; average 4/6 -> color error ratio 1 / (1/3) = 3
    assert metric("imagenet_x", "imagenet_val", A, "imagenet_x/color/error_ratio") == pytest.approx(3.0)
    assert metric("imagenet_x", "imagenet_val", B, "imagenet_x/pose/error_ratio") == pytest.approx(1.0)
    assert metric("pug", "pug_imagenet", A, "pug/average") == pytest.approx(100.0)
    assert metric("pug", "pug_imagenet", B, "pug/Worlds/top1") == pytest.approx(50.0)
    assert metric("invariance", "imagenet_val", A, "invariance/scale/2/top1") == pytest.approx(100 * 2 / 6)
    assert metric("invariance", "imagenet_val", A, "invariance/scale/2/consistency") == pytest.approx(100 * 4 / 6)
    assert metric("invariance", "imagenet_val", B, "invariance/resolution/336/top1") == pytest.approx(50.0)


def test_the_plan_says_what_each_analysis_uses_and_skips(ran):
    _, _, text = ran
    assert "shape_bias: uses 2 cache(s) of cue_conflict for tool_a, tool_b" in text
    assert "invariance: uses 12 cache(s) of imagenet_val for tool_a, tool_b" in text
    # the cue-conflict and PUG caches have no one-to-one ImageNet columns: not scored by accuracy, and said why
    assert "accuracy: not using 2 cache(s) of 'cue_conflict'" in text
    assert "accuracy: not using 20 cache(s) of 'pug_imagenet'" in text
    assert "imagenet_x: " in text and "6 of 6 sample ids (100.0%) are in the ImageNet-X annotations" in text


def test_missing_inputs_are_skipped_with_the_rule(foreign_run, tmp_path, capsys):
    root, _, _ = foreign_run
    assert main(["analyze-cache", str(root / "caches" / A / "v2"), "--out", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "shape_bias: skipped: no cue-conflict cache (dataset.kind or dataset.name must be 'cue_conflict'" in text
    assert "invariance: skipped: no invariance sweep cache" in text
    assert (tmp_path / "records" / "accuracy" / "imagenet_v2" / "tool_a.json").is_file()


def test_a_misordered_cue_conflict_cache_is_refused_naming_the_rule(tmp_path, capsys):
    names = [name for name, _ in CUE]
    reversed_order = [15 - CATEGORIES.index(shape_texture(n)[0]) for n in names]
    folder = write_foreign_cache(
        tmp_path / "cue", category_logits([d for _, d in CUE]), reversed_order, names, A,
        {"name": "cue_conflict"}, {"kind": "custom", "n_classes": 16},
    )  # fmt: skip
    assert main(["analyze-cache", str(folder), "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert str(folder / "targets.npy") in error
    assert "8 of 8 rows disagree with the shape category in their file name" in error
    assert "row 0: 'cat1-dog1.png' has target 8 = 'chair'" in error
    assert "0=airplane, 1=bear" in error and "15=truck" in error and "Fix: rewrite targets.npy" in error
    assert not (tmp_path / "out" / "records").exists()  # refused before any analysis ran


def test_imagenet_x_partial_coverage_is_refused_unless_allowed(foreign_run, tmp_path, capsys):
    root, _, _ = foreign_run
    side = {"annotations": root / "imagenet_x", "real": root / "real.json"}
    folder = write_foreign_cache(
        tmp_path / "val", top1_logits(VAL_PRED[A][:5]), VAL_TARGETS[:5], [val_name(i) for i in range(1, 6)], A,
        {"name": "imagenet_val"}, IMAGENET1K,
    )  # fmt: skip
    argv = ["analyze-cache", str(folder), "--imagenet-x-annotations", str(side["annotations"])]
    assert main([*argv, "--out", str(tmp_path / "strict")]) == 2
    error = capsys.readouterr().err
    assert "5 of 5 sample ids (100.0%) are in the ImageNet-X annotations" in error
    assert "cover 5 of 6 annotated images (83.3%)" in error and "--allow-partial-imagenet-x" in error
    assert main([*argv, "--out", str(tmp_path / "partial"), "--allow-partial-imagenet-x"]) == 0
    record = json.loads((tmp_path / "partial" / "records" / "imagenet_x" / "imagenet_val" / f"{A}.json").read_text())
    assert record["details"]["coverage"] == pytest.approx(5 / 6)
    # robustness needs ReaL on the full val set: it says so and leaves the cache out (the default ReaL labels)
    assert "robustness: " in capsys.readouterr().out


def test_arrays_of_different_row_counts_are_refused_before_any_analysis(tmp_path, capsys):
    ids = [val_name(i) for i in range(1, 7)]
    folder = write_foreign_cache(
        tmp_path / "val", top1_logits(VAL_PRED[A]), VAL_TARGETS[:5], ids, A, {"name": "imagenet_val"}, IMAGENET1K
    )
    assert main(["analyze-cache", str(folder), "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert str(folder) in error and "do not align with 6 sample ids" in error
    assert not (tmp_path / "out").exists()
