"""Writers for two VTAB on-disk layouts that ``data.vtab.layouts`` reads (docs/transfer.md §3.5).

Used by the tests and the offline demo, and usable to convert tfds data (e.g. rows from ``tfds.as_numpy``):

- ``write_parquet_split``: ``<root>/<source>/<split>-0000i-of-0000n.parquet`` with an ``image`` struct
  ``{bytes, path}`` column of PNGs (Hugging Face's ``Image`` feature) and the annotation columns; flattened names
  ``prefix/field`` are stored as a struct column ``prefix`` (tfds's nested features), others as plain columns;
- ``write_wds_split`` / ``write_classnames``: CLIP_benchmark's WebDataset mirror ``<root>/<wds_name>/<split>/<i>.tar``
  with ``<key>.png`` and ``<key>.cls`` members, and ``classnames.txt`` (``wds_name`` is ``layouts.wds.mirror_name``
  of the task).

Files are written to a temporary name and renamed, so a reader never sees half a file; shards of an earlier write
of the same split that the new write does not produce are removed. Same inputs give the same bytes.
"""

from __future__ import annotations

import io
import itertools
import os
import tarfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

__all__ = ["encode_png", "write_classnames", "write_parquet_split", "write_wds_split"]

PNG_SETTINGS: dict[str, Any] = {"optimize": False, "compress_level": 6}


def encode_png(pixels: np.ndarray) -> bytes:
    """PNG bytes of a uint8 ``HxW`` (grayscale) or ``HxWx3`` (RGB) array, without metadata."""
    pixels = np.asarray(pixels)
    if pixels.dtype != np.uint8 or not (pixels.ndim == 2 or (pixels.ndim == 3 and pixels.shape[2] == 3)):
        raise ValueError(f"expected a uint8 HxW or HxWx3 array, got {pixels.dtype} of shape {pixels.shape}")
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(buffer, format="PNG", **PNG_SETTINGS)
    return buffer.getvalue()


def _shard_bounds(n: int, shards: int) -> list[tuple[int, int]]:
    if not 1 <= shards <= max(n, 1):
        raise ValueError(f"shards must lie in [1, {max(n, 1)}] for {n} rows, got {shards}")
    edges = np.linspace(0, n, shards + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in itertools.pairwise(edges)]


def _replace_atomically(final: Path, write: Any) -> None:
    """``write(tmp_path)`` then rename onto ``final``; the temp name matches no reader's glob."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)


def _remove_stale(folder: Path, patterns: Sequence[str], keep: Sequence[Path]) -> None:
    keep_set = set(keep)
    for pattern in patterns:
        for path in folder.glob(pattern):
            if path not in keep_set and path.is_file():
                path.unlink()


def _annotation_columns(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Arrow arrays per top-level column; ``prefix/field`` names become struct column ``prefix``."""
    import pyarrow as pa

    if not records:
        return {}
    names = list(records[0])
    for i, record in enumerate(records):
        if list(record) != names:
            raise ValueError(f"record {i} has fields {list(record)}; record 0 has {names}")
    grouped: dict[str, dict[str, Any]] = {}
    for name in names:
        prefix, slash, field = name.partition("/")
        values = pa.array([r[name] for r in records])
        if slash:
            grouped.setdefault(prefix, {})[field] = values
        elif name in grouped:
            raise ValueError(f"field {name!r} clashes with the struct of its '{name}/...' fields")
        else:
            grouped[name] = values
    return {
        name: pa.StructArray.from_arrays(list(v.values()), names=list(v)) if isinstance(v, dict) else v
        for name, v in grouped.items()
    }


def write_parquet_split(
    root: str | Path,
    source_name: str,
    split: str,
    images: Sequence[np.ndarray],
    records: Sequence[Mapping[str, Any]],
    shards: int = 1,
    row_group_size: int | None = None,
) -> list[Path]:
    """Write one tfds split in layout ``tfds_parquet``; return the files in record order."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if len(images) != len(records):
        raise ValueError(f"{len(images)} images but {len(records)} records")
    folder = Path(root) / source_name
    bounds = _shard_bounds(len(images), shards)
    image_type = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    columns = _annotation_columns(records)
    written = []
    for i, (start, stop) in enumerate(bounds):
        cells = [{"bytes": encode_png(images[j]), "path": f"{split}_{j:07d}.png"} for j in range(start, stop)]
        table = pa.table(
            {"image": pa.array(cells, type=image_type), **{k: v.slice(start, stop - start) for k, v in columns.items()}}
        )
        path = folder / f"{split}-{i:05d}-of-{len(bounds):05d}.parquet"
        _replace_atomically(path, lambda tmp, t=table: pq.write_table(t, tmp, row_group_size=row_group_size))
        written.append(path)
    _remove_stale(folder, [f"{split}-*.parquet", f"{split}.parquet"], written)
    return written


def _tar_member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), 0, 0o644
    tar.addfile(info, io.BytesIO(data))


def write_wds_split(
    root: str | Path,
    wds_name: str,
    split: str,
    images: Sequence[np.ndarray],
    labels: Sequence[int],
    shards: int = 1,
) -> list[Path]:
    """Write one split of a CLIP_benchmark-style WebDataset mirror; return the shards in record order."""
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    folder = Path(root) / wds_name / split
    written = []
    for i, (start, stop) in enumerate(_shard_bounds(len(images), shards)):

        def write(tmp: Path, start: int = start, stop: int = stop) -> None:
            with tarfile.open(tmp, mode="w", format=tarfile.USTAR_FORMAT) as tar:
                for j in range(start, stop):
                    _tar_member(tar, f"{j:07d}.png", encode_png(images[j]))
                    _tar_member(tar, f"{j:07d}.cls", str(int(labels[j])).encode("ascii"))

        path = folder / f"{i}.tar"
        _replace_atomically(path, write)
        written.append(path)
    _remove_stale(folder, ["*.tar"], written)
    return written


def write_classnames(root: str | Path, wds_name: str, names: Sequence[str]) -> Path:
    """``<root>/<wds_name>/classnames.txt``, one name a line."""
    path = Path(root) / wds_name / "classnames.txt"
    text = "".join(f"{n}\n" for n in names)
    _replace_atomically(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return path
