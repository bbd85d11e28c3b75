"""The procedural world's factors: what an image shows, how it is drawn from a ``WorldConfig``, its caption.

The class of an image is the SHAPE of its labelled object (``SHAPES``, class index = position). Every other factor
(texture, colour, rotation, size, position, background, brightness, occluders, number of objects) is drawn per image
from the distributions of a ``WorldConfig`` and recorded in ``ImageFactors``; ``change`` edits one factor (sweeps,
cue conflict) and ``caption`` says them in words. Rendering is ``data.world.render``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from beyond_imagenet.base.errors import UnknownNameError, UserError

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star", "cross", "crescent", "heart", "arrow")
TEXTURES: tuple[str, ...] = ("solid", "stripes", "dots", "checker", "waves", "noise", "grid", "rings")  # one per class
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
TEXTURE_WORDS.update(noise="speckled", grid="grid-patterned", rings="ringed")
_NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
_SHARED = ("shape", "texture", "colour", "size")  # object factors every object of an image shares
MENTIONABLE = frozenset({"size", "colour", "texture", "background"})  # what a caption may say besides the shape


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
    cue a function of the label (``TEXTURES[label]``, ``list(COLOURS)[label]``: one of each per class) instead of
    independent of it.
    """

    image_size: int = 32
    shapes: tuple[str, ...] = SHAPES
    textures: tuple[str, ...] = TEXTURES
    colours: tuple[str, ...] = tuple(COLOURS)
    backgrounds: tuple[str, ...] = BACKGROUNDS
    rotation: tuple[float, float] = (0.0, 360.0)
    size: tuple[float, float] = (0.5, 0.85)
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
    texture = TEXTURES[label] if config.texture_tied_to_class else texture
    colour = tuple(COLOURS)[label] if config.colour_tied_to_class else colour
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


def _size_word(size: float) -> str:
    return "small" if size < 0.4 else "medium" if size < 0.6 else "large"


def caption(factors: ImageFactors, mention: frozenset[str] | set[str] = MENTIONABLE) -> str:
    """Plain-English description, e.g. "a small red striped triangle on a grass background".

    The shape (and the count) is always said; ``mention`` picks which of :data:`MENTIONABLE` are, as alt text
    mentions some attributes and not others ("a striped triangle", "a triangle on a sky background").
    """
    unknown = set(mention) - MENTIONABLE
    if unknown:
        raise UnknownNameError("caption factor", sorted(unknown)[0], MENTIONABLE)
    obj, count = factors.objects[0], len(factors.objects)
    said = {"size": _size_word(obj.size), "colour": obj.colour, "texture": TEXTURE_WORDS[obj.texture]}
    words = " ".join([said[k] for k in ("size", "colour", "texture") if k in mention] + [obj.shape])
    head = f"a {words}" if count == 1 else f"{_NUMBER_WORDS[count] if count <= 10 else count} {words}s"
    return f"{head} on a {factors.background} background" if "background" in mention else head
