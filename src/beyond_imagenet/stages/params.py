"""Load params.yaml for a stage: the schema's checks (``base.config``) plus those that need the data layer's tables.

The VTAB layout must be registered and ``transfer.tasks`` must name tasks of the preset; both fail here, before any
stage starts, as every other params error does (docs/architecture.md, principle 6).
"""

from __future__ import annotations

from pathlib import Path

from beyond_imagenet.base.config import Params, TransferConfig, load_params
from beyond_imagenet.base.errors import ParamsError, UnknownNameError
from beyond_imagenet.data.registry import ImageDataset, resolve_datasets
from beyond_imagenet.data.vtab.layouts import LAYOUTS
from beyond_imagenet.data.vtab.tasks import get_preset


def check_transfer(config: TransferConfig) -> None:
    """A registered layout, and task names of the preset (with or without CLIP_benchmark's ``vtab/`` prefix)."""
    where = "params: transfer"
    if config.layout not in LAYOUTS:
        raise ParamsError(f"{where}.layout must be {' | '.join(repr(n) for n in LAYOUTS)}, got {config.layout!r}")
    if config.tasks is None:
        return
    preset = get_preset(config.preset)
    unknown = [t for t in config.tasks if t.removeprefix("vtab/") not in preset.names]
    if unknown:
        raise ParamsError(
            f"{where}.tasks must name tasks of preset {config.preset!r}; unknown: {unknown}. "
            f"Tasks: {', '.join(preset.names)}"
        )


def load_stage_params(path: str | Path) -> Params:
    """``load_params`` plus the checks against the data layer's tables."""
    params = load_params(path)
    check_transfer(params.transfer)
    return params


def dataset_variants(params: Params, name: str) -> list[ImageDataset]:
    """The scanned variants of the dataset ``name`` of params.yaml (an unknown name raises with close matches)."""
    if name not in params.datasets:
        raise UnknownNameError("dataset", name, params.datasets)
    return resolve_datasets(name, params.datasets[name])
