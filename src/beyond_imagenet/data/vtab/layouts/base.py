"""The interface of a VTAB on-disk layout (docs/transfer.md §3.5, §4; docs/vtab.md).

A layout says where a task's files are under ``transfer.root``, how to get them, how to read a split of them into a
``SourceSplit``, how to label its rows and how its rows form the task splits. Every module of this package that
defines ``LAYOUT`` (an object with the members below) is a registered layout (``layouts.LAYOUTS``); the code above
never asks which layout it holds.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from beyond_imagenet.data.vtab.samples import SourceSplit
from beyond_imagenet.data.vtab.tasks import Protocol as SplitProtocol
from beyond_imagenet.data.vtab.tasks import TaskSpec

__all__ = ["TfdsSourceSplits", "VtabLayout", "with_source_notes"]


@runtime_checkable
class VtabLayout(Protocol):
    """One VTAB on-disk layout: ``tfds_parquet``, ``wds``, ``torchvision``, or any module defining ``LAYOUT``."""

    name: str  # the value of ``transfer.layout`` that selects it
    uses_val_seed: bool  # True when ``transfer.val_seed`` changes the split rows (a carved val)

    def unsupported(self, task: TaskSpec) -> str | None:
        """Why this layout cannot hold ``task`` (e.g. torchvision has no PCAM), or None when it can."""

    def expected(self, task: TaskSpec, root: Path) -> list[str]:
        """Human-readable list of what ``check_task_on_disk`` looks for, one entry per required item."""

    def missing(self, task: TaskSpec, root: Path) -> list[str]:
        """The entries of ``expected`` that are not on disk (presence only; counts are checked on reading)."""

    def base_dir(self, task: TaskSpec, root: Path) -> Path:
        """The directory that holds the task's files (what ``check_task_on_disk`` returns)."""

    def source_name(self, task: TaskSpec) -> str:
        """The name of the image set the task reads: the tfds source, or the wds mirror."""

    def split_names(self, task: TaskSpec) -> tuple[str, ...]:
        """The splits of that image set the task reads, as ``read_split`` names them."""

    def read_split(self, task: TaskSpec, root: Path, split: str) -> SourceSplit:
        """Every row of ``split`` of the task's image set under ``root``, in record order."""

    def expected_count(self, task: TaskSpec, split: str) -> int:
        """The number of rows ``split`` holds in this layout (checked against what ``read_split`` found)."""

    def labels(self, task: TaskSpec, split: SourceSplit) -> np.ndarray:
        """The task's class index of every row of ``split`` (int64)."""

    def split_rows(
        self,
        task: TaskSpec,
        splits: Mapping[str, SourceSplit],
        protocol: SplitProtocol = "full",
        seed: int = 0,
        labels: np.ndarray | None = None,
    ) -> dict[str, dict[str, np.ndarray]]:
        """Row indices of every task split: ``{task split: {source split: rows into that SourceSplit}}``.

        ``splits`` are keyed as ``split_names`` names them; ``seed`` draws a carved val (when ``uses_val_seed``);
        ``labels`` are the train rows' labels when already computed.
        """

    def download_hint(self, task: TaskSpec) -> str:
        """How to get the task's files in this layout, ending with the source's own notes."""


def with_source_notes(where: str, task: TaskSpec) -> str:
    """A layout's download hint ``where`` followed by the image source's own notes (the same for every layout)."""
    return f"{where} Source notes: {task.source.download}"


class TfdsSourceSplits:
    """Layouts holding a task's tfds image source under its own name, split by split (tfds_parquet, torchvision)."""

    def source_name(self, task: TaskSpec) -> str:
        """The tfds image source (shared by the tasks that read the same images)."""
        return task.source.name

    def split_names(self, task: TaskSpec) -> tuple[str, ...]:
        """The tfds splits the task reads."""
        return task.source_splits()
