"""Layout ``torchvision``: the files ``torchvision.datasets.X(root, download=True)`` leaves under ``<root>``
(TRANSFER.md §3.5), for the six VTAB image sources torchvision ships with official splits.

=================  ===========================================================================  =====================
source             files under ``<root>``                                                       tfds splits
=================  ===========================================================================  =====================
cifar10            ``cifar-10-batches-py/data_batch_1..5``, ``test_batch`` (pickles)            train, test
cifar100           ``cifar-100-python/train``, ``test`` (pickles, ``fine_labels``)              train, test
svhn_cropped       ``train_32x32.mat``, ``test_32x32.mat`` (label 10 is digit 0)                train, test
dtd                ``dtd/dtd/images/<class>/*.jpg``, ``dtd/dtd/labels/{train,val,test}1.txt``   train, validation, test
oxford_flowers102  ``flowers-102/jpg/``, ``imagelabels.mat`` (1-based), ``setid.mat``           train, validation, test
oxford_iiit_pet    ``oxford-iiit-pet/images/``, ``annotations/{trainval,test}.txt``             train (trainval), test
=================  ===========================================================================  =====================

DTD (fold 1) and Flowers are exactly VTAB's three splits; CIFAR, SVHN and Pets have the official train and test
and their VTAB val is carved from train by ``sources.task_split_rows`` (§4). Rows keep torchvision's file order
(not tfds's record order): sample ids ``<split>/<index>`` are positions in these files. Records are
``{"label": int}`` with the class index tfds uses. Nothing here imports torchvision.
"""

from __future__ import annotations

import functools
import pickle
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
from PIL import Image

from beyond_imagenet.errors import DatasetLayoutError, UserError
from beyond_imagenet.transfer.sources import SourceSplit, VtabSample, _file_entries, _sample_id
from beyond_imagenet.transfer.tasks import SOURCES, ImageSource, TaskSpec

__all__ = [
    "TORCHVISION_SOURCES",
    "TorchvisionFormat",
    "array_image",
    "read_torchvision_split",
    "torchvision_download_hint",
    "torchvision_expected",
    "torchvision_expected_count",
    "torchvision_format",
    "torchvision_missing",
]

_MISSING_SHOWN = 5  # missing image files named in an error


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
        return tuple(self.split_files)

    @property
    def files(self) -> tuple[str, ...]:
        """Every expected file and folder, shared ones first, each once."""
        return tuple(dict.fromkeys((*self.shared, *(f for fs in self.split_files.values() for f in fs))))

    def needed(self, split: str) -> tuple[str, ...]:
        return (*self.shared, *self.split_files[split])


def _format(
    source: str, loader: str, split_files: Mapping[str, Sequence[str]], shared: Sequence[str] = ()
) -> TorchvisionFormat:
    files = MappingProxyType({s: tuple(f) for s, f in split_files.items()})
    return TorchvisionFormat(source, loader, files, tuple(shared))


_CIFAR10_DIR = "cifar-10-batches-py"
_CIFAR100_DIR = "cifar-100-python"
_DTD_DIR = "dtd/dtd"
_FLOWERS_DIR = "flowers-102"
_PETS_DIR = "oxford-iiit-pet"
_DTD_LABEL_FILES = {"train": "train1.txt", "validation": "val1.txt", "test": "test1.txt"}  # fold 1 = VTAB
_FLOWERS_SET_IDS = {"train": "trnid", "validation": "valid", "test": "tstid"}
_PETS_LISTS = {"train": "trainval.txt", "test": "test.txt"}

TORCHVISION_SOURCES: Mapping[str, TorchvisionFormat] = MappingProxyType(
    {
        f.source: f
        for f in (
            _format(
                "cifar10",
                "torchvision.datasets.CIFAR10(root, download=True)",
                {
                    "train": [f"{_CIFAR10_DIR}/data_batch_{i}" for i in range(1, 6)],
                    "test": [f"{_CIFAR10_DIR}/test_batch"],
                },
            ),
            _format(
                "cifar100",
                "torchvision.datasets.CIFAR100(root, download=True)",
                {"train": [f"{_CIFAR100_DIR}/train"], "test": [f"{_CIFAR100_DIR}/test"]},
            ),
            _format(
                "svhn_cropped",
                "torchvision.datasets.SVHN(root, split=s, download=True) for s in ('train', 'test')",
                {"train": ["train_32x32.mat"], "test": ["test_32x32.mat"]},
            ),
            _format(
                "dtd",
                "torchvision.datasets.DTD(root, download=True)",
                {s: [f"{_DTD_DIR}/labels/{name}"] for s, name in _DTD_LABEL_FILES.items()},
                [f"{_DTD_DIR}/images/"],
            ),
            _format(
                "oxford_flowers102",
                "torchvision.datasets.Flowers102(root, download=True)",
                {s: [] for s in _FLOWERS_SET_IDS},
                [f"{_FLOWERS_DIR}/jpg/", f"{_FLOWERS_DIR}/imagelabels.mat", f"{_FLOWERS_DIR}/setid.mat"],
            ),
            _format(
                "oxford_iiit_pet",
                "torchvision.datasets.OxfordIIITPet(root, download=True)",
                {s: [f"{_PETS_DIR}/annotations/{name}"] for s, name in _PETS_LISTS.items()},
                [f"{_PETS_DIR}/images/"],
            ),
        )
    }
)


