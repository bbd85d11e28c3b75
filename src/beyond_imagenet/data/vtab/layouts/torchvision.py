"""Layout ``torchvision``: the files ``torchvision.datasets.X(root, download=True)`` leaves under ``<root>``.

Read for the six VTAB image sources torchvision ships with official splits (docs/transfer.md §3.5, §4; docs/vtab.md).

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
and their VTAB val is carved from train by the layout's ``split_rows`` (§4). Rows keep torchvision's file order
(not tfds's record order): sample ids ``<split>/<index>`` are positions in these files. Records are
``{"label": int}`` with the class index tfds uses. The scanners are in ``torchvision_scan``. Nothing here imports
torchvision.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType

import numpy as np

from beyond_imagenet.base.errors import DatasetLayoutError, UserError
from beyond_imagenet.data.vtab.carve import SplitRows, carved_split_rows, first_rows, seeded_order
from beyond_imagenet.data.vtab.layouts.base import TfdsSourceSplits, VtabLayout, with_source_notes
from beyond_imagenet.data.vtab.layouts.torchvision_scan import (
    CIFAR10_DIR,
    CIFAR100_DIR,
    DTD_DIR,
    DTD_LABEL_FILES,
    FLOWERS_DIR,
    FLOWERS_SET_IDS,
    PETS_DIR,
    PETS_LISTS,
    SCANNERS,
    Scan,
    TorchvisionFormat,
    layout_error,
)
from beyond_imagenet.data.vtab.samples import SourceSplit, VtabSample, file_entries, label_rows, make_sample_id
from beyond_imagenet.data.vtab.sources import SOURCES, ImageSource
from beyond_imagenet.data.vtab.split_rules import check_protocol
from beyond_imagenet.data.vtab.tasks import VTAB1K_TRAIN, VTAB1K_VAL, Protocol, TaskSpec

__all__ = [
    "LAYOUT",
    "TORCHVISION_SOURCES",
    "TorchvisionFormat",
    "TorchvisionLayout",
    "read_torchvision_split",
    "torchvision_download_hint",
    "torchvision_expected",
    "torchvision_expected_count",
    "torchvision_format",
    "torchvision_missing",
]

NAME = "torchvision"
_MISSING_SHOWN = 5  # missing image files named in an error


def _format(
    source: str, loader: str, split_files: Mapping[str, Sequence[str]], shared: Sequence[str] = ()
) -> TorchvisionFormat:
    """One table entry, with its file lists frozen."""
    files = MappingProxyType({s: tuple(f) for s, f in split_files.items()})
    return TorchvisionFormat(source, loader, files, tuple(shared))


TORCHVISION_SOURCES: Mapping[str, TorchvisionFormat] = MappingProxyType(
    {
        f.source: f
        for f in (
            _format(
                "cifar10",
                "torchvision.datasets.CIFAR10(root, download=True)",
                {
                    "train": [f"{CIFAR10_DIR}/data_batch_{i}" for i in range(1, 6)],
                    "test": [f"{CIFAR10_DIR}/test_batch"],
                },
            ),
            _format(
                "cifar100",
                "torchvision.datasets.CIFAR100(root, download=True)",
                {"train": [f"{CIFAR100_DIR}/train"], "test": [f"{CIFAR100_DIR}/test"]},
            ),
            _format(
                "svhn_cropped",
                "torchvision.datasets.SVHN(root, split=s, download=True) for s in ('train', 'test')",
                {"train": ["train_32x32.mat"], "test": ["test_32x32.mat"]},
            ),
            _format(
                "dtd",
                "torchvision.datasets.DTD(root, download=True)",
                {s: [f"{DTD_DIR}/labels/{name}"] for s, name in DTD_LABEL_FILES.items()},
                [f"{DTD_DIR}/images/"],
            ),
            _format(
                "oxford_flowers102",
                "torchvision.datasets.Flowers102(root, download=True)",
                {s: [] for s in FLOWERS_SET_IDS},
                [f"{FLOWERS_DIR}/jpg/", f"{FLOWERS_DIR}/imagelabels.mat", f"{FLOWERS_DIR}/setid.mat"],
            ),
            _format(
                "oxford_iiit_pet",
                "torchvision.datasets.OxfordIIITPet(root, download=True)",
                {s: [f"{PETS_DIR}/annotations/{name}"] for s, name in PETS_LISTS.items()},
                [f"{PETS_DIR}/images/"],
            ),
        )
    }
)


# ----------------------------------------------------------------------------------------------------------------
# Specs, expected files and counts
# ----------------------------------------------------------------------------------------------------------------


def _source_of(task_or_source: TaskSpec | ImageSource | str) -> ImageSource:
    """The image source of a task, a source, or a source name."""
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
    """``UserError`` unless the format holds tfds split ``split``."""
    if split not in fmt.split_files:
        raise UserError(
            f"torchvision's {fmt.source} has the splits {', '.join(fmt.splits)} (tfds names), not {split!r}"
        )


def torchvision_download_hint(source: ImageSource) -> str:
    """The torchvision call that downloads ``source`` and the files it writes, in one line."""
    if source.name not in TORCHVISION_SOURCES:
        return f"No torchvision layout for image source {source.name!r}: use layout 'tfds_parquet' or 'wds'."
    fmt = TORCHVISION_SOURCES[source.name]
    return (
        f"Run `{fmt.loader}` (files land under <root> as torchvision stores them: {', '.join(fmt.files)}); "
        f"check the per-split counts {dict(source.split_sizes)}."
    )


def _is_present(path: Path, relative: str) -> bool:
    """A folder entry (trailing "/") must be a directory, any other a file."""
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


# ----------------------------------------------------------------------------------------------------------------
# Reading a split
# ----------------------------------------------------------------------------------------------------------------


def _check_image_files(fmt: TorchvisionFormat, root: Path, split: str, scan: Scan) -> None:
    """``DatasetLayoutError`` naming the first few listed image files that are missing."""
    absent = [str(p) for p, _ in scan.items if not p.is_file()]
    if absent:
        shown = "; ".join(absent[:_MISSING_SHOWN]) + ("; ..." if len(absent) > _MISSING_SHOWN else "")
        raise layout_error(fmt, root, split, f"{len(absent)} listed image file(s) are missing: {shown}")


def read_torchvision_split(source: ImageSource, root: str | Path, split: str) -> SourceSplit:
    """All images of tfds split ``split`` of ``source`` in torchvision's files under ``root`` (docs/transfer.md §3.5).

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
        raise layout_error(fmt, root, split, f"missing {'; '.join(missing)}")
    kind, scanner = SCANNERS[source.name]
    scan = scanner(root, fmt, split)
    image_files = [p for p, _ in scan.items] if kind == "file" else []
    if image_files:
        _check_image_files(fmt, root, split, scan)
    samples = tuple(VtabSample(p, make_sample_id(split, i), kind, (row, 0)) for i, (p, row) in enumerate(scan.items))
    records = tuple({"label": int(v)} for v in scan.labels)
    files = file_entries(scan.index_files + image_files)
    return SourceSplit(source.name, NAME, split, samples, records, files, f"{source.name}@{NAME}")


