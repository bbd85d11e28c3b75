"""Low-level image readers for the VTAB on-disk layouts (docs/transfer.md §3.5); they know no task or layout.

- ``parquet_image_bytes``: the encoded image of one row of a parquet file (column ``image``, binary or Hugging
  Face's struct ``{bytes, path}``); the row group is cached for the next rows, since samples are mostly read in order;
- ``tar_member_bytes``: the bytes of one member of an uncompressed tar shard, by data offset and size;
- ``array_image``: one row of a torchvision array file (CIFAR pickle batch, SVHN ``.mat``), each file loaded once
  per process and file version. ``unpickle``, ``pickle_entry`` and ``cifar_images`` are shared with the scanner.

pyarrow and scipy are imported inside the functions that use them.
"""

from __future__ import annotations

import functools
import pickle
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
from PIL import Image

from beyond_imagenet.base.errors import ImageDecodeError

__all__ = [
    "ARRAY_KINDS",
    "IMAGE_COLUMN",
    "array_image",
    "cifar_images",
    "parquet_image_bytes",
    "pickle_entry",
    "tar_member_bytes",
    "unpickle",
]

IMAGE_COLUMN = "image"


# ----------------------------------------------------------------------------------------------------------------
# Parquet rows and tar members (encoded bytes)
# ----------------------------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=2)
def _row_group_images(path: Path, group: int, mtime_ns: int, size: int) -> tuple[bytes | None, ...]:
    """Encoded images of one row group, kept for the next rows (samples are mostly read in order)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    column = pq.ParquetFile(path).read_row_group(group, columns=[IMAGE_COLUMN]).column(IMAGE_COLUMN)
    column = column.combine_chunks()
    if pa.types.is_struct(column.type):
        column = column.flatten()[column.type.get_field_index("bytes")]
    return tuple(column.to_pylist())


def parquet_image_bytes(path: Path, group: int, row: int, name: str) -> bytes:
    """The encoded image of ``row`` of row group ``group``; ``ImageDecodeError`` naming ``name`` when it is null."""
    stat = path.stat()
    data = _row_group_images(path, group, stat.st_mtime_ns, stat.st_size)[row]
    if data is None:
        raise ImageDecodeError(name, f"row {row} of row group {group} has no image bytes")
    return data


def tar_member_bytes(path: Path, offset: int, size: int, name: str) -> bytes:
    """``size`` bytes at ``offset`` of a tar shard; ``ImageDecodeError`` naming ``name`` when the shard is short."""
    with open(path, "rb") as handle:
        handle.seek(offset)
        data = handle.read(size)
    if len(data) != size:
        raise ImageDecodeError(name, f"truncated shard: read {len(data)} of {size} bytes at offset {offset}")
    return data


# ----------------------------------------------------------------------------------------------------------------
# Array files (CIFAR pickles, SVHN .mat): shared by scanning and decoding
# ----------------------------------------------------------------------------------------------------------------


def unpickle(path: Path) -> dict:
    """A CIFAR batch file (a Python 2 pickle of a dict)."""
    with open(path, "rb") as handle:
        batch = pickle.load(handle, encoding="latin1")  # the files are Python 2 pickles
    if not isinstance(batch, dict):
        raise ValueError(f"expected a dict, got {type(batch).__name__}")
    return batch


def pickle_entry(batch: Mapping, key: str) -> Any:
    """Entry ``key`` of a CIFAR batch, whose keys may be ``str`` or ``bytes``."""
    for k in (key, key.encode()):
        if k in batch:
            return batch[k]
    raise KeyError(f"no {key!r} entry (entries: {', '.join(map(str, batch))})")


def cifar_images(batch: Mapping) -> np.ndarray:
    """``data`` uint8 [N, 3072] (R, G, B planes of 32x32, row-major) as an [N, 32, 32, 3] view."""
    data = np.asarray(pickle_entry(batch, "data"))
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
    {"cifar": lambda path: cifar_images(unpickle(path)), "svhn": _svhn_images}
)
ARRAY_KINDS = tuple(_ARRAY_LOADERS)  # sample kinds that are rows of an array file, not encoded bytes


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
