"""Plan the VTAB probes (paper §6, docs/transfer.md §3-§4): which tasks run, their labels and their split rows.

For each task of the preset (or of ``transfer.tasks``) the layout (``data.vtab.layouts``) checks the files are on
disk, reads the source splits (annotations only, no pixels), checks their sizes, derives the task's labels and
its train / val / test rows. A task whose files are missing or unreadable is *not run*: its message (expected
layout, download instructions) is recorded, the other tasks go on, and Table 3 names it as missing instead of
averaging over fewer tasks. No model is touched here.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from beyond_imagenet.base.config import TransferConfig
from beyond_imagenet.base.errors import UserError
from beyond_imagenet.data.vtab.layouts import check_task_on_disk, get_layout
from beyond_imagenet.data.vtab.layouts.base import VtabLayout
from beyond_imagenet.data.vtab.samples import SourceSplit, check_split_count
from beyond_imagenet.data.vtab.tasks import Preset, TaskSpec, get_preset

log = logging.getLogger(__name__)

PROBE_SPLITS = {"full": ("train", "val", "test"), "1k": ("train800", "val200", "test")}


@dataclass
class TaskPlan:
    """One task ready to probe: its source splits, labels and split rows (no features yet)."""

    task: TaskSpec
    source: str  # feature-cache source name (tfds source or wds mirror)
    splits: dict[str, SourceSplit]  # source split name -> rows on disk
    labels: dict[str, np.ndarray]  # source split name -> this task's labels
    rows: dict[str, dict[str, np.ndarray]]  # probe split -> {source split: row indices}

    def rows_digest(self) -> str:
        """Hash of every split's rows: the split definition a result was computed on."""
        digest = hashlib.sha256()
        for split in sorted(self.rows):
            for source_split in sorted(self.rows[split]):
                digest.update(f"{split}/{source_split}".encode())
                digest.update(np.ascontiguousarray(self.rows[split][source_split], dtype=np.int64).tobytes())
        return digest.hexdigest()


@dataclass
class TransferPlan:
    """The planned tasks of a preset, and the tasks that will not run (with why) or were left out by params."""

    preset: Preset
    config: TransferConfig
    root: Path
    tasks: list[TaskPlan]
    not_run: dict[str, str] = field(default_factory=dict)  # task -> why (missing files, bad layout, bad labels)
    excluded: list[str] = field(default_factory=list)  # preset tasks left out by transfer.tasks

    @property
    def layout(self) -> VtabLayout:
        """The on-disk layout of the VTAB copies."""
        return get_layout(self.config.layout)

    @property
    def source_splits(self) -> list[SourceSplit]:
        """Every source split the planned tasks read, each once (shared sources are featurised once)."""
        seen: dict[tuple[str, str], SourceSplit] = {}
        for plan in self.tasks:
            for split in plan.splits.values():
                seen.setdefault((split.name, split.split), split)
        return list(seen.values())


def require_root(config: TransferConfig) -> Path:
    """``transfer.root``, or a UserError saying how to set it."""
    if config.root is None:
        raise UserError(
            "params: transfer.root is not set. Point it at the folder holding the VTAB copies (layout "
            "transfer.layout, see `beyond-imagenet vtab-tasks`), or run `make demo` for the generated stand-ins."
        )
    return Path(config.root)


def _read_source_split(task: TaskSpec, config: TransferConfig, root: Path, split: str) -> SourceSplit:
    layout = get_layout(config.layout)
    found = layout.read_split(task, root, split)
    check_split_count(found, layout.expected_count(task, split), config.check_size)
    return found


def _plan_task(task: TaskSpec, config: TransferConfig, root: Path, cache: dict) -> TaskPlan:
    layout = get_layout(config.layout)
    check_task_on_disk(task, root, config.layout)
    source = layout.source_name(task)
    splits = {}
    for name in layout.split_names(task):
        if (source, name) not in cache:
            cache[(source, name)] = _read_source_split(task, config, root, name)
        splits[name] = cache[(source, name)]
    labels = {name: layout.labels(task, split) for name, split in splits.items()}
    rows = layout.split_rows(task, splits, config.protocol, config.val_seed, labels.get("train"))
    return TaskPlan(task, source, splits, labels, rows)


def plan_transfer(config: TransferConfig) -> TransferPlan:
    """Check and read every selected task; tasks that cannot run are recorded with the reason, never dropped."""
    root = require_root(config)
    preset = get_preset(config.preset)
    wanted = [t.removeprefix("vtab/") for t in config.tasks] if config.tasks else list(preset.names)
    cache: dict = {}
    plans, not_run = [], {}
    for task in preset.tasks:
        if task.name not in wanted:
            continue
        try:
            plans.append(_plan_task(task, config, root, cache))
        except UserError as err:
            not_run[task.name] = str(err)
            log.warning("VTAB task %s will not run: %s", task.name, err)
    excluded = [n for n in preset.names if n not in wanted]
    return TransferPlan(preset, config, root, plans, not_run, excluded)
