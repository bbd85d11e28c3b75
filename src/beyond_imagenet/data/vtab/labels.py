"""The derived-label rules of VTAB (docs/transfer.md §3.2): pure functions from raw annotations to a class index.

Each rule reads tfds-style annotation records (flattened feature names such as ``"objects/pixel_coords"``).
``LabelRule`` binds a rule to the fields it reads; ``native_rule`` and ``dsprites_rule`` build the two common
kinds. Nothing here knows about tasks, files or layouts.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

__all__ = [
    "CLEVR_DISTANCE_THRESHOLDS",
    "CLEVR_MAX_OBJECTS",
    "CLEVR_MIN_OBJECTS",
    "DSPRITES_RAW_CLASSES",
    "KITTI_DISTANCE_THRESHOLDS",
    "KITTI_NO_VEHICLE_DEPTH",
    "KITTI_OBJECT_TYPES",
    "KITTI_VEHICLE_TYPES",
    "SMALLNORB_AZIMUTHS",
    "SMALLNORB_ELEVATIONS",
    "LabelRule",
    "clevr_count_label",
    "clevr_count_label_from_coords",
    "clevr_distance_label",
    "dsprites_label",
    "dsprites_rule",
    "kitti_distance_label",
    "native_label",
    "native_rule",
    "smallnorb_azimuth_label",
    "smallnorb_elevation_label",
    "threshold_label",
]

CLEVR_MIN_OBJECTS, CLEVR_MAX_OBJECTS = 3, 10
CLEVR_DISTANCE_THRESHOLDS = (0.0, 8.0, 8.5, 9.0, 9.5, 10.0, 100.0)
KITTI_DISTANCE_THRESHOLDS = (-100.0, 8.0, 20.0, 999.0)
KITTI_NO_VEHICLE_DEPTH = 1000.0
# tfds kitti ``objects/type`` class order; vehicles are the first three (type < 3).
KITTI_OBJECT_TYPES = ("Car", "Van", "Truck", "Pedestrian", "Person_sitting", "Cyclist", "Tram", "Misc")
KITTI_VEHICLE_TYPES = KITTI_OBJECT_TYPES[:3]
DSPRITES_RAW_CLASSES = {"label_x_position": 32, "label_orientation": 40}
SMALLNORB_AZIMUTHS = tuple(range(0, 360, 20))  # degrees, 18 classes
SMALLNORB_ELEVATIONS = tuple(range(30, 75, 5))  # degrees, 9 classes


def threshold_label(value: float, thresholds: Sequence[float], num_classes: int) -> int:
    """Bin ``value`` as task_adaptation does: the largest ``i`` with ``thresholds[i] < value``.

    Bin ``i`` is ``(thresholds[i], thresholds[i + 1]]``; the last class may be open above (KITTI: 4 thresholds,
    4 classes) or bounded by the last threshold (CLEVR: 7 thresholds, 6 classes). A value at or below
    ``thresholds[0]``, or one whose index would be ``>= num_classes``, has no class (task_adaptation would return an
    empty max or an out-of-range label); it raises ``ValueError`` instead of being clipped.
    """
    value = float(value)
    if math.isnan(value) or value <= thresholds[0]:
        raise ValueError(f"value {value} is outside the binned range: it must exceed {thresholds[0]}")
    label = max(i for i, t in enumerate(thresholds) if t < value)
    if label >= num_classes:
        raise ValueError(f"value {value} is outside the binned range: it must be <= {thresholds[num_classes]}")
    return label


def clevr_count_label(num_objects: int) -> int:
    """CLEVR count_all: number of objects in the scene minus 3 (scenes have 3-10 objects: 8 classes)."""
    n = int(num_objects)
    if not CLEVR_MIN_OBJECTS <= n <= CLEVR_MAX_OBJECTS:
        raise ValueError(f"a CLEVR scene has {CLEVR_MIN_OBJECTS}-{CLEVR_MAX_OBJECTS} objects, got {n}")
    return n - CLEVR_MIN_OBJECTS


def clevr_count_label_from_coords(pixel_coords: Sequence[Sequence[float]]) -> int:
    """Apply ``clevr_count_label`` to tfds's ``objects/pixel_coords`` (one row per object)."""
    return clevr_count_label(len(pixel_coords))


def clevr_distance_label(pixel_coords: Sequence[Sequence[float]]) -> int:
    """CLEVR closest_object_distance: the smallest object depth ``pixel_coords[:, 2]``, binned.

    The bins are ``CLEVR_DISTANCE_THRESHOLDS``: 0 = (0, 8], 1 = (8, 8.5], 2 = (8.5, 9], 3 = (9, 9.5],
    4 = (9.5, 10], 5 = (10, 100].
    """
    if len(pixel_coords) == 0:
        raise ValueError("a CLEVR scene without objects has no closest-object distance")
    return threshold_label(min(float(obj[2]) for obj in pixel_coords), CLEVR_DISTANCE_THRESHOLDS, 6)


