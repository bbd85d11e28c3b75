"""Scanners of the files ``torchvision.datasets.X(root, download=True)`` writes (docs/transfer.md §3.5).

``TorchvisionFormat`` describes one source's files relative to ``<root>``; each scanner reads the index files of one
split (label lists, ``.mat`` files, CIFAR batches) into ``Scan`` items (image file, or array file and row) with the
class index tfds uses. Images are not decoded here. The formats table and the layout itself are in
``layouts/torchvision.py``; this module defines no ``LAYOUT``. Nothing here imports torchvision.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np

from beyond_imagenet.base.errors import DatasetLayoutError
from beyond_imagenet.data.vtab.readers import cifar_images, pickle_entry, unpickle

__all__ = [
    "CIFAR10_DIR",
    "CIFAR100_DIR",
    "DTD_DIR",
    "DTD_LABEL_FILES",
    "FLOWERS_DIR",
    "FLOWERS_SET_IDS",
    "PETS_DIR",
    "PETS_LISTS",
    "SCANNERS",
    "Scan",
    "TorchvisionFormat",
    "layout_error",
]

CIFAR10_DIR = "cifar-10-batches-py"
CIFAR100_DIR = "cifar-100-python"
DTD_DIR = "dtd/dtd"
FLOWERS_DIR = "flowers-102"
PETS_DIR = "oxford-iiit-pet"
DTD_LABEL_FILES = {"train": "train1.txt", "validation": "val1.txt", "test": "test1.txt"}  # fold 1 = VTAB
FLOWERS_SET_IDS = {"train": "trnid", "validation": "valid", "test": "tstid"}
PETS_LISTS = {"train": "trainval.txt", "test": "test.txt"}


@dataclass(frozen=True)
class TorchvisionFormat:
    """One source's torchvision files, relative to ``<root>`` (a trailing "/" marks a folder)."""

    source: str  # ImageSource name
    loader: str  # the torchvision call that downloads the files
    split_files: Mapping[str, tuple[str, ...]]  # tfds split name -> the files that split is read from
    shared: tuple[str, ...] = ()  # files and folders every split needs

    def __hash__(self) -> int:  # the mapping field is unhashable; names identify specs
        return hash((type(self).__name__, self.source))

    @property
    def splits(self) -> tuple[str, ...]:
        """The tfds split names the files hold."""
        return tuple(self.split_files)

    @property
    def files(self) -> tuple[str, ...]:
        """Every expected file and folder, shared ones first, each once."""
        return tuple(dict.fromkeys((*self.shared, *(f for fs in self.split_files.values() for f in fs))))

    def needed(self, split: str) -> tuple[str, ...]:
        """The files and folders ``split`` is read from."""
        return (*self.shared, *self.split_files[split])


def layout_error(fmt: TorchvisionFormat, root: Path, split: str, what: str) -> DatasetLayoutError:
    """A layout error naming the split, what is wrong, the files expected and the torchvision call."""
    expected = "; ".join(str(root / f) + ("/" if f.endswith("/") else "") for f in fmt.needed(split))
    return DatasetLayoutError(
        f"image source {fmt.source!r} split {split!r} (layout 'torchvision'): {what}. Expected under {root}: "
        f"{expected}. Download with `{fmt.loader}` (docs/vtab.md)."
    )


@dataclass
class Scan:
    """One scanned split: image paths or array files with rows, native labels, index files read."""

    items: list[tuple[Path, int]]  # (file, row in it; 0 for image files)
    labels: list[int]
    index_files: list[Path]  # label lists / .mat / array files read, for the manifest


def _read_lines(path: Path) -> list[str]:
    """The non-blank, non-comment lines of a text file, stripped."""
    lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def _scan_cifar(root: Path, fmt: TorchvisionFormat, split: str) -> Scan:
    """CIFAR-10 / CIFAR-100 pickled batches: one item per row, ``labels`` / ``fine_labels``."""
    labels_key = "fine_labels" if fmt.source == "cifar100" else "labels"
    scan = Scan([], [], [])
    for relative in fmt.split_files[split]:
        path = root / relative
        try:
            batch = unpickle(path)
            n = len(cifar_images(batch))
            labels = [int(v) for v in pickle_entry(batch, labels_key)]
        except Exception as exc:  # unpickling errors, missing entries, wrong shapes
            raise layout_error(fmt, root, split, f"{path} is not a CIFAR batch ({type(exc).__name__}: {exc})") from exc
        if len(labels) != n:
            raise layout_error(fmt, root, split, f"{path} has {n} images but {len(labels)} `{labels_key}`")
        scan.items += [(path, row) for row in range(n)]
        scan.labels += labels
        scan.index_files.append(path)
    return scan


