"""Rendering the procedural world: ``render`` is a pure function of an image's factors (same factors, same bytes).

Shapes are polygons drawn at 4x resolution and box-downsampled, so they stay recognisable at 32 px; ``size`` is the
diameter of the circle about the shape's bounding-box centre that holds it. Textures, backgrounds and occluders
are procedural, seeded by the image's own ``seed`` from independent streams, so changing one factor never moves another.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache, lru_cache
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from beyond_imagenet.base.errors import UnknownNameError
from beyond_imagenet.data.world.factors import (
    BACKGROUNDS,
    COLOURS,
    SHAPES,
    TEXTURES,
    ImageFactors,
    ObjectFactors,
    WorldConfig,
    change,
    sample_factors,
)

PLAIN_GREY = (118, 118, 118)
OCCLUDER_GREY = (88, 88, 88)
SUPERSAMPLE = 4
_CROSS = (-1, -3, 1, -3, 1, -1, 3, -1, 3, 1, 1, 1, 1, 3, -1, 3, -1, 1, -3, 1, -3, -1, -1, -1)  # plus sign, arms 2 wide
_ARROW = (-1, -0.28, 0.15, -0.28, 0.15, -0.7, 1, 0, 0.15, 0.7, 0.15, 0.28, -1, 0.28)  # pointing right


# --------------------------------------------------------------------------------------------------------- rendering


def _regular(n: int, inner: float | None = None, phase: float = -np.pi / 2) -> np.ndarray:
    """Vertices of a regular n-gon (a star when ``inner`` radius is given), first vertex pointing up."""
    k = 2 * n if inner else n
    t = phase + np.arange(k) * 2 * np.pi / k
    r = np.where(np.arange(k) % 2 == 1, inner, 1.0) if inner else np.ones(k)
    return np.stack([r * np.cos(t), r * np.sin(t)], axis=1)


def _crescent() -> np.ndarray:
    """A waxing moon: the unit circle minus a circle of radius 0.85 centred 0.5 to the right (opening right)."""
    outer = np.deg2rad(np.linspace(58.2, 301.8, 48))
    inner = np.deg2rad(np.linspace(271.9, 88.1, 40))
    arc_out = np.stack([np.cos(outer), np.sin(outer)], 1)
    arc_in = np.stack([0.5 + 0.85 * np.cos(inner), 0.85 * np.sin(inner)], 1)
    return np.concatenate([arc_out, arc_in])


def _heart() -> np.ndarray:
    t = np.linspace(0.0, 2 * np.pi, 96, endpoint=False)
    return np.stack([16 * np.sin(t) ** 3, -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))], 1)


@cache
def base_polygon(shape: str) -> np.ndarray:
    """Unrotated vertices (K, 2) of ``shape`` in image orientation (y down), bounding box centred, circumradius 1."""
    polygons = {
        "circle": lambda: _regular(64),
        "square": lambda: _regular(4, phase=np.pi / 4),
        "triangle": lambda: _regular(3),
        "star": lambda: _regular(5, inner=0.42),
        "cross": lambda: np.reshape(_CROSS, (-1, 2)).astype(float),
        "crescent": _crescent,
        "heart": _heart,
        "arrow": lambda: np.reshape(_ARROW, (-1, 2)).astype(float),
    }
    if shape not in polygons:
        raise UnknownNameError("shape", shape, SHAPES)
    pts = polygons[shape]()
    pts = pts - (pts.min(0) + pts.max(0)) / 2.0
    pts = pts / np.hypot(pts[:, 0], pts[:, 1]).max()
    pts.setflags(write=False)
    return pts


def _mask(polygon: np.ndarray, n: int) -> np.ndarray:
    """Anti-aliased coverage (n, n, 1) float32 of a polygon given in pixel coordinates of an n-px image."""
    big = Image.new("L", (n * SUPERSAMPLE, n * SUPERSAMPLE), 0)
    ImageDraw.Draw(big).polygon((polygon * SUPERSAMPLE).ravel().tolist(), fill=255)
    small = big.resize((n, n), Image.BOX)
    return (np.asarray(small, dtype=np.float32) * (1.0 / 255.0))[:, :, None]


def placed_polygon(obj: ObjectFactors, n: int) -> np.ndarray:
    """The object's polygon in pixel coordinates of an n-px image: rotated (clockwise on screen), scaled, moved."""
    t = np.deg2rad(obj.rotation)
    c, s = np.cos(t), np.sin(t)
    rotated = base_polygon(obj.shape) @ np.array([[c, s], [-s, c]])  # clockwise on screen (y down)
    return rotated * (obj.size * n / 2.0) + np.array([obj.x * n, obj.y * n])


