"""Seeded miniature stand-in for the 17 VTAB image sources, in layout ``tfds_parquet`` (docs/transfer.md §3.5, §8).

Every tfds split of every ``SOURCES`` entry is written, so all 19 tasks of both presets run offline. Sizes follow
the task split rules (``demo_split_sizes``): every VTAB val / test split holds at least ``per_split`` rows and
every VTAB train split four times as many. Images mimic the real
ones in miniature: dSprites 64x64 single channel with values exactly 0/1, smallNORB grayscale, KITTI / CLEVR /
DMLab wide, the rest RGB. Annotations are valid tfds features for every label rule of §3.2, and the label shows in
the pixels (colour, brightness, object count, position, orientation) so a probe beats chance. Labels cycle along
the record order, so every class of a task with <= ``per_split`` classes appears in each of its splits.
Same seed, same bytes (PNG writing is deterministic).
"""

from __future__ import annotations

import colorsys
import math
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from beyond_imagenet.data.vtab.sources import SOURCES, ImageSource
from beyond_imagenet.data.vtab.tasks import PRESETS
from beyond_imagenet.data.vtab.writers import write_parquet_split

__all__ = ["DEMO_MAX_CLASSES", "TRAIN_FACTOR", "demo_split_sizes", "make_demo_vtab"]

TRAIN_FACTOR = 4  # VTAB train gets 4x the rows of val / test
DEMO_MAX_CLASSES = 10  # many-class tasks use their first 10 classes, so the tiny demo stays learnable
Row = tuple[np.ndarray, dict[str, Any]]

# (width, height) per source; RGB unless listed in the generators below.
_SIZES = {
    "caltech101": (48, 40),
    "cifar100": (32, 32),
    "cifar10": (32, 32),
    "dtd": (48, 48),
    "oxford_flowers102": (48, 40),
    "oxford_iiit_pet": (48, 36),
    "svhn_cropped": (32, 32),
    "sun397": (48, 40),
    "patch_camelyon": (48, 48),
    "eurosat_rgb": (64, 64),
    "resisc45": (64, 64),
    "diabetic_retinopathy": (64, 64),
    "clevr": (48, 32),
    "dmlab": (48, 36),
    "kitti": (64, 20),
    "dsprites": (64, 64),
    "smallnorb": (48, 48),
}


def _tasks_of(source: ImageSource) -> list:
    return [t for p in PRESETS.values() for t in p.tasks if t.source.name == source.name]


def demo_split_sizes(source: ImageSource, per_split: int) -> dict[str, int]:
    """Rows per tfds split of ``source`` in the demo VTAB stand-ins.

    Enough that every VTAB val / test slice of it holds at least ``per_split`` rows and every train slice
    ``TRAIN_FACTOR * per_split``; a split no task reads gets ``per_split``.
    """
    sizes = dict.fromkeys(source.split_sizes, per_split)
    for task in _tasks_of(source):
        for name, pieces in task.splits.items():
            need = per_split * (TRAIN_FACTOR if name == "train" else 1)
            for s in pieces:
                sizes[s.split] = max(sizes[s.split], math.ceil(need / (s.stop - s.start)))
    return sizes


def _num_visible(source: ImageSource) -> int:
    """Classes used in the demo labels: the source's smallest task class count, capped at ``DEMO_MAX_CLASSES``."""
    return min(DEMO_MAX_CLASSES, *(t.num_classes for t in _tasks_of(source)))


def _noise(rng: np.random.Generator, shape: tuple[int, ...], scale: float) -> np.ndarray:
    return rng.normal(0.0, scale, shape)


