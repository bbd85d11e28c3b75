"""Layout ``tfds_parquet`` (the default): a parquet export of each tfds builder (docs/transfer.md §3.5; docs/vtab.md).

``<root>/<source>/[**/]<tfds split>-*.parquet`` (or ``<split>.parquet``), one row per tfds example in tfds's record
order (as the ``dpdl-benchmark/<task>`` Hugging Face exports keep it), so VTAB's percent slices give exact VTAB
membership and both tasks of a shared source read one copy. Column ``image`` is binary or Hugging Face's struct
``{bytes, path}``; the other columns are the raw tfds features, struct columns flattened to tfds's feature names
(``objects/pixel_coords``). Labels are the task's rule of docs/transfer.md §3.2. pyarrow is imported inside the
functions that use it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from beyond_imagenet.base.errors import DatasetLayoutError
from beyond_imagenet.data.vtab.layouts.base import TfdsSourceSplits, VtabLayout, with_source_notes
from beyond_imagenet.data.vtab.readers import IMAGE_COLUMN
from beyond_imagenet.data.vtab.samples import SourceSplit, VtabSample, file_entries, label_rows, make_sample_id
from beyond_imagenet.data.vtab.sources import DSPRITES_SOURCE, ImageSource
from beyond_imagenet.data.vtab.split_rules import check_protocol, split_indices
from beyond_imagenet.data.vtab.tasks import Protocol, TaskSpec

__all__ = ["LAYOUT", "TfdsParquetLayout", "parquet_files", "read_parquet_split"]

NAME = "tfds_parquet"
_PARQUET_HINT = "a parquet export of tfds `{builder}` that keeps tfds's split names and record order"


def _natural_key(path: Path) -> tuple:
    """Sort key on the file name treating digit runs as numbers (``train-2`` before ``train-10``)."""
    parts = re.split(r"(\d+)", path.name)
    return (tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts), str(path))


def _parquet_layout_hint(source: ImageSource, root: Path, split: str) -> str:
    """What a split's files should be, for the errors of this module."""
    where = root / source.name / f"[**/]{split}-*.parquet (or {split}.parquet)"
    return (
        f"Expected {where}: a parquet export of tfds `{source.tfds_builder}` that keeps tfds's split names and "
        f"record order (splits {dict(source.split_sizes)}), with an `{IMAGE_COLUMN}` column and the raw tfds "
        f"features (docs/vtab.md). Source notes: {source.download}"
    )


def parquet_files(source: ImageSource, root: Path, split: str) -> list[Path]:
    """The split's parquet files in record order (file name order, digit runs compared as numbers)."""
    base = Path(root) / source.name
    found = {*base.glob(f"**/{split}-*.parquet"), *base.glob(f"**/{split}.parquet")} if base.is_dir() else set()
    if not found:
        raise DatasetLayoutError(
            f"image source {source.name!r} split {split!r}: no parquet file under {base}. "
            f"{_parquet_layout_hint(source, Path(root), split)}"
        )
    return sorted(found, key=_natural_key)


def _is_image_type(arrow_type: Any) -> bool:
    """Binary, or a struct holding a binary ``bytes`` field (Hugging Face ``Image``)."""
    import pyarrow as pa

    if pa.types.is_binary(arrow_type) or pa.types.is_large_binary(arrow_type):
        return True
    if pa.types.is_struct(arrow_type):
        index = arrow_type.get_field_index("bytes")
        return index >= 0 and _is_image_type(arrow_type.field(index).type)
    return False


def _struct_leaves(arrow_type: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """The key paths of every leaf of a (nested) struct type."""
    import pyarrow as pa

    if not pa.types.is_struct(arrow_type):
        return [prefix]
    return [leaf for f in arrow_type for leaf in _struct_leaves(f.type, (*prefix, f.name))]


def _dig(value: Any, keys: tuple[str, ...]) -> Any:
    """``value[k1][k2]...``, None when a level is null."""
    for key in keys:
        if value is None:
            return None
        value = value[key]
    return value


def _flat_columns(name: str, array: Any) -> list[tuple[str, list]]:
    """One arrow column as ``(flattened tfds name, python values)`` pairs.

    A struct becomes one column per leaf (``objects/pixel_coords``); a list of structs (one struct per object)
    becomes one list per leaf, as tfds's ``Sequence`` features hold them.
    """
    import pyarrow as pa

    arrow_type = array.type
    if pa.types.is_struct(arrow_type):
        children = array.flatten()  # honours the parent's nulls
        return [col for f, c in zip(arrow_type, children, strict=True) for col in _flat_columns(f"{name}/{f.name}", c)]
    is_list = pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type)
    if is_list and pa.types.is_struct(arrow_type.value_type):
        rows = array.to_pylist()
        return [
            ("/".join((name, *keys)), [None if row is None else [_dig(obj, keys) for obj in row] for row in rows])
            for keys in _struct_leaves(arrow_type.value_type)
        ]
    return [(name, array.to_pylist())]


def _check_image_column(path: Path, schema: Any, source: ImageSource, root: Path, split: str) -> None:
    """``DatasetLayoutError`` unless the file has an ``image`` column of an image type."""
    if IMAGE_COLUMN not in schema.names:
        raise DatasetLayoutError(
            f"{path} has no `{IMAGE_COLUMN}` column (columns: {', '.join(schema.names)}). "
            f"{_parquet_layout_hint(source, root, split)}"
        )
    image_type = schema.field(IMAGE_COLUMN).type
    if not _is_image_type(image_type):
        raise DatasetLayoutError(
            f"{path}: column `{IMAGE_COLUMN}` has type {image_type}; expected binary or a struct {{bytes, path}}. "
            f"{_parquet_layout_hint(source, root, split)}"
        )


