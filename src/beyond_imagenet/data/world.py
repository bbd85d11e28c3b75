"""A seeded procedural image world for controlled shape-versus-cue experiments (numpy + Pillow, no downloads).

The class of an image is the SHAPE of its labelled object (``SHAPES``, class index = position). Every other factor
(texture, colour, rotation, size, position, background, brightness, occluders, number of objects) is drawn per image
from the distributions of a ``WorldConfig`` and recorded in ``ImageFactors``, so an experiment can train on one
distribution, test on another and vary one factor at a time (``render_with``). ``render`` is a pure function of the
factors: the same factors give the same bytes. Shapes are drawn as polygons at 4x resolution and box-downsampled, so
they stay recognisable at 32 px; ``size`` is the diameter of a shape's circumscribed circle.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from beyond_imagenet.base.errors import UnknownNameError, UserError

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star", "cross", "hexagon", "heart", "arrow")
TEXTURES: tuple[str, ...] = ("solid", "stripes", "dots", "checker", "waves", "noise")
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 170, 50),
    "blue": (40, 70, 220),
    "yellow": (240, 210, 30),
    "purple": (140, 50, 190),
    "orange": (250, 130, 20),
    "white": (245, 245, 245),
    "black": (15, 15, 15),
}
BACKGROUNDS: tuple[str, ...] = ("plain", "grass", "sky", "sand", "brick")

TEXTURE_WORDS = {"solid": "plain", "stripes": "striped", "dots": "dotted", "checker": "checkered", "waves": "wavy"}
TEXTURE_WORDS["noise"] = "speckled"
PLAIN_GREY = (118, 118, 118)
OCCLUDER_GREY = (88, 88, 88)
_SUPERSAMPLE = 4
_NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
_CROSS = (-1, -3, 1, -3, 1, -1, 3, -1, 3, 1, 1, 1, 1, 3, -1, 3, -1, 1, -3, 1, -3, -1, -1, -1)  # plus sign, arms 2 wide
_ARROW = (-1, -0.28, 0.15, -0.28, 0.15, -0.7, 1, 0, 0.15, 0.7, 0.15, 0.28, -1, 0.28)  # pointing right
_SHARED = ("shape", "texture", "colour", "size")  # object factors every object of an image shares


@dataclass(frozen=True)
class ObjectFactors:
    """One drawn object: its shape (the class), texture, colour, rotation (degrees), size and centre (fractions)."""

    shape: str
    texture: str
    colour: str
    rotation: float = 0.0
    size: float = 0.6
    x: float = 0.5
    y: float = 0.5


@dataclass(frozen=True)
class ImageFactors:
    """Every factor of one image; ``objects[0]`` is labelled and all objects share its shape, texture, colour, size.

    ``seed`` seeds the image's own randomness (background noise, speckle texture, occluder placement), drawn from
    independent streams so changing one factor never moves another.
    """

    objects: tuple[ObjectFactors, ...]
    background: str
    brightness: float = 1.0
    occluders: int = 0
    seed: int = 0

    @property
    def label(self) -> int:
        """Class index of the labelled object: its position in ``SHAPES``."""
        return SHAPES.index(self.objects[0].shape)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready record of every factor, plus the label, object count and caption."""
        objects = [
            {k: (float(v) if isinstance(v, float) else v) for k, v in dataclasses.asdict(o).items()}
            for o in self.objects
        ]
        return {
            "label": self.label,
            "shape": self.objects[0].shape,
            "count": len(self.objects),
            "objects": objects,
            "background": self.background,
            "brightness": float(self.brightness),
            "occluders": int(self.occluders),
            "seed": int(self.seed),
            "caption": caption(self),
        }

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> ImageFactors:
        """Inverse of ``as_dict`` (derived keys such as the caption are ignored)."""
        objects = tuple(ObjectFactors(**o) for o in record["objects"])
        return cls(objects, record["background"], record["brightness"], record["occluders"], record["seed"])


def _check_names(kind: str, names: tuple[str, ...], known: tuple[str, ...]) -> None:
    if not names:
        raise UserError(f"WorldConfig: no {kind} to draw from")
    for name in names:
        if name not in known:
            raise UnknownNameError(kind, name, known)


def _check_range(name: str, bounds: tuple[float, float], lo: float, hi: float) -> None:
    if not lo <= bounds[0] <= bounds[1] <= hi:
        raise UserError(f"WorldConfig.{name}={bounds!r}: need {lo} <= low <= high <= {hi}")


