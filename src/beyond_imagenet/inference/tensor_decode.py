"""Optional batched JPEG decoding on the accelerator (issue 6; ``inference.decode: tensor``).

DataLoader workers only read each file's bytes (:class:`RawBytesDataset`); the predictor then decodes the
batch with ``torchvision.io.decode_jpeg`` (nvjpeg on a GPU, libjpeg on the CPU) and applies every model's
preprocessing on the device (:func:`decode_and_preprocess`): resize with the spec's interpolation (antialiased),
centre crop, scale to [0, 1], normalise. Target sizes come from the same torchvision functions as
:func:`~beyond_imagenet.models.preprocessing.build_transform`, so only decoder and resize-kernel rounding differ
from the Pillow path (``beyond-imagenet fidelity --a decode=pillow --b decode=tensor`` measures it).

Anything that is not a plain, complete 1- or 3-component JPEG (PNG named ``.JPEG``, CMYK, truncated data), and
any image the native decoder rejects, is decoded by :func:`~beyond_imagenet.data.decode.decode_rgb_bytes`
instead, i.e. exactly as on the Pillow path; an image that fails there too yields zero tensors and its reason,
the same contract as ``DecodeOnceDataset``'s ``"error"`` field. Where torchvision's image extension does not
load (e.g. a CUDA torchvision wheel next to a CPU torch), every image takes that Pillow fallback.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from beyond_imagenet.base.compat import import_torchvision
from beyond_imagenet.base.errors import ImageDecodeError, UserError
from beyond_imagenet.data.decode import decode_rgb_bytes, os_reason
from beyond_imagenet.data.samples import Sample
from beyond_imagenet.models.preprocessing import PreprocessSpec, interpolation_mode

log = logging.getLogger(__name__)

TENSOR_RESIZE_MODES = ("shortest", "squash", "none")
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # start of frame (DHT, JPG, DAC are not)
_native_ok: bool | None = None  # whether torchvision's image extension loads (checked once per process)


def supports_tensor_decode(samples: Sequence[Sample]) -> bool:
    """True when every sample is a plain image file (``plain_file``); images inside containers are not."""
    return all(s.plain_file is not None for s in samples)


def check_tensor_specs(specs: dict[str, PreprocessSpec]) -> None:
    """Refuse specs the device path cannot apply: a resize mode outside ``TENSOR_RESIZE_MODES`` (the shift sweep)."""
    for spec in specs.values():
        if spec.resize_mode not in TENSOR_RESIZE_MODES:
            raise UserError(
                f"inference.decode: tensor does not support resize_mode {spec.resize_mode!r} (the shift sweep); "
                "use inference.decode: pillow"
            )


class RawBytesDataset(Dataset):
    """Items: ``{"index", "data": uint8 1-D tensor of the file's bytes, "error": "" or reason}``."""

    def __init__(self, samples: Sequence[Sample], indices: np.ndarray):
        self.samples = list(samples)
        self.indices = np.asarray(indices, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, position: int) -> dict:
        index = int(self.indices[position])
        try:
            with open(self.samples[index].plain_file, "rb") as handle:
                raw = handle.read()
            error = "" if raw else "empty file (0 bytes)"
        except OSError as exc:
            raw, error = b"", os_reason(exc)
        data = torch.frombuffer(bytearray(raw), dtype=torch.uint8) if raw else torch.empty(0, dtype=torch.uint8)
        return {"index": index, "data": data, "error": error}


def collate_raw(items: list[dict]) -> dict:
    """Batch of :class:`RawBytesDataset` items; the variable-length byte tensors stay a list."""
    return {
        "index": torch.tensor([item["index"] for item in items], dtype=torch.int64),
        "data": [item["data"] for item in items],
        "error": [item["error"] for item in items],
    }


def _plain_jpeg(raw: np.ndarray) -> bool:
    """A complete (SOI ... EOI) JPEG with 1 or 3 components: what the native decoder handles like Pillow."""
    n = len(raw)
    if n < 4 or raw[0] != 0xFF or raw[1] != 0xD8 or raw[-2] != 0xFF or raw[-1] != 0xD9:
        return False
    pos = 2
    while pos + 4 <= n:
        if raw[pos] != 0xFF:
            return False
        marker = int(raw[pos + 1])
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in _SOF_MARKERS:
            return pos + 9 < n and int(raw[pos + 9]) in (1, 3)
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # markers without a length
            pos += 2
            continue
        pos += 2 + (int(raw[pos + 2]) << 8 | int(raw[pos + 3]))
    return False


def _native_available() -> bool:
    global _native_ok
    if _native_ok is None:
        from torchvision.io import image as tv_image

        try:
            check = getattr(tv_image, "_assert_has_image_ops", None)  # private; absent means: assume it loads
            if check is not None:
                check()
            _native_ok = True
        except RuntimeError:
            _native_ok = False
            log.warning("torchvision's image extension does not load here; decode: tensor decodes with Pillow")
    return _native_ok


def _pillow_decode(data: torch.Tensor) -> torch.Tensor:
    """The Pillow path's decoder on bytes in memory; [3, H, W] uint8. Raises ImageDecodeError."""
    image = decode_rgb_bytes(data.cpu().numpy().tobytes(), "image")
    return torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1)


