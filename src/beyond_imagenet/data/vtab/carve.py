"""A VTAB val carved from train, for the layouts that lack VTAB's own val (docs/transfer.md §3.4, §4, §8.12).

The ``wds`` mirrors hold VTAB train without val, and torchvision's CIFAR, SVHN and Pets files have the official
train only. ``carve_val`` holds out a deterministic stratified val at VTAB's val fraction (``val_fraction``);
``carved_split_rows`` turns it into the task split rows of the full protocol or VTAB-1k. Save the rows it returns:
the seed alone does not pin them across library versions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from fractions import Fraction

import numpy as np

from beyond_imagenet.base.errors import UserError
from beyond_imagenet.data.vtab.samples import SourceSplit
from beyond_imagenet.data.vtab.tasks import VTAB1K_TRAIN, VTAB1K_VAL, Protocol, TaskSpec

__all__ = ["SplitRows", "carve_val", "carved_split_rows", "first_rows", "seeded_order", "val_fraction"]

SplitRows = dict[str, dict[str, np.ndarray]]  # {task split: {source split: rows into that SourceSplit}}
LabelFn = Callable[[TaskSpec, SourceSplit], np.ndarray]


def val_fraction(task: TaskSpec) -> Fraction:
    """VTAB's val share of trainval, val / (train + val) (docs/transfer.md §4): CIFAR 1/10, Pets 1/5, dSprites 1/9."""
    sizes = task.expected_sizes
    return Fraction(sizes["val"], sizes["train"] + sizes["val"])


def carve_val(labels: np.ndarray, fraction: Fraction, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic stratified hold-out (docs/transfer.md §4, §8.12): sorted ``(train_idx, val_idx)``.

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


def first_rows(rows: np.ndarray, k: int, task: TaskSpec, split: str) -> np.ndarray:
    """The first ``k`` of ``rows``; ``UserError`` when VTAB-1k needs more than there are."""
    if len(rows) < k:
        raise UserError(
            f"task {task.name!r}: split {split!r} has {len(rows)} examples, fewer than the {k} VTAB-1k needs"
        )
    return rows[:k]


def seeded_order(rows: np.ndarray, seed: int, stream: int) -> np.ndarray:
    """``rows`` in a seeded random order.

    VTAB-1k's "first 800" of tfds's shuffled record order, for files whose own order is not shuffled
    (torchvision's DTD / Pets lists are sorted by class).
    """
    return rows[np.random.default_rng([seed, stream]).permutation(len(rows))]


def _vtab1k_rows(task: TaskSpec, train: np.ndarray, val: np.ndarray, test: dict[str, np.ndarray]) -> SplitRows:
    """VTAB-1k's splits from carved train / val rows (both of source split "train")."""
    train800 = np.sort(first_rows(train, VTAB1K_TRAIN, task, "train"))
    val200 = np.sort(first_rows(val, VTAB1K_VAL, task, "val"))
    both = np.sort(np.concatenate([train800, val200]))
    return {
        "train800": {"train": train800},
        "val200": {"train": val200},
        "train800val200": {"train": both},
        "test": test,
    }


def carved_split_rows(
    task: TaskSpec,
    layout: str,
    splits: Mapping[str, SourceSplit],
    protocol: Protocol,
    seed: int,
    labels: np.ndarray | None,
    label_fn: LabelFn,
    reshuffle: bool = False,
) -> SplitRows:
    """Train / val carved from ``splits["train"]`` (``carve_val``), test = all of ``splits["test"]``.

    ``labels`` are the train rows' labels (default ``label_fn(task, splits["train"])``); trainval = train ∪ val.
    VTAB-1k takes the first 800 of train and the first 200 of val, after a seeded shuffle when ``reshuffle`` (files
    whose order is not tfds's shuffled order). ``layout`` names the layout in errors.
    """
    missing = [s for s in ("train", "test") if s not in splits]
    if missing:
        raise UserError(f"task {task.name!r} ({layout}) needs the splits train and test; missing {missing}")
    if labels is None:
        labels = label_fn(task, splits["train"])
    if len(labels) != len(splits["train"]):
        raise UserError(f"task {task.name!r}: {len(labels)} labels for {len(splits['train'])} {layout} train rows")
    train, val = carve_val(labels, val_fraction(task), seed)
    test = {"test": np.arange(len(splits["test"]), dtype=np.int64)}
    if protocol == "full":
        trainval = np.arange(len(labels), dtype=np.int64)
        return {"train": {"train": train}, "val": {"train": val}, "test": test, "trainval": {"train": trainval}}
    if reshuffle:
        train, val = seeded_order(train, seed, 0), seeded_order(val, seed, 1)
    return _vtab1k_rows(task, train, val, test)