@dataclass(frozen=True)
class WorldConfig:
    """Distributions of every factor; defaults = the training distribution.

    Ranges are uniform ``(low, high)``. ``position_jitter``: a single object's centre is uniform in ``0.5 +- jitter``.
    With ``max_objects > 1`` the count is uniform in ``1..max_objects``; several objects are smaller (size scaled by
    ``1 / (1 + (count - 1) / 2)``) and placed apart. ``texture_tied_to_class`` / ``colour_tied_to_class`` make the
    cue a function of the label (``TEXTURES[label % 6]``, ``list(COLOURS)[label % 8]``) instead of independent of it.
    """

    image_size: int = 32
    shapes: tuple[str, ...] = SHAPES
    textures: tuple[str, ...] = TEXTURES
    colours: tuple[str, ...] = tuple(COLOURS)
    backgrounds: tuple[str, ...] = BACKGROUNDS
    rotation: tuple[float, float] = (0.0, 360.0)
    size: tuple[float, float] = (0.45, 0.8)
    position_jitter: float = 0.15
    brightness: tuple[float, float] = (0.7, 1.3)
    max_occluders: int = 1
    max_objects: int = 1
    texture_tied_to_class: bool = False
    colour_tied_to_class: bool = False

    def __post_init__(self) -> None:
        for kind, names, known in (
            ("shape", self.shapes, SHAPES),
            ("texture", self.textures, TEXTURES),
            ("colour", self.colours, tuple(COLOURS)),
            ("background", self.backgrounds, BACKGROUNDS),
        ):
            _check_names(kind, names, known)
        _check_range("rotation", self.rotation, -720.0, 720.0)
        _check_range("size", self.size, 0.05, 1.0)
        _check_range("brightness", self.brightness, 0.0, 4.0)
        if self.image_size < 8 or not 0.0 <= self.position_jitter <= 0.5:
            raise UserError("WorldConfig: need image_size >= 8 and 0 <= position_jitter <= 0.5")
        if not 0 <= self.max_occluders <= 2 or not 1 <= self.max_objects <= 9:
            raise UserError("WorldConfig: need 0 <= max_occluders <= 2 and 1 <= max_objects <= 9")


# ---------------------------------------------------------------------------------------------------------- sampling


def _place(rng: np.random.Generator, count: int, radius: float, jitter: float) -> list[tuple[float, float]]:
    """Centres: one object jittered about the middle, several kept inside the image and (mostly) apart."""
    if count == 1:
        return [(0.5 + rng.uniform(-jitter, jitter), 0.5 + rng.uniform(-jitter, jitter))]
    lo, hi = min(radius, 0.5), max(1.0 - radius, 0.5)
    centres: list[tuple[float, float]] = []
    for _ in range(count):
        for _attempt in range(100):
            cx, cy = rng.uniform(lo, hi), rng.uniform(lo, hi)
            if all(np.hypot(cx - px, cy - py) >= 1.8 * radius for px, py in centres):
                break
        centres.append((cx, cy))
    return centres


def sample_factors(rng: np.random.Generator, config: WorldConfig, label: int | None = None) -> ImageFactors:
    """Draw one image's factors from ``config``; ``label`` (an index into ``SHAPES``) fixes the class."""
    if label is None:
        label = SHAPES.index(config.shapes[rng.integers(len(config.shapes))])
    if not 0 <= label < len(SHAPES):
        raise UserError(f"label {label} is not a class index (0..{len(SHAPES) - 1})")
    count = int(rng.integers(1, config.max_objects + 1))
    texture = config.textures[rng.integers(len(config.textures))]
    colour = config.colours[rng.integers(len(config.colours))]
    texture = TEXTURES[label % len(TEXTURES)] if config.texture_tied_to_class else texture
    colour = tuple(COLOURS)[label % len(COLOURS)] if config.colour_tied_to_class else colour
    size = float(rng.uniform(*config.size)) / (1.0 + (count - 1) / 2.0)
    centres = _place(rng, count, size / 2.0, config.position_jitter)
    objects = tuple(
        ObjectFactors(
            SHAPES[label], texture, colour, float(rng.uniform(*config.rotation)) % 360.0, size, float(cx), float(cy)
        )
        for cx, cy in centres
    )
    background = config.backgrounds[rng.integers(len(config.backgrounds))]
    brightness = float(rng.uniform(*config.brightness))
    occluders = int(rng.integers(0, config.max_occluders + 1))
    return ImageFactors(objects, background, brightness, occluders, int(rng.integers(0, 2**31 - 1)))


# --------------------------------------------------------------------------------------------------------- rendering


