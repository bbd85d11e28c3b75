"""Readers for the VTAB on-disk layouts, and the task splits on them (TRANSFER.md §3.5, §4, §8.12).

- ``tfds_parquet``: ``<root>/<source>/[**/]<tfds split>-*.parquet`` (or ``<split>.parquet``), a parquet export of a
  tfds builder in tfds's record order; column ``image`` (binary, or Hugging Face's struct ``{bytes, path}``) plus
  the raw tfds features. Struct columns are flattened to tfds's feature names (``objects/pixel_coords``).
- ``wds``: CLIP_benchmark's WebDataset mirror ``<root>/wds_vtab-<task>/{train,test}/*.tar`` with ``<key>.<img>``
  and ``<key>.cls`` members; train = VTAB train (no val: ``carve_val`` holds out a stratified val), test = VTAB test.
- ``torchvision``: the files ``torchvision.datasets.X(root, download=True)`` writes, read by ``torchvision_layout``
  (CIFAR-10/100, SVHN, DTD, Flowers, Pets). DTD / Flowers keep their official val; the others get a carved one.

Scanning reads annotations and member offsets only; ``VtabSample.decode`` reads one image, in any process. Neither
TensorFlow nor ``webdataset`` is needed; pyarrow is imported inside the functions that use it.
"""

from __future__ import annotations

import functools
import re
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image

from beyond_imagenet.data.decode import decode_rgb_bytes
from beyond_imagenet.errors import DatasetLayoutError, ImageDecodeError, UserError
from beyond_imagenet.transfer.tasks import (
    DSPRITES_RAW_CLASSES,
    VTAB1K_TRAIN,
    VTAB1K_VAL,
    ImageSource,
    Layout,
    Protocol,
    TaskSpec,
    dsprites_label,
    expected_layout,
    native_label,
    split_indices,
)

__all__ = [
    "IMAGE_COLUMN",
    "WDS_IMAGE_EXTENSIONS",
    "SourceSplit",
    "VtabSample",
    "carve_val",
    "check_split_count",
    "parquet_files",
    "read_classnames",
    "read_parquet_split",
    "read_wds_split",
    "task_labels",
    "task_split_rows",
    "val_fraction",
    "wds_shards",
]

IMAGE_COLUMN = "image"
WDS_IMAGE_EXTENSIONS = ("webp", "png", "jpg", "jpeg")
WDS_LABEL_EXTENSION = "cls"
DSPRITES_SOURCE = "dsprites"
_ARRAY_KINDS = ("cifar", "svhn")
_LABEL_ERRORS = (ValueError, KeyError, TypeError, IndexError)


# ----------------------------------------------------------------------------------------------------------------
# Samples and splits
# ----------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VtabSample:
    """One image of a VTAB source, decodable in a DataLoader worker process (picklable, cheap)."""

    path: Path  # the parquet file, tar shard, image file or array file holding it
    sample_id: str  # f"{split}/{index:07d}", index = position in the source split's record order
    kind: Literal["parquet", "tar", "file", "cifar", "svhn"]
    # parquet: (row group, row within group); tar: (data offset, size) of the member; file: unused (0, 0);
    # cifar / svhn (torchvision's CIFAR pickle batch / SVHN .mat): (row in the array file, 0)
    locator: tuple[int, int]
    binary_to_255: bool = False  # dSprites (TRANSFER §3.2): pixel values {0, 1} become {0, 255}

    @property
    def name(self) -> str:
        """``<path>#<sample_id>``, the label of decode errors."""
        return f"{self.path}#{self.sample_id}"

    def read_bytes(self) -> bytes:
        """The encoded image bytes; ``ImageDecodeError`` when they cannot be read (or for array kinds, which have
        none: use ``decode``)."""
        if self.kind in _ARRAY_KINDS:
            raise ImageDecodeError(self.name, f"a {self.kind!r} sample is a row of an array file, not encoded bytes")
        try:
            if self.kind == "parquet":
                data = _parquet_image_bytes(self)
            elif self.kind == "file":
                data = self.path.read_bytes()
            else:
                data = _tar_member_bytes(self)
        except ImageDecodeError:
            raise
        except Exception as exc:  # OSError, pyarrow errors, IndexError on a changed file
            raise ImageDecodeError(self.name, f"cannot read the encoded image ({type(exc).__name__}: {exc})") from exc
        return data

    def decode(self) -> Image.Image:
        """8-bit RGB (grayscale tiled to 3 channels); dSprites' {0, 1} scaled to {0, 255} with saturation."""
        image = _array_image(self) if self.kind in _ARRAY_KINDS else decode_rgb_bytes(self.read_bytes(), self.name)
        if not self.binary_to_255:
            return image
        pixels = np.asarray(image, dtype=np.uint16) * 255
        return Image.fromarray(np.minimum(pixels, 255).astype(np.uint8))


