"""Dataset registry: a name in ``params.yaml`` -> a scanned, validated dataset with its label space.

Registered kinds carry the defaults of docs/protocol.md §2.1 (layout, label space, expected size). Any other
dataset plugs in as ``kind: image_folder`` with a path and a label space, so a user's own data need not
pretend to be ImageNet. Scanning validates the layout before any model is loaded.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from beyond_imagenet.base.config import DatasetConfig
from beyond_imagenet.base.errors import DatasetLayoutError, UnknownNameError, UserError
from beyond_imagenet.data.cue_conflict import CATEGORY_INDICES
from beyond_imagenet.data.folders import scan_class_folders
from beyond_imagenet.data.kinds import (
    DATASET_KINDS,
    IMAGENET_C_CORRUPTIONS,
    IMAGENET_C_SEVERITIES,
    PUG_CLASS_MAP_FILE,
    DatasetKind,
)
from beyond_imagenet.data.label_space import (
    LabelSpace,
    custom_space,
    imagenet1k_space,
    imagenet_subset_space,
    imagenet_wnids,
    read_classnames_file,
    read_imagenet_map_file,
)
from beyond_imagenet.data.parquet_source import scan_parquet, snapshot_revision
from beyond_imagenet.data.pug import PUG_FACTORS, load_class_map
from beyond_imagenet.data.samples import Sample

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImageDataset:
    """A scanned dataset (one variant of it): samples in a fixed order, targets in ``label_space``, manifest."""

    name: str
    kind: str
    root: Path
    samples: tuple[Sample, ...]
    targets: np.ndarray
    label_space: LabelSpace
    variant: str | None = None  # e.g. "fog/3" for ImageNet-C, "Worlds" for PUG
    geometry: str = "model"
    complete: bool = True
    label_lists: tuple[tuple[int, ...], ...] | None = None  # multi-label sets (ImageNet-Hard)
    revision: str | None = None

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def key(self) -> str:
        """``<name>/<variant>`` (variant e.g. ``fog/3``), or the name alone: identifies one scanned variant."""
        return f"{self.name}/{self.variant}" if self.variant else self.name

    @property
    def sample_ids(self) -> list[str]:
        """The sample id of each image, in sample order."""
        return [s.sample_id for s in self.samples]

    def manifest_sha256(self) -> str:
        """Hash of (relative path, size, sample id, labels) of every sample: changes when data or labels change."""
        digest = hashlib.sha256()
        labels = self.label_lists or [(t,) for t in self.targets.tolist()]
        for sample, label in zip(self.samples, labels, strict=True):
            relative = sample.path.relative_to(self.root).as_posix()
            digest.update(f"{relative}\t{sample.path.stat().st_size}\t{sample.sample_id}\t{list(label)}\n".encode())
        return digest.hexdigest()

    def manifest(self) -> dict:
        """The dataset's manifest (written by ``verify``, recorded with caches): identity, size, label space, hash."""
        return {
            "name": self.name,
            "variant": self.variant,
            "kind": self.kind,
            "root": str(self.root),
            "n_images": len(self.samples),
            "n_classes": self.label_space.n_classes,
            "label_space": self.label_space.as_record(),
            "geometry": self.geometry,
            "complete": self.complete,
            "revision": self.revision,
            "multi_label": self.label_lists is not None,
            "files_sha256": self.manifest_sha256(),
        }


def _imagenet1k_labels(class_ids: list[str], config: DatasetConfig, root: Path) -> LabelSpace:
    known = set(imagenet_wnids())
    unknown = [c for c in class_ids if c not in known]
    if unknown:
        raise UserError(f"class folders that are not ImageNet-1k wnids: {', '.join(unknown[:5])}")
    return imagenet1k_space()


def _imagenet_subset_labels(class_ids: list[str], config: DatasetConfig, root: Path) -> LabelSpace:
    return imagenet_subset_space(class_ids)


def _cue_conflict_labels(class_ids: list[str], config: DatasetConfig, root: Path) -> LabelSpace:
    unknown = sorted(set(class_ids) - set(CATEGORY_INDICES))
    if unknown:
        raise DatasetLayoutError(
            f"{root}: cue-conflict shape folders must be the 16 categories ({', '.join(CATEGORY_INDICES)}); "
            f"found {', '.join(unknown)}"
        )
    return custom_space(list(CATEGORY_INDICES), imagenet_map={c: list(v) for c, v in CATEGORY_INDICES.items()})


