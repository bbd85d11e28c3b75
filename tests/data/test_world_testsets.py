"""The world's test sets (data/world/testsets.py): each a known change of the world, checked against that change."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from beyond_imagenet.base.errors import UnknownNameError, UserError
from beyond_imagenet.data import world as W
from beyond_imagenet.data.world import testsets as T

CONFIG = W.WorldConfig(rotation=(-30.0, 30.0))


def test_factor_flags_follow_the_rules():
    obj = W.ObjectFactors("star", "solid", "red", rotation=300.0, size=0.5)
    flags = T.factor_flags([W.ImageFactors((obj,), "plain", 1.2, 1), W.ImageFactors((obj, obj), "sky", 0.8, 0)])
    expected = {
        "pose": [True, True],  # 300 degrees is 60 from upright
        "pattern": [False, False],
        "smaller": [True, True],
        "larger": [False, False],
        "darker": [False, True],
        "brighter": [True, False],
        "object_blocking": [True, False],
        "multiple_objects": [False, True],
        "background": [False, True],
    }
    assert {k: v.tolist() for k, v in flags.items()} == expected
    assert set(flags) == set(T.FLAG_RULES)


def test_sweep_changes_only_the_swept_factor():
    _, factors = W.generate(CONFIG, 6, seed=1)
    swept = T.sweep(factors, "background", ["plain", "brick"], 32)
    assert swept.shape == (2, 6, 32, 32, 3)
    same = [W.render(W.change(f, background="plain"), 32) for f in factors]
    assert np.array_equal(swept[0], np.stack(same))
    assert not np.array_equal(swept[0], swept[1])


def test_cue_conflict_pairs_every_shape_with_every_other_class_texture():
    images, shapes, textures = T.cue_conflict(CONFIG, 112, seed=2)
    assert images.shape == (112, 32, 32, 3) and (shapes != textures).all()
    pairs, counts = np.unique(np.stack([shapes, textures], 1), axis=0, return_counts=True)
    assert len(pairs) == 56 and (counts == 2).all()
    _, scenes = W.generate(CONFIG, 112, seed=2)
    first = W.change(scenes[0], shape=W.SHAPES[shapes[0]], texture=W.TEXTURES[textures[0]])
    assert np.array_equal(images[0], W.render(first, 32))


def test_sketches_are_grey_outlines_and_renditions_flat_colour():
    _, factors = W.generate(CONFIG, 8, seed=3)
    sketches = T.sketch(factors, 32).astype(int)
    assert (np.ptp(sketches, axis=3) == 0).all()  # grey only: colour and texture are gone
    dark = (sketches[..., 0] < 128).mean(axis=(1, 2))
    assert (dark > 0.02).all() and (dark < 0.4).all()  # an outline, not a filled shape
    art = T.rendition(factors, 32, seed=0)
    for image in art:
        solid = np.abs(image.astype(int) - 255).max(axis=2) > 200  # not white
        _, counts = np.unique(image[solid], axis=0, return_counts=True)
        assert solid.mean() > 0.03 and counts.max() > 0.8 * solid.sum()  # one flat colour (and anti-aliased edges)


@pytest.mark.parametrize("corruption", sorted(T.CORRUPTIONS))
def test_corruptions_grow_with_severity(corruption):
    images, _ = W.generate(CONFIG, 16, seed=4)
    change = [np.abs(T.corrupt(images, corruption, s, seed=0).astype(float) - images).mean() for s in range(1, 6)]
    assert all(a < b for a, b in itertools.pairwise(change)), change


def test_contrast_and_noise_use_the_imagenet_c_constants():
    images, _ = W.generate(CONFIG, 16, seed=5)
    x = images.astype(float)
    low = T.corrupt(images, "contrast", 5, seed=0).astype(float)
    assert np.std(low, axis=(1, 2, 3)) == pytest.approx(0.05 * np.std(x, axis=(1, 2, 3)), abs=0.6)
    grey = np.full((64, 32, 32, 3), 128, np.uint8)
    noisy = T.corrupt(grey, "gaussian_noise", 3, seed=0).astype(float) / 255
    assert noisy.std() == pytest.approx(0.18, rel=0.03)


def test_bad_corruption_requests_are_refused():
    images = np.zeros((1, 32, 32, 3), np.uint8)
    with pytest.raises(UnknownNameError, match="Did you mean 'contrast'"):
        T.corrupt(images, "contrst", 1, seed=0)
    with pytest.raises(UserError, match="severity"):
        T.corrupt(images, "contrast", 6, seed=0)


def test_the_suite_writes_every_set_with_its_factors(tmp_path):
    from beyond_imagenet.data.world.folders import read_factors
    from beyond_imagenet.data.world.suite import ROTATIONS, write_world_suite

    counts = write_world_suite(tmp_path, CONFIG, 32, seed=6, rare_fraction=0.25)
    assert counts == {"val": 32, "v2": 32, "sketch": 32, "rendition": 32, "corruptions": 4 * 5 * 32,
                      "rotation": len(ROTATIONS) * 32, "cue_conflict": 32}  # fmt: skip
    val = read_factors(tmp_path / "val")
    turned = [f for f in val.values() if abs((f.objects[0].rotation + 180) % 360 - 180) > 30]
    assert 3 <= len(turned) <= 8  # only the rare part (8 images) leaves the training rotations (+-30)
    assert sum(len(f.objects) > 1 for f in val.values()) <= 8
    assert {f.objects[0].rotation for f in read_factors(tmp_path / "rotation" / "90").values()} == {90.0}
    conflicts = read_factors(tmp_path / "cue_conflict").values()
    assert all(W.TEXTURES.index(f.objects[0].texture) != f.label for f in conflicts)  # the texture of another class
    for folder in ("val", "v2", "sketch", "rendition", "rotation/0", "rotation/180", "cue_conflict"):
        assert all(name.split("/")[0] == f.objects[0].shape for name, f in read_factors(tmp_path / folder).items())
    assert len(list((tmp_path / "corruptions" / "contrast" / "5").rglob("*.png"))) == 32
    stamps = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()}
    write_world_suite(tmp_path, CONFIG, 32, seed=6, rare_fraction=0.25)
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()} == stamps  # a rerun is a no-op