@dataclass(frozen=True)
class SourceSplit:
    """All rows of one split of one image source as found on disk, in record order."""

    name: str  # ImageSource name (tfds_parquet, torchvision) or the wds mirror name, e.g. "wds_vtab-cifar100"
    layout: Layout
    split: str  # tfds split name ("train", "validation", "test") or wds "train" / "test"
    samples: tuple[VtabSample, ...]
    # raw annotations per row (flattened tfds feature names; wds: {"cls": int}; torchvision: {"label": int})
    records: tuple[dict, ...]
    files: tuple[dict, ...]  # [{"path": str, "bytes": int}] of the files read, for the manifest hash

    def __len__(self) -> int:
        return len(self.samples)


def _array_image(sample: VtabSample) -> Image.Image:
    """Row ``locator[0]`` of a torchvision array file (CIFAR pickle batch, SVHN .mat), cached per process."""
    from beyond_imagenet.transfer.torchvision_layout import array_image

    try:
        return array_image(sample.path, sample.kind, sample.locator[0])
    except Exception as exc:  # OSError, unpickling / loadmat errors, IndexError on a changed file
        raise ImageDecodeError(sample.name, f"cannot read the image row ({type(exc).__name__}: {exc})") from exc


def _sample_id(split: str, index: int) -> str:
    return f"{split}/{index:07d}"


def _file_entries(paths: Sequence[Path]) -> tuple[dict, ...]:
    return tuple({"path": str(p), "bytes": p.stat().st_size} for p in paths)


def _natural_key(path: Path) -> tuple:
    """Sort key on the file name treating digit runs as numbers (``train-2`` before ``train-10``)."""
    parts = re.split(r"(\d+)", path.name)
    return (tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts), str(path))


# ----------------------------------------------------------------------------------------------------------------
# tfds_parquet layout (§3.5)
# ----------------------------------------------------------------------------------------------------------------


def _parquet_layout_hint(source: ImageSource, root: Path, split: str) -> str:
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
    import pyarrow as pa

    if not pa.types.is_struct(arrow_type):
        return [prefix]
    return [leaf for f in arrow_type for leaf in _struct_leaves(f.type, (*prefix, f.name))]


def _dig(value: Any, keys: tuple[str, ...]) -> Any:
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


def _parquet_records(path: Path, handle: Any, source: ImageSource, root: Path, split: str) -> list[dict]:
    """The non-image columns of one file, flattened, one dict per row (image bytes are not read)."""
    schema = handle.schema_arrow
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
    wanted = [f.name for f in schema if f.name != IMAGE_COLUMN and not _is_image_type(f.type)]
    n = handle.metadata.num_rows
    if not wanted:
        return [{} for _ in range(n)]
    table = handle.read(columns=wanted)
    columns = [col for name in wanted for col in _flat_columns(name, table.column(name).combine_chunks())]
    names = [c[0] for c in columns]
    return [dict(zip(names, values, strict=True)) for values in zip(*(c[1] for c in columns), strict=True)]


