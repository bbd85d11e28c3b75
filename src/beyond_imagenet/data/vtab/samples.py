"""VTAB samples and source splits as read from disk (docs/transfer.md §3.5, §4; docs/architecture.md).

- ``VtabSample``: one image of a VTAB source: a parquet row, a tar member, an image file or a row of a torchvision
  array file. It implements the data layer's sample protocol (``data/samples.py``: ``sample_id``, ``name``,
  ``plain_file``, ``decode``); it is picklable and cheap, so a DataLoader worker decodes it in any process;
- ``SourceSplit``: every row of one split of one image source, in record order, with its raw annotations, the files
  read (for the manifest hash) and the folder name its feature caches use;
- ``check_split_count`` and ``label_rows``: the row-count check and the per-row label loop every layout shares.

Scanning (in ``layouts``) reads annotations and member offsets only; ``VtabSample.decode`` reads one image. Neither
TensorFlow nor ``webdataset`` is needed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import numpy as np
from PIL import Image

from beyond_imagenet.base.errors import DatasetLayoutError, ImageDecodeError, UserError
from beyond_imagenet.data.decode import decode_rgb_bytes
from beyond_imagenet.data.vtab.readers import ARRAY_KINDS, array_image, parquet_image_bytes, tar_member_bytes
from beyond_imagenet.data.vtab.tasks import TaskSpec

__all__ = ["SourceSplit", "VtabSample", "check_split_count", "file_entries", "label_rows", "make_sample_id"]

SampleKind = Literal["parquet", "tar", "file", "cifar", "svhn"]
_LABEL_ERRORS = (ValueError, KeyError, TypeError, IndexError)


@dataclass(frozen=True, slots=True)
class VtabSample:
    """One image of a VTAB source, decodable in a DataLoader worker process (picklable, cheap)."""

    path: Path  # the parquet file, tar shard, image file or array file holding it
    sample_id: str  # f"{split}/{index:07d}", index = position in the source split's record order
    kind: SampleKind
    # parquet: (row group, row within group); tar: (data offset, size) of the member; file: unused (0, 0);
    # cifar / svhn (torchvision's CIFAR pickle batch / SVHN .mat): (row in the array file, 0)
    locator: tuple[int, int]
    binary_to_255: bool = False  # dSprites (docs/transfer.md §3.2): pixel values {0, 1} become {0, 255}

    @property
    def name(self) -> str:
        """``<path>#<sample_id>``, the label of decode errors."""
        return f"{self.path}#{self.sample_id}"

    @property
    def plain_file(self) -> None:
        """None: a VTAB image is always decoded by ``decode`` (rows, members, dSprites scaling)."""
        return None

    def read_bytes(self) -> bytes:
        """The encoded image bytes.

        Raises ``ImageDecodeError`` when they cannot be read (or for array kinds, which have none: use ``decode``).
        """
        if self.kind in ARRAY_KINDS:
            raise ImageDecodeError(self.name, f"a {self.kind!r} sample is a row of an array file, not encoded bytes")
        try:
            data = _BYTE_READERS[self.kind](self)
        except ImageDecodeError:
            raise
        except Exception as exc:  # OSError, pyarrow errors, IndexError on a changed file
            raise ImageDecodeError(self.name, f"cannot read the encoded image ({type(exc).__name__}: {exc})") from exc
        return data

    def decode(self) -> Image.Image:
        """8-bit RGB (grayscale tiled to 3 channels); dSprites' {0, 1} scaled to {0, 255} with saturation."""
        image = _array_image(self) if self.kind in ARRAY_KINDS else decode_rgb_bytes(self.read_bytes(), self.name)
        if not self.binary_to_255:
            return image
        pixels = np.asarray(image, dtype=np.uint16) * 255
        return Image.fromarray(np.minimum(pixels, 255).astype(np.uint8))