def _scan_svhn(root: Path, fmt: TorchvisionFormat, split: str) -> Scan:
    """SVHN ``<split>_32x32.mat``: one item per image, label 10 read as digit 0."""
    from scipy.io import loadmat, whosmat

    (relative,) = fmt.split_files[split]
    path = root / relative
    try:
        shapes = dict((name, shape) for name, shape, _ in whosmat(path))
        y = np.asarray(loadmat(path, variable_names=["y"])["y"]).ravel().astype(np.int64)
    except Exception as exc:  # not a .mat file, no `y`
        raise layout_error(fmt, root, split, f"{path} is not an SVHN .mat file ({type(exc).__name__}: {exc})") from exc
    x_shape = shapes.get("X")
    if x_shape is None or len(x_shape) != 4 or x_shape[3] != len(y):
        raise layout_error(fmt, root, split, f"{path} has X {x_shape} for {len(y)} labels; expected [32, 32, 3, N]")
    labels = np.where(y == 10, 0, y)  # SVHN stores digit 0 as label 10
    return Scan([(path, row) for row in range(len(y))], labels.tolist(), [path])


def _scan_dtd(root: Path, fmt: TorchvisionFormat, split: str) -> Scan:
    """DTD fold 1: ``<class>/<file>`` lines; classes are the sorted image folders (tfds's label order)."""
    images = root / DTD_DIR / "images"
    classes = sorted(p.name for p in images.iterdir() if p.is_dir())  # 47 texture names, tfds's label order
    index = {name: i for i, name in enumerate(classes)}
    listing = root / fmt.split_files[split][0]
    scan = Scan([], [], [listing])
    for line in _read_lines(listing):
        cls, _, name = line.partition("/")
        if cls not in index or not name:
            raise layout_error(
                fmt, root, split, f"{listing}: {line!r} is not `<class>/<file>` with a class in {images}"
            )
        scan.items.append((images / cls / name, 0))
        scan.labels.append(index[cls])
    return scan


def _mat_vector(path: Path, key: str) -> np.ndarray:
    """Variable ``key`` of a .mat file as a flat int64 vector."""
    from scipy.io import loadmat

    return np.asarray(loadmat(path, variable_names=[key])[key]).ravel().astype(np.int64)


def _scan_flowers(root: Path, fmt: TorchvisionFormat, split: str) -> Scan:
    """Flowers-102: ``setid.mat`` image ids of the split, ``imagelabels.mat`` 1-based classes."""
    base = root / FLOWERS_DIR
    label_file, set_file = base / "imagelabels.mat", base / "setid.mat"
    try:
        labels = _mat_vector(label_file, "labels")  # 1..102, indexed by image id - 1
        ids = _mat_vector(set_file, FLOWERS_SET_IDS[split])  # 1-based image ids
    except Exception as exc:  # not a .mat file, missing variable
        raise layout_error(fmt, root, split, f"cannot read {label_file} / {set_file} ({exc})") from exc
    bad = [int(i) for i in ids if not 1 <= i <= len(labels)]
    if bad:
        raise layout_error(fmt, root, split, f"{set_file} names image ids {bad[:5]} outside 1..{len(labels)}")
    items = [(base / "jpg" / f"image_{int(i):05d}.jpg", 0) for i in ids]
    return Scan(items, [int(labels[i - 1]) - 1 for i in ids], [label_file, set_file])


def _scan_pets(root: Path, fmt: TorchvisionFormat, split: str) -> Scan:
    """Oxford-IIIT Pets: ``<name> <class id 1..37> ...`` lines of the split's list."""
    images = root / PETS_DIR / "images"
    listing = root / fmt.split_files[split][0]
    scan = Scan([], [], [listing])
    for line in _read_lines(listing):
        fields = line.split()  # <name> <class_id 1..37> <species> <breed id>
        if len(fields) < 2 or not fields[1].isdigit():
            raise layout_error(fmt, root, split, f"{listing}: {line!r} is not `<name> <class id> ...`")
        scan.items.append((images / f"{fields[0]}.jpg", 0))
        scan.labels.append(int(fields[1]) - 1)
    return scan


Scanner = Callable[[Path, TorchvisionFormat, str], Scan]

# source -> (sample kind of its items, scanner)
SCANNERS: Mapping[str, tuple[str, Scanner]] = MappingProxyType(
    {
        "cifar10": ("cifar", _scan_cifar),
        "cifar100": ("cifar", _scan_cifar),
        "svhn_cropped": ("svhn", _scan_svhn),
        "dtd": ("file", _scan_dtd),
        "oxford_flowers102": ("file", _scan_flowers),
        "oxford_iiit_pet": ("file", _scan_pets),
    }
)
