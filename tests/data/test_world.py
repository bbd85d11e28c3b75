"""The procedural world (data/world.py): seeded, factor-faithful renders with known geometry.

Known truths: a shape's rendered area equals its polygon's area, symmetric shapes are unchanged by their symmetry
rotations, changing one factor leaves the pixels it does not own alone, and the caption says the factors.
"""

from __future__ import annotations

import numpy as np
import pytest

from beyond_imagenet.base.errors import UnknownNameError, UserError
from beyond_imagenet.data import world as W

N = 64  # render size for geometry checks: big enough for areas within a few percent
PLAIN = W.ImageFactors((W.ObjectFactors("circle", "solid", "white", 0.0, 0.6),), "plain", 1.0, 0, seed=3)


def _object_mask(image: np.ndarray) -> np.ndarray:
    """Pixels that differ from the plain grey background (anti-aliased edges count as half)."""
    distance = np.abs(image.astype(float) - np.array(W.PLAIN_GREY)).max(axis=2)
    return np.clip(distance / (245 - W.PLAIN_GREY[0]), 0.0, 1.0)


def _area_fraction(shape: str, size: float = 0.6, rotation: float = 0.0) -> float:
    image = W.render_with(PLAIN, N, shape=shape, size=size, rotation=rotation)
    return float(_object_mask(image).sum()) / N**2


def _polygon_area(points: np.ndarray) -> float:
    x, y = points[:, 0], points[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))))


@pytest.mark.parametrize("shape", W.SHAPES)
def test_rendered_area_is_the_polygon_area(shape):
    size = 0.6  # circumscribed diameter, as a fraction of the side
    expected = _polygon_area(W.base_polygon(shape)) * (size / 2) ** 2
    assert _area_fraction(shape, size) == pytest.approx(expected, rel=0.04)


def test_known_areas_circle_and_square():
    r = 0.3  # radius as a fraction of the side at size 0.6
    assert _area_fraction("circle") == pytest.approx(np.pi * r**2, rel=0.03)
    assert _area_fraction("square") == pytest.approx(2 * r**2, rel=0.03)


@pytest.mark.parametrize(("shape", "turn"), [("square", 90), ("cross", 90), ("circle", 45)])
def test_symmetry_rotations_leave_the_image_unchanged(shape, turn):
    a = W.render_with(PLAIN, N, shape=shape).astype(int)
    b = W.render_with(PLAIN, N, shape=shape, rotation=turn).astype(int)
    assert np.abs(a - b).max() <= 8  # anti-aliasing only
    if shape != "circle":
        c = W.render_with(PLAIN, N, shape=shape, rotation=turn / 2).astype(int)
        assert np.abs(a - c).max() > 100  # half the turn is a different image


def test_size_is_the_circumscribed_diameter():
    image = W.render_with(PLAIN, N, size=0.5)
    columns = _object_mask(image).sum(axis=0)
    assert float(columns.max()) == pytest.approx(0.5 * N, abs=1.0)  # circle: tallest column = diameter


def test_position_moves_the_object():
    mask = _object_mask(W.render_with(PLAIN, N, size=0.3, x=0.25, y=0.75))
    rows, cols = np.nonzero(mask > 0.5)
    assert cols.mean() == pytest.approx(0.25 * N - 0.5, abs=0.6)
    assert rows.mean() == pytest.approx(0.75 * N - 0.5, abs=0.6)


def test_brightness_scales_every_pixel():
    image = W.render(PLAIN, N).astype(float)
    dim = W.render_with(PLAIN, N, brightness=0.5).astype(float)
    assert np.abs(dim - image * 0.5).max() <= 1.0


def test_changing_the_texture_only_touches_the_object():
    factors = W.change(PLAIN, colour="red", background="grass")
    solid, stripes = W.render(factors, N), W.render_with(factors, N, texture="stripes")
    outside = _object_mask(W.render(PLAIN, N)) == 0
    assert np.array_equal(solid[outside], stripes[outside])
    assert not np.array_equal(solid, stripes)


def test_changing_the_background_only_touches_the_background():
    inside = _object_mask(W.render(PLAIN, N)) == 1
    grass, brick = W.render_with(PLAIN, N, background="grass"), W.render_with(PLAIN, N, background="brick")
    assert np.array_equal(grass[inside], brick[inside])
    assert not np.array_equal(grass, brick)