def _wait_for_current_stream(device) -> None:
    """Let queued work on the current CUDA stream finish before nvJPEG writes.

    torchvision's CUDA decoder takes its output memory from the caching allocator on the caller's stream but writes
    it from a private stream without waiting on the caller's: a block freed while kernels queued on the caller's
    stream still read it could be overwritten (pytorch/vision PR #9606). The pass already synchronises once per
    batch when outputs are copied to the host, so this wait is normally free; it keeps the decode correct without
    relying on that order.
    """
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.current_stream(device).synchronize()


def _native_decode(inputs: list[torch.Tensor], device) -> list[torch.Tensor | None]:
    """``decode_jpeg`` on the whole batch; when one bad image fails the batch, one by one (None where it fails)."""
    io = import_torchvision().io
    _wait_for_current_stream(device)
    try:
        return io.decode_jpeg(inputs, mode=io.ImageReadMode.RGB, device=device)
    except RuntimeError:
        decoded: list[torch.Tensor | None] = []
        for data in inputs:
            try:
                decoded.append(io.decode_jpeg(data, mode=io.ImageReadMode.RGB, device=device))
            except RuntimeError:
                decoded.append(None)
        return decoded


def _fallback_decode(data: torch.Tensor, device) -> tuple[torch.Tensor | None, str]:
    """The Pillow path's decode of one image moved to ``device``, or None and the reason it fails."""
    if not data.numel():
        return None, "empty file (0 bytes)"
    try:
        return _pillow_decode(data).to(device), ""
    except ImageDecodeError as err:
        return None, err.reason


def decode_batch(datas: list[torch.Tensor], device) -> tuple[list[torch.Tensor | None], list[str]]:
    """Decode each image to a [3, H, W] uint8 tensor on ``device`` (None + reason where it fails)."""
    images: list[torch.Tensor | None] = [None] * len(datas)
    errors = [""] * len(datas)
    native = []
    if _native_available():
        native = [i for i, d in enumerate(datas) if d.numel() and _plain_jpeg(d.cpu().numpy())]
    if native:
        for i, image in zip(native, _native_decode([datas[i].cpu() for i in native], device), strict=True):
            images[i] = image
    for i, data in enumerate(datas):
        if images[i] is None:
            images[i], errors[i] = _fallback_decode(data, device)
    return images, errors


def _geometry(image: torch.Tensor, spec: PreprocessSpec) -> torch.Tensor:
    """Resize and centre crop uint8 [..., 3, H, W] images of one size as ``build_transform`` does (same sizes)."""
    functional = import_v2_functional()
    interpolation = interpolation_mode(spec.interpolation)
    if spec.resize_mode == "none":
        return image
    if spec.resize_mode == "squash":
        return functional.resize(image, [spec.crop, spec.crop], interpolation=interpolation, antialias=spec.antialias)
    image = functional.resize(image, [spec.resize], interpolation=interpolation, antialias=spec.antialias)
    return functional.center_crop(image, [spec.crop, spec.crop])


def geometry_by_size(images: list[torch.Tensor | None], spec: PreprocessSpec, device) -> torch.Tensor:
    """``_geometry`` of every image as one uint8 [B, 3, crop, crop] batch (zeros where ``None``).

    Images of equal size (most ImageNet photos are 500x375 or 375x500) are resized in one batched call, so the
    number of kernel launches grows with the number of distinct sizes, not of images.
    """
    out = torch.zeros(len(images), 3, spec.crop, spec.crop, dtype=torch.uint8, device=device)
    by_size: dict[tuple[int, int], list[int]] = {}
    for i, image in enumerate(images):
        if image is not None:
            by_size.setdefault(tuple(image.shape[-2:]), []).append(i)
    for rows in by_size.values():
        out[rows] = _geometry(torch.stack([images[i] for i in rows]), spec)
    return out


def import_v2_functional():
    """``torchvision.transforms.v2.functional``, with torchvision loaded through ``base.compat.import_torchvision``."""
    import_torchvision()
    from torchvision.transforms.v2 import functional

    return functional


def decode_and_preprocess(
    datas: list[torch.Tensor], specs: dict[str, PreprocessSpec], device
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Decode a batch of encoded images and apply each spec: ``({key: [B, 3, crop, crop] float}, errors)``.

    A failed image has zero tensors under every key and a non-empty reason, as in ``DecodeOnceDataset``.
    """
    check_tensor_specs(specs)
    device = torch.device(device)
    with torch.autocast(device.type, enabled=False):
        images, errors = decode_batch(list(datas), device)
        for i, image in enumerate(images):
            if image is None:
                continue
            size = (int(image.shape[-1]), int(image.shape[-2]))
            for spec in specs.values():
                if spec.resize_mode == "none" and size != (spec.crop, spec.crop):
                    errors[i] = (
                        f"image is {size[0]}x{size[1]}, but geometry 'none' feeds it unresized to a "
                        f"{spec.crop}x{spec.crop} model; set geometry: model for this dataset"
                    )
                    images[i] = None
                    break
        inputs = {}
        for key, spec in specs.items():
            batch = geometry_by_size(images, spec, device)
            mean = torch.tensor(spec.mean, dtype=torch.float32, device=device).view(1, 3, 1, 1)
            std = torch.tensor(spec.std, dtype=torch.float32, device=device).view(1, 3, 1, 1)
            normalised = (batch.float() / 255.0 - mean) / std
            failed = torch.tensor([image is None for image in images], device=device)
            inputs[key] = torch.where(failed.view(-1, 1, 1, 1), torch.zeros_like(normalised), normalised)
    return inputs, errors
