"""What every dataset sample offers the pipeline, whatever holds its image (docs/cache.md, docs/vtab.md).

A sample is an image file of a class-folder dataset (``folders.FolderSample``), a row of a parquet file
(ImageNet-Hard, ``parquet_source.ParquetSample``) or one image of a VTAB source (``vtab.samples.VtabSample``). All of
them expose the same small interface, so the loaders never ask which kind they hold.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from PIL import Image


class Sample(Protocol):
    """One image of a dataset, decodable in a DataLoader worker process (picklable, cheap)."""

    sample_id: str

    @property
    def name(self) -> str:
        """How errors name the sample (its file, or its container and row)."""

    @property
    def plain_file(self) -> Path | None:
        """The file holding exactly this image's encoded bytes, or None when it lives inside a container."""

    def decode(self) -> Image.Image:
        """8-bit RGB image; raises ``ImageDecodeError`` naming the sample."""