# ----------------------------------------------------------------------------------------------------------------
# Task split rows and the layout
# ----------------------------------------------------------------------------------------------------------------


def _official_split_rows(
    task: TaskSpec, fmt: TorchvisionFormat, splits: Mapping[str, SourceSplit], protocol: Protocol, seed: int
) -> SplitRows:
    """Official train / validation / test (DTD, Flowers: exactly VTAB's); VTAB-1k draws 800 / 200 with ``seed``."""
    missing = [s for s in fmt.splits if s not in splits]
    if missing:
        raise UserError(f"task {task.name!r} (torchvision) needs the splits {list(fmt.splits)}; missing {missing}")
    full = {
        "train": {"train": np.arange(len(splits["train"]), dtype=np.int64)},
        "val": {"validation": np.arange(len(splits["validation"]), dtype=np.int64)},
        "test": {"test": np.arange(len(splits["test"]), dtype=np.int64)},
    }
    full["trainval"] = {**full["train"], **full["val"]}
    if protocol == "full":
        return full
    train800 = np.sort(first_rows(seeded_order(full["train"]["train"], seed, 0), VTAB1K_TRAIN, task, "train"))
    val200 = np.sort(first_rows(seeded_order(full["val"]["validation"], seed, 1), VTAB1K_VAL, task, "val"))
    return {
        "train800": {"train": train800},
        "val200": {"validation": val200},
        "train800val200": {"train": train800, "validation": val200},
        "test": full["test"],
    }


