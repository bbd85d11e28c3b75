"""Helpers shared by tests in every folder (import as ``from helpers import ...``); fixtures live in conftest.py."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@contextmanager
def loaded_script(path: Path, name: str) -> Iterator[ModuleType]:
    """A script outside the package (``benchmarks/*.py``) imported as module ``name``, unregistered afterwards."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(name, None)


def sample_ids(n: int, prefix: str = "img") -> list[str]:
    """``n`` distinct, ordered sample ids (``img000000``, ...)."""
    return [f"{prefix}{i:06d}" for i in range(n)]


def small_pass_params(root: Path, cache_dir: Path, models: list[str], **inference) -> dict:
    """Params (a plain dict, as in params.yaml) for one inference pass over ``root`` as dataset ``small``: the
    small demo set read as ImageNet-val with its own subset label space, batch 8, no loader workers."""
    return {
        "models": list(models),
        "datasets": {
            "small": {"path": str(root), "kind": "imagenet_val", "label_space": "imagenet_subset", "check_size": False}
        },
        "inference": {"batch_size": 8, "num_workers": 0, "cache_dir": str(cache_dir), **inference},
    }