# ----------------------------------------------------------------------------------------------------------------
# Specs, expected files and counts
# ----------------------------------------------------------------------------------------------------------------


def _source_of(task_or_source: TaskSpec | ImageSource | str) -> ImageSource:
    if isinstance(task_or_source, TaskSpec):
        return task_or_source.source
    if isinstance(task_or_source, str):
        if task_or_source not in SOURCES:
            raise UserError(f"unknown VTAB image source {task_or_source!r}; known: {', '.join(SOURCES)}")
        return SOURCES[task_or_source]
    return task_or_source


def torchvision_format(task_or_source: TaskSpec | ImageSource | str) -> TorchvisionFormat:
    """The source's torchvision format; ``DatasetLayoutError`` for a source torchvision has no official split of."""
    source = _source_of(task_or_source)
    if source.name not in TORCHVISION_SOURCES:
        raise DatasetLayoutError(
            f"image source {source.name!r} has no torchvision layout: it is read only for "
            f"{', '.join(TORCHVISION_SOURCES)} (docs/vtab.md). Use layout 'tfds_parquet' or 'wds'."
        )
    return TORCHVISION_SOURCES[source.name]


def _check_split(fmt: TorchvisionFormat, split: str) -> None:
    if split not in fmt.split_files:
        raise UserError(
            f"torchvision's {fmt.source} has the splits {', '.join(fmt.splits)} (tfds names), not {split!r}"
        )


def torchvision_download_hint(source: ImageSource) -> str:
    """One line for ``TaskSpec.download_instructions("torchvision")``."""
    if source.name not in TORCHVISION_SOURCES:
        return f"No torchvision layout for image source {source.name!r}: use layout 'tfds_parquet' or 'wds'."
    fmt = TORCHVISION_SOURCES[source.name]
    return (
        f"Run `{fmt.loader}` (files land under <root> as torchvision stores them: {', '.join(fmt.files)}); "
        f"check the per-split counts {dict(source.split_sizes)}."
    )


def _is_present(path: Path, relative: str) -> bool:
    return path.is_dir() if relative.endswith("/") else path.is_file()


def torchvision_expected(source: ImageSource, root: str | Path) -> list[str]:
    """Every file and folder (trailing "/") the source's torchvision format needs under ``root``."""
    root = Path(root)
    return [str(root / f) + ("/" if f.endswith("/") else "") for f in torchvision_format(source).files]


def torchvision_missing(source: ImageSource, root: str | Path) -> list[str]:
    """The entries of ``torchvision_expected`` that are not on disk."""
    root = Path(root)
    files = torchvision_format(source).files
    return [
        want for f, want in zip(files, torchvision_expected(source, root), strict=True) if not _is_present(root / f, f)
    ]


def torchvision_expected_count(task_or_source: TaskSpec | ImageSource | str, split: str) -> int:
    """The tfds size of ``split``, which torchvision's files hold too (Pets train = trainval: 3,680; test 3,669)."""
    source = _source_of(task_or_source)
    _check_split(torchvision_format(source), split)
    return int(source.split_sizes[split])


def _layout_error(fmt: TorchvisionFormat, root: Path, split: str, what: str) -> DatasetLayoutError:
    expected = "; ".join(str(root / f) + ("/" if f.endswith("/") else "") for f in fmt.needed(split))
    return DatasetLayoutError(
        f"image source {fmt.source!r} split {split!r} (layout 'torchvision'): {what}. Expected under {root}: "
        f"{expected}. Download with `{fmt.loader}` (docs/vtab.md)."
    )


# ----------------------------------------------------------------------------------------------------------------
# Array files (CIFAR pickles, SVHN .mat): shared by scanning and decoding
# ----------------------------------------------------------------------------------------------------------------


def _unpickle(path: Path) -> dict:
    with open(path, "rb") as handle:
        batch = pickle.load(handle, encoding="latin1")  # the files are Python 2 pickles
    if not isinstance(batch, dict):
        raise ValueError(f"expected a dict, got {type(batch).__name__}")
    return batch