def _parquet_bytes(sample: VtabSample) -> bytes:
    """The image bytes of a parquet row (``locator`` = row group, row)."""
    group, row = sample.locator
    return parquet_image_bytes(sample.path, group, row, sample.name)


def _tar_bytes(sample: VtabSample) -> bytes:
    """The image bytes of a tar member (``locator`` = data offset, size)."""
    offset, size = sample.locator
    return tar_member_bytes(sample.path, offset, size, sample.name)


def _file_bytes(sample: VtabSample) -> bytes:
    """The bytes of an image file."""
    return sample.path.read_bytes()


_BYTE_READERS: Mapping[str, Callable[[VtabSample], bytes]] = MappingProxyType(
    {"parquet": _parquet_bytes, "tar": _tar_bytes, "file": _file_bytes}
)


def _array_image(sample: VtabSample) -> Image.Image:
    """Row ``locator[0]`` of a torchvision array file (CIFAR pickle batch, SVHN .mat), cached per process."""
    try:
        return array_image(sample.path, sample.kind, sample.locator[0])
    except Exception as exc:  # OSError, unpickling / loadmat errors, IndexError on a changed file
        raise ImageDecodeError(sample.name, f"cannot read the image row ({type(exc).__name__}: {exc})") from exc


@dataclass(frozen=True)
class SourceSplit:
    """All rows of one split of one image source as found on disk, in record order."""

    name: str  # ImageSource name (tfds_parquet, torchvision) or the wds mirror name, e.g. "wds_vtab-cifar100"
    layout: str  # the name of the layout that read it (``layouts.LAYOUTS``)
    split: str  # tfds split name ("train", "validation", "test") or wds "train" / "test"
    samples: tuple[VtabSample, ...]
    # raw annotations per row (flattened tfds feature names; wds: {"cls": int}; torchvision: {"label": int})
    records: tuple[dict, ...]
    files: tuple[dict, ...]  # [{"path": str, "bytes": int}] of the files read, for the manifest hash
    cache_name: str  # folder name of its feature caches: ``name``, or "<tfds source>@torchvision"

    def __len__(self) -> int:
        return len(self.samples)


def make_sample_id(split: str, index: int) -> str:
    """The sample id ``<split>/<index, 7 digits>`` of row ``index`` of a source split."""
    return f"{split}/{index:07d}"


def file_entries(paths: Sequence[Path]) -> tuple[dict, ...]:
    """``{"path", "bytes"}`` of every file read, for a split's manifest."""
    return tuple({"path": str(p), "bytes": p.stat().st_size} for p in paths)


def check_split_count(split: SourceSplit, expected: int, check_size: bool) -> None:
    """``DatasetLayoutError`` when ``check_size`` and the split does not hold ``expected`` rows."""
    if check_size and len(split) != expected:
        raise DatasetLayoutError(
            f"{split.name} ({split.layout}) split {split.split!r} has {len(split)} rows on disk but {expected} are "
            "expected (VTAB's sizes: `beyond-imagenet vtab-tasks`). Re-export or re-download it, or set "
            "`transfer.check_size: false` to run a subset on purpose."
        )


def label_rows(
    task: TaskSpec, split: SourceSplit, expected_name: str, rule: Callable[[Mapping[str, Any]], int]
) -> np.ndarray:
    """``rule`` on every record of ``split`` (int64), which must be the split named ``expected_name``.

    Raises ``UserError`` naming the task and the split when it is another source's split, and naming the sample
    when its record has no valid label.
    """
    if split.name != expected_name:
        raise UserError(f"task {task.name!r} reads {expected_name!r}, not {split.name!r}")
    labels = np.empty(len(split), dtype=np.int64)
    for i, (sample, record) in enumerate(zip(split.samples, split.records, strict=True)):
        try:
            labels[i] = rule(record)
        except _LABEL_ERRORS as exc:
            raise UserError(
                f"task {task.name!r}: sample {sample.sample_id} of {split.name} ({sample.path}) has no valid label: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
    return labels
