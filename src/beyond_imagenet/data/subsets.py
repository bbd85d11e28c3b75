"""Deterministic class-stratified subsets of a scanned dataset (docs/protocol.md §10: CKA on 10% of ImageNet val).

The subset is the first images of each class in sample-id order, so every model, layer and rerun sees the same
images in the same order. It is itself an :class:`ImageDataset` (``complete: false``), so its manifest hash,
and with it every cache or result keyed on the manifest, covers exactly the images used.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict

import numpy as np

from beyond_imagenet.base.errors import UserError
from beyond_imagenet.data.registry import ImageDataset


def indices_by_class(dataset: ImageDataset) -> dict[int, list[int]]:
    """Sample indices of each class, each list in sample-id order."""
    by_class: dict[int, list[int]] = defaultdict(list)
    for index, target in enumerate(dataset.targets.tolist()):
        by_class[int(target)].append(index)
    return {c: sorted(members, key=lambda i: dataset.samples[i].sample_id) for c, members in sorted(by_class.items())}


def stratified_indices(
    dataset: ImageDataset, *, fraction: float | None = None, per_class: int | None = None
) -> np.ndarray:
    """Indices (ascending) of the first ``round(fraction·n_c)`` (at least 1) or ``per_class`` images of each class.

    Exactly one of ``fraction`` and ``per_class`` is given. ImageNet val at ``fraction=0.1``: 5 of the 50 images of
    each of the 1000 classes, 5,000 images.
    """
    if (fraction is None) == (per_class is None):
        raise ValueError("give exactly one of fraction and per_class")
    if fraction is not None and not 0 < fraction <= 1:
        raise UserError(f"subset fraction must be in (0, 1], got {fraction}")
    if per_class is not None and per_class < 1:
        raise UserError(f"images per class must be >= 1, got {per_class}")
    chosen: list[int] = []
    for members in indices_by_class(dataset).values():
        take = per_class if per_class is not None else max(1, round(fraction * len(members)))
        chosen += members[:take]
    return np.array(sorted(chosen), dtype=np.int64)


def subset_dataset(dataset: ImageDataset, indices: np.ndarray, label: str) -> ImageDataset:
    """``dataset`` restricted to ``indices`` (kept in dataset order); ``label`` names the subset in the variant."""
    indices = np.asarray(indices, dtype=np.int64)
    if len(indices) == 0:
        raise UserError(f"the {label} subset of {dataset.key} is empty")
    variant = f"{dataset.variant}/{label}" if dataset.variant else label
    return dataclasses.replace(
        dataset,
        samples=tuple(dataset.samples[i] for i in indices),
        targets=dataset.targets[indices],
        label_lists=tuple(dataset.label_lists[i] for i in indices) if dataset.label_lists else None,
        variant=variant,
        complete=False,
    )


def stratified_subset(
    dataset: ImageDataset, *, fraction: float | None = None, per_class: int | None = None
) -> ImageDataset:
    """The class-stratified subset as a dataset, its variant naming the rule (``frac0.1`` or ``per_class5``)."""
    indices = stratified_indices(dataset, fraction=fraction, per_class=per_class)
    label = f"frac{fraction:g}" if fraction is not None else f"per_class{per_class}"
    return subset_dataset(dataset, indices, label)