def _pug_labels(class_ids: list[str], config: DatasetConfig, root: Path) -> LabelSpace:
    class_map = load_class_map(root / PUG_CLASS_MAP_FILE)
    unknown = sorted(set(class_ids) - set(class_map))
    if unknown:
        raise DatasetLayoutError(
            f"{root}: PUG class folders not in {PUG_CLASS_MAP_FILE}: {', '.join(unknown[:5])} "
            "(folder names must equal its keys exactly, e.g. 'Kangarou', 'Table_Lamb')"
        )
    return custom_space(sorted(class_map), imagenet_map=class_map)


def _custom_labels(class_ids: list[str], config: DatasetConfig, root: Path) -> LabelSpace:
    """The dataset's own classes; its names and ImageNet map files are checked against the folders at scan time."""
    return custom_space(
        class_ids,
        read_classnames_file(config.classnames_file, class_ids, root),
        read_imagenet_map_file(config.imagenet_map_file, class_ids, root),
    )


# label space kind (DatasetConfig.label_space, or the kind's default) -> its builder
LABEL_SPACES: dict[str, Callable[[list[str], DatasetConfig, Path], LabelSpace]] = {
    "imagenet1k": _imagenet1k_labels,
    "imagenet_subset": _imagenet_subset_labels,
    "cue_conflict": _cue_conflict_labels,
    "pug": _pug_labels,
    "custom": _custom_labels,
}


def dataset_kind(name: str, config: DatasetConfig) -> DatasetKind:
    """The registered kind of a params entry: its ``kind`` key, else its name."""
    kind_name = config.kind or name
    if kind_name not in DATASET_KINDS:
        what = "dataset kind" if config.kind else "dataset"
        raise UnknownNameError(what, kind_name, DATASET_KINDS)
    return DATASET_KINDS[kind_name]


def _official_wnids(filename: str) -> set[str]:
    import timm.data

    path = Path(timm.data.__file__).parent / "_info" / filename
    return set(path.read_text().split())


def _size_problems(kind: DatasetKind, n_images: int, class_ids: list[str]) -> list[str]:
    problems = []
    if kind.expected_classes is not None and len(class_ids) != kind.expected_classes:
        problems.append(f"found {len(class_ids)} class folders, {kind.name} has {kind.expected_classes}")
    if kind.expected_images is not None and n_images != kind.expected_images:
        problems.append(f"found {n_images} images, {kind.name} has {kind.expected_images}")
    if kind.official_wnids:
        extra = sorted(set(class_ids) - _official_wnids(kind.official_wnids))
        if extra:
            problems.append(f"class folders outside the official {kind.name} classes: {', '.join(extra[:5])}")
    return problems


def _variant_folders(name: str, kind: DatasetKind, root: Path, check_size: bool, expected: list) -> list:
    """The ``(variant, directory)`` pairs of ``expected`` present under ``root``; too many missing raises."""
    if not root.is_dir():
        raise DatasetLayoutError(f"dataset {name!r}: directory {root} does not exist ({kind.description})")
    missing = [variant for variant, directory in expected if not directory.is_dir()]
    if missing and (check_size or len(missing) == len(expected)):
        raise DatasetLayoutError(
            f"dataset {name!r} at {root}: {len(missing)} of {len(expected)} sub-folders missing, e.g. "
            f"{', '.join(missing[:5])}. Expected layout: {kind.description}. "
            "Set check_size: false to run on the ones present."
        )
    return [(variant, directory) for variant, directory in expected if directory.is_dir()]


def _plain_variants(name: str, kind: DatasetKind, root: Path, check_size: bool) -> list[tuple[str | None, Path]]:
    return [(None, root)]


def _imagenet_c_variants(name: str, kind: DatasetKind, root: Path, check_size: bool) -> list[tuple[str | None, Path]]:
    expected = [(f"{c}/{s}", root / c / str(s)) for c in IMAGENET_C_CORRUPTIONS for s in IMAGENET_C_SEVERITIES]
    return _variant_folders(name, kind, root, check_size, expected)


