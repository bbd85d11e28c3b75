"""Decode each image once and apply every selected model's own preprocessing to it (docs/architecture.md, data flow).

Models that share a preprocessing spec (e.g. the two supervised paper models) share one tensor per image.
An image that cannot be decoded yields zero tensors and its error text; the writer records it by path and
never counts it as a prediction.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from beyond_imagenet.base.errors import ImageDecodeError
from beyond_imagenet.data.samples import Sample
from beyond_imagenet.models.preprocessing import PreprocessSpec, build_transform


class DecodeOnceDataset(Dataset):
    """Items: ``{"index": dataset index, "inputs": {preprocessing key: tensor}, "error": "" or reason}``."""

    def __init__(self, samples: Sequence[Sample], indices: np.ndarray, specs: dict[str, PreprocessSpec]):
        """``samples``: any dataset samples (data/samples.py); ``indices``: the ones to load, in order."""
        self.samples = list(samples)
        self.indices = np.asarray(indices, dtype=np.int64)
        self.specs = dict(specs)
        self._transforms: dict[str, Callable] | None = None  # built lazily inside each worker

    def __len__(self) -> int:
        return len(self.indices)

    def _get_transforms(self) -> dict[str, Callable]:
        if self._transforms is None:
            self._transforms = {key: build_transform(spec) for key, spec in self.specs.items()}
        return self._transforms

    def _check_size(self, size: tuple[int, int], index: int) -> None:
        """Without resize and crop (geometry none), every image must already be the model's input size."""
        for spec in self.specs.values():
            if spec.resize_mode == "none" and size != (spec.crop, spec.crop):
                raise ImageDecodeError(
                    self.samples[index].name,
                    f"image is {size[0]}x{size[1]}, but geometry 'none' feeds it unresized to a "
                    f"{spec.crop}x{spec.crop} model; set geometry: model for this dataset",
                )

    def __getitem__(self, position: int) -> dict:
        index = int(self.indices[position])
        try:
            image = self.samples[index].decode()
            self._check_size(image.size, index)
            inputs = {key: transform(image) for key, transform in self._get_transforms().items()}
            error = ""
        except ImageDecodeError as err:
            inputs = {key: torch.zeros(3, spec.crop, spec.crop) for key, spec in self.specs.items()}
            error = err.reason
        return {"index": index, "inputs": inputs, "error": error}


def auto_num_workers() -> int:
    """Decode workers from the CPU count, leaving one core for the main process."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(0, min(cpus - 1, 32))


def make_loader(
    dataset: Dataset, batch_size: int, num_workers: int, pin_memory: bool, collate_fn: Callable | None = None
) -> DataLoader:
    """The DataLoader of a model pass: dataset order (no shuffle), 4 batches prefetched per worker if there are any."""
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        pin_memory=pin_memory,
        persistent_workers=False,
        prefetch_factor=4 if num_workers > 0 else None,
        collate_fn=collate_fn,
    )