class TorchvisionLayout(TfdsSourceSplits):
    """Layout ``torchvision``: six sources in torchvision's own files; official val where it exists, else carved."""

    name = NAME
    uses_val_seed = True

    def unsupported(self, task: TaskSpec) -> str | None:
        """Why the task cannot be read from torchvision's files (no format with VTAB's splits), or None."""
        if task.source.name in TORCHVISION_SOURCES:
            return None
        return (
            f"VTAB task {task.name!r} (image source {task.source.name!r}) has no torchvision layout: torchvision "
            f"formats are read only for {', '.join(TORCHVISION_SOURCES)} (docs/vtab.md). Use layout "
            "'tfds_parquet' or 'wds' for this task"
        )

    def expected(self, task: TaskSpec, root: Path) -> list[str]:
        """``torchvision_expected`` of the task's source, or the reason it has none."""
        reason = self.unsupported(task)
        return [reason] if reason else torchvision_expected(task.source, root)

    def missing(self, task: TaskSpec, root: Path) -> list[str]:
        """``torchvision_missing`` of the task's source."""
        return torchvision_missing(task.source, root)

    def base_dir(self, task: TaskSpec, root: Path) -> Path:
        """``root`` itself: the files sit in torchvision's own folders under it."""
        return Path(root)

    def read_split(self, task: TaskSpec, root: Path, split: str) -> SourceSplit:
        """``read_torchvision_split`` of the task's source."""
        return read_torchvision_split(task.source, root, split)

    def expected_count(self, task: TaskSpec, split: str) -> int:
        """``torchvision_expected_count`` of the task's source."""
        return torchvision_expected_count(task.source, split)

    def labels(self, task: TaskSpec, split: SourceSplit) -> np.ndarray:
        """The task's rule on the reader's native ``label`` of every row (range-checked)."""
        return label_rows(task, split, task.source.name, task.label)

    def split_rows(
        self,
        task: TaskSpec,
        splits: Mapping[str, SourceSplit],
        protocol: Protocol = "full",
        seed: int = 0,
        labels: np.ndarray | None = None,
    ) -> dict[str, dict[str, np.ndarray]]:
        """Official val where the source has one (DTD, Flowers: exactly VTAB), else a stratified carve from train.

        ``splits`` are keyed by tfds split name. CIFAR-10/100, SVHN and Pets carve val from train as ``wds`` does
        (§4; their file order is not tfds's, so a percent slice would differ). VTAB-1k draws 800 / 200 with
        ``seed`` instead of taking the first rows, as the files are not in tfds's shuffled order.
        """
        check_protocol(protocol)
        fmt = torchvision_format(task.source)
        if "validation" in fmt.splits:
            return _official_split_rows(task, fmt, splits, protocol, seed)
        return carved_split_rows(task, NAME, splits, protocol, seed, labels, self.labels, reshuffle=True)

    def download_hint(self, task: TaskSpec) -> str:
        """The torchvision call that downloads the task's source (or the layouts to use instead)."""
        return with_source_notes(torchvision_download_hint(task.source), task)


LAYOUT: VtabLayout = TorchvisionLayout()
