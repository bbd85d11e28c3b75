"""Seeded generator of the offline demo dataset, written in the exact ImageNet-val on-disk format.

Layout ``<root>/<wnid>/ILSVRC2012_val_XXXXXXXX.JPEG`` (docs/protocol.md §2.1), so every loader, manifest and
join on file names runs unchanged on it (docs/architecture.md, testing conventions). Each class has its own colour
and texture family so that features are learnable; every image adds its own random variation and noise.

Determinism: pixels come from integer arithmetic, a rounded sine table and exactly rounded float
operations only, and JPEGs are written with fixed settings and no metadata, so a seed gives the same bytes
for the same numpy and Pillow (libjpeg) versions.
"""

from __future__ import annotations

import colorsys
import io
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from beyond_imagenet.base.errors import DatasetLayoutError
from beyond_imagenet.data.folders import WNID_PATTERN

__all__ = ["JPEG_SETTINGS", "demo_file_name", "generate_demo_split", "render_demo_pixels"]

JPEG_SETTINGS: dict[str, object] = {"quality": 90, "optimize": False, "progressive": False, "subsampling": 2}
"""Fixed JPEG encoder settings (4:2:0 chroma subsampling, like most ImageNet photos)."""

_PERIOD = 1024  # samples in one sine period; phases are integers modulo this
_SINE = np.rint(127.5 + 127.5 * np.sin(2 * np.pi * np.arange(_PERIOD) / _PERIOD)).astype(np.int32)
_TEXTURES = ("stripes", "checker", "blobs")
_MAX_INDEX = 99_999_999


def demo_file_name(index: int) -> str:
    """The ImageNet val file name for a running index, e.g. 1 -> ``ILSVRC2012_val_00000001.JPEG``."""
    return f"ILSVRC2012_val_{index:08d}.JPEG"


def generate_demo_split(
    root: str | Path, wnids: Sequence[str], images_per_class: int, seed: int, first_index: int = 1
) -> list[Path]:
    """Write ``images_per_class`` JPEGs per wnid under ``root`` and return their paths sorted by (wnid, name).

    Running indices ``first_index, first_index + 1, ...`` are dealt to the images in a seeded shuffled
    order across classes, like the real val set. A class's colour and texture family depends only on its
    position in ``wnids`` (not on ``seed``), so splits generated from the same wnid list share class looks.
    Idempotent: files already present with the expected bytes are left untouched and missing ones are
    written (each atomically), so an interrupted run resumes. Raises ``DatasetLayoutError`` if ``root``
    holds any other file, or an expected file with different bytes (made with other parameters).
    """
    root = Path(root)
    _check_arguments(wnids, images_per_class, seed, first_index)
    labels = np.repeat(np.arange(len(wnids)), images_per_class)
    order = np.random.default_rng(seed).permutation(labels.size)
    targets = {
        root / wnids[labels[slot]] / demo_file_name(first_index + k): (int(labels[slot]), first_index + k)
        for k, slot in enumerate(order)
    }
    _check_existing(root, targets)
    for path, (class_index, index) in targets.items():
        data = _render_jpeg(class_index, len(wnids), seed, index)
        _write_if_needed(path, data)
    return sorted(targets, key=lambda p: (p.parent.name, p.name))


