"""The 19 VTAB linear-probe tasks and the two presets (docs/transfer.md §3.1-3.5, §8).

Data only: no image is read here. The module describes

- ``TaskSpec`` (frozen): name, group, image source (``sources.ImageSource``), number of classes, split rules
  (``slices``) and label rule (``labels``). ``get_task(name, preset)`` returns it; the dSprites class counts depend
  on the preset. A task knows no on-disk layout: the layouts (``layouts``) say where its files are and how to get
  them;
- ``PRESETS``: ``vtab19`` (official VTAB: SUN397, dSprites 16/16) and ``clipbench19`` (CLIP_benchmark's LP list:
  CIFAR-10 instead of SUN397, dSprites 32/40) as ordered task lists with their groups (§3.3);
- the split names of the full protocol (train / val / test / trainval) and of VTAB-1k (train800 / val200 /
  train800val200 / test, §3.4). ``split_rules`` resolves them into index ranges.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

from beyond_imagenet.base.errors import UnknownNameError
from beyond_imagenet.data.vtab.labels import (
    LabelRule,
    clevr_count_label_from_coords,
    clevr_distance_label,
    dsprites_rule,
    kitti_distance_label,
    native_rule,
)
from beyond_imagenet.data.vtab.slices import SourceSlice, SplitRule, carve, official, pct, three_way, whole
from beyond_imagenet.data.vtab.sources import SOURCES, ImageSource

__all__ = [
    "DEFAULT_PRESET",
    "FULL_SPLITS",
    "GROUPS",
    "PRESETS",
    "VTAB1K_SPLITS",
    "VTAB1K_TRAIN",
    "VTAB1K_VAL",
    "Group",
    "Preset",
    "Protocol",
    "TaskSpec",
    "get_preset",
    "get_task",
]

Group = Literal["natural", "specialized", "structured"]
GROUPS: tuple[Group, ...] = ("natural", "specialized", "structured")
Protocol = Literal["full", "1k"]

FULL_SPLITS = ("train", "val", "test", "trainval")
VTAB1K_SPLITS = ("train800", "val200", "train800val200", "test")
VTAB1K_TRAIN, VTAB1K_VAL = 800, 200


@dataclass(frozen=True)
class TaskSpec:
    """One VTAB linear-probe task (docs/transfer.md §3.1).

    ``splits`` maps train / val / test to tfds slices; trainval is always train ∪ val. ``num_classes`` is pinned
    here (never inferred from labels, §8.9).
    """

    name: str
    group: Group
    source: ImageSource
    num_classes: int
    splits: Mapping[str, tuple[SourceSlice, ...]]
    label_rule: LabelRule
    expected_sizes: Mapping[str, int]  # VTAB train / val / test sizes from the spec, for checks
    notes: str = ""

    def __hash__(self) -> int:  # the mapping fields are unhashable; names identify specs
        return hash((type(self).__name__, self.name))

    @property
    def clip_benchmark_name(self) -> str:
        """The task's name in CLIP_benchmark (``vtab/<name>``)."""
        return f"vtab/{self.name}"

    @property
    def manual_download(self) -> bool:
        """True when the image source cannot be fetched automatically."""
        return self.source.manual

    def label(self, record: Mapping[str, Any]) -> int:
        """Class index of one raw annotation record (flattened tfds feature names)."""
        return self.label_rule(record)

    def source_splits(self) -> tuple[str, ...]:
        """The tfds splits of the source that this task reads, in first-use order."""
        seen: dict[str, None] = {}
        for name in ("train", "val", "test"):
            for s in self.splits[name]:
                seen.setdefault(s.split, None)
        return tuple(seen)


def _task(
    name: str,
    group: Group,
    source: str,
    num_classes: int,
    splits: SplitRule,
    label_rule: LabelRule,
    sizes: tuple[int, int, int],
    notes: str = "",
) -> TaskSpec:
    """One table entry; ``sizes`` are VTAB's train / val / test sizes."""
    expected = MappingProxyType(dict(zip(("train", "val", "test"), sizes, strict=True)))
    return TaskSpec(
        name, group, SOURCES[source], num_classes, MappingProxyType(splits), label_rule, expected, notes=notes
    )