def _to_uint8(values: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def _natural(size: tuple[int, int], label: int, n_classes: int, rng: np.random.Generator) -> np.ndarray:
    """RGB: class hue plus stripes at a class angle, random phase and noise."""
    w, h = size
    rgb = np.array(colorsys.hsv_to_rgb(label / n_classes, 0.65, 0.85)) * 255.0
    y, x = np.mgrid[0:h, 0:w]
    angle = math.pi * label / n_classes
    phase = rng.uniform(0, 2 * math.pi)
    stripes = 0.5 + 0.5 * np.sin(2 * math.pi * (x * math.cos(angle) + y * math.sin(angle)) / 6.0 + phase)
    pixels = rgb[None, None, :] * (0.7 + 0.3 * stripes[..., None])
    return _to_uint8(pixels + _noise(rng, (h, w, 3), 10.0))


def _native_rows(source: ImageSource) -> Callable[[int, int, np.random.Generator], Row]:
    n_classes = _num_visible(source)
    size = _SIZES[source.name]

    def row(i: int, offset: int, rng: np.random.Generator) -> Row:
        label = (i + offset) % n_classes
        return _natural(size, label, n_classes, rng), {"label": label}

    return row


_CLEVR_DEPTHS = (6.0, 8.25, 8.75, 9.25, 9.75, 14.0)  # one depth inside each bin of CLEVR_DISTANCE_THRESHOLDS


_CLEVR_SLOTS = [(9 + 6 * col, 8 + 10 * row) for row in range(2) for col in range(5)]  # central 32 px survive a crop


def _clevr_row(i: int, offset: int, rng: np.random.Generator) -> Row:
    """Demo CLEVR row: (i + offset) mod 8 + 3 red objects in random slots, nearest in depth class (i + offset) mod 6.

    The number of objects is the count label; the closest depth class also sets the background level.
    """
    w, h = _SIZES["clevr"]
    count, distance = 3 + (i + offset) % 8, (i + offset) % 6
    pixels = np.full((h, w, 3), 40.0 + 30.0 * distance) + _noise(rng, (h, w, 3), 6.0)
    depths = [_CLEVR_DEPTHS[distance], *np.round(_CLEVR_DEPTHS[distance] + rng.uniform(0.5, 20.0, count - 1), 3)]
    coords = []
    for slot, depth in zip(rng.permutation(len(_CLEVR_SLOTS))[:count], depths, strict=True):
        x, y = _CLEVR_SLOTS[slot]
        pixels[y : y + 5, x : x + 5] = (230.0, 40.0, 40.0)
        coords.append([float(x * 10 + 25), float(y * 10 + 25), float(depth)])
    return _to_uint8(pixels), {"file_name": f"CLEVR_{i:06d}.png", "objects/pixel_coords": coords}


_KITTI_DEPTH_RANGES = ((3.0, 8.0), (9.0, 19.5), (21.0, 80.0))  # label 0, 1, 2; label 3 = no vehicle


def _kitti_row(i: int, offset: int, rng: np.random.Generator) -> Row:
    """Closest vehicle class (i + offset) mod 4: a dark box whose width shrinks with depth, and brightness."""
    w, h = _SIZES["kitti"]
    label = (i + offset) % 4
    pixels = np.full((h, w, 3), 200.0 - 40.0 * label) + _noise(rng, (h, w, 3), 6.0)
    types: list[int] = []
    locations: list[list[float]] = []
    if label < 3:
        lo, hi = _KITTI_DEPTH_RANGES[label]
        z = round(float(rng.uniform(lo, hi)), 2)
        types.append(int(rng.integers(0, 3)))
        locations.append([round(float(rng.uniform(-3, 3)), 2), 1.6, z])
        half = max(2, int(16 / (1 + label)))
        pixels[h // 2 - 4 : h // 2 + 4, w // 2 - half : w // 2 + half] = (30.0, 30.0, 120.0)
        if rng.uniform() < 0.5:  # a farther vehicle never changes the label
            types.append(int(rng.integers(0, 3)))
            locations.append([round(float(rng.uniform(-10, 10)), 2), 1.6, round(z + float(rng.uniform(1, 30)), 2)])
    if rng.uniform() < 0.6:  # pedestrians, cyclists, trams, misc: never vehicles
        types.append(int(rng.integers(3, 8)))
        locations.append([round(float(rng.uniform(-10, 10)), 2), 1.7, round(float(rng.uniform(2, 60)), 2)])
    return _to_uint8(pixels), {"objects/type": types, "objects/location": locations}


def _oriented_bar(size: int, cx: float, cy: float, angle: float, half_len: float) -> np.ndarray:
    """Boolean mask of a bar with a knob at one end (so all 360 degrees differ)."""
    y, x = np.mgrid[0:size, 0:size].astype(float)
    u = (x - cx) * math.cos(angle) + (y - cy) * math.sin(angle)
    v = -(x - cx) * math.sin(angle) + (y - cy) * math.cos(angle)
    bar = (np.abs(u) <= half_len) & (np.abs(v) <= 2.0)
    knob = (u - half_len) ** 2 + v**2 <= 9.0
    return bar | knob


def _dsprites_row(i: int, offset: int, rng: np.random.Generator) -> Row:
    """64x64 {0, 1}: x position latent (i + offset) mod 32 and orientation latent (3 i + offset) mod 40."""
    x_pos, orientation = (i + offset) % 32, (3 * i + offset) % 40
    y_pos, scale, shape = int(rng.integers(0, 32)), int(rng.integers(0, 6)), int(rng.integers(0, 3))
    cx, cy = 12 + x_pos * 40 / 31, 22 + y_pos * 20 / 31
    mask = _oriented_bar(64, cx, cy, 2 * math.pi * orientation / 40, 9.0 + scale * 0.6)
    record = {
        "label_shape": shape,
        "label_scale": scale,
        "label_orientation": orientation,
        "label_x_position": x_pos,
        "label_y_position": y_pos,
    }
    return mask.astype(np.uint8), record


def _smallnorb_row(i: int, offset: int, rng: np.random.Generator) -> Row:
    """Grayscale: azimuth (i + offset) mod 18 as bar orientation, elevation (i + offset) mod 9 as background."""
    size = _SIZES["smallnorb"][0]
    azimuth, elevation = (i + offset) % 18, (i + offset) % 9
    pixels = np.full((size, size), 40.0 + 18.0 * elevation) + _noise(rng, (size, size), 5.0)
    pixels[_oriented_bar(size, size / 2, size / 2, 2 * math.pi * azimuth / 18, 12.0)] = 230.0
    record = {
        "label_azimuth": azimuth,
        "label_elevation": elevation,
        "label_category": int(rng.integers(0, 5)),
        "label_lighting": int(rng.integers(0, 6)),
        "instance": int(rng.integers(0, 10)),
    }
    return _to_uint8(pixels), record


def _row_generator(source: ImageSource) -> Callable[[int, int, np.random.Generator], Row]:
    special = {"clevr": _clevr_row, "kitti": _kitti_row, "dsprites": _dsprites_row, "smallnorb": _smallnorb_row}
    return special.get(source.name) or _native_rows(source)


def make_demo_vtab(
    root: str | Path, seed: int = 0, per_split: int = 10, sources: Iterable[str] | None = None
) -> dict[str, dict[str, int]]:
    """Write the demo sources under ``root`` (``<root>/<source>/<split>-00000-of-00001.parquet``).

    ``per_split`` is the least number of rows in any VTAB val / test split (train: ``TRAIN_FACTOR`` times more);
    ``sources`` restricts which sources are written (default: all of ``SOURCES``). Returns
    ``{source: {tfds split: rows}}``.
    """
    summary: dict[str, dict[str, int]] = {}
    for name in SOURCES if sources is None else sources:
        source = SOURCES[name]
        generate = _row_generator(source)
        summary[name] = {}
        for split, n in demo_split_sizes(source, per_split).items():
            rng = np.random.default_rng([seed, zlib.crc32(f"{name}/{split}".encode())])
            offset = int(rng.integers(0, 1 << 16))
            rows = [generate(i, offset, rng) for i in range(n)]
            write_parquet_split(root, name, split, [r[0] for r in rows], [r[1] for r in rows])
            summary[name][split] = n
    return summary