def read_parquet_split(source: ImageSource, root: str | Path, split: str) -> SourceSplit:
    """All rows of tfds split ``split`` of ``source`` in layout ``tfds_parquet`` (TRANSFER.md §3.5).

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
                samples.append(VtabSample(path, _sample_id(split, len(samples)), "parquet", (group, row), binary))
    return SourceSplit(source.name, "tfds_parquet", split, tuple(samples), tuple(records), _file_entries(files))


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


def _parquet_image_bytes(sample: VtabSample) -> bytes:
    stat = sample.path.stat()
    group, row = sample.locator
    data = _row_group_images(sample.path, group, stat.st_mtime_ns, stat.st_size)[row]
    if data is None:
        raise ImageDecodeError(sample.name, f"row {row} of row group {group} has no image bytes")
    return data


# ----------------------------------------------------------------------------------------------------------------
# wds layout (CLIP_benchmark's WebDataset mirrors, §3.5)
# ----------------------------------------------------------------------------------------------------------------


def _wds_missing(task: TaskSpec, root: Path, what: str) -> DatasetLayoutError:
    return DatasetLayoutError(
        f"VTAB task {task.name!r}: {what}. Expected layout 'wds': {'; '.join(expected_layout(task, root, 'wds'))}. "
        f"How to get it: {task.download_instructions('wds')}"
    )


def wds_shards(task: TaskSpec, root: str | Path, split: str) -> list[Path]:
    """``<root>/<wds_name>/<split>/*.tar``, sorted numerically by stem when all stems are integers, else by name."""
    root = Path(root)
    folder = root / task.wds_name / split
    shards = sorted(folder.glob("*.tar")) if folder.is_dir() else []
    if not shards:
        raise _wds_missing(task, root, f"no tar shard in {folder}")
    if all(p.stem.isdigit() for p in shards):
        shards.sort(key=lambda p: int(p.stem))
    return shards


def _split_member_name(name: str) -> tuple[str, str] | None:
    """WebDataset's (key, extension): the key runs up to the first dot of the base name."""
    folder, _, base = name.rpartition("/")
    stem, dot, ext = base.partition(".")
    if not dot or not stem:
        return None
    return (f"{folder}/{stem}" if folder else stem), ext.lower()


def _index_shard(path: Path, task: TaskSpec) -> list[tuple[str, tuple[int, int], int]]:
    """``(key, (data offset, size) of the image member, class)`` per key of one shard, in member order."""
    images: dict[str, tuple[int, int]] = {}
    labels: dict[str, int] = {}
    order: dict[str, None] = {}
    try:
        with tarfile.open(path, mode="r:") as tar:
            for member in tar:
                parsed = _split_member_name(member.name) if member.isfile() else None
                if parsed is None:
                    continue
                key, ext = parsed
                if ext in WDS_IMAGE_EXTENSIONS:
                    if key in images:
                        raise DatasetLayoutError(f"{path}: key {key!r} has more than one image member")
                    images[key] = (member.offset_data, member.size)
                elif ext == WDS_LABEL_EXTENSION:
                    labels[key] = _parse_cls(tar, member, path, key)
                else:
                    continue
                order.setdefault(key, None)
    except tarfile.TarError as exc:
        raise DatasetLayoutError(f"{path} is not a readable uncompressed tar shard ({exc})") from exc
    out = []
    for key in order:
        if key not in images or key not in labels:
            lacking = f"image member (.{'/.'.join(WDS_IMAGE_EXTENSIONS)})" if key not in images else ".cls label member"
            raise _wds_missing(task, path.parents[2], f"shard {path} key {key!r} lacks its {lacking}")
        out.append((key, images[key], labels[key]))
    return out


def _parse_cls(tar: tarfile.TarFile, member: tarfile.TarInfo, path: Path, key: str) -> int:
    handle = tar.extractfile(member)
    text = handle.read().decode("ascii", errors="replace").strip() if handle is not None else ""
    try:
        return int(text)
    except ValueError:
        raise DatasetLayoutError(f"{path}: key {key!r} has a .cls member {text!r} that is not an integer") from None


def read_wds_split(task: TaskSpec, root: str | Path, split: Literal["train", "test"]) -> SourceSplit:
    """All samples of the wds mirror's ``split`` in shard then member order; records are ``{"cls": int}``."""
    if split not in ("train", "test"):
        raise UserError(f"a wds mirror has the splits 'train' and 'test', not {split!r}")
    shards = wds_shards(task, root, split)
    binary = task.source.name == DSPRITES_SOURCE
    samples: list[VtabSample] = []
    records: list[dict] = []
    for path in shards:
        for _key, locator, cls in _index_shard(path, task):
            samples.append(VtabSample(path, _sample_id(split, len(samples)), "tar", locator, binary))
            records.append({"cls": cls})
    return SourceSplit(task.wds_name, "wds", split, tuple(samples), tuple(records), _file_entries(shards))


def _tar_member_bytes(sample: VtabSample) -> bytes:
    offset, size = sample.locator
    with open(sample.path, "rb") as handle:
        handle.seek(offset)
        data = handle.read(size)
    if len(data) != size:
        raise ImageDecodeError(sample.name, f"truncated shard: read {len(data)} of {size} bytes at offset {offset}")
    return data


def read_classnames(task: TaskSpec, root: str | Path) -> list[str]:
    """``<root>/<wds_name>/classnames.txt``, one class name a line (CLIP_benchmark's labels; dSprites 32/40)."""
    root = Path(root)
    path = root / task.wds_name / "classnames.txt"
    if not path.is_file():
        raise _wds_missing(task, root, f"no {path}")
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


# ----------------------------------------------------------------------------------------------------------------
# Counts, labels, val carving and task splits (§3.1, §3.2, §4)
# ----------------------------------------------------------------------------------------------------------------


def check_split_count(split: SourceSplit, expected: int, check_size: bool) -> None:
    """``DatasetLayoutError`` when ``check_size`` and the split does not hold ``expected`` rows."""
    if check_size and len(split) != expected:
        raise DatasetLayoutError(
            f"{split.name} ({split.layout}) split {split.split!r} has {len(split)} rows on disk but {expected} are "
            "expected (VTAB's sizes: `beyond-imagenet vtab-tasks`). Re-export or re-download it, or set "
            "`transfer.check_size: false` to run a subset on purpose."
        )


def task_labels(task: TaskSpec, split: SourceSplit) -> np.ndarray:
    """The task's class index of every row (int64).

    ``tfds_parquet``: ``task.label(record)`` (§3.2). ``torchvision``: the same rule on the reader's native
    ``label`` (range-checked). ``wds``: ``cls`` is CLIP_benchmark's label; dSprites' raw 32/40 latents go through
    ``dsprites_label`` (16 classes in ``vtab19``), other tasks are range-checked.
    """
    expected_name = task.wds_name if split.layout == "wds" else task.source.name
    if split.name != expected_name:
        raise UserError(f"task {task.name!r} reads {expected_name!r}, not {split.name!r}")
    if split.layout in ("tfds_parquet", "torchvision"):
        rule = task.label
    elif task.source.name == DSPRITES_SOURCE:
        n_raw = DSPRITES_RAW_CLASSES[task.label_rule.fields[0]]
        rule = functools.partial(_wds_dsprites_label, n_raw=n_raw, num_classes=task.num_classes)
    else:
        rule = functools.partial(_wds_native_label, num_classes=task.num_classes)
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


def _wds_dsprites_label(record: Mapping[str, Any], n_raw: int, num_classes: int) -> int:
    return dsprites_label(record["cls"], n_raw, num_classes)


def _wds_native_label(record: Mapping[str, Any], num_classes: int) -> int:
    return native_label(record["cls"], num_classes)


def val_fraction(task: TaskSpec) -> Fraction:
    """VTAB's val share of trainval, val / (train + val) (TRANSFER.md §4): CIFAR 1/10, Pets 1/5, dSprites 1/9."""
    sizes = task.expected_sizes
    return Fraction(sizes["val"], sizes["train"] + sizes["val"])


def carve_val(labels: np.ndarray, fraction: Fraction, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic stratified hold-out (TRANSFER.md §4, §8.12): sorted ``(train_idx, val_idx)``.

    Per class in ascending class order, ``round(fraction * n_class)`` rows (at least 1 and at most ``n_class - 1``
    when the class has >= 2 rows; none for a single row) are held out, drawn by permutations of one
    ``np.random.default_rng(seed)``. Save the returned indices: the seed alone does not pin them across versions.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise UserError(f"carve_val needs a 1-D label array, got shape {labels.shape}")
    fraction = Fraction(fraction)
    if not 0 <= fraction < 1:
        raise UserError(f"the val fraction must lie in [0, 1), got {fraction}")
    rng = np.random.default_rng(seed)
    held: list[np.ndarray] = []
    for cls in np.unique(labels):
        rows = np.flatnonzero(labels == cls)
        n = len(rows)
        k = min(max(round(fraction * n), 1), n - 1) if n >= 2 else 0
        held.append(rows[rng.permutation(n)[:k]])
    val = np.sort(np.concatenate(held)) if held else np.empty(0, dtype=np.int64)
    mask = np.ones(len(labels), dtype=bool)
    mask[val] = False
    return np.flatnonzero(mask).astype(np.int64), val.astype(np.int64)


def _parquet_split_rows(
    task: TaskSpec, splits: Mapping[str, SourceSplit], protocol: Protocol
) -> dict[str, dict[str, np.ndarray]]:
    ranges = split_indices(task, {name: len(s) for name, s in splits.items()}, protocol)
    out: dict[str, dict[str, np.ndarray]] = {}
    for name, pieces in ranges.items():
        rows: dict[str, list[np.ndarray]] = {}
        for piece in pieces:
            rows.setdefault(piece.split, []).append(np.arange(piece.start, piece.stop, dtype=np.int64))
        out[name] = {split: np.concatenate(parts) for split, parts in rows.items()}
    return out


def _first(rows: np.ndarray, k: int, task: TaskSpec, split: str) -> np.ndarray:
    if len(rows) < k:
        raise UserError(
            f"task {task.name!r}: split {split!r} has {len(rows)} examples, fewer than the {k} VTAB-1k needs"
        )
    return rows[:k]


def _carved_split_rows(
    task: TaskSpec,
    layout: Layout,
    splits: Mapping[str, SourceSplit],
    protocol: Protocol,
    seed: int,
    labels: np.ndarray | None,
) -> dict[str, dict[str, np.ndarray]]:
    """train / val carved from ``splits["train"]`` (``carve_val``), test = all of ``splits["test"]``."""
    missing = [s for s in ("train", "test") if s not in splits]
    if missing:
        raise UserError(f"task {task.name!r} ({layout}) needs the splits train and test; missing {missing}")
    if labels is None:
        labels = task_labels(task, splits["train"])
    if len(labels) != len(splits["train"]):
        raise UserError(f"task {task.name!r}: {len(labels)} labels for {len(splits['train'])} {layout} train rows")
    train, val = carve_val(labels, val_fraction(task), seed)
    test = {"test": np.arange(len(splits["test"]), dtype=np.int64)}
    if protocol == "full":
        trainval = np.arange(len(labels), dtype=np.int64)
        return {"train": {"train": train}, "val": {"train": val}, "test": test, "trainval": {"train": trainval}}
    if layout == "torchvision":  # file order is not tfds's shuffled order (Pets is sorted by class)
        train, val = _seeded_order(train, seed, 0), _seeded_order(val, seed, 1)
    train800 = np.sort(_first(train, VTAB1K_TRAIN, task, "train"))
    val200 = np.sort(_first(val, VTAB1K_VAL, task, "val"))
    both = np.sort(np.concatenate([train800, val200]))
    return {
        "train800": {"train": train800},
        "val200": {"train": val200},
        "train800val200": {"train": both},
        "test": test,
    }


def _seeded_order(rows: np.ndarray, seed: int, stream: int) -> np.ndarray:
    """``rows`` in a seeded random order: VTAB-1k's "first 800" of tfds's shuffled record order, for files whose
    own order is not shuffled (torchvision's DTD / Pets lists are sorted by class)."""
    return rows[np.random.default_rng([seed, stream]).permutation(len(rows))]


def _torchvision_split_rows(
    task: TaskSpec, splits: Mapping[str, SourceSplit], protocol: Protocol, seed: int, labels: np.ndarray | None
) -> dict[str, dict[str, np.ndarray]]:
    """Official val where the source has one (DTD, Flowers: exactly VTAB), else a stratified carve from train."""
    from beyond_imagenet.transfer.torchvision_layout import torchvision_format

    fmt = torchvision_format(task.source)
    if "validation" not in fmt.splits:
        return _carved_split_rows(task, "torchvision", splits, protocol, seed, labels)
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
    train800 = np.sort(_first(_seeded_order(full["train"]["train"], seed, 0), VTAB1K_TRAIN, task, "train"))
    val200 = np.sort(_first(_seeded_order(full["val"]["validation"], seed, 1), VTAB1K_VAL, task, "val"))
    return {
        "train800": {"train": train800},
        "val200": {"validation": val200},
        "train800val200": {"train": train800, "validation": val200},
        "test": full["test"],
    }


def task_split_rows(
    task: TaskSpec,
    layout: Layout,
    splits: Mapping[str, SourceSplit],
    protocol: Protocol = "full",
    seed: int = 0,
    labels: np.ndarray | None = None,
) -> dict[str, dict[str, np.ndarray]]:
    """Row indices of every task split: ``{task split: {source split: rows into that SourceSplit}}``.

    ``tfds_parquet``: ``split_indices`` on the counts found (``splits`` keyed by tfds split name). ``wds``
    (``splits`` keyed "train" / "test"): train / val from ``carve_val`` on the train labels (``labels``, default
    ``task_labels`` of the train split), test = all of wds test, trainval = train ∪ val; VTAB-1k takes the first
    800 of train and the first 200 of val (§3.4). ``torchvision`` (``splits`` keyed by tfds split name): DTD and
    Flowers use their official train / validation / test (exactly VTAB's); CIFAR-10/100, SVHN and Pets carve val
    from train as ``wds`` does (§4; their file order is not tfds's, so a percent slice would differ). Its VTAB-1k
    draws 800 / 200 with ``seed`` instead of taking the first rows, as its files are not in tfds's shuffled order.
    """
    if protocol not in ("full", "1k"):
        raise UserError(f"unknown split protocol {protocol!r}; use 'full' or '1k'")
    if layout == "tfds_parquet":
        return _parquet_split_rows(task, splits, protocol)
    if layout == "wds":
        return _carved_split_rows(task, "wds", splits, protocol, seed, labels)
    if layout == "torchvision":
        return _torchvision_split_rows(task, splits, protocol, seed, labels)
    raise UserError(f"unknown dataset layout {layout!r}; use 'tfds_parquet', 'wds' or 'torchvision'")
