"""Images stored in parquet files, as in the Hugging Face copy of ImageNet-Hard (docs/protocol.md §7.6).

A local copy is a snapshot of the dataset repository ``taesiri/imagenet-hard`` at a pinned revision:
``<root>/data/validation-*.parquet`` with columns ``image`` (struct of ``bytes`` and ``path``), ``label``
(list of ImageNet indices), ``origin`` and ``english_label``. Each row is one sample; labels are lists because
an image may have several valid classes. pyarrow is imported only here.
"""

from __future__ import annotations

import functools
import itertools
import re
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from beyond_imagenet.base.errors import DatasetLayoutError
from beyond_imagenet.data.decode import decode_rgb_bytes

HARD_FILE_PATTERN = "validation-*.parquet"
REQUIRED_COLUMNS = ("image", "label")
SNAPSHOT = re.compile(r"^[0-9a-f]{40}$")


@dataclass(frozen=True)
class ParquetSample:
    """One row of a parquet file: where it is and the ImageNet labels it lists."""

    path: Path
    row_group: int
    row: int  # index within the row group
    sample_id: str
    labels: tuple[int, ...]
    class_id: str = ""

    @property
    def name(self) -> str:
        """How errors name the sample: its parquet file and row id."""
        return f"{self.path}#{self.sample_id}"

    @property
    def plain_file(self) -> None:
        """None: the image lives inside a parquet file."""
        return None

    def decode(self) -> Image.Image:
        """8-bit RGB image of the row; ``ImageDecodeError`` naming the file and row."""
        return decode_rgb_bytes(read_image_bytes(self), self.name)


def parquet_files(root: Path) -> list[Path]:
    """The ``validation-*.parquet`` files under ``root``, sorted; a missing copy says how to download it."""
    files = sorted(root.glob(f"**/{HARD_FILE_PATTERN}"))
    if not files:
        raise DatasetLayoutError(
            f"no {HARD_FILE_PATTERN} under {root}. Expected a local copy of the Hugging Face dataset "
            "taesiri/imagenet-hard at a pinned revision, e.g. `huggingface-cli download taesiri/imagenet-hard "
            "--repo-type dataset --revision <sha> --local-dir <root>`, giving <root>/data/validation-*.parquet"
        )
    return files


def snapshot_revision(root: Path) -> str | None:
    """The commit sha when ``root`` lies inside a Hugging Face cache snapshot (``.../snapshots/<sha>/``)."""
    parts = root.resolve().parts
    for parent, name in itertools.pairwise(parts):
        if parent == "snapshots" and SNAPSHOT.match(name):
            return name
    return None


def scan_parquet(root: Path) -> list[ParquetSample]:
    """Every row of every parquet file, in file then row order; ids are ``hard_<running index>``."""
    import pyarrow.parquet as pq

    samples: list[ParquetSample] = []
    for path in parquet_files(root):
        handle = pq.ParquetFile(path)
        missing = [c for c in REQUIRED_COLUMNS if c not in handle.schema_arrow.names]
        if missing:
            raise DatasetLayoutError(f"{path} lacks the columns {missing} of taesiri/imagenet-hard")
        for group in range(handle.num_row_groups):
            labels = handle.read_row_group(group, columns=["label"]).column("label").to_pylist()
            for row, row_labels in enumerate(labels):
                if not isinstance(row_labels, list):
                    raise DatasetLayoutError(f"{path}: row {row} of row group {group} has no label list")
                index = len(samples)
                samples.append(ParquetSample(path, group, row, f"hard_{index:05d}", tuple(int(x) for x in row_labels)))
    return samples


@functools.lru_cache(maxsize=2)
def _row_group_images(path: Path, group: int) -> list[bytes | None]:
    """The encoded images of one row group (kept for the next rows: samples are read in order)."""
    import pyarrow.parquet as pq

    cells = pq.ParquetFile(path).read_row_group(group, columns=["image"]).column("image").to_pylist()
    return [cell.get("bytes") if isinstance(cell, dict) else cell for cell in cells]


def read_image_bytes(sample: ParquetSample) -> bytes:
    """The encoded image of one row (empty when the cell holds none)."""
    data = _row_group_images(sample.path, sample.row_group)[sample.row]
    return data or b""