def _entry(batch: Mapping, key: str) -> Any:
    for k in (key, key.encode()):
        if k in batch:
            return batch[k]
    raise KeyError(f"no {key!r} entry (entries: {', '.join(map(str, batch))})")


def _cifar_images(batch: Mapping) -> np.ndarray:
    """``data`` uint8 [N, 3072] (R, G, B planes of 32x32, row-major) as an [N, 32, 32, 3] view."""
    data = np.asarray(_entry(batch, "data"))
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise ValueError(f"`data` must be uint8 [N, 3072], got {data.dtype} {list(data.shape)}")
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)


def _svhn_images(path: Path) -> np.ndarray:
    """``X`` uint8 [32, 32, 3, N] as an [N, 32, 32, 3] view."""
    from scipy.io import loadmat

    images = np.asarray(loadmat(path, variable_names=["X"])["X"])
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[2] != 3:
        raise ValueError(f"`X` must be uint8 [32, 32, 3, N], got {images.dtype} {list(images.shape)}")
    return images.transpose(3, 0, 1, 2)


_ARRAY_LOADERS: Mapping[str, Callable[[Path], np.ndarray]] = MappingProxyType(
    {"cifar": lambda path: _cifar_images(_unpickle(path)), "svhn": _svhn_images}
)


@functools.lru_cache(maxsize=6)  # CIFAR-10's five train batches and its test batch
def _array_images(path: Path, kind: str, mtime_ns: int, size: int) -> np.ndarray:
    """All images of one array file as [N, H, W, 3] uint8, loaded once per process (and per file version)."""
    return _ARRAY_LOADERS[kind](path)


def array_image(path: Path, kind: str, row: int) -> Image.Image:
    """Row ``row`` of a CIFAR batch (``kind="cifar"``) or SVHN .mat (``"svhn"``) as an RGB image."""
    stat = Path(path).stat()
    images = _array_images(Path(path), kind, stat.st_mtime_ns, stat.st_size)
    if not 0 <= row < len(images):
        raise IndexError(f"row {row} is outside the file's {len(images)} images")
    return Image.fromarray(np.ascontiguousarray(images[row]))


# ----------------------------------------------------------------------------------------------------------------
# Per-source scanning: (image paths or array files with rows, native labels, index files read)
# ----------------------------------------------------------------------------------------------------------------


@dataclass
class _Scan:
    items: list[tuple[Path, int]]  # (file, row in it; 0 for image files)
    labels: list[int]
    index_files: list[Path]  # label lists / .mat / array files read, for the manifest


def _read_lines(path: Path) -> list[str]:
    lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def _scan_cifar(root: Path, fmt: TorchvisionFormat, split: str) -> _Scan:
    labels_key = "fine_labels" if fmt.source == "cifar100" else "labels"
    scan = _Scan([], [], [])
    for relative in fmt.split_files[split]:
        path = root / relative
        try:
            batch = _unpickle(path)
            n = len(_cifar_images(batch))
            labels = [int(v) for v in _entry(batch, labels_key)]
        except Exception as exc:  # unpickling errors, missing entries, wrong shapes
            raise _layout_error(fmt, root, split, f"{path} is not a CIFAR batch ({type(exc).__name__}: {exc})") from exc
        if len(labels) != n:
            raise _layout_error(fmt, root, split, f"{path} has {n} images but {len(labels)} `{labels_key}`")
        scan.items += [(path, row) for row in range(n)]
        scan.labels += labels
        scan.index_files.append(path)
    return scan


def _scan_svhn(root: Path, fmt: TorchvisionFormat, split: str) -> _Scan:
    from scipy.io import loadmat, whosmat

    (relative,) = fmt.split_files[split]
    path = root / relative
    try:
        shapes = dict((name, shape) for name, shape, _ in whosmat(path))
        y = np.asarray(loadmat(path, variable_names=["y"])["y"]).ravel().astype(np.int64)
    except Exception as exc:  # not a .mat file, no `y`
        raise _layout_error(fmt, root, split, f"{path} is not an SVHN .mat file ({type(exc).__name__}: {exc})") from exc
    x_shape = shapes.get("X")
    if x_shape is None or len(x_shape) != 4 or x_shape[3] != len(y):
        raise _layout_error(fmt, root, split, f"{path} has X {x_shape} for {len(y)} labels; expected [32, 32, 3, N]")
    labels = np.where(y == 10, 0, y)  # SVHN stores digit 0 as label 10
    return _Scan([(path, row) for row in range(len(y))], labels.tolist(), [path])