def _pug_variants(name: str, kind: DatasetKind, root: Path, check_size: bool) -> list[tuple[str | None, Path]]:
    return _variant_folders(name, kind, root, check_size, [(factor, root / factor) for factor in PUG_FACTORS])


# class-folder layouts -> (variant, directory) pairs: one for plain folders, 15 x 5 for ImageNet-C, 10 for PUG
VARIANT_FOLDERS: dict[str, Callable[[str, DatasetKind, Path, bool], list[tuple[str | None, Path]]]] = {
    "class_folders": _plain_variants,
    "imagenet_c": _imagenet_c_variants,
    "pug": _pug_variants,
}


def _check_side_files(name: str, kind: DatasetKind, root: Path) -> None:
    for side in kind.side_files:
        if not (root / side).is_file():
            raise DatasetLayoutError(
                f"dataset {name!r}: required side file {root / side} is missing ({kind.description})"
            )


def _integer_labels(name: str, root: Path, samples: list, label_kind: str) -> tuple[LabelSpace, np.ndarray]:
    """ImageNetV2 layout: the folder name *is* the ImageNet index ("7" and "0007" alike), never its sort rank.

    ``imagenet1k``: targets are those indices; ``imagenet_subset``: the indices present, as a §2.2 subset.
    """
    indices = [int(s.class_id) for s in samples]
    if not all(0 <= i < 1000 for i in indices):
        raise DatasetLayoutError(f"dataset {name!r} at {root}: integer class folders must be 0..999")
    if label_kind == "imagenet1k":
        return imagenet1k_space(), np.array(indices, dtype=np.int64)
    if label_kind != "imagenet_subset":
        raise UserError(
            f"dataset {name!r}: label_space {label_kind!r} does not apply to integer class folders (ImageNet "
            "indices); set datasets.<name>.label_space to imagenet1k, imagenet_subset or custom"
        )
    wnids = imagenet_wnids()
    space = imagenet_subset_space([wnids[i] for i in set(indices)])
    position = {w: i for i, w in enumerate(space.class_ids)}
    return space, np.array([position[wnids[i]] for i in indices], dtype=np.int64)


def _official_subset(name: str, kind: DatasetKind, class_ids: list[str], root: Path) -> LabelSpace:
    """IN-A / IN-R: the official 200-wnid mask whatever folders are present (docs/protocol.md §2.2)."""
    official = _official_wnids(kind.official_wnids or "")
    extra = sorted(set(class_ids) - official)
    if extra:
        raise DatasetLayoutError(
            f"dataset {name!r} at {root}: class folders outside the official {kind.name} classes: "
            f"{', '.join(extra[:5])}. {kind.name} is scored on its official {len(official)}-class mask "
            "(docs/protocol.md §2.2); remove them, or use kind: image_folder with label_space: imagenet_subset "
            "for a subset of your own"
        )
    if len(class_ids) < len(official):
        log.warning(
            "dataset %r: %d of the %d %s class folders present; scored on the official %d-class mask (§2.2)",
            name, len(class_ids), len(official), kind.name, len(official),
        )  # fmt: skip
    return imagenet_subset_space(sorted(official))


def _folder_labels(
    name: str, kind: DatasetKind, config: DatasetConfig, class_ids: list[str], root: Path, label_root: Path
) -> LabelSpace:
    """The label space of class folders: the kind's official mask for IN-A / IN-R, else the label space's builder."""
    label_kind = config.label_space or kind.label_space
    if label_kind == "imagenet_subset" and kind.official_wnids:
        return _official_subset(name, kind, class_ids, root)
    return LABEL_SPACES[label_kind](class_ids, config, label_root)


