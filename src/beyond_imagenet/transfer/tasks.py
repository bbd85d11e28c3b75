"""The 19 VTAB linear-probe tasks and the two presets (TRANSFER.md §3.1-3.5, §8).

Data only: no image is read here. The module describes

- ``ImageSource``: one set of images with its tfds builder and tfds split sizes. Tasks that share images (CLEVR
  count/distance, dSprites location/orientation, smallNORB azimuth/elevation) name the same source, so features
  are extracted once per (backbone, source, split) (§0.5, §6);
- ``TaskSpec`` (frozen): name, group, source, number of classes, split rules, label rule, on-disk layout and
  download instructions. ``get_task(name, preset)`` returns it; the dSprites class counts depend on the preset;
- ``PRESETS``: ``vtab19`` (official VTAB: SUN397, dSprites 16/16) and ``clipbench19`` (CLIP_benchmark's LP list:
  CIFAR-10 instead of SUN397, dSprites 32/40) as ordered task lists with their groups (§3.3);
- the split rules as pure functions on index ranges: ``split_indices(task, ...)`` resolves VTAB's percent slices
  of the tfds splits (``train[:90%]`` ...) into ``SourceRange`` s, for the full protocol (train / val / test /
  trainval) or VTAB-1k (train800 / val200 / train800val200 / test, §3.4);
- the derived-label rules of §3.2 as small pure functions (``clevr_count_label``, ``clevr_distance_label``,
  ``kitti_distance_label``, ``dsprites_label``, ``smallnorb_*_label``, ...); ``TaskSpec.label(record)`` applies
  the task's rule to one tfds-style annotation record (flattened feature names, e.g. ``"objects/pixel_coords"``);
- ``check_task_on_disk(task, root)``: raises ``DatasetLayoutError`` (a ``UserError``) naming the task, the
  expected layout and the download instructions when the files are missing.

On-disk format (§3.5). VTAB's percent slices apply to tfds's *stored record order*, so exact VTAB membership needs
an export made from tfds. The primary layout (``"tfds_parquet"``) is a parquet export of the tfds builder that keeps
tfds's split names and record order (as the ``dpdl-benchmark/<task>`` Hugging Face exports do):
``<root>/<source>/[**/]<tfds split>-*.parquet`` (or ``<tfds split>.parquet``), one row per tfds example with the
image and the raw tfds features, so both tasks of a shared source read one copy. The alternative (``"wds"``) is
CLIP_benchmark's WebDataset mirror ``clip-benchmark/wds_vtab-<task>``: ``<root>/wds_vtab-<task>/{train,test}/*.tar``
plus ``classnames.txt``; it holds VTAB train and VTAB test (no val, which must be carved and its indices saved,
§8.12) with CLIP_benchmark's labels (dSprites 32/40; ``dsprites_label`` remaps them to 16 for ``vtab19``).
A third layout (``"torchvision"``, ``torchvision_layout.py``) reads the files that
``torchvision.datasets.X(root, download=True)`` leaves under ``<root>`` for the six sources torchvision ships with
official splits (CIFAR-10/100, SVHN, DTD, Flowers, Pets): DTD / Flowers are exactly VTAB's, the others have the
official train and test and a carved val. Other torchvision loaders are recorded only as a hint
(``ImageSource.torchvision``): their splits differ from VTAB's.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import partial
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from beyond_imagenet.errors import DatasetLayoutError, UnknownNameError, UserError

Group = Literal["natural", "specialized", "structured"]
GROUPS: tuple[Group, ...] = ("natural", "specialized", "structured")
Protocol = Literal["full", "1k"]
Layout = Literal["tfds_parquet", "wds", "torchvision"]
LAYOUTS: tuple[Layout, ...] = ("tfds_parquet", "wds", "torchvision")

FULL_SPLITS = ("train", "val", "test", "trainval")
VTAB1K_SPLITS = ("train800", "val200", "train800val200", "test")
VTAB1K_TRAIN, VTAB1K_VAL = 800, 200


# ----------------------------------------------------------------------------------------------------------------
# Derived labels (§3.2): pure functions from raw annotations to a class index
# ----------------------------------------------------------------------------------------------------------------

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
    """task_adaptation's binning: the largest ``i`` with ``thresholds[i] < value``.

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
    """``clevr_count_label`` on tfds's ``objects/pixel_coords`` (one row per object)."""
    return clevr_count_label(len(pixel_coords))