def _scan_dtd(root: Path, fmt: TorchvisionFormat, split: str) -> _Scan:
    images = root / _DTD_DIR / "images"
    classes = sorted(p.name for p in images.iterdir() if p.is_dir())  # 47 texture names, tfds's label order
    index = {name: i for i, name in enumerate(classes)}
    listing = root / fmt.split_files[split][0]
    scan = _Scan([], [], [listing])
    for line in _read_lines(listing):
        cls, _, name = line.partition("/")
        if cls not in index or not name:
            raise _layout_error(
                fmt, root, split, f"{listing}: {line!r} is not `<class>/<file>` with a class in {images}"
            )
        scan.items.append((images / cls / name, 0))
        scan.labels.append(index[cls])
    return scan


def _mat_vector(path: Path, key: str) -> np.ndarray:
    from scipy.io import loadmat

    return np.asarray(loadmat(path, variable_names=[key])[key]).ravel().astype(np.int64)


def _scan_flowers(root: Path, fmt: TorchvisionFormat, split: str) -> _Scan:
    base = root / _FLOWERS_DIR
    label_file, set_file = base / "imagelabels.mat", base / "setid.mat"
    try:
        labels = _mat_vector(label_file, "labels")  # 1..102, indexed by image id - 1
        ids = _mat_vector(set_file, _FLOWERS_SET_IDS[split])  # 1-based image ids
    except Exception as exc:  # not a .mat file, missing variable
        raise _layout_error(fmt, root, split, f"cannot read {label_file} / {set_file} ({exc})") from exc
    bad = [int(i) for i in ids if not 1 <= i <= len(labels)]
    if bad:
        raise _layout_error(fmt, root, split, f"{set_file} names image ids {bad[:5]} outside 1..{len(labels)}")
    items = [(base / "jpg" / f"image_{int(i):05d}.jpg", 0) for i in ids]
    return _Scan(items, [int(labels[i - 1]) - 1 for i in ids], [label_file, set_file])


def _scan_pets(root: Path, fmt: TorchvisionFormat, split: str) -> _Scan:
    images = root / _PETS_DIR / "images"
    listing = root / fmt.split_files[split][0]
    scan = _Scan([], [], [listing])
    for line in _read_lines(listing):
        fields = line.split()  # <name> <class_id 1..37> <species> <breed id>
        if len(fields) < 2 or not fields[1].isdigit():
            raise _layout_error(fmt, root, split, f"{listing}: {line!r} is not `<name> <class id> ...`")
        scan.items.append((images / f"{fields[0]}.jpg", 0))
        scan.labels.append(int(fields[1]) - 1)
    return scan


_SCANNERS: Mapping[str, tuple[str, Callable[[Path, TorchvisionFormat, str], _Scan]]] = MappingProxyType(
    {
        "cifar10": ("cifar", _scan_cifar),
        "cifar100": ("cifar", _scan_cifar),
        "svhn_cropped": ("svhn", _scan_svhn),
        "dtd": ("file", _scan_dtd),
        "oxford_flowers102": ("file", _scan_flowers),
        "oxford_iiit_pet": ("file", _scan_pets),
    }
)


def read_torchvision_split(source: ImageSource, root: str | Path, split: str) -> SourceSplit:
    """All images of tfds split ``split`` of ``source`` in torchvision's files under ``root`` (TRANSFER.md §3.5).

    Rows are in file order; records are ``{"label": int}`` (tfds's class index: SVHN 10 -> 0, Flowers and Pets
    1-based ids minus 1, DTD sorted folder names). Image files are ``kind="file"`` samples, CIFAR / SVHN rows
    ``kind="cifar"`` / ``"svhn"`` with ``locator=(row, 0)``. Raises ``DatasetLayoutError`` naming the expected
    files and the torchvision call when any is missing or unreadable.
    """
    root = Path(root)
    fmt = torchvision_format(source)
    _check_split(fmt, split)
    missing = [str(root / f) for f in fmt.needed(split) if not _is_present(root / f, f)]
    if missing:
        raise _layout_error(fmt, root, split, f"missing {'; '.join(missing)}")
    kind, scanner = _SCANNERS[source.name]
    scan = scanner(root, fmt, split)
    if kind == "file":
        absent = [str(p) for p, _ in scan.items if not p.is_file()]
        if absent:
            shown = "; ".join(absent[:_MISSING_SHOWN]) + ("; ..." if len(absent) > _MISSING_SHOWN else "")
            raise _layout_error(fmt, root, split, f"{len(absent)} listed image file(s) are missing: {shown}")
    samples = tuple(VtabSample(p, _sample_id(split, i), kind, (row, 0)) for i, (p, row) in enumerate(scan.items))
    files = scan.index_files + ([p for p, _ in scan.items] if kind == "file" else [])
    records = tuple({"label": int(v)} for v in scan.labels)
    return SourceSplit(source.name, "torchvision", split, samples, records, _file_entries(files))