@lru_cache(maxsize=64)
def _coords(n: int, supersample: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates (v rows, u columns) in units of a 32-px image, so patterns scale with the image."""
    m = n * supersample
    axis = (np.arange(m, dtype=np.float32) + 0.5) * (32.0 / m)
    return axis[:, None], axis[None, :]


@lru_cache(maxsize=64)
def _pattern(texture: str, n: int) -> np.ndarray:
    """Deterministic texture pattern (n, n, 1) in [0, 1], drawn at 4x and box-downsampled; 1 = the alternate tone."""
    v, u = _coords(n, SUPERSAMPLE)
    patterns = {
        "solid": lambda: np.zeros_like(u + v),
        "stripes": lambda: ((u + v) // 3.0) % 2,
        "dots": lambda: (((u % 5.0) - 2.5) ** 2 + ((v % 5.0) - 2.5) ** 2 < 1.5**2).astype(np.float32),
        "checker": lambda: ((u // 3.5) + (v // 3.5)) % 2,
        "waves": lambda: ((v + 1.6 * np.sin(u * (2 * np.pi / 9.0))) // 2.5) % 2,
        "grid": lambda: (((u % 5.0) < 1.4) | ((v % 5.0) < 1.4)).astype(np.float32),
        "rings": lambda: (np.hypot(u - 16.0, v - 16.0) // 2.0) % 2,
    }
    if texture not in patterns:
        raise UnknownNameError("texture", texture, TEXTURES)
    big = np.broadcast_to(patterns[texture](), (n * SUPERSAMPLE,) * 2).astype(np.float32)
    small = big.reshape(n, SUPERSAMPLE, n, SUPERSAMPLE).mean(axis=(1, 3))[:, :, None]
    small.setflags(write=False)
    return small


def _fill(obj: ObjectFactors, n: int, seed: int, index: int) -> np.ndarray:
    """The object's texture in its colour: the colour, and a darker (or, for dark colours, lighter) alternate tone."""
    if obj.colour not in COLOURS:
        raise UnknownNameError("colour", obj.colour, tuple(COLOURS))
    colour = np.array(COLOURS[obj.colour], np.float32)
    alternate = colour * 0.45 if colour.mean() > 60 else colour + (255.0 - colour) * 0.5
    if obj.texture == "noise":
        p = (np.random.default_rng((seed, 2 + index)).random((n, n, 1), np.float32) < 0.45).astype(np.float32)
    else:
        p = _pattern(obj.texture, n)
    return colour + p * (alternate - colour)


def _background(name: str, n: int, seed: int) -> np.ndarray:
    """Cheap procedural background (n, n, 3) float32; its colours never equal a shape colour exactly."""
    rng = np.random.default_rng((seed, 0))
    v, u = _coords(n)
    if name == "plain":
        return np.broadcast_to(np.array(PLAIN_GREY, np.float32), (n, n, 3))
    if name == "grass":
        streaks = rng.normal(0.0, 1.0, (1, n, 1)).astype(np.float32) * 22.0
        return np.array([62, 122, 44], np.float32) + streaks * [0.4, 1.0, 0.3] + rng.normal(0, 9, (n, n, 1))
    if name == "sky":
        t = (v / 32.0)[:, :, None] * np.ones((1, n, 1), np.float32)
        return np.array([96, 150, 228], np.float32) + t * np.array([100, 78, 24], np.float32)
    if name == "sand":
        return np.array([204, 178, 124], np.float32) + rng.normal(0.0, 11.0, (n, n, 1)).astype(np.float32)
    if name == "brick":
        row = v // 4.0
        shifted = u + (row % 2) * 4.0
        mortar = ((v % 4.0) < 0.9) | ((shifted % 8.0) < 0.9)
        tone = rng.normal(0.0, 10.0, (9, 6)).astype(np.float32)[(row % 9).astype(int), (shifted // 8.0).astype(int) % 6]
        brick = np.array([150, 66, 46], np.float32) + tone[:, :, None] * [1.0, 0.5, 0.4]
        return np.where(mortar[:, :, None], np.array([186, 178, 166], np.float32), brick)
    raise UnknownNameError("background", name, BACKGROUNDS)


def _occluder(rng: np.random.Generator, n: int) -> np.ndarray:
    """A grey bar of random orientation: length 0.9 and width 0.05-0.075 of the side (at most ~7% of the image)."""
    cx, cy = rng.uniform(0.25, 0.75, 2)
    angle = rng.uniform(0.0, np.pi)
    half_width = rng.uniform(0.025, 0.0375)
    along, across = np.array([np.cos(angle), np.sin(angle)]), np.array([-np.sin(angle), np.cos(angle)])
    signs = np.array([(-1, -1), (1, -1), (1, 1), (-1, 1)], np.float64)
    corners = np.array([cx, cy]) + signs[:, :1] * 0.45 * along + signs[:, 1:] * half_width * across
    return _mask(corners * n, n)


def render(factors: ImageFactors, image_size: int) -> np.ndarray:
    """The image (image_size, image_size, 3) uint8 of ``factors``; deterministic (same factors, same bytes)."""
    n = image_size
    image = _background(factors.background, n, factors.seed).astype(np.float32, copy=True)
    for index, obj in enumerate(factors.objects):
        alpha = _mask(placed_polygon(obj, n), n)
        image += alpha * (_fill(obj, n, factors.seed, index) - image)
    if factors.occluders:
        rng = np.random.default_rng((factors.seed, 1))
        for _ in range(factors.occluders):
            image += _occluder(rng, n) * (np.array(OCCLUDER_GREY, np.float32) - image)
    image *= factors.brightness
    return np.clip(image + 0.5, 0.0, 255.0).astype(np.uint8)


def render_all(factors: Sequence[ImageFactors], image_size: int) -> np.ndarray:
    """[n, H, W, 3] uint8: ``render`` of each image's factors."""
    return np.stack([render(f, image_size) for f in factors])


def render_with(factors: ImageFactors, image_size: int, **changes: Any) -> np.ndarray:
    """Re-render with some factors changed (see ``change``), e.g. ``rotation=90`` or ``texture="dots"``."""
    return render(change(factors, **changes), image_size)


def generate(config: WorldConfig, n: int, seed: int, balanced: bool = True) -> tuple[np.ndarray, list[ImageFactors]]:
    """``n`` images (N, H, W, 3) uint8 and their factors; seeded: the same seed gives the same bytes.

    Labels cycle through ``config.shapes`` in order when ``balanced``, else each is drawn uniformly from them.
    """
    rng = np.random.default_rng(seed)
    side = config.image_size
    images = np.empty((n, side, side, 3), np.uint8)
    factors: list[ImageFactors] = []
    for i in range(n):
        label = SHAPES.index(config.shapes[i % len(config.shapes)]) if balanced else None
        factors.append(sample_factors(rng, config, label))
        images[i] = render(factors[-1], side)
    return images, factors