def test_occluders_cover_a_little_of_the_image_in_grey():
    image = W.render_with(PLAIN, N, occluders=2, background="sky")
    grey = (np.abs(image.astype(int) - np.array(W.OCCLUDER_GREY)).max(axis=2) <= 2).mean()
    assert 0.03 < grey < 0.16  # two bars of at most ~7% each


def test_generate_is_seeded_and_balanced():
    config = W.WorldConfig()
    a, fa = W.generate(config, 24, seed=7)
    b, fb = W.generate(config, 24, seed=7)
    c, _ = W.generate(config, 24, seed=8)
    assert np.array_equal(a, b) and fa == fb and not np.array_equal(a, c)
    assert [f.label for f in fa] == [i % 8 for i in range(24)]
    assert a.shape == (24, 32, 32, 3) and a.dtype == np.uint8


def test_render_is_a_pure_function_of_the_recorded_factors():
    images, factors = W.generate(W.WorldConfig(max_objects=3, max_occluders=2), 12, seed=1)
    for image, f in zip(images, factors, strict=True):
        again = W.ImageFactors.from_dict(f.as_dict())
        assert again == f and np.array_equal(W.render(again, 32), image)


def test_factors_follow_the_config_distributions():
    config = W.WorldConfig(rotation=(-30.0, 30.0), size=(0.5, 0.7), backgrounds=("sky", "sand"), max_objects=1)
    _, factors = W.generate(config, 400, seed=2)
    rotations = np.array([(f.objects[0].rotation + 180) % 360 - 180 for f in factors])
    assert rotations.min() >= -30 and rotations.max() <= 30 and rotations.std() == pytest.approx(60 / 12**0.5, rel=0.1)
    assert all(0.5 <= f.objects[0].size <= 0.7 for f in factors)
    assert {f.background for f in factors} == {"sky", "sand"}
    assert all(0.7 <= f.brightness <= 1.3 and f.occluders in (0, 1) for f in factors)


def test_several_objects_share_shape_and_stay_in_the_image():  # (a single one is jittered about the centre)
    _, factors = W.generate(W.WorldConfig(max_objects=4), 200, seed=4)
    counts = [len(f.objects) for f in factors]
    assert set(counts) == {1, 2, 3, 4}
    for f in factors:
        assert len({(o.shape, o.texture, o.colour, o.size) for o in f.objects}) == 1
        inside = all(min(o.x, o.y) >= o.size / 2 and max(o.x, o.y) <= 1 - o.size / 2 for o in f.objects)
        assert len(f.objects) == 1 or inside


def test_tied_cues_are_a_function_of_the_class():
    _, factors = W.generate(W.WorldConfig(texture_tied_to_class=True, colour_tied_to_class=True), 64, seed=5)
    for f in factors:
        assert f.objects[0].texture == W.TEXTURES[f.label]
        assert f.objects[0].colour == list(W.COLOURS)[f.label]
    _, free = W.generate(W.WorldConfig(), 800, seed=5)
    assert len({(f.label, f.objects[0].texture) for f in free}) == 64  # every pairing occurs


def test_caption_says_the_factors():
    one = W.change(PLAIN, shape="triangle", colour="red", texture="stripes", size=0.3, background="grass")
    assert W.caption(one) == "a small red striped triangle on a grass background"
    objects = (W.ObjectFactors("star", "dots", "blue", size=0.7),) * 3
    assert W.caption(W.ImageFactors(objects, "sky")) == "three large blue dotted stars on a sky background"
    assert W.ImageFactors(objects, "sky").as_dict()["count"] == 3
    assert W.caption(one, mention={"texture", "background"}) == "a striped triangle on a grass background"
    assert W.caption(one, mention=set()) == "a triangle"
    with pytest.raises(UnknownNameError, match="Did you mean 'colour'"):
        W.caption(one, mention={"color"})


def test_bad_names_and_ranges_are_refused_with_the_fix():
    with pytest.raises(UnknownNameError, match="Did you mean 'stripes'"):
        W.WorldConfig(textures=("stripe",))
    with pytest.raises(UserError, match="rotation"):
        W.WorldConfig(rotation=(30.0, -30.0))
    with pytest.raises(UnknownNameError, match="factor"):
        W.change(PLAIN, colur="red")
    with pytest.raises(UserError, match="class index"):
        W.sample_factors(np.random.default_rng(0), W.WorldConfig(), label=8)