def _build_tasks(dsprites_classes: Mapping[str, int]) -> dict[str, TaskSpec]:
    """The 20 task specs by name; ``dsprites_classes`` sets the dSprites class counts of a preset."""
    p90, p80 = pct(90), pct(80)
    tasks = [
        _task(
            "caltech101",
            "natural",
            "caltech101",
            102,
            carve(p90, whole("test")),
            native_rule("label", 102),
            (2754, 306, 6084),
            "102 classes include background",
        ),
        _task(
            "cifar10",
            "natural",
            "cifar10",
            10,
            carve(p90, whole("test")),
            native_rule("label", 10),
            (45000, 5000, 10000),
        ),
        _task(
            "cifar100",
            "natural",
            "cifar100",
            100,
            carve(p90, whole("test")),
            native_rule("label", 100),
            (45000, 5000, 10000),
        ),
        _task("dtd", "natural", "dtd", 47, official(), native_rule("label", 47), (1880, 1880, 1880)),
        _task(
            "flowers", "natural", "oxford_flowers102", 102, official(), native_rule("label", 102), (1020, 1020, 6149)
        ),
        _task(
            "pets",
            "natural",
            "oxford_iiit_pet",
            37,
            carve(p80, whole("test")),
            native_rule("label", 37),
            (2944, 736, 3669),
        ),
        _task(
            "svhn",
            "natural",
            "svhn_cropped",
            10,
            carve(p90, whole("test")),
            native_rule("label", 10),
            (65931, 7326, 26032),
        ),
        _task("sun397", "natural", "sun397", 397, official(), native_rule("label", 397), (76128, 10875, 21750)),
        _task("pcam", "specialized", "patch_camelyon", 2, official(), native_rule("label", 2), (262144, 32768, 32768)),
        _task(
            "eurosat",
            "specialized",
            "eurosat_rgb",
            10,
            three_way(pct(60), pct(80)),
            native_rule("label", 10),
            (16200, 5400, 5400),
        ),
        _task(
            "resisc45",
            "specialized",
            "resisc45",
            45,
            three_way(pct(60), pct(80)),
            native_rule("label", 45),
            (18900, 6300, 6300),
        ),
        _task(
            "diabetic_retinopathy",
            "specialized",
            "diabetic_retinopathy",
            5,
            official(),
            native_rule("label", 5, "severity grade 0-4 as is"),
            (35126, 10906, 42670),
            "Kaggle train / public LB / private LB; report mean per-class recall too (imbalanced)",
        ),
        _task(
            "clevr_count_all",
            "structured",
            "clevr",
            8,
            carve(p90, whole("validation")),
            LabelRule(("objects/pixel_coords",), clevr_count_label_from_coords, "number of objects - 3"),
            (63000, 7000, 15000),
            "test = tfds validation (CLEVR test has no scene labels)",
        ),
        _task(
            "clevr_closest_object_distance",
            "structured",
            "clevr",
            6,
            carve(p90, whole("validation")),
            LabelRule(
                ("objects/pixel_coords",),
                clevr_distance_label,
                "min depth pixel_coords[:, 2] binned by (0, 8, 8.5, 9, 9.5, 10, 100]",
            ),
            (63000, 7000, 15000),
            "test = tfds validation (CLEVR test has no scene labels)",
        ),
        _task(
            "dmlab",
            "structured",
            "dmlab",
            6,
            official(),
            native_rule("label", 6, "tfds label: {close, far, very far} x {positive, negative reward}"),
            (65550, 22628, 22735),
        ),
        _task(
            "kitti_closest_vehicle_distance",
            "structured",
            "kitti",
            4,
            official(),
            LabelRule(
                ("objects/type", "objects/location"),
                kitti_distance_label,
                "min z of Car/Van/Truck (sentinel 1000) binned by (-100, 8, 20, 999, ...]",
            ),
            (6347, 423, 711),
        ),
        _task(
            "dsprites_label_x_position",
            "structured",
            "dsprites",
            dsprites_classes["label_x_position"],
            three_way(p80, p90),
            dsprites_rule("label_x_position", dsprites_classes["label_x_position"]),
            (589824, 73728, 73728),
        ),
        _task(
            "dsprites_label_orientation",
            "structured",
            "dsprites",
            dsprites_classes["label_orientation"],
            three_way(p80, p90),
            dsprites_rule("label_orientation", dsprites_classes["label_orientation"]),
            (589824, 73728, 73728),
        ),
        _task(
            "smallnorb_label_azimuth",
            "structured",
            "smallnorb",
            18,
            {
                "train": whole("train"),
                "val": (SourceSlice("test", stop=pct(50)),),
                "test": (SourceSlice("test", start=pct(50)),),
            },
            native_rule("label_azimuth", 18, "tfds label_azimuth (0-340 degrees in 20 degree steps)"),
            (24300, 12150, 12150),
            "val = tfds test[:50%], test = tfds test[50%:]",
        ),
        _task(
            "smallnorb_label_elevation",
            "structured",
            "smallnorb",
            9,
            {
                "train": whole("train"),
                "val": (SourceSlice("test", stop=pct(50)),),
                "test": (SourceSlice("test", start=pct(50)),),
            },
            native_rule("label_elevation", 9, "tfds label_elevation (30-70 degrees in 5 degree steps)"),
            (24300, 12150, 12150),
            "val = tfds test[:50%], test = tfds test[50%:]",
        ),
    ]
    return {t.name: t for t in tasks}


