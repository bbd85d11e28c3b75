"""A seeded procedural image world for controlled shape-versus-cue experiments (numpy + Pillow, no downloads).

``factors``: what an image shows (shape = class; texture, colour, rotation, size, position, background, brightness,
occluders, several objects), drawn from a ``WorldConfig`` and recorded, plus its caption. ``render``: the image of
given factors, a pure function of them. Training on one distribution and testing on another, or varying one factor
at a time (``render_with``), is what the demo's planted effects are built from (docs/world.md).
"""

from beyond_imagenet.data.world.factors import (
    BACKGROUNDS,
    COLOURS,
    MENTIONABLE,
    SHAPES,
    TEXTURE_WORDS,
    TEXTURES,
    ImageFactors,
    ObjectFactors,
    WorldConfig,
    caption,
    change,
    sample_factors,
)
from beyond_imagenet.data.world.render import OCCLUDER_GREY, PLAIN_GREY, base_polygon, generate, render, render_with

__all__ = [
    "BACKGROUNDS", "COLOURS", "MENTIONABLE", "OCCLUDER_GREY", "PLAIN_GREY", "SHAPES", "TEXTURES", "TEXTURE_WORDS",
    "ImageFactors", "ObjectFactors", "WorldConfig", "base_polygon", "caption", "change", "generate", "render",
    "render_with", "sample_factors",
]  # fmt: skip
