"""Dataset registry: a name in ``params.yaml`` -> a scanned, validated dataset with its label space.

Registered kinds carry the defaults of PROTOCOL.md §2.1 (layout, label space, expected size). Any other
dataset plugs in as ``kind: image_folder`` with a path and a label space, so a user's own data need not
pretend to be ImageNet. Scanning validates the layout before any model is loaded.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from beyond_imagenet.config import DatasetConfig
from beyond_imagenet.data.folders import FolderSample, scan_class_folders
from beyond_imagenet.data.label_space import (
    LabelSpace,
    custom_space,
    imagenet1k_space,
    imagenet_subset_space,
    imagenet_wnids,
)
from beyond_imagenet.errors import DatasetLayoutError, UnknownNameError, UserError


@dataclass(frozen=True)
class DatasetKind:
    """Defaults for a family of on-disk datasets."""

    name: str
    description: str
    label_space: str
    class_folders: str
    expected_images: int | None = None
    expected_classes: int | None = None


DATASET_KINDS: dict[str, DatasetKind] = {
    kind.name: kind
    for kind in (
        DatasetKind(
            "imagenet_val",
            "ImageNet-1k validation set, val/<wnid>/ILSVRC2012_val_XXXXXXXX.JPEG (PROTOCOL §2.1)",
            "imagenet1k",
            "wnid",
            expected_images=50_000,
            expected_classes=1000,
        ),
        DatasetKind(
            "demo_val",
            "generated offline demo in the ImageNet-val format (`beyond-imagenet make-demo-data`)",
            "imagenet_subset",
            "wnid",
        ),
        DatasetKind(
            "image_folder",
            "any <root>/<class>/<image> folder; set label_space (imagenet1k, imagenet_subset or custom)",
            "imagenet_subset",
            "wnid",
        ),
    )
}


@dataclass(frozen=True)
class ImageDataset:
    """A scanned dataset: samples in a fixed order, their targets in ``label_space`` and a manifest."""

    name: str
    kind: str
    root: Path
    samples: tuple[FolderSample, ...]
    targets: np.ndarray
    label_space: LabelSpace

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def sample_ids(self) -> list[str]:
        return [s.sample_id for s in self.samples]

    def manifest_sha256(self) -> str:
        """Hash of (relative path, size, target) of every file: changes when the data or labels change."""
        digest = hashlib.sha256()
        for sample, target in zip(self.samples, self.targets.tolist(), strict=True):
            relative = sample.path.relative_to(self.root).as_posix()
            digest.update(f"{relative}\t{sample.path.stat().st_size}\t{target}\n".encode())
        return digest.hexdigest()

    def manifest(self) -> dict:
        return {
            "name": self.name,
            "kind": self.kind,
            "root": str(self.root),
            "n_images": len(self.samples),
            "n_classes": self.label_space.n_classes,
            "label_space": self.label_space.as_record(),
            "files_sha256": self.manifest_sha256(),
        }


def _read_json_file(path: str | None, what: str) -> dict | None:
    if path is None:
        return None
    file = Path(path)
    if not file.exists():
        raise UserError(f"{what} {file} not found")
    try:
        return json.loads(file.read_text())
    except json.JSONDecodeError as err:
        raise UserError(f"{what} {file} is not valid JSON: {err}") from err


def _label_space(kind: str, class_ids: list[str], config: DatasetConfig) -> LabelSpace:
    if kind == "imagenet1k":
        known = set(imagenet_wnids())
        unknown = [c for c in class_ids if c not in known]
        if unknown:
            raise UserError(f"class folders that are not ImageNet-1k wnids: {', '.join(unknown[:5])}")
        return imagenet1k_space()
    if kind == "imagenet_subset":
        return imagenet_subset_space(class_ids)
    return custom_space(
        class_ids,
        _read_json_file(config.classnames_file, "classnames file"),
        _read_json_file(config.imagenet_map_file, "imagenet map file"),
    )


def dataset_kind(name: str, config: DatasetConfig) -> DatasetKind:
    """The registered kind of a params entry: its ``kind`` key, else its name."""
    kind_name = config.kind or name
    if kind_name not in DATASET_KINDS:
        what = "dataset kind" if config.kind else "dataset"
        raise UnknownNameError(what, kind_name, DATASET_KINDS)
    return DATASET_KINDS[kind_name]


def _check_expected_size(name: str, kind: DatasetKind, n_images: int, n_classes: int, root: Path) -> None:
    if kind.expected_classes is not None and n_classes != kind.expected_classes:
        raise DatasetLayoutError(
            f"dataset {name!r} at {root}: found {n_classes} class folders, {kind.name} has "
            f"{kind.expected_classes}. Point `path` at the complete dataset, or use kind: image_folder for a subset."
        )
    if kind.expected_images is not None and n_images != kind.expected_images:
        raise DatasetLayoutError(
            f"dataset {name!r} at {root}: found {n_images} images, {kind.name} has {kind.expected_images}. "
            "Some files are missing or extra; use kind: image_folder to run on a subset on purpose."
        )


def resolve_dataset(name: str, config: DatasetConfig) -> ImageDataset:
    """Scan and validate the dataset ``name`` of params.yaml; no model is touched."""
    kind = dataset_kind(name, config)
    root = Path(config.path)
    samples = scan_class_folders(root, config.class_folders or kind.class_folders)
    class_ids = sorted({s.class_id for s in samples}, key=lambda c: (int(c), c) if c.isdigit() else (0, c))
    label_kind = config.label_space or kind.label_space
    if (config.class_folders or kind.class_folders) == "integer" and label_kind != "custom":
        # ImageNetV2 layout: the folder name *is* the ImageNet index ("7" and "0007" alike), never its sort rank
        indices = [int(s.class_id) for s in samples]
        if not all(0 <= i < 1000 for i in indices):
            raise DatasetLayoutError(f"dataset {name!r} at {root}: integer class folders must be 0..999")
        label_space = imagenet1k_space()
        targets = np.array(indices, dtype=np.int64)
    else:
        label_space = _label_space(label_kind, class_ids, config)
        position = {c: i for i, c in enumerate(label_space.class_ids)}
        targets = np.array([position[s.class_id] for s in samples], dtype=np.int64)
    _check_expected_size(name, kind, len(samples), len(class_ids), root)
    return ImageDataset(name, kind.name, root, tuple(samples), targets, label_space)