@dataclass(frozen=True)
class Preset:
    """An ordered 19-task list with its group membership (Table 3 aggregation: group means, Overall = task mean)."""

    name: str
    tasks: tuple[TaskSpec, ...]
    description: str

    def __hash__(self) -> int:  # the mapping fields are unhashable; names identify specs
        return hash((type(self).__name__, self.name))

    @property
    def names(self) -> tuple[str, ...]:
        """The task names in preset order."""
        return tuple(t.name for t in self.tasks)

    @property
    def groups(self) -> Mapping[Group, tuple[str, ...]]:
        """Group -> the names of its tasks, in preset order."""
        return MappingProxyType({g: tuple(t.name for t in self.tasks if t.group == g) for g in GROUPS})

    def task(self, name: str) -> TaskSpec:
        """The task ``name`` of this preset; ``UnknownNameError`` with close matches otherwise."""
        for t in self.tasks:
            if t.name == name:
                return t
        raise UnknownNameError(f"{self.name} task", name, self.names)


_NATURAL_VTAB = ("caltech101", "cifar100", "dtd", "flowers", "pets", "svhn", "sun397")
_NATURAL_CLIPBENCH = ("caltech101", "cifar10", "cifar100", "dtd", "flowers", "pets", "svhn")
_SPECIALIZED = ("pcam", "eurosat", "resisc45", "diabetic_retinopathy")
_STRUCTURED = (
    "clevr_count_all",
    "clevr_closest_object_distance",
    "dmlab",
    "kitti_closest_vehicle_distance",
    "dsprites_label_x_position",
    "dsprites_label_orientation",
    "smallnorb_label_azimuth",
    "smallnorb_label_elevation",
)


def _preset(name: str, natural: tuple[str, ...], dsprites: Mapping[str, int], description: str) -> Preset:
    """A preset: its natural tasks, then the shared specialized and structured ones."""
    by_name = _build_tasks(dsprites)
    return Preset(name, tuple(by_name[n] for n in (*natural, *_SPECIALIZED, *_STRUCTURED)), description)


PRESETS: Mapping[str, Preset] = MappingProxyType(
    {
        "vtab19": _preset(
            "vtab19",
            _NATURAL_VTAB,
            {"label_x_position": 16, "label_orientation": 16},
            "official VTAB list (task_adaptation run_all_tasks.sh): SUN397, dSprites 16/16 classes",
        ),
        "clipbench19": _preset(
            "clipbench19",
            _NATURAL_CLIPBENCH,
            {"label_x_position": 32, "label_orientation": 40},
            "CLIP_benchmark's LP list: CIFAR-10 instead of SUN397, dSprites 32/40 classes (closest to the paper)",
        ),
    }
)
DEFAULT_PRESET = "clipbench19"


def get_preset(name: str) -> Preset:
    """The preset ``name`` (``vtab19`` or ``clipbench19``); ``UnknownNameError`` with close matches otherwise."""
    if name not in PRESETS:
        raise UnknownNameError("VTAB preset", name, PRESETS)
    return PRESETS[name]


def get_task(name: str, preset: str = DEFAULT_PRESET) -> TaskSpec:
    """The task ``name`` (CLIP_benchmark name, with or without the ``vtab/`` prefix) as defined in ``preset``."""
    return get_preset(preset).task(name.removeprefix("vtab/"))