def _kitti_type_index(t: int | str) -> int:
    """The tfds class index of a KITTI object type given as an index or a name."""
    if isinstance(t, str):
        if t not in KITTI_OBJECT_TYPES:
            raise ValueError(f"unknown KITTI object type {t!r}; known: {', '.join(KITTI_OBJECT_TYPES)}")
        return KITTI_OBJECT_TYPES.index(t)
    return int(t)


def kitti_distance_label(types: Sequence[int | str], locations: Sequence[Sequence[float]]) -> int:
    """KITTI closest_vehicle_distance from tfds ``objects/type`` and ``objects/location`` ([x, y, z] metres).

    Vehicles are type < 3 (Car, Van, Truck); value = min(z of vehicles, 1000.0) binned by
    ``KITTI_DISTANCE_THRESHOLDS``: 0 = z <= 8 m, 1 = (8, 20], 2 = (20, 999], 3 = no vehicle (the 1000 sentinel).
    """
    if len(types) != len(locations):
        raise ValueError(f"KITTI annotation has {len(types)} object types but {len(locations)} locations")
    depths = [
        float(loc[2])
        for t, loc in zip(types, locations, strict=True)
        if _kitti_type_index(t) < len(KITTI_VEHICLE_TYPES)
    ]
    return threshold_label(min([*depths, KITTI_NO_VEHICLE_DEPTH]), KITTI_DISTANCE_THRESHOLDS, 4)


def dsprites_label(raw: int, n_raw: int, num_classes: int) -> int:
    """Map dSprites latent index ``raw`` in [0, n_raw) to ``floor(raw / (n_raw / num_classes))`` (exact maths).

    x position: 32 raw values, 16 classes -> raw // 2; orientation: 40 raw values, 16 classes -> floor(raw / 2.5).
    With ``num_classes == n_raw`` (CLIP_benchmark) it is the identity.
    """
    raw = int(raw)
    if not 0 <= raw < n_raw:
        raise ValueError(f"dSprites latent index {raw} is outside [0, {n_raw})")
    if not 0 < num_classes <= n_raw:
        raise ValueError(f"dSprites num_classes must be in [1, {n_raw}], got {num_classes}")
    return raw * num_classes // n_raw


def smallnorb_azimuth_label(degrees: int) -> int:
    """Map a smallNORB azimuth in degrees (0, 20, ..., 340) to its class (18 classes).

    tfds's ``label_azimuth`` is already this class index; the raw NYU files store degrees / 10 (0, 2, ..., 34).
    """
    if int(degrees) not in SMALLNORB_AZIMUTHS or degrees != int(degrees):
        raise ValueError(f"smallNORB azimuth must be one of 0, 20, ..., 340 degrees, got {degrees}")
    return SMALLNORB_AZIMUTHS.index(int(degrees))


def smallnorb_elevation_label(degrees: int) -> int:
    """Map a smallNORB elevation in degrees (30, 35, ..., 70) to its class (9 classes).

    tfds's ``label_elevation`` and the raw NYU files already store this index (0-8).
    """
    if int(degrees) not in SMALLNORB_ELEVATIONS or degrees != int(degrees):
        raise ValueError(f"smallNORB elevation must be one of 30, 35, ..., 70 degrees, got {degrees}")
    return SMALLNORB_ELEVATIONS.index(int(degrees))


def native_label(label: int, num_classes: int) -> int:
    """A task's own label (native tasks, DMLab, Retinopathy grades 0-4, smallNORB tfds labels), range-checked."""
    label = int(label)
    if not 0 <= label < num_classes:
        raise ValueError(f"label {label} is outside [0, {num_classes})")
    return label


@dataclass(frozen=True)
class LabelRule:
    """How a task's class index comes from one raw (tfds-feature) annotation record.

    ``fields`` are the flattened tfds feature names read (nested features joined with "/"); ``fn`` is called with
    their values in that order.
    """

    fields: tuple[str, ...]
    fn: Callable[..., int]
    description: str

    def __call__(self, record: Mapping[str, Any]) -> int:
        """The class index of ``record``; ``KeyError`` naming the fields when one is missing."""
        missing = [f for f in self.fields if f not in record]
        if missing:
            raise KeyError(f"annotation record lacks field(s) {missing}; this label needs {list(self.fields)}")
        return self.fn(*(record[f] for f in self.fields))


def native_rule(field_name: str, num_classes: int, description: str = "") -> LabelRule:
    """The rule reading tfds feature ``field_name`` as the class index, range-checked."""
    text = description or f"tfds `{field_name}` as is ({num_classes} classes)"
    return LabelRule((field_name,), partial(native_label, num_classes=num_classes), text)


def dsprites_rule(field_name: str, num_classes: int) -> LabelRule:
    """The rule binning dSprites latent ``field_name`` (32 or 40 raw values) into ``num_classes`` classes."""
    n_raw = DSPRITES_RAW_CLASSES[field_name]
    fn = partial(dsprites_label, n_raw=n_raw, num_classes=num_classes)
    return LabelRule((field_name,), fn, f"floor({field_name} / ({n_raw} / {num_classes})): {num_classes} classes")
