"""The registry of VTAB on-disk layouts (docs/transfer.md §3.5; docs/vtab.md).

Every module of this package that defines ``LAYOUT`` (a ``base.VtabLayout``) is registered under ``LAYOUT.name``, so
a new layout is one new file: ``tfds_parquet`` (default: exact VTAB splits), ``wds`` (CLIP_benchmark's WebDataset
mirrors) and ``torchvision`` (torchvision's own files) today. ``get_layout`` resolves ``transfer.layout``;
``expected_layout`` and ``check_task_on_disk`` say what a task needs on disk and whether it is there.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

from beyond_imagenet.base.errors import DatasetLayoutError, UnknownNameError, UserError
from beyond_imagenet.data.vtab.layouts.base import VtabLayout
from beyond_imagenet.data.vtab.tasks import TaskSpec, get_task

__all__ = ["DEFAULT_LAYOUT", "LAYOUTS", "VtabLayout", "check_task_on_disk", "expected_layout", "get_layout"]

DEFAULT_LAYOUT = "tfds_parquet"


def _discover() -> dict[str, VtabLayout]:
    """Import every module of this package and collect the ``LAYOUT`` each defines, by name (module name order)."""
    found: dict[str, VtabLayout] = {}
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        layout = getattr(module, "LAYOUT", None)
        if layout is None:
            continue
        if layout.name in found:
            raise RuntimeError(f"VTAB layout {layout.name!r} is defined twice (second time in {module.__name__})")
        found[layout.name] = layout
    return found


LAYOUTS: dict[str, VtabLayout] = _discover()


def get_layout(name: str) -> VtabLayout:
    """The registered layout ``name``; ``UnknownNameError`` with close matches otherwise."""
    if name not in LAYOUTS:
        raise UnknownNameError("VTAB layout", name, LAYOUTS)
    return LAYOUTS[name]


def _layout_named(name: str) -> VtabLayout:
    """``get_layout``, with the on-disk check's own message for an unknown name."""
    try:
        return get_layout(name)
    except UnknownNameError as exc:
        raise UserError(f"unknown dataset layout {name!r}; use one of {', '.join(LAYOUTS)}") from exc


def expected_layout(task: TaskSpec, root: str | Path, layout: str = DEFAULT_LAYOUT) -> list[str]:
    """Human-readable list of what ``check_task_on_disk`` looks for, one entry per required item."""
    return _layout_named(layout).expected(task, Path(root))


def check_task_on_disk(task: TaskSpec | str, root: str | Path, layout: str = DEFAULT_LAYOUT) -> Path:
    """Check that ``task``'s files are under ``root`` in ``layout``; return the directory to read.

    That is ``root`` itself for ``torchvision``, whose files sit in torchvision's own folders under it. Raises
    ``DatasetLayoutError`` (a ``UserError``) naming the task, its image source, the expected layout, what is missing
    and how to download it. Only presence is checked; counts are checked by the loader.
    """
    if isinstance(task, str):
        task = get_task(task)
    root = Path(root)
    chosen = _layout_named(layout)
    reason = chosen.unsupported(task)
    if reason:
        raise DatasetLayoutError(f"{reason}.")
    missing = chosen.missing(task, root)
    if not missing:
        return chosen.base_dir(task, root)
    manual = " This dataset needs a MANUAL download." if task.manual_download else ""
    raise DatasetLayoutError(
        f"VTAB task {task.name!r} (image source {task.source.name!r}, tfds {task.source.tfds_builder}) is not on "
        f"disk under {root} in layout {chosen.name!r}. Expected: {'; '.join(chosen.expected(task, root))}. "
        f"Missing: {'; '.join(missing)}.{manual} How to get it: {chosen.download_hint(task)}"
    )
