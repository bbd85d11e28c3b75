"""``beyond-imagenet verify``: check a dataset before a run (docs/protocol.md §2, §14).

It checks layout, counts, side files, and that every image decodes. Layout, counts and side files are checked by the
registry while scanning; this module adds the decode pass, spread over worker processes.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

from beyond_imagenet.base.errors import ImageDecodeError
from beyond_imagenet.data.decode import check_decodable
from beyond_imagenet.data.registry import ImageDataset
from beyond_imagenet.data.samples import Sample

DECODE_CHUNK = 256


@dataclass
class VerifyReport:
    """What ``verify_datasets`` found: how many images it checked and which failed to decode."""

    n_images: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)

    @property
    def ok(self) -> bool:
        """Whether every checked image decoded."""
        return not self.failures


def _decode_error(sample: Sample) -> str | None:
    try:
        sample.decode()
    except ImageDecodeError as err:
        return err.reason
    return None


def _quick_decode_error(sample: Sample) -> str | None:
    """Why ``sample`` will not decode, by the cheap check (:func:`check_decodable`) for plain files."""
    try:
        if sample.plain_file is not None:
            check_decodable(sample.plain_file)
        else:
            sample.decode()
    except ImageDecodeError as err:
        return err.reason
    return None


def find_undecodable(samples: Sequence[Sample], workers: int) -> list[tuple[int, str]]:
    """(index, reason) of every sample that does not decode, by the cheap check, on ``workers`` processes."""
    if workers <= 1:
        reasons = list(map(_quick_decode_error, samples))
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            reasons = list(pool.map(_quick_decode_error, samples, chunksize=DECODE_CHUNK))
    return [(i, reason) for i, reason in enumerate(reasons) if reason is not None]


def decode_all(samples: list[Sample], workers: int) -> list[tuple[str, str]]:
    """(sample, reason) for every image that does not decode."""
    if workers <= 1:
        reasons = map(_decode_error, samples)
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            reasons = list(pool.map(_decode_error, samples, chunksize=DECODE_CHUNK))
    return [(s.name, reason) for s, reason in zip(samples, reasons, strict=True) if reason is not None]


def verify_datasets(datasets: list[ImageDataset], workers: int, decode: bool = True) -> VerifyReport:
    """Count the images of the scanned ``datasets`` and, unless ``decode`` is False, decode each one on ``workers``."""
    report = VerifyReport()
    for dataset in datasets:
        report.n_images += len(dataset)
        if decode:
            report.failures.extend(decode_all(list(dataset.samples), workers))
    return report
