"""Decode one image file into an 8-bit RGB PIL image, the input every preprocessing pipeline starts from.

docs/protocol.md §1.3: every image is converted to RGB before the model's transform, as the paper's official
loader does (``PIL.Image.open(f).convert("RGB")``). This module matches that loader wherever the loader is
well defined and fixes it where Pillow's own conversion is wrong (16-bit and 32-bit integer grayscale, which
``convert`` clips so most of the image turns white). Failures never pass silently: every one raises
:class:`~beyond_imagenet.errors.ImageDecodeError` with the path (docs/architecture.md, principle 6).
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from beyond_imagenet.base.errors import ImageDecodeError

__all__ = ["check_decodable", "decode_rgb", "decode_rgb_bytes"]

_TIFF_BITS_PER_SAMPLE = 258
_TIFF_SAMPLE_FORMAT = 339  # 1 unsigned, 2 signed integer, 3 float


def decode_rgb(path: str | Path) -> Image.Image:
    """Open ``path`` by content, decode it fully and return an 8-bit ``"RGB"`` image.

    - The format is sniffed from the bytes, so a PNG named ``.JPEG`` decodes; only the first frame of
      animated or multi-page files is read.
    - The whole file is decoded here, so a truncated file fails now instead of yielding grey rows. This
      relies on Pillow's global ``ImageFile.LOAD_TRUNCATED_IMAGES`` staying False (its default); this
      module never changes it.
    - Alpha is dropped without compositing (``LA``, ``RGBA``, ``PA``, palette transparency), exactly like
      ``convert("RGB")`` in the official loader. ``1``, ``L``, ``P``, ``CMYK`` and ``YCbCr`` use Pillow's
      ``convert("RGB")`` too (CMYK without colour management, as the official loader does).
    - Integer grayscale (``I;16*``, ``I``) is scaled by its true bit depth, ``v >> (bits - 8)``: 16 for
      ``I;16*`` and for ``I`` from PGM/PPM; TIFF's BitsPerSample (less the sign bit when signed) otherwise.
      Negative values become 0. Pillow reads 16-bit RGB(A) PNGs as 8-bit by keeping the high
      byte, which is the same ``>> 8``. Float (``F``) images in [0, 1] are scaled by 255, others are
      clipped to [0, 255]; both are rounded.
    - EXIF orientation is NOT applied and ICC profiles are ignored, because the official torchvision/PIL
      loader does neither; rotated photos reach the model as stored.

    Raises ``ImageDecodeError(str(path), reason)`` for a missing or empty file, unknown or garbage content,
    truncated or corrupt data, a decompression bomb (Pillow's ``MAX_IMAGE_PIXELS`` limit) or an
    unsupported pixel mode.
    """
    name = str(path)
    _refuse_missing_or_empty(path, name)
    return _decode(path, name)


def _refuse_missing_or_empty(path: str | Path, name: str) -> None:
    """``ImageDecodeError`` for a file that cannot be stat'ed or holds 0 bytes."""
    try:
        if os.path.getsize(path) == 0:
            raise ImageDecodeError(name, "empty file (0 bytes)")
    except OSError as exc:
        raise ImageDecodeError(name, os_reason(exc)) from None


def check_decodable(path: str | Path) -> None:
    """Raise what :func:`decode_rgb` would raise for ``path``, cheaply: JPEGs are decoded at 1/8 scale.

    libjpeg's reduced-size decoding still reads every byte of the image data, so a truncated or corrupt file fails
    here as it would at full size, at a fraction of the cost (the pre-pass check of ``inference.bad_images: error``).
    Other formats are decoded fully.
    """
    name = str(path)
    _refuse_missing_or_empty(path, name)
    _decode(path, name, draft=True)


def decode_rgb_bytes(data: bytes, name: str) -> Image.Image:
    """:func:`decode_rgb` for an encoded image held in memory (e.g. a parquet cell); ``name`` labels errors."""
    if not data:
        raise ImageDecodeError(name, "empty image bytes")
    return _decode(io.BytesIO(data), name)


def os_reason(exc: OSError) -> str:
    """A short reason for an OS error while reading an image file (missing, a directory, unreadable)."""
    if isinstance(exc, FileNotFoundError):
        return "file not found"
    if isinstance(exc, IsADirectoryError):
        return "is a directory, not an image file"
    return _failure_reason(exc)


def _decode(source, name: str, draft: bool = False) -> Image.Image:
    try:
        with Image.open(source) as image:
            if draft and image.format == "JPEG":
                image.draft("RGB", (max(1, image.width // 8), max(1, image.height // 8)))
            image.load()
            return _to_rgb(image, name)
    except ImageDecodeError:
        raise
    except (FileNotFoundError, IsADirectoryError) as exc:
        raise ImageDecodeError(name, os_reason(exc)) from None
    except Image.DecompressionBombError as exc:
        raise ImageDecodeError(name, f"decompression bomb refused by Pillow ({exc})") from exc
    except UnidentifiedImageError as exc:
        raise ImageDecodeError(name, "not a recognised image format (judged by content)") from exc
    except Exception as exc:  # Pillow plugins raise OSError, SyntaxError, ValueError, struct.error, ...
        raise ImageDecodeError(name, _failure_reason(exc)) from exc


def _failure_reason(exc: Exception) -> str:
    """A short human reason for a Pillow failure while opening or decoding."""
    text = str(exc)
    if "truncated" in text:
        return f"truncated file ({text})"
    return f"corrupt or unreadable image data ({type(exc).__name__}: {text})" if text else type(exc).__name__


def _to_rgb(image: Image.Image, name: str) -> Image.Image:
    """Convert a loaded image of any supported mode to 8-bit RGB."""
    mode = image.mode
    if mode == "RGB":
        return image
    if mode.startswith("I"):
        return _gray_to_rgb(_integer_to_uint8(image))
    if mode == "F":
        return _gray_to_rgb(_float_to_uint8(np.asarray(image), name))
    if mode in ("P", "PA"):
        # Same pixels as convert("RGB") with the transparency kept; dropping it first avoids Pillow's
        # "transparency expressed in bytes" warning.
        image.info.pop("transparency", None)
    try:
        return image.convert("RGB")
    except ValueError as exc:
        raise ImageDecodeError(name, f"unsupported pixel mode {mode!r}") from exc


def _gray_to_rgb(gray: np.ndarray) -> Image.Image:
    """Replicate an 8-bit grayscale array into the three RGB channels."""
    return Image.fromarray(np.ascontiguousarray(gray, dtype=np.uint8)).convert("RGB")


def _integer_to_uint8(image: Image.Image) -> np.ndarray:
    """Scale ``I;16*`` / ``I`` pixels to 8 bits by the true bit depth (negative values become 0)."""
    values = np.asarray(image).astype(np.int64)
    bits = _bit_depth(image, values)
    values = np.clip(values, 0, (1 << bits) - 1)
    return (values >> (bits - 8)).astype(np.uint8)


def _bit_depth(image: Image.Image, values: np.ndarray) -> int:
    """Magnitude bits of an integer grayscale image: 16 for ``I;16*``, else TIFF's tags, else inferred."""
    if image.mode.startswith("I;16"):
        return 16
    declared = _tiff_tag(image, _TIFF_BITS_PER_SAMPLE)
    if declared is not None and 9 <= declared <= 32:
        return declared - 1 if _tiff_tag(image, _TIFF_SAMPLE_FORMAT) == 2 else declared
    # PPM/PGM with maxval > 255 (and PNG in old Pillow versions) arrive as "I" holding 16-bit values.
    return 16 if values.size == 0 or int(values.max()) <= 0xFFFF else 32


def _tiff_tag(image: Image.Image, tag: int) -> int | None:
    """The first value of a TIFF tag as an int, or None when the image is no TIFF or lacks the tag."""
    tags = getattr(image, "tag_v2", None)
    value = tags.get(tag) if tags is not None else None
    if isinstance(value, tuple):
        value = value[0] if value else None
    return value if isinstance(value, int) else None


def _float_to_uint8(values: np.ndarray, name: str) -> np.ndarray:
    """Map float pixels to 8 bits: [0, 1] data is scaled by 255, anything else is clipped to [0, 255]."""
    values = values.astype(np.float64)
    if not np.isfinite(values).all():
        raise ImageDecodeError(name, "float image contains NaN or infinite pixel values")
    if values.size and values.min() >= 0.0 and values.max() <= 1.0:
        values = values * 255.0
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)
