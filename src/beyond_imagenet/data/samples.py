"""Decode any sample of a dataset, whether an image file (class folders) or a parquet row (ImageNet-Hard)."""

from __future__ import annotations

from PIL import Image

from beyond_imagenet.data.decode import decode_rgb, decode_rgb_bytes
from beyond_imagenet.data.parquet_source import ParquetSample, read_image_bytes


def sample_label(sample) -> str:
    """How errors name a sample: its file, or its parquet file and row id."""
    return f"{sample.path}#{sample.sample_id}" if isinstance(sample, ParquetSample) else str(sample.path)


def decode_sample(sample) -> Image.Image:
    """8-bit RGB image of ``sample``; raises ImageDecodeError naming it (see decode.decode_rgb)."""
    if isinstance(sample, ParquetSample):
        return decode_rgb_bytes(read_image_bytes(sample), sample_label(sample))
    return decode_rgb(sample.path)