def clevr_distance_label(pixel_coords: Sequence[Sequence[float]]) -> int:
    """CLEVR closest_object_distance: min over objects of ``pixel_coords[:, 2]`` (depth), binned by
    ``CLEVR_DISTANCE_THRESHOLDS``: 0 = (0, 8], 1 = (8, 8.5], 2 = (8.5, 9], 3 = (9, 9.5], 4 = (9.5, 10],
    5 = (10, 100]."""
    if len(pixel_coords) == 0:
        raise ValueError("a CLEVR scene without objects has no closest-object distance")
    return threshold_label(min(float(obj[2]) for obj in pixel_coords), CLEVR_DISTANCE_THRESHOLDS, 6)


def _kitti_type_index(t: int | str) -> int:
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
    """dSprites latent index ``raw`` in [0, n_raw) to ``floor(raw / (n_raw / num_classes))`` (exact integer maths).

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
    """smallNORB azimuth in degrees (0, 20, ..., 340) to its class (18 classes). tfds's ``label_azimuth`` is
    already this class index; the raw NYU files store degrees / 10 (0, 2, ..., 34)."""
    if int(degrees) not in SMALLNORB_AZIMUTHS or degrees != int(degrees):
        raise ValueError(f"smallNORB azimuth must be one of 0, 20, ..., 340 degrees, got {degrees}")
    return SMALLNORB_AZIMUTHS.index(int(degrees))


def smallnorb_elevation_label(degrees: int) -> int:
    """smallNORB elevation in degrees (30, 35, ..., 70) to its class (9 classes); tfds's ``label_elevation`` and
    the raw NYU files already store this index (0-8)."""
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
        missing = [f for f in self.fields if f not in record]
        if missing:
            raise KeyError(f"annotation record lacks field(s) {missing}; this label needs {list(self.fields)}")
        return self.fn(*(record[f] for f in self.fields))


def _native(field_name: str, num_classes: int, description: str = "") -> LabelRule:
    text = description or f"tfds `{field_name}` as is ({num_classes} classes)"
    return LabelRule((field_name,), partial(native_label, num_classes=num_classes), text)


# ----------------------------------------------------------------------------------------------------------------
# Image sources (shared images) and split rules
# ----------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageSource:
    """One set of images as tfds stores it; its tfds splits and their sizes (examples), in stored record order."""

    name: str
    tfds_builder: str
    split_sizes: Mapping[str, int]
    download: str  # how to obtain it (source-specific part of the instructions)
    manual: bool = False  # True: cannot be fetched automatically (account, licence, dead link)
    torchvision: str | None = None  # a torch loader, as a hint only (splits may differ from VTAB)
    notes: str = ""  # pre-processing that changes numbers (§3.6)

    def __hash__(self) -> int:  # the mapping fields are unhashable; names identify specs
        return hash((type(self).__name__, self.name))


def _source(name: str, builder: str, sizes: Mapping[str, int], download: str, **kw: Any) -> ImageSource:
    return ImageSource(name, builder, MappingProxyType(dict(sizes)), download, **kw)


_PARQUET_HINT = "a parquet export of tfds `{builder}` that keeps tfds's split names and record order"

SOURCES: Mapping[str, ImageSource] = MappingProxyType(
    {
        s.name: s
        for s in (
            _source(
                "caltech101",
                "caltech101:3.*",
                {"train": 3060, "test": 6084},
                "tfds downloads it; the upstream URL has churned, check it.",
                torchvision="Caltech101 (no split; VTAB's 30-per-class train set is tfds-specific)",
            ),
            _source(
                "cifar100",
                "cifar100:3.*",
                {"train": 50000, "test": 10000},
                "tfds downloads it.",
                torchvision="CIFAR100",
            ),
            _source(
                "cifar10", "cifar10:3.*", {"train": 50000, "test": 10000}, "tfds downloads it.", torchvision="CIFAR10"
            ),
            _source(
                "dtd",
                "dtd:3.*",
                {"train": 1880, "validation": 1880, "test": 1880},
                "tfds downloads it (official fold 1).",
                torchvision="DTD(partition=1) (exact)",
            ),
            _source(
                "oxford_flowers102",
                "oxford_flowers102:2.*",
                {"train": 1020, "validation": 1020, "test": 6149},
                "tfds downloads it.",
                torchvision="Flowers102 (exact)",
            ),
            _source(
                "oxford_iiit_pet",
                "oxford_iiit_pet:3.*",
                {"train": 3680, "test": 3669},
                "tfds downloads it.",
                torchvision="OxfordIIITPet (trainval / test exact; val carved)",
            ),
            _source(
                "svhn_cropped",
                "svhn_cropped:3.*",
                {"train": 73257, "test": 26032},
                "tfds downloads it (the `extra` split is not used).",
                torchvision="SVHN",
            ),
            _source(
                "sun397",
                "sun397/tfds:4.*",
                {"train": 76128, "validation": 10875, "test": 21750},
                "tfds downloads it (about 37 GB; tfds has a known undecodable image). Never use torchvision's "
                "SUN397 for a probe: it has no split, so train and test would be the same images.",
            ),
            _source(
                "patch_camelyon",
                "patch_camelyon:2.*",
                {"train": 262144, "validation": 32768, "test": 32768},
                "tfds downloads it (7.48 GiB).",
                torchvision="PCAM (exact; needs h5py and a Google-Drive download)",
            ),
            _source(
                "eurosat_rgb",
                "eurosat/rgb:2.*",
                {"train": 27000},
                "tfds downloads it.",
                torchvision="EuroSAT (no split)",
            ),
            _source(
                "resisc45",
                "resisc45:3.*",
                {"train": 31500},
                "MANUAL: download NWPU-RESISC45.rar from the authors' OneDrive into tfds's manual_dir and run "
                "`download_and_prepare` (CLIP_benchmark's auto-wget link may be dead; the torchgeo mirror is "
                "CC-BY-NC and uses its own split), or use the clip-benchmark/wds_vtab-resisc45 mirror (layout 'wds').",
                manual=True,
            ),
            _source(
                "diabetic_retinopathy",
                "diabetic_retinopathy_detection/btgraham-300:3.*",
                {"train": 35126, "validation": 10906, "test": 42670},
                "MANUAL: needs a Kaggle account and acceptance of the diabetic-retinopathy-detection competition "
                "rules; put the Kaggle files in tfds's manual_dir and run `download_and_prepare` of the "
                "btgraham-300 config (B. Graham preprocessing; needs OpenCV and hours of CPU; about 80-90 GB raw), "
                "or use the clip-benchmark/wds_vtab-diabetic_retinopathy mirror (layout 'wds').",
                manual=True,
            ),
            _source(
                "clevr",
                "clevr:3.*",
                {"train": 70000, "validation": 15000, "test": 15000},
                "tfds downloads it (17.7 GiB). The test split has no scene labels and is not used.",
                torchvision="CLEVRClassification (count only; distance needs pixel_coords from the scenes JSON)",
                notes="480x320: the centre crop loses the sides.",
            ),
            _source(
                "dmlab",
                "dmlab:2.0.1",
                {"train": 65550, "validation": 22628, "test": 22735},
                "tfds downloads it (about 3 GB; about 14 GB as PNG parquet). No torch loader exists.",
                notes="480x360: the centre crop loses the sides.",
            ),
            _source(
                "kitti",
                "kitti:3.3.0",
                {"train": 6347, "validation": 423, "test": 711},
                "tfds downloads it (about 12 GB). VTAB used kitti:3.1.0, CLIP_benchmark pins kitti:3.3.0.",
                torchvision="Kitti (7,481 labelled frames; tfds's split must be ported)",
                notes="1242x375: the centre crop keeps only the central ~30 % of the width.",
            ),
            _source(
                "dsprites",
                "dsprites:2.*",
                {"train": 737280},
                "tfds downloads it (27 MB). No torch loader; the raw npz is deepmind/dsprites-dataset.",
                notes="64x64x1 in {0,1}: tile to 3 channels and multiply by 255. Store the raw 32/40 latents.",
            ),
            _source(
                "smallnorb",
                "smallnorb:2.*",
                {"train": 24300, "test": 24300},
                "tfds downloads it (about 250 MB). No torch loader (raw NYU binary files).",
                notes="96x96x1 left-camera image tiled to 3 channels.",
            ),
        )
    }
)


@dataclass(frozen=True)
class SourceSlice:
    """A tfds-style percent slice ``split[start:stop]`` of a source split; ``start``/``stop`` are fractions."""

    split: str
    start: Fraction = Fraction(0)
    stop: Fraction = Fraction(1)


@dataclass(frozen=True, order=True)
class SourceRange:
    """Resolved example indices ``range(start, stop)`` of one source split (tfds record order)."""

    split: str
    start: int
    stop: int

    def __len__(self) -> int:
        return self.stop - self.start

    def ids(self) -> list[tuple[str, int]]:
        """Sample ids ``(source split, index)``, unique within an image source."""
        return [(self.split, i) for i in range(self.start, self.stop)]


def _pct(a: int, b: int = 100) -> Fraction:
    return Fraction(a, b)


def _whole(split: str) -> tuple[SourceSlice, ...]:
    return (SourceSlice(split),)


def _official() -> dict[str, tuple[SourceSlice, ...]]:
    """tfds train / validation / test as VTAB train / val / test."""
    return {"train": _whole("train"), "val": _whole("validation"), "test": _whole("test")}


def _carve(frac: Fraction, test: tuple[SourceSlice, ...]) -> dict[str, tuple[SourceSlice, ...]]:
    """train = tfds train[:frac], val = train[frac:], test as given."""
    return {"train": (SourceSlice("train", stop=frac),), "val": (SourceSlice("train", start=frac),), "test": test}


def _three_way(a: Fraction, b: Fraction) -> dict[str, tuple[SourceSlice, ...]]:
    """A single tfds split cut into train[:a], val[a:b], test[b:]."""
    return {
        "train": (SourceSlice("train", stop=a),),
        "val": (SourceSlice("train", start=a, stop=b),),
        "test": (SourceSlice("train", start=b),),
    }


def _resolve_slice(s: SourceSlice, n: int) -> SourceRange:
    # tfds's default percent rounding ("closest"): boundary = round(fraction * n), half to even.
    return SourceRange(s.split, round(s.start * n), round(s.stop * n))


# ----------------------------------------------------------------------------------------------------------------
# Tasks
# ----------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskSpec:
    """One VTAB linear-probe task (TRANSFER.md §3.1). ``splits`` maps train / val / test to tfds slices;
    trainval is always train ∪ val. ``num_classes`` is pinned here (never inferred from labels, §8.9)."""

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
        return f"vtab/{self.name}"

    @property
    def wds_name(self) -> str:
        """CLIP_benchmark's WebDataset mirror (Hugging Face ``clip-benchmark/<wds_name>``)."""
        return "wds_sun397" if self.name == "sun397" else f"wds_vtab-{self.name}"

    @property
    def manual_download(self) -> bool:
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

    def download_instructions(self, layout: Layout = "tfds_parquet") -> str:
        src = self.source
        if layout == "torchvision":
            from beyond_imagenet.transfer.torchvision_layout import torchvision_download_hint

            where = torchvision_download_hint(src)
        elif layout == "wds":
            where = (
                f"Download the Hugging Face dataset clip-benchmark/{self.wds_name} (WebDataset tars train/*.tar and "
                "test/*.tar plus classnames.txt; train = VTAB train without val, test = VTAB test; verify the counts "
                "after download)."
            )
        else:
            where = (
                f"Build {_PARQUET_HINT.format(builder=src.tfds_builder)} (e.g. `tfds.load` then write each split to "
                "parquet with the image and the raw features), or download an existing export such as the Hugging "
                f"Face dpdl-benchmark datasets; check the per-split counts {dict(src.split_sizes)} and the label "
                "histograms before use."
            )
        return f"{where} Source notes: {src.download}"


