"""Decode any sample of a dataset: an image file (class folders), a parquet row (ImageNet-Hard), or a sample
that decodes itself (``.decode()``: VTAB parquet rows and WebDataset tar members, ``transfer.sources``)."""

from __future__ import annotations

from PIL import Image

from beyond_imagenet.data.decode import decode_rgb, decode_rgb_bytes
from beyond_imagenet.data.parquet_source import ParquetSample, read_image_bytes


def sample_label(sample) -> str:
    """How errors name a sample: its file, or its parquet file and row id."""
    in_container = isinstance(sample, ParquetSample) or hasattr(sample, "decode")
    return f"{sample.path}#{sample.sample_id}" if in_container else str(sample.path)


def decode_sample(sample) -> Image.Image:
    """8-bit RGB image of ``sample``; raises ImageDecodeError naming it (see decode.decode_rgb)."""
    if hasattr(sample, "decode"):
        return sample.decode()
    if isinstance(sample, ParquetSample):
        return decode_rgb_bytes(read_image_bytes(sample), sample_label(sample))
    return decode_rgb(sample.path)