def _check_arguments(wnids: Sequence[str], images_per_class: int, seed: int, first_index: int) -> None:
    """Reject arguments that cannot give a valid ImageNet-val-style split."""
    if isinstance(wnids, str):
        raise TypeError("wnids must be a sequence of wnid strings, not one string")
    if not wnids:
        raise ValueError("wnids must not be empty")
    bad = [w for w in wnids if not WNID_PATTERN.fullmatch(w)]
    if bad:
        raise ValueError(f"not WordNet ids (expected like n01440764): {bad[:5]}")
    if len(set(wnids)) != len(wnids):
        raise ValueError("wnids must be unique")
    if images_per_class < 1:
        raise ValueError(f"images_per_class must be >= 1, got {images_per_class}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    if first_index < 1 or first_index + len(wnids) * images_per_class - 1 > _MAX_INDEX:
        raise ValueError(f"indices must fit 1..{_MAX_INDEX} (8 digits), got first_index={first_index}")


def _check_existing(root: Path, targets: dict[Path, tuple[int, int]]) -> None:
    """Refuse to mix the demo split with files it would not write; drop our own stale temp files."""
    if not root.exists():
        return
    if not root.is_dir():
        raise DatasetLayoutError(f"demo dataset root {root} exists and is not a directory")
    foreign: list[str] = []
    for path in root.rglob("*"):
        if path in targets or path.is_dir():
            continue
        if _is_stale_temp(path, targets):
            path.unlink()
        elif not any(part.startswith(".") for part in path.relative_to(root).parts):
            foreign.append(str(path.relative_to(root)))
            if len(foreign) == 5:
                break
    if foreign:
        raise DatasetLayoutError(
            f"{root} already holds files the demo split would not write (e.g. {', '.join(sorted(foreign))}); "
            "refusing to mix datasets. Choose an empty or new directory, or delete this one."
        )


def _is_stale_temp(path: Path, targets: dict[Path, tuple[int, int]]) -> bool:
    """True for a temp file left by an interrupted :func:`_write_if_needed` for one of ``targets``."""
    name = path.name
    if not (name.startswith(".") and name.endswith(".tmp") and ".JPEG." in name):
        return False
    return path.parent / (name[1:].split(".JPEG.", 1)[0] + ".JPEG") in targets


def _write_if_needed(path: Path, data: bytes) -> None:
    """Write ``data`` atomically unless ``path`` already holds exactly it; differing bytes are an error."""
    if path.exists():
        if path.read_bytes() != data:
            raise DatasetLayoutError(
                f"{path} exists with different content: the directory was generated with other parameters "
                "(seed, wnids or images_per_class) or a different Pillow version. Delete it and regenerate."
            )
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(temp, "wb") as handle:
        handle.write(data)
    os.replace(temp, path)


def render_demo_pixels(class_index: int, n_classes: int, seed: int, index: int) -> np.ndarray:
    """The uint8 RGB pixels of one demo image (class look by ``class_index``, variation by ``seed, index``)."""
    return _render_pixels(class_index, n_classes, np.random.default_rng([seed, index]))


def _render_jpeg(class_index: int, n_classes: int, seed: int, index: int) -> bytes:
    """Encode one demo image to JPEG bytes with :data:`JPEG_SETTINGS` and no metadata."""
    pixels = render_demo_pixels(class_index, n_classes, seed, index)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", **JPEG_SETTINGS)
    return buffer.getvalue()


def _image_size(rng: np.random.Generator) -> tuple[int, int]:
    """ImageNet-like (width, height): mostly landscape, some portrait, a few square."""
    kind = rng.random()
    if kind < 0.1:
        side = int(rng.integers(300, 501))
        return side, side
    long_side, short_side = int(rng.integers(375, 501)), int(rng.integers(250, 375))
    return (short_side, long_side) if kind < 0.3 else (long_side, short_side)


def _class_colours(class_index: int, n_classes: int, rng: np.random.Generator) -> np.ndarray:
    """Two RGB colours (int32, 2 x 3) from the class hue, with a small per-image hue and brightness jitter."""
    hue = (class_index / n_classes + rng.uniform(-0.015, 0.015)) % 1.0
    light = 0.85 + rng.uniform(-0.1, 0.1)
    first = colorsys.hsv_to_rgb(hue, 0.85, light)
    second = colorsys.hsv_to_rgb((hue + 0.06) % 1.0, 0.55, 0.35 * light)
    return np.rint(np.array([first, second]) * 255).astype(np.int32)


def _wave(x: np.ndarray, y: np.ndarray, cycles: float, angle: float, phase: int, width: int) -> np.ndarray:
    """A sine grating in 0..255 from the rounded table: ``cycles`` periods across ``width`` pixels."""
    step_x = round(_PERIOD * cycles * np.cos(angle) / width)
    step_y = round(_PERIOD * cycles * np.sin(angle) / width)
    return _SINE[(phase + step_x * x + step_y * y) % _PERIOD]


def _blobs(x: np.ndarray, y: np.ndarray, count: int, radius: float, rng: np.random.Generator) -> np.ndarray:
    """Soft discs with a rational falloff ``1 / (1 + d^2 / r^2)``, summed and clipped to 0..255."""
    height, width = y.shape[0], x.shape[1]
    total = np.zeros((height, width), dtype=np.float64)
    for cx, cy in zip(rng.uniform(0, width, count), rng.uniform(0, height, count), strict=True):
        dist2 = (x - cx) ** 2 + (y - cy) ** 2
        total += 1.0 / (1.0 + dist2 / (radius * radius))
    return np.clip(np.rint(total * 255.0), 0, 255).astype(np.int32)


def _texture(class_index: int, x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The class's texture family (kind, frequency, orientation) with per-image jitter, in 0..255."""
    kind = _TEXTURES[class_index % len(_TEXTURES)]
    width = x.shape[1]
    cycles = (4.0 + 3.0 * ((class_index // len(_TEXTURES)) % 4)) * rng.uniform(0.9, 1.1)
    angle = (class_index * 0.61803398875 * np.pi) % np.pi + rng.uniform(-0.15, 0.15)
    phase = int(rng.integers(0, _PERIOD))
    if kind == "stripes":
        return _wave(x, y, cycles, angle, phase, width)
    if kind == "checker":
        first = _wave(x, y, cycles, angle, phase, width) - 128
        second = _wave(x, y, cycles, angle + np.pi / 2, phase, width) - 128
        return np.clip(128 + ((first * second) >> 6), 0, 255)
    count = 3 + class_index % 4 + int(rng.integers(0, 3))
    return _blobs(x, y, count, width / (2.0 * cycles), rng)


def _render_pixels(class_index: int, n_classes: int, rng: np.random.Generator) -> np.ndarray:
    """One demo image as an H x W x 3 uint8 array: class colours mixed by the class texture, plus noise."""
    width, height = _image_size(rng)
    x = np.arange(width, dtype=np.int32)[None, :]
    y = np.arange(height, dtype=np.int32)[:, None]
    colours = _class_colours(class_index, n_classes, rng)
    levels = np.arange(256, dtype=np.int32)[:, None]
    palette = ((colours[1] * (255 - levels) + colours[0] * levels) // 255).astype(np.int16)
    image = np.take(palette, _texture(class_index, x, y, rng), axis=0)
    shade_x, shade_y = (int(v) for v in rng.integers(-40, 41, 2))
    shade = shade_x * (2 * x - width) // width + shade_y * (2 * y - height) // height
    noise = np.frombuffer(rng.bytes(height * width * 3), dtype=np.uint8).reshape(height, width, 3)
    image += (noise & 31).astype(np.int16) - 16
    image += shade.astype(np.int16)[..., None]
    return np.clip(image, 0, 255).astype(np.uint8)