def _scan_variant(name: str, kind: DatasetKind, config: DatasetConfig, root: Path, label_root: Path):
    rule = config.class_folders or kind.class_folders
    samples = scan_class_folders(root, rule)
    class_ids = sorted({s.class_id for s in samples}, key=lambda c: (int(c), c) if c.isdigit() else (0, c))
    label_kind = config.label_space or kind.label_space
    if rule == "integer" and label_kind != "custom":  # the kind's default subset is for wnid folders: ImageNet-1k
        label_space, targets = _integer_labels(name, root, samples, config.label_space or "imagenet1k")
    else:
        label_space = _folder_labels(name, kind, config, class_ids, root, label_root)
        position = {c: i for i, c in enumerate(label_space.class_ids)}
        targets = np.array([position[s.class_id] for s in samples], dtype=np.int64)
    return samples, targets, label_space, _size_problems(kind, len(samples), class_ids)


def _resolve_parquet(name: str, kind: DatasetKind, config: DatasetConfig) -> list[ImageDataset]:
    """ImageNet-Hard: rows of parquet files at a pinned revision, one label list per image (§7.6)."""
    root = Path(config.path)
    if not root.is_dir():
        raise DatasetLayoutError(f"dataset {name!r}: directory {root} does not exist ({kind.description})")
    if not config.revision:
        raise DatasetLayoutError(
            f"dataset {name!r}: set `revision:` to the commit of taesiri/imagenet-hard you downloaded; the dataset "
            "was revised (13,630 -> 11,350 -> 10,980 images), so results need the pinned revision "
            "(docs/protocol.md §7.6)"
        )
    found = snapshot_revision(root)
    if found is not None and found != config.revision:
        raise DatasetLayoutError(f"dataset {name!r}: {root} is snapshot {found}, but params pin {config.revision}")
    samples = scan_parquet(root)
    problems = _size_problems(kind, len(samples), [])
    if problems and config.check_size:
        raise DatasetLayoutError(
            f"dataset {name!r} at {root}: {'; '.join(problems)} (the 10,980-image revision). Point `path` at "
            "that revision, or set check_size: false to run on another one on purpose."
        )
    label_lists = tuple(s.labels for s in samples)
    if any(not labels or not all(0 <= i < 1000 for i in labels) for labels in label_lists):
        raise DatasetLayoutError(f"dataset {name!r}: every row needs a non-empty list of ImageNet indices 0..999")
    targets = np.array([labels[0] for labels in label_lists], dtype=np.int64)
    dataset = ImageDataset(
        name, kind.name, root, tuple(samples), targets, imagenet1k_space(),
        complete=not problems, label_lists=label_lists, revision=config.revision,
    )  # fmt: skip
    return [dataset]


def _resolve_folders(name: str, kind: DatasetKind, config: DatasetConfig) -> list[ImageDataset]:
    """Class-folder layouts: every variant scanned, its size checked (unless ``check_size: false``)."""
    root = Path(config.path)
    _check_side_files(name, kind, root)
    datasets = []
    for variant, directory in VARIANT_FOLDERS[kind.layout](name, kind, root, config.check_size):
        samples, targets, label_space, problems = _scan_variant(name, kind, config, directory, root)
        if problems and config.check_size:
            raise DatasetLayoutError(
                f"dataset {name!r} at {directory}: {'; '.join(problems)}. Point `path` at the complete dataset, "
                "or set check_size: false to run on a subset on purpose."
            )
        geometry = config.geometry or kind.geometry
        datasets.append(
            ImageDataset(
                name, kind.name, directory, tuple(samples), targets, label_space, variant, geometry, not problems
            )
        )
    return datasets


# on-disk layout of a kind -> the function that scans it into datasets (one per variant)
RESOLVERS: dict[str, Callable[[str, DatasetKind, DatasetConfig], list[ImageDataset]]] = {
    "class_folders": _resolve_folders,
    "imagenet_c": _resolve_folders,
    "pug": _resolve_folders,
    "parquet": _resolve_parquet,
}


def resolve_datasets(name: str, config: DatasetConfig) -> list[ImageDataset]:
    """Scan and validate the dataset ``name`` of params.yaml (all its variants); no model is touched."""
    kind = dataset_kind(name, config)
    return RESOLVERS[kind.layout](name, kind, config)


def resolve_dataset(name: str, config: DatasetConfig) -> ImageDataset:
    """A dataset with a single variant (plain class folders)."""
    datasets = resolve_datasets(name, config)
    if len(datasets) != 1:
        raise UserError(f"dataset {name!r} has {len(datasets)} variants; use resolve_datasets")
    return datasets[0]