def _parquet_records(path: Path, handle: Any, source: ImageSource, root: Path, split: str) -> list[dict]:
    """The non-image columns of one file, flattened, one dict per row (image bytes are not read)."""
    schema = handle.schema_arrow
    _check_image_column(path, schema, source, root, split)
    wanted = [f.name for f in schema if f.name != IMAGE_COLUMN and not _is_image_type(f.type)]
    n = handle.metadata.num_rows
    if not wanted:
        return [{} for _ in range(n)]
    table = handle.read(columns=wanted)
    columns = [col for name in wanted for col in _flat_columns(name, table.column(name).combine_chunks())]
    names = [c[0] for c in columns]
    return [dict(zip(names, values, strict=True)) for values in zip(*(c[1] for c in columns), strict=True)]


def read_parquet_split(source: ImageSource, root: str | Path, split: str) -> SourceSplit:
    """All rows of tfds split ``split`` of ``source`` in layout ``tfds_parquet`` (docs/transfer.md §3.5).

    Files are read in name order (the shard order is the record order); ids are ``<split>/<index>``. Other image
    columns (smallNORB's ``image2``) are skipped. Raises ``DatasetLayoutError`` for missing files or ``image``.
    """
    import pyarrow.parquet as pq

    root = Path(root)
    files = parquet_files(source, root, split)
    samples: list[VtabSample] = []
    records: list[dict] = []
    binary = source.name == DSPRITES_SOURCE
    for path in files:
        try:
            handle = pq.ParquetFile(path)
        except Exception as exc:  # ArrowInvalid for a truncated or non-parquet file
            raise DatasetLayoutError(f"{path} is not a readable parquet file ({exc})") from exc
        records.extend(_parquet_records(path, handle, source, root, split))
        for group in range(handle.metadata.num_row_groups):
            for row in range(handle.metadata.row_group(group).num_rows):
                samples.append(VtabSample(path, make_sample_id(split, len(samples)), "parquet", (group, row), binary))
    return SourceSplit(source.name, NAME, split, tuple(samples), tuple(records), file_entries(files), source.name)


def _has_split(base: Path, split: str) -> bool:
    """True when ``base`` holds a parquet file of ``split`` at any depth."""
    return base.is_dir() and (any(base.glob(f"**/{split}-*.parquet")) or any(base.glob(f"**/{split}.parquet")))


class TfdsParquetLayout(TfdsSourceSplits):
    """Layout ``tfds_parquet``: exact VTAB splits from tfds's record order; the task's own label rule."""

    name = NAME
    uses_val_seed = False

    def unsupported(self, task: TaskSpec) -> str | None:
        """None: every tfds source can be exported."""
        return None

    def expected(self, task: TaskSpec, root: Path) -> list[str]:
        """One ``<root>/<source>/[**/]<split>-*.parquet`` pattern per tfds split the task reads."""
        base = Path(root) / task.source.name
        return [str(base / f"[**/]{s}-*.parquet (or {s}.parquet)") for s in task.source_splits()]

    def missing(self, task: TaskSpec, root: Path) -> list[str]:
        """The patterns of ``expected`` that match no file."""
        base = Path(root) / task.source.name
        checks = [_has_split(base, s) for s in task.source_splits()]
        return [w for w, ok in zip(self.expected(task, root), checks, strict=True) if not ok]

    def base_dir(self, task: TaskSpec, root: Path) -> Path:
        """``<root>/<source>``."""
        return Path(root) / task.source.name

    def read_split(self, task: TaskSpec, root: Path, split: str) -> SourceSplit:
        """``read_parquet_split`` of the task's source."""
        return read_parquet_split(task.source, root, split)

    def expected_count(self, task: TaskSpec, split: str) -> int:
        """The tfds size of ``split``."""
        return task.source.split_sizes[split]

    def labels(self, task: TaskSpec, split: SourceSplit) -> np.ndarray:
        """``task.label(record)`` of every row (docs/transfer.md §3.2)."""
        return label_rows(task, split, task.source.name, task.label)

    def split_rows(
        self,
        task: TaskSpec,
        splits: Mapping[str, SourceSplit],
        protocol: Protocol = "full",
        seed: int = 0,
        labels: np.ndarray | None = None,
    ) -> dict[str, dict[str, np.ndarray]]:
        """``split_indices`` on the row counts found (``splits`` keyed by tfds split name); ``seed`` is unused."""
        check_protocol(protocol)
        ranges = split_indices(task, {name: len(s) for name, s in splits.items()}, protocol)
        out: dict[str, dict[str, np.ndarray]] = {}
        for name, pieces in ranges.items():
            rows: dict[str, list[np.ndarray]] = {}
            for piece in pieces:
                rows.setdefault(piece.split, []).append(np.arange(piece.start, piece.stop, dtype=np.int64))
            out[name] = {split: np.concatenate(parts) for split, parts in rows.items()}
        return out

    def download_hint(self, task: TaskSpec) -> str:
        """Build a tfds export (or download one), and check its counts."""
        src = task.source
        where = (
            f"Build {_PARQUET_HINT.format(builder=src.tfds_builder)} (e.g. `tfds.load` then write each split to "
            "parquet with the image and the raw features), or download an existing export such as the Hugging "
            f"Face dpdl-benchmark datasets; check the per-split counts {dict(src.split_sizes)} and the label "
            "histograms before use."
        )
        return with_source_notes(where, task)


LAYOUT: VtabLayout = TfdsParquetLayout()