def _task(
    name: str,
    group: Group,
    source: str,
    num_classes: int,
    splits: dict[str, tuple[SourceSlice, ...]],
    label_rule: LabelRule,
    sizes: tuple[int, int, int],
    notes: str = "",
) -> TaskSpec:
    expected = MappingProxyType(dict(zip(("train", "val", "test"), sizes, strict=True)))
    return TaskSpec(
        name, group, SOURCES[source], num_classes, MappingProxyType(splits), label_rule, expected, notes=notes
    )


def _dsprites_rule(field_name: str, num_classes: int) -> LabelRule:
    n_raw = DSPRITES_RAW_CLASSES[field_name]
    fn = partial(dsprites_label, n_raw=n_raw, num_classes=num_classes)
    return LabelRule((field_name,), fn, f"floor({field_name} / ({n_raw} / {num_classes})): {num_classes} classes")


def _build_tasks(dsprites_classes: Mapping[str, int]) -> dict[str, TaskSpec]:
    p90, p80 = _pct(90), _pct(80)
    tasks = [
        _task(
            "caltech101",
            "natural",
            "caltech101",
            102,
            _carve(p90, _whole("test")),
            _native("label", 102),
            (2754, 306, 6084),
            "102 classes include background",
        ),
        _task(
            "cifar10", "natural", "cifar10", 10, _carve(p90, _whole("test")), _native("label", 10), (45000, 5000, 10000)
        ),
        _task(
            "cifar100",
            "natural",
            "cifar100",
            100,
            _carve(p90, _whole("test")),
            _native("label", 100),
            (45000, 5000, 10000),
        ),
        _task("dtd", "natural", "dtd", 47, _official(), _native("label", 47), (1880, 1880, 1880)),
        _task("flowers", "natural", "oxford_flowers102", 102, _official(), _native("label", 102), (1020, 1020, 6149)),
        _task(
            "pets",
            "natural",
            "oxford_iiit_pet",
            37,
            _carve(p80, _whole("test")),
            _native("label", 37),
            (2944, 736, 3669),
        ),
        _task(
            "svhn",
            "natural",
            "svhn_cropped",
            10,
            _carve(p90, _whole("test")),
            _native("label", 10),
            (65931, 7326, 26032),
        ),
        _task("sun397", "natural", "sun397", 397, _official(), _native("label", 397), (76128, 10875, 21750)),
        _task("pcam", "specialized", "patch_camelyon", 2, _official(), _native("label", 2), (262144, 32768, 32768)),
        _task(
            "eurosat",
            "specialized",
            "eurosat_rgb",
            10,
            _three_way(_pct(60), _pct(80)),
            _native("label", 10),
            (16200, 5400, 5400),
        ),
        _task(
            "resisc45",
            "specialized",
            "resisc45",
            45,
            _three_way(_pct(60), _pct(80)),
            _native("label", 45),
            (18900, 6300, 6300),
        ),
        _task(
            "diabetic_retinopathy",
            "specialized",
            "diabetic_retinopathy",
            5,
            _official(),
            _native("label", 5, "severity grade 0-4 as is"),
            (35126, 10906, 42670),
            "Kaggle train / public LB / private LB; report mean per-class recall too (imbalanced)",
        ),
        _task(
            "clevr_count_all",
            "structured",
            "clevr",
            8,
            _carve(p90, _whole("validation")),
            LabelRule(("objects/pixel_coords",), clevr_count_label_from_coords, "number of objects - 3"),
            (63000, 7000, 15000),
            "test = tfds validation (CLEVR test has no scene labels)",
        ),
        _task(
            "clevr_closest_object_distance",
            "structured",
            "clevr",
            6,
            _carve(p90, _whole("validation")),
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
            _official(),
            _native("label", 6, "tfds label: {close, far, very far} x {positive, negative reward}"),
            (65550, 22628, 22735),
        ),
        _task(
            "kitti_closest_vehicle_distance",
            "structured",
            "kitti",
            4,
            _official(),
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
            _three_way(p80, p90),
            _dsprites_rule("label_x_position", dsprites_classes["label_x_position"]),
            (589824, 73728, 73728),
        ),
        _task(
            "dsprites_label_orientation",
            "structured",
            "dsprites",
            dsprites_classes["label_orientation"],
            _three_way(p80, p90),
            _dsprites_rule("label_orientation", dsprites_classes["label_orientation"]),
            (589824, 73728, 73728),
        ),
        _task(
            "smallnorb_label_azimuth",
            "structured",
            "smallnorb",
            18,
            {
                "train": _whole("train"),
                "val": (SourceSlice("test", stop=_pct(50)),),
                "test": (SourceSlice("test", start=_pct(50)),),
            },
            _native("label_azimuth", 18, "tfds label_azimuth (0-340 degrees in 20 degree steps)"),
            (24300, 12150, 12150),
            "val = tfds test[:50%], test = tfds test[50%:]",
        ),
        _task(
            "smallnorb_label_elevation",
            "structured",
            "smallnorb",
            9,
            {
                "train": _whole("train"),
                "val": (SourceSlice("test", stop=_pct(50)),),
                "test": (SourceSlice("test", start=_pct(50)),),
            },
            _native("label_elevation", 9, "tfds label_elevation (30-70 degrees in 5 degree steps)"),
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
        return tuple(t.name for t in self.tasks)

    @property
    def groups(self) -> Mapping[Group, tuple[str, ...]]:
        return MappingProxyType({g: tuple(t.name for t in self.tasks if t.group == g) for g in GROUPS})

    def task(self, name: str) -> TaskSpec:
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
    if name not in PRESETS:
        raise UnknownNameError("VTAB preset", name, PRESETS)
    return PRESETS[name]


def get_task(name: str, preset: str = DEFAULT_PRESET) -> TaskSpec:
    """The task ``name`` (CLIP_benchmark name, with or without the ``vtab/`` prefix) as defined in ``preset``."""
    return get_preset(preset).task(name.removeprefix("vtab/"))


# ----------------------------------------------------------------------------------------------------------------
# Split rules on index ranges
# ----------------------------------------------------------------------------------------------------------------


def _take_first(pieces: Sequence[SourceRange], k: int, task: str, split: str) -> tuple[SourceRange, ...]:
    total = sum(len(p) for p in pieces)
    if total < k:
        raise UserError(f"task {task!r}: split {split!r} has {total} examples, fewer than the {k} VTAB-1k needs")
    out = []
    for p in pieces:
        if k <= 0:
            break
        take = min(k, len(p))
        out.append(SourceRange(p.split, p.start, p.start + take))
        k -= take
    return tuple(out)


def split_indices(
    task: TaskSpec,
    source_sizes: Mapping[str, int] | None = None,
    protocol: Protocol = "full",
) -> dict[str, tuple[SourceRange, ...]]:
    """Resolve the task's split rules into example-index ranges of its source's tfds splits.

    ``source_sizes`` maps tfds split names to their number of examples (defaults to the real tfds sizes; pass
    the counts actually found on disk, or small numbers in tests). ``protocol="full"`` gives train / val / test /
    trainval (= train followed by val); ``"1k"`` gives VTAB-1k's train800 (first 800 of train), val200 (first 200
    of val), train800val200 and the full test (§3.4).
    """
    sizes = task.source.split_sizes if source_sizes is None else source_sizes
    missing = [s for s in task.source_splits() if s not in sizes]
    if missing:
        raise UserError(f"task {task.name!r} needs the size of source split(s) {missing}; got {sorted(sizes)}")
    full = {
        name: tuple(_resolve_slice(s, int(sizes[s.split])) for s in task.splits[name])
        for name in ("train", "val", "test")
    }
    full["trainval"] = full["train"] + full["val"]
    if protocol == "full":
        return full
    if protocol != "1k":
        raise UserError(f"unknown split protocol {protocol!r}; use 'full' or '1k'")
    train = _take_first(full["train"], VTAB1K_TRAIN, task.name, "train")
    val = _take_first(full["val"], VTAB1K_VAL, task.name, "val")
    return {"train800": train, "val200": val, "train800val200": train + val, "test": full["test"]}


def split_sizes(
    task: TaskSpec, source_sizes: Mapping[str, int] | None = None, protocol: Protocol = "full"
) -> dict[str, int]:
    """Number of examples in each split of ``split_indices``."""
    return {k: sum(len(r) for r in v) for k, v in split_indices(task, source_sizes, protocol).items()}


def sample_ids(ranges: Iterable[SourceRange]) -> list[tuple[str, int]]:
    """The ``(source split, index)`` ids of some ranges, for ``check_disjoint`` and the feature-cache index."""
    return [i for r in ranges for i in r.ids()]


def image_sources(tasks: Iterable[TaskSpec]) -> dict[str, list[str]]:
    """Distinct image sources of ``tasks`` (first-use order) -> the task names reading them: featurise each once."""
    out: dict[str, list[str]] = {}
    for t in tasks:
        out.setdefault(t.source.name, []).append(t.name)
    return out


def source_images_used(tasks: Iterable[TaskSpec], protocol: Protocol = "full") -> dict[str, int]:
    """Unique images per source over all splits of ``tasks`` (shared sources counted once), at tfds sizes."""
    covered: dict[str, dict[str, set[int]]] = {}
    for t in tasks:
        per_split = covered.setdefault(t.source.name, {})
        for ranges in split_indices(t, protocol=protocol).values():
            for r in ranges:
                per_split.setdefault(r.split, set()).update(range(r.start, r.stop))
    return {src: sum(len(v) for v in splits.values()) for src, splits in covered.items()}


# ----------------------------------------------------------------------------------------------------------------
# On-disk check
# ----------------------------------------------------------------------------------------------------------------


def expected_layout(task: TaskSpec, root: str | Path, layout: Layout = "tfds_parquet") -> list[str]:
    """Human-readable list of what ``check_task_on_disk`` looks for, one entry per required item."""
    root = Path(root)
    if layout == "wds":
        base = root / task.wds_name
        return [str(base / "train" / "*.tar"), str(base / "test" / "*.tar"), str(base / "classnames.txt")]
    if layout == "torchvision":
        from beyond_imagenet.transfer.torchvision_layout import torchvision_expected

        return (
            torchvision_expected(task.source, root) if _has_torchvision_format(task) else [_no_torchvision_layout(task)]
        )
    if layout != "tfds_parquet":
        raise UserError(f"unknown dataset layout {layout!r}; use one of {', '.join(LAYOUTS)}")
    base = root / task.source.name
    return [str(base / f"[**/]{s}-*.parquet (or {s}.parquet)") for s in task.source_splits()]


def _has_torchvision_format(task: TaskSpec) -> bool:
    from beyond_imagenet.transfer.torchvision_layout import TORCHVISION_SOURCES

    return task.source.name in TORCHVISION_SOURCES


def _no_torchvision_layout(task: TaskSpec) -> str:
    from beyond_imagenet.transfer.torchvision_layout import TORCHVISION_SOURCES

    return (
        f"VTAB task {task.name!r} (image source {task.source.name!r}) has no torchvision layout: torchvision "
        f"formats are read only for {', '.join(TORCHVISION_SOURCES)} (docs/vtab.md). Use layout "
        "'tfds_parquet' or 'wds' for this task"
    )


def _missing_items(task: TaskSpec, root: Path, layout: Layout) -> list[str]:
    if layout == "torchvision":
        from beyond_imagenet.transfer.torchvision_layout import torchvision_missing

        return torchvision_missing(task.source, root)
    wanted = expected_layout(task, root, layout)
    if layout == "wds":
        base = root / task.wds_name
        checks = [
            any((base / "train").glob("*.tar")),
            any((base / "test").glob("*.tar")),
            (base / "classnames.txt").is_file(),
        ]
    else:
        base = root / task.source.name
        checks = [
            base.is_dir() and (any(base.glob(f"**/{s}-*.parquet")) or any(base.glob(f"**/{s}.parquet")))
            for s in task.source_splits()
        ]
    return [w for w, ok in zip(wanted, checks, strict=True) if not ok]


def check_task_on_disk(task: TaskSpec | str, root: str | Path, layout: Layout = "tfds_parquet") -> Path:
    """Check that ``task``'s files are under ``root`` in ``layout``; return the directory to read (``root``
    itself for ``torchvision``, whose files sit in torchvision's own folders under it).

    Raises ``DatasetLayoutError`` (a ``UserError``) naming the task, its image source, the expected layout, what
    is missing and how to download it. Only presence is checked; counts are checked by the loader.
    """
    if isinstance(task, str):
        task = get_task(task)
    root = Path(root)
    if layout == "torchvision" and not _has_torchvision_format(task):
        raise DatasetLayoutError(f"{_no_torchvision_layout(task)}.")
    missing = _missing_items(task, root, layout)
    base = {"wds": root / task.wds_name, "torchvision": root}.get(layout, root / task.source.name)
    if not missing:
        return base
    manual = " This dataset needs a MANUAL download." if task.manual_download else ""
    raise DatasetLayoutError(
        f"VTAB task {task.name!r} (image source {task.source.name!r}, tfds {task.source.tfds_builder}) is not on "
        f"disk under {root} in layout {layout!r}. Expected: {'; '.join(expected_layout(task, root, layout))}. "
        f"Missing: {'; '.join(missing)}.{manual} How to get it: {task.download_instructions(layout)}"
    )


__all__ = [
    "DEFAULT_PRESET",
    "FULL_SPLITS",
    "GROUPS",
    "LAYOUTS",
    "PRESETS",
    "SOURCES",
    "VTAB1K_SPLITS",
    "ImageSource",
    "LabelRule",
    "Preset",
    "SourceRange",
    "SourceSlice",
    "TaskSpec",
    "check_task_on_disk",
    "clevr_count_label",
    "clevr_count_label_from_coords",
    "clevr_distance_label",
    "dsprites_label",
    "expected_layout",
    "get_preset",
    "get_task",
    "image_sources",
    "kitti_distance_label",
    "native_label",
    "sample_ids",
    "smallnorb_azimuth_label",
    "smallnorb_elevation_label",
    "source_images_used",
    "split_indices",
    "split_sizes",
    "threshold_label",
]
