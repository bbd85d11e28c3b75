"""The world's test sets, the counterparts of the paper's (docs/world.md): each one a known change of the world.

* ``factor_flags``: ImageNet-X-style annotations (§3): per image, which of its factors lie outside the ordinary
  (a large rotation is ``pose``, a textured object ``pattern``, a small one ``smaller``, ...), from recorded factors.
* ``sweep``: PUG-style (§2.3) one factor at a time over the same scenes.
* ``cue_conflict``: the shape of one class with the texture *of another class* (the texture ``TEXTURES[c]`` that a
  texture-tied world gives class ``c``), both known (§6).
* ``sketch`` / ``rendition``: the shapes as outline drawings and as flat clip art (the -Sketch and -R columns).
* ``corrupt``: ImageNet-C-style corruptions at five severities (§7.8), parameters as Hendrycks & Dietterich's.
* ``resampled``: the same distribution, a new seed (the V2 column).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from beyond_imagenet.base.errors import UnknownNameError, UserError
from beyond_imagenet.data.world.factors import COLOURS, SHAPES, TEXTURES, ImageFactors, WorldConfig, change
from beyond_imagenet.data.world.render import SUPERSAMPLE, generate, placed_polygon, render_all

CORRUPTIONS: dict[str, tuple[float, ...]] = {  # severity 1..5 (ImageNet-C's constants for these four)
    "gaussian_noise": (0.08, 0.12, 0.18, 0.26, 0.38),  # noise std, image in [0, 1]
    "contrast": (0.4, 0.3, 0.2, 0.1, 0.05),  # factor towards the image mean
    "pixelate": (0.6, 0.5, 0.4, 0.3, 0.25),  # downsampling factor (box), then nearest back up
    "brightness": (0.1, 0.2, 0.3, 0.4, 0.5),  # added to V in HSV, approximated here as added to every channel
}
FLAG_RULES = {  # ImageNet-X factor -> when an image of the world has it (docs/world.md)
    "pose": "rotation of the labelled object more than 45 degrees from upright",
    "pattern": "the object is textured (not solid)",
    "smaller": "size below 0.6",
    "larger": "size above 0.75",
    "darker": "brightness below 0.85",
    "brighter": "brightness above 1.15",
    "object_blocking": "at least one occluding bar",
    "multiple_objects": "more than one object",
    "background": "a background other than plain grey",
}


def resampled(config: WorldConfig, n: int, seed: int) -> tuple[np.ndarray, list[ImageFactors]]:
    """A fresh sample of the same distribution (ImageNet-V2's role: same recipe, new images)."""
    return generate(config, n, seed=seed)


def _upright_distance(rotation: float) -> float:
    return abs((rotation + 180.0) % 360.0 - 180.0)


def factor_flags(factors: Sequence[ImageFactors]) -> dict[str, np.ndarray]:
    """Per ImageNet-X factor of :data:`FLAG_RULES`, a boolean [n] of the images that have it."""
    first = [f.objects[0] for f in factors]
    return {
        "pose": np.array([_upright_distance(o.rotation) > 45.0 for o in first]),
        "pattern": np.array([o.texture != "solid" for o in first]),
        "smaller": np.array([o.size < 0.6 for o in first]),
        "larger": np.array([o.size > 0.75 for o in first]),
        "darker": np.array([f.brightness < 0.85 for f in factors]),
        "brighter": np.array([f.brightness > 1.15 for f in factors]),
        "object_blocking": np.array([f.occluders > 0 for f in factors]),
        "multiple_objects": np.array([len(f.objects) > 1 for f in factors]),
        "background": np.array([f.background != "plain" for f in factors]),
    }


def sweep(factors: Sequence[ImageFactors], factor: str, values: Sequence[Any], image_size: int) -> np.ndarray:
    """[len(values), n, H, W, 3]: every scene re-rendered with ``factor`` set to each value (the rest unchanged)."""
    return np.stack([render_all([change(f, **{factor: v}) for f in factors], image_size) for v in values])


def cue_conflict_factors(config: WorldConfig, n: int, seed: int) -> tuple[list[ImageFactors], np.ndarray, np.ndarray]:
    """``n`` scenes whose shape is class ``s`` and whose texture is that of another class ``t`` (``TEXTURES[t]``).

    Returns the factors, ``s`` and ``t`` [n] (``t`` is also ``TEXTURES.index`` of the recorded texture); every
    ordered pair ``s != t`` occurs equally often (n a multiple of 56 makes it exact). Other factors follow ``config``
    (texture and its tie ignored).
    """
    pairs = [(s, t) for s in range(len(SHAPES)) for t in range(len(SHAPES)) if s != t]
    order = [pairs[i % len(pairs)] for i in range(n)]
    _, scenes = generate(dataclasses.replace(config, texture_tied_to_class=False), n, seed)
    conflicts = [change(f, shape=SHAPES[s], texture=TEXTURES[t]) for (s, t), f in zip(order, scenes, strict=True)]
    return conflicts, np.array([s for s, _ in order]), np.array([t for _, t in order])


def cue_conflict(config: WorldConfig, n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The images of :func:`cue_conflict_factors`, with ``s`` and ``t``."""
    conflicts, shapes, textures = cue_conflict_factors(config, n, seed)
    return render_all(conflicts, config.image_size), shapes, textures


def _outline_or_fill(factors: ImageFactors, n: int, outline: bool, colour: tuple[int, int, int]) -> np.ndarray:
    big = Image.new("RGB", (n * SUPERSAMPLE, n * SUPERSAMPLE), (255, 255, 255))
    draw = ImageDraw.Draw(big)
    for obj in factors.objects:
        points = (placed_polygon(obj, n) * SUPERSAMPLE).ravel().tolist()
        if outline:
            draw.polygon(points, outline=(20, 20, 20), width=max(2, n * SUPERSAMPLE // 24))
        else:
            draw.polygon(points, fill=colour)
    return np.asarray(big.resize((n, n), Image.BOX))


def sketch(factors: Sequence[ImageFactors], image_size: int) -> np.ndarray:
    """The scenes as dark outline drawings on white: shape and pose kept, texture, colour and background gone."""
    return np.stack([_outline_or_fill(f, image_size, True, (0, 0, 0)) for f in factors])


def rendition(factors: Sequence[ImageFactors], image_size: int, seed: int) -> np.ndarray:
    """The scenes as flat clip art on white, in a colour drawn per image (no texture, no background; never white)."""
    rng = np.random.default_rng(seed)
    colours = [rgb for name, rgb in COLOURS.items() if name != "white"]
    return np.stack([_outline_or_fill(f, image_size, False, colours[rng.integers(len(colours))]) for f in factors])


def corrupt(images: np.ndarray, corruption: str, severity: int, seed: int) -> np.ndarray:
    """``images`` (uint8 [n, H, W, 3]) under ``corruption`` at ``severity`` 1..5 (seeded noise)."""
    if corruption not in CORRUPTIONS:
        raise UnknownNameError("corruption", corruption, CORRUPTIONS)
    if severity not in (1, 2, 3, 4, 5):
        raise UserError(f"severity must be 1..5, got {severity!r}")
    c = CORRUPTIONS[corruption][severity - 1]
    x = images.astype(np.float32) / 255.0
    if corruption == "gaussian_noise":
        x = x + np.random.default_rng(seed).normal(0.0, c, x.shape).astype(np.float32)
    elif corruption == "contrast":
        mean = x.mean(axis=(1, 2, 3), keepdims=True)
        x = (x - mean) * c + mean
    elif corruption == "brightness":
        x = x + c
    else:
        side = images.shape[1]
        small = max(1, int(side * c))
        x = np.stack(
            [np.asarray(Image.fromarray(im).resize((small, small), Image.BOX).resize((side, side), Image.NEAREST))
             for im in images]
        ).astype(np.float32) / 255.0  # fmt: skip
    return (np.clip(x, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
