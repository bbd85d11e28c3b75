"""Shape/texture bias (PROTOCOL §6) and PUG-ImageNet scoring (PROTOCOL §4): hand-built golden values, the real
cue-conflict sample, and an independent re-implementation of the official PUG loop."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from beyond_imagenet.base.errors import DatasetLayoutError, NonFiniteLogitsError, UnknownNameError, UserError
from beyond_imagenet.data.cue_conflict import (
    CATEGORIES,
    CATEGORY_INDICES,
    CUE_CONFLICT_BYTES,
    CUE_CONFLICT_EXPECTED,
    CueConflictEntry,
    check_complete,
    parse_cue_conflict_name,
    scan_cue_conflict,
)
from beyond_imagenet.data.pug import PUG_FACTORS, load_class_map, pug_class_index, pug_targets
from beyond_imagenet.metrics.pug import UNMAPPED, official_inverse_map, pug_accuracies, pug_correct
from beyond_imagenet.metrics.shape_bias import category_decisions, decision_names, decisions_from_logits, shape_bias
from helpers import CUE_CONFLICT_SAMPLE

# 48 of the 1,280 cue-conflict stimuli (3 per class), byte-identical to the originals. Stimuli by Geirhos et al.
# 2019, "ImageNet-trained CNNs are biased towards texture; increasing shape bias improves accuracy and robustness",
# github.com/rgeirhos/texture-vs-shape (also in bethgelab/model-vs-human), licensed CC BY 4.0.
SAMPLE = CUE_CONFLICT_SAMPLE
SAMPLE_NON_CONFLICT = {"bear1-bear3.png", "bicycle1-bicycle3.png", "car1-car2.png"}


# ---------------------------------------------------------------------------------------------------- categories
def test_category_indices_match_protocol_table():
    counts = {c: len(v) for c, v in CATEGORY_INDICES.items()}
    assert list(CATEGORY_INDICES) == sorted(CATEGORY_INDICES) == list(CATEGORIES)
    assert counts == {
        "airplane": 1, "bear": 4, "bicycle": 2, "bird": 49, "boat": 5, "bottle": 7, "car": 3, "cat": 6,
        "chair": 4, "clock": 3, "dog": 109, "elephant": 2, "keyboard": 2, "knife": 1, "oven": 1, "truck": 8,
    }  # fmt: skip
    flat = list(itertools.chain.from_iterable(CATEGORY_INDICES.values()))
    assert len(flat) == len(set(flat)) == 207
    assert min(flat) >= 0 and max(flat) <= 999
    assert sum(flat) == 55426  # fingerprint of the exact index set
    assert all(list(v) == sorted(v) for v in CATEGORY_INDICES.values())
    assert not {9, 17, 21, 97, 134} & set(CATEGORY_INDICES["bird"])  # gaps in the §6 ranges
    assert not {192, 204, 227, 242, 251, 258, 260, 264} & set(CATEGORY_INDICES["dog"])
    assert CATEGORY_INDICES["bird"][:3] == (8, 10, 11) and CATEGORY_INDICES["bird"][-1] == 145
    assert CATEGORY_INDICES["dog"][0] == 152 and CATEGORY_INDICES["dog"][-1] == 268


# ------------------------------------------------------------------------------------------------ decision rule
def _background(n: int = 1) -> np.ndarray:
    return np.full((n, 1000), 1e-6)


def test_mean_not_sum_decides_knife_over_dog():
    p = _background()
    p[0, list(CATEGORY_INDICES["dog"])] = 0.005  # sum 0.545, mean 0.005
    p[0, 499] = 0.1  # knife: one index, sum = mean = 0.1
    p /= p.sum()
    dog, knife = CATEGORIES.index("dog"), CATEGORIES.index("knife")
    sums = np.array([p[0, list(CATEGORY_INDICES[c])].sum() for c in CATEGORIES])
    assert sums.argmax() == dog  # the sum rule would say dog ...
    assert category_decisions(p).tolist() == [knife]  # ... the mean rule says knife
    assert decision_names(category_decisions(p)) == ["knife"]


def test_decisions_from_logits_match_probabilities():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(20, 1000)) * 3
    for i, c in enumerate(CATEGORIES):  # give row i a clear winner in category i
        logits[i, CATEGORY_INDICES[c][0]] = 50.0
    assert decisions_from_logits(logits)[:16].tolist() == list(range(16))
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    assert np.array_equal(decisions_from_logits(logits), category_decisions(p))
    # outside the 207 indices nothing counts: a huge logit at index 0 (tench) does not win
    logits = np.zeros((1, 1000))
    logits[0, 0], logits[0, 294] = 30.0, 1.0
    assert decision_names(decisions_from_logits(logits)) == ["bear"]


def test_decision_rule_rejects_bad_input():
    with pytest.raises(UserError, match=r"\[N, 1000\].*\(4, 999\)"):
        category_decisions(np.ones((4, 999)))
    bad = _background(3)
    bad[1, 5] = np.nan
    with pytest.raises(NonFiniteLogitsError, match=r"1 rows.*\[1\]"):
        category_decisions(bad)
    with pytest.raises(NonFiniteLogitsError, match="logits"):
        decisions_from_logits(np.where(np.arange(1000) == 3, np.inf, 0.0)[None, :])


# --------------------------------------------------------------------------------------------------- file names
def test_parse_cue_conflict_name():
    assert parse_cue_conflict_name("airplane", "airplane1-bicycle2.png") == ("airplane", "bicycle")
    assert parse_cue_conflict_name("dog", "dog10-elephant12.png") == ("dog", "elephant")
    assert parse_cue_conflict_name("car", "car1-car2.png") == ("car", "car")
    with pytest.raises(UserError, match=r"'airplain'.*Did you mean 'airplane'"):
        parse_cue_conflict_name("airplain", "airplain1-bicycle2.png")
    with pytest.raises(UserError, match=r"cat/cat1-zebra2.png: 'zebra' is not one of the 16"):
        parse_cue_conflict_name("cat", "cat1-zebra2.png")


# -------------------------------------------------------------------------------------------------- shape bias
def test_shape_bias_hand_built():
    shapes = ["cat", "cat", "cat", "dog", "dog", "dog"]
    textures = ["dog", "bird", "cat", "cat", "cat", "dog"]  # images 2 and 5 are not cue conflicts
    decisions = ["cat", "bird", "cat", "dog", "oven", "dog"]  # S, T, (excluded), S, neither, (excluded)
    r = shape_bias(decisions, shapes, textures)
    assert r["n_images"] == 6 and r["n_conflict"] == 4 and r["n_excluded"] == 2
    assert (r["n_shape_decisions"], r["n_texture_decisions"], r["n_other_decisions"]) == (2, 1, 1)
    assert r["shape_bias"] == pytest.approx(2 / 3) and r["texture_bias"] == pytest.approx(1 / 3)
    assert r["shape_bias_defined"] is True
    assert r["fraction_correct_shape"] == pytest.approx(2 / 6)  # denominator: all 6, not the 4 conflicts
    assert r["fraction_correct_texture"] == pytest.approx(1 / 6)
    assert r["fraction_correct_shape"] / (r["fraction_correct_shape"] + r["fraction_correct_texture"]) == (
        pytest.approx(r["shape_bias"])
    )
    assert r["accuracy_16"] == pytest.approx(4 / 6)  # includes the two excluded images decided as their shape
    assert set(r["per_class"]) == {"cat", "dog"}
    assert r["per_class"]["cat"]["shape_bias"] == pytest.approx(0.5)
    assert r["per_class"]["cat"]["n_conflict"] == 2
    assert r["per_class"]["dog"]["shape_bias"] == pytest.approx(1.0)
    assert r["per_class"]["dog"]["n_other_decisions"] == 1


def test_shape_bias_undefined_is_nan_not_a_crash():
    r = shape_bias(["oven", "oven", "knife"], ["cat", "dog", "knife"], ["dog", "cat", "knife"])
    assert math.isnan(r["shape_bias"]) and r["shape_bias_defined"] is False
    assert r["fraction_correct_shape"] == 0.0 and r["fraction_correct_texture"] == 0.0
    assert r["accuracy_16"] == pytest.approx(1 / 3)
    knife = r["per_class"]["knife"]  # only a non-conflict image in this class
    assert knife["n_conflict"] == 0 and math.isnan(knife["shape_bias"]) and knife["shape_bias_defined"] is False


def test_shape_bias_rejects_bad_input():
    with pytest.raises(UserError, match="2 decisions, 3 shapes and 3 textures"):
        shape_bias(["cat", "dog"], ["cat", "dog", "cat"], ["dog", "cat", "dog"])
    with pytest.raises(UserError, match=r"decision: 'cats'.*Did you mean 'cat'"):
        shape_bias(["cats"], ["cat"], ["dog"])
    with pytest.raises(UserError, match="no stimuli"):
        shape_bias([], [], [])


# ------------------------------------------------------------------------------------------ the real sample
def test_scan_real_sample():
    entries = scan_cue_conflict(SAMPLE)
    assert len(entries) == 48
    assert entries[0] == (SAMPLE / "airplane/airplane1-bicycle2.png", "airplane", "bicycle")
    assert [e.path.name for e in entries[:3]] == [
        "airplane1-bicycle2.png",
        "airplane1-chair2.png",
        "airplane1-clock1.png",
    ]
    assert all(sum(e.shape == c for e in entries) == 3 for c in CATEGORIES)
    assert all(e.path.parent.name == e.shape and e.path.name.startswith(e.shape) for e in entries)
    assert {e.path.name for e in entries if e.shape == e.texture} == SAMPLE_NON_CONFLICT
    textures = {t: sum(e.texture == t for e in entries) for t in CATEGORIES}
    assert textures["bear"] == 11 and textures["airplane"] == 10 and textures["dog"] == 0
    assert sum(e.path.stat().st_size for e in entries) == 5_260_967
    assert scan_cue_conflict(SAMPLE.parent / SAMPLE.name) == entries


def test_real_sample_images_are_224_rgb_png():
    for entry in scan_cue_conflict(SAMPLE):
        with Image.open(entry.path) as image:
            assert (image.format, image.mode, image.size) == ("PNG", "RGB", (224, 224)), entry.path


def test_shape_bias_on_real_labels():
    entries = scan_cue_conflict(SAMPLE)
    shapes, textures = [e.shape for e in entries], [e.texture for e in entries]

    always_shape = shape_bias(shapes, shapes, textures)
    assert always_shape["shape_bias"] == 1.0 and always_shape["accuracy_16"] == 1.0
    assert (always_shape["n_conflict"], always_shape["n_excluded"]) == (45, 3)
    assert always_shape["fraction_correct_shape"] == pytest.approx(45 / 48)
    assert always_shape["fraction_correct_texture"] == 0.0
    assert always_shape["per_class"]["bear"]["n_conflict"] == 2 and always_shape["per_class"]["dog"]["n_conflict"] == 3
    assert all(row["shape_bias"] == 1.0 for row in always_shape["per_class"].values())

    always_texture = shape_bias(textures, shapes, textures)
    assert always_texture["shape_bias"] == 0.0
    assert always_texture["fraction_correct_texture"] == pytest.approx(45 / 48)
    assert always_texture["accuracy_16"] == pytest.approx(3 / 48)  # the 3 shape == texture images
    assert len(always_texture["per_class"]) == 16

    # shape for the first 8 classes, texture for the rest: 8*3 - 3 (bear, bicycle, car) = 21 of the 45 conflicts.
    mixed = [s if s in CATEGORIES[:8] else t for s, t in zip(shapes, textures, strict=True)]
    r = shape_bias(mixed, shapes, textures)
    assert (r["n_shape_decisions"], r["n_texture_decisions"]) == (21, 24)
    assert r["shape_bias"] == pytest.approx(21 / 45)
    assert r["per_class"]["boat"]["shape_bias"] == 1.0 and r["per_class"]["truck"]["shape_bias"] == 0.0


def test_probabilities_to_shape_bias_on_real_labels():
    entries = scan_cue_conflict(SAMPLE)
    p = _background(len(entries))
    for row, e in enumerate(entries):  # per-index mass 0.01 on the shape category, 0.005 on the texture category
        p[row, list(CATEGORY_INDICES[e.texture])] = 0.005
        p[row, list(CATEGORY_INDICES[e.shape])] = 0.01
    decisions = decision_names(category_decisions(p))
    r = shape_bias(decisions, [e.shape for e in entries], [e.texture for e in entries])
    assert r["shape_bias"] == 1.0 and r["n_shape_decisions"] == 45


def test_check_complete_on_sample_names_counts():
    with pytest.raises(DatasetLayoutError, match=r"found 48 images, expected 1280.*model-vs-human"):
        check_complete(scan_cue_conflict(SAMPLE))


# ------------------------------------------------------------------------------------------- layout checking
def _fake_tree(root: Path) -> Path:
    for c in CATEGORIES:
        (root / c).mkdir(parents=True)
        (root / c / f"{c}1-bear2.png").write_bytes(b"x")
    return root


def test_scan_layout_errors(tmp_path):
    with pytest.raises(DatasetLayoutError, match=r"does-not-exist does not exist.*cue-conflict.tar.gz"):
        scan_cue_conflict(tmp_path / "does-not-exist")
    root = _fake_tree(tmp_path / "data" / "cue-conflict")
    assert len(scan_cue_conflict(root)) == 16
    assert len(scan_cue_conflict(root.parent)) == 16  # the folder holding cue-conflict/ works too
    (root / "knife").rename(root / "knive")
    with pytest.raises(DatasetLayoutError, match=r"unknown folders: \['knive'\], missing folders: \['knife'\]"):
        scan_cue_conflict(root)
    (root / "knive").rename(root / "knife")
    (root / "cat" / "dog1-bear2.png").write_bytes(b"x")  # wrong shape prefix for its folder
    (root / "cat" / "cat1_bear2.png").write_bytes(b"x")  # no '-'
    with pytest.raises(DatasetLayoutError, match=r"cat: 2 entries .*\['cat1_bear2.png', 'dog1-bear2.png'\]"):
        scan_cue_conflict(root)


def test_check_complete_counts_per_class_and_bytes(tmp_path):
    png = tmp_path / "x.png"
    png.write_bytes(b"0123456789")
    full = [CueConflictEntry(png, c, "bear") for c in CATEGORIES for _ in range(80)]
    assert len(full) == CUE_CONFLICT_EXPECTED
    with pytest.raises(DatasetLayoutError, match=r"total 12,800 bytes, expected 136,489,547"):
        check_complete(full)
    lopsided = [*full[:-1], CueConflictEntry(png, "airplane", "bear")]
    with pytest.raises(DatasetLayoutError, match=r"80 images per class, found \{'airplane': 81, 'truck': 79\}"):
        check_complete(lopsided)
    assert CUE_CONFLICT_BYTES == 136_489_547


# ------------------------------------------------------------------------------------------------------- PUG
CLASS_MAP = {"Shirt": [841, 610], "Sweatshirt": [841], "Wolf": [269, 270, 271, 272], "Zebra": [340], "apple": [948]}
SHIRT, SWEATSHIRT, WOLF, ZEBRA, APPLE = range(5)


def test_pug_class_index_is_case_sensitive_sorted_order():
    assert pug_class_index(CLASS_MAP) == {"Shirt": 0, "Sweatshirt": 1, "Wolf": 2, "Zebra": 3, "apple": 4}
    assert pug_targets(["apple", "Zebra", "Shirt", "apple"], CLASS_MAP).tolist() == [4, 3, 0, 4]
    with pytest.raises(UnknownNameError, match=r"'wolf'.*Did you mean 'Wolf'"):
        pug_targets(["wolf"], CLASS_MAP)


def test_official_inverse_map_later_sorted_class_wins():
    inverse = official_inverse_map(CLASS_MAP)
    assert inverse.shape == (1000,)
    assert inverse[841] == SWEATSHIRT and inverse[610] == SHIRT
    assert inverse[269:273].tolist() == [WOLF] * 4 and inverse[340] == ZEBRA and inverse[948] == APPLE
    assert int((inverse == UNMAPPED).sum()) == 992 and UNMAPPED == -1


def test_shirt_sweatshirt_collision_official_vs_corrected():
    pred = np.array([841, 841, 610, 841, 270])
    true = np.array([SHIRT, SHIRT, SHIRT, SWEATSHIRT, WOLF])
    assert pug_correct(pred, true, CLASS_MAP, "official").tolist() == [False, False, True, True, True]
    assert pug_correct(pred, true, CLASS_MAP, "corrected").tolist() == [True, True, True, True, True]
    assert pug_correct(pred, true, CLASS_MAP).tolist() == [False, False, True, True, True]  # default: official
    # wrong class stays wrong in both variants
    assert pug_correct(np.array([841]), np.array([WOLF]), CLASS_MAP, "corrected").tolist() == [False]


def test_unmapped_prediction_always_wrong():
    pred = np.array([0, 999, 1, 500, 999])
    true = np.array([SHIRT, SWEATSHIRT, WOLF, ZEBRA, APPLE])
    for variant in ("official", "corrected"):
        assert not pug_correct(pred, true, CLASS_MAP, variant).any()


def _reference_official(pred: np.ndarray, true: np.ndarray, class_map: dict) -> float:
    """An independent rewrite of the official loop: dict inverse map, sentinel 999, accuracy in %."""
    inverse = {}
    for label, (_, indices) in enumerate(sorted(class_map.items())):
        for idx in indices:
            inverse[int(idx)] = label
    mapped = [inverse.get(int(p), 999) for p in pred]
    return 100.0 * sum(m == int(t) for m, t in zip(mapped, true, strict=True)) / len(true)


def test_pug_accuracies_match_reference_loop():
    rng = np.random.default_rng(1)
    mapped = np.array([841, 610, 269, 270, 271, 272, 340, 948])
    per_subset = {}
    for i, factor in enumerate(PUG_FACTORS):
        n = 20 + 7 * i
        pred = np.where(rng.random(n) < 0.7, rng.choice(mapped, n), rng.integers(0, 1000, n))
        per_subset[factor] = (pred, rng.integers(0, 5, n))
    result = pug_accuracies(per_subset, CLASS_MAP, "official")
    assert list(result) == [*PUG_FACTORS, "average"]
    for factor in PUG_FACTORS:
        assert result[factor] == pytest.approx(_reference_official(*per_subset[factor], CLASS_MAP))
    assert result["average"] == pytest.approx(np.mean([result[f] for f in PUG_FACTORS]))


def test_pug_average_is_unweighted_mean_not_pooled():
    per_subset = {f: (np.array([270, 0, 0]), np.array([WOLF, WOLF, WOLF])) for f in PUG_FACTORS}
    per_subset["Worlds"] = (np.array([270]), np.array([WOLF]))
    result = pug_accuracies(per_subset, CLASS_MAP, "official")
    assert result["Worlds"] == 100.0 and result["Scene_Light"] == pytest.approx(100 / 3)
    assert result["average"] == pytest.approx(40.0)  # (100 + 9 * 33.3) / 10
    pooled = 100.0 * (1 + 9) / (1 + 27)
    assert pooled == pytest.approx(35.714, abs=1e-3) and result["average"] != pytest.approx(pooled)


def test_pug_accuracies_variants_on_shirt_images():
    per_subset = {f: (np.array([841, 841]), np.array([SHIRT, SHIRT])) for f in PUG_FACTORS}
    assert pug_accuracies(per_subset, CLASS_MAP, "official")["average"] == 0.0
    assert pug_accuracies(per_subset, CLASS_MAP, "corrected")["average"] == 100.0


def test_pug_accuracies_errors():
    full = {f: (np.array([270]), np.array([WOLF])) for f in PUG_FACTORS}
    partial = {f: v for f, v in full.items() if f not in ("Scene_Light", "Worlds")}
    with pytest.raises(UserError, match=r"subsets \['Worlds', 'Scene_Light'\] are missing"):
        pug_accuracies(partial, CLASS_MAP)
    with pytest.raises(UnknownNameError, match=r"'Camera_pitch'.*Did you mean 'Camera_Pitch'"):
        pug_accuracies({**full, "Camera_pitch": full["Worlds"]}, CLASS_MAP)
    with pytest.raises(UnknownNameError, match=r"'fixed'.*corrected, official"):
        pug_accuracies(full, CLASS_MAP, "fixed")
    with pytest.raises(UserError, match="subset Worlds has no images"):
        pug_accuracies({**full, "Worlds": (np.array([], dtype=int), np.array([], dtype=int))}, CLASS_MAP)
    with pytest.raises(UserError, match=r"1-D and of equal length"):
        pug_correct(np.array([1, 2]), np.array([0]), CLASS_MAP)
    with pytest.raises(UserError, match=r"predicted ImageNet indices must be integers in -1..999"):
        pug_correct(np.array([1000]), np.array([0]), CLASS_MAP)
    with pytest.raises(UserError, match=r"PUG labels must be integers in 0..4"):
        pug_correct(np.array([270]), np.array([5]), CLASS_MAP)


def test_load_class_map(tmp_path):
    path = tmp_path / "class_to_imagenet_idx.json"
    with pytest.raises(UserError, match=r"class_to_imagenet_idx.json not found.*facebookresearch/PUG.*PUG_ImageNet/"):
        load_class_map(path)
    path.write_text(json.dumps(CLASS_MAP))
    assert load_class_map(path) == CLASS_MAP
    assert load_class_map(tmp_path) == CLASS_MAP  # the PUG root works too
    bad_cases = {
        '{"Wolf": [269,': "not valid JSON",
        '["Wolf"]': "non-empty JSON object",
        "{}": "non-empty JSON object",
        '{"Wolf": []}': r"'Wolf' maps to \[\]",
        '{"Wolf": [1000]}': r"'Wolf' maps to \[1000\].*0..999",
        '{"Wolf": ["269"]}': r"'Wolf' maps to \['269'\]",
        '{"Wolf": 269}': r"'Wolf' maps to 269",
    }
    for text, message in bad_cases.items():
        path.write_text(text)
        with pytest.raises(UserError, match=message) as info:
            load_class_map(path)
        assert str(path) in str(info.value)