def _regular(n: int, inner: float | None = None, phase: float = -np.pi / 2) -> np.ndarray:
    """Vertices of a regular n-gon (a star when ``inner`` radius is given), first vertex pointing up."""
    k = 2 * n if inner else n
    t = phase + np.arange(k) * 2 * np.pi / k
    r = np.where(np.arange(k) % 2 == 1, inner, 1.0) if inner else np.ones(k)
    return np.stack([r * np.cos(t), r * np.sin(t)], axis=1)


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
        "hexagon": lambda: _regular(6, phase=0.0),
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
    big = Image.new("L", (n * _SUPERSAMPLE, n * _SUPERSAMPLE), 0)
    ImageDraw.Draw(big).polygon((polygon * _SUPERSAMPLE).ravel().tolist(), fill=255)
    small = big.resize((n, n), Image.BOX)
    return (np.asarray(small, dtype=np.float32) * (1.0 / 255.0))[:, :, None]


def _placed(obj: ObjectFactors, n: int) -> np.ndarray:
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
    v, u = _coords(n, _SUPERSAMPLE)
    patterns = {
        "solid": lambda: np.zeros_like(u + v),
        "stripes": lambda: ((u + v) // 3.0) % 2,
        "dots": lambda: (((u % 5.0) - 2.5) ** 2 + ((v % 5.0) - 2.5) ** 2 < 1.5**2).astype(np.float32),
        "checker": lambda: ((u // 3.5) + (v // 3.5)) % 2,
        "waves": lambda: ((v + 1.6 * np.sin(u * (2 * np.pi / 9.0))) // 2.5) % 2,
    }
    if texture not in patterns:
        raise UnknownNameError("texture", texture, TEXTURES)
    big = np.broadcast_to(patterns[texture](), (n * _SUPERSAMPLE,) * 2).astype(np.float32)
    small = big.reshape(n, _SUPERSAMPLE, n, _SUPERSAMPLE).mean(axis=(1, 3))[:, :, None]
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
        alpha = _mask(_placed(obj, n), n)
        image += alpha * (_fill(obj, n, factors.seed, index) - image)
    if factors.occluders:
        rng = np.random.default_rng((factors.seed, 1))
        for _ in range(factors.occluders):
            image += _occluder(rng, n) * (np.array(OCCLUDER_GREY, np.float32) - image)
    image *= factors.brightness
    return np.clip(image + 0.5, 0.0, 255.0).astype(np.uint8)


def change(factors: ImageFactors, **changes: Any) -> ImageFactors:
    """``factors`` with some factors changed, for one-factor-at-a-time sweeps and cue conflict.

    Image factors (``background``, ``brightness``, ``occluders``, ``seed``) and those of ``objects[0]`` can change;
    ``shape``, ``texture``, ``colour`` and ``size`` change on every object (they are
    shared, so counting stays well defined), ``rotation``, ``x`` and ``y`` on ``objects[0]`` only.
    """
    image_fields = {f.name for f in dataclasses.fields(ImageFactors)} - {"objects"}
    object_fields = {f.name for f in dataclasses.fields(ObjectFactors)}
    unknown = set(changes) - image_fields - object_fields
    if unknown:
        raise UnknownNameError("factor", sorted(unknown)[0], sorted(image_fields | object_fields))
    shared = {k: v for k, v in changes.items() if k in _SHARED}
    own = {k: v for k, v in changes.items() if k in object_fields}
    objects = tuple(dataclasses.replace(o, **(own if i == 0 else shared)) for i, o in enumerate(factors.objects))
    return dataclasses.replace(factors, objects=objects, **{k: v for k, v in changes.items() if k in image_fields})


def render_with(factors: ImageFactors, image_size: int, **changes: Any) -> np.ndarray:
    """Re-render with some factors changed (see ``change``), e.g. ``rotation=90`` or ``texture="dots"``."""
    return render(change(factors, **changes), image_size)


def _size_word(size: float) -> str:
    return "small" if size < 0.4 else "medium" if size < 0.6 else "large"


def caption(factors: ImageFactors) -> str:
    """Plain-English description, e.g. "a small red striped triangle on a grass background"."""
    obj, count = factors.objects[0], len(factors.objects)
    words = f"{_size_word(obj.size)} {obj.colour} {TEXTURE_WORDS[obj.texture]} {obj.shape}"
    head = f"a {words}" if count == 1 else f"{_NUMBER_WORDS[count] if count <= 10 else count} {words}s"
    return f"{head} on a {factors.background} background"


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
