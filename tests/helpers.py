"""Helpers shared by tests in every folder (import as ``from helpers import ...``); fixtures live in conftest.py."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
# 48 real cue-conflict stimuli (Geirhos et al. 2019, CC BY 4.0), committed with the package for the demo and tests.
CUE_CONFLICT_SAMPLE = REPO_ROOT / "src" / "beyond_imagenet" / "data" / "demo" / "cue_conflict_sample"


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


# Six samples, three classes. Confidences avoid the 15-bin edges (k/15), so each lands in its own bin:
# conf .90 (bin 13, correct), .62 (bin 9, wrong), .70 (bin 10, correct), .82 (bin 12, correct),
# .50 (bin 7, wrong), .34 (bin 5, correct).
# ECE = (1/6) * (|1-.9| + |0-.62| + |1-.7| + |1-.82| + |0-.5| + |1-.34|) = 2.36 / 6.
TOY_PROBS = np.array(
    [
        [0.90, 0.05, 0.05],
        [0.62, 0.28, 0.10],
        [0.20, 0.70, 0.10],
        [0.09, 0.09, 0.82],
        [0.50, 0.25, 0.25],
        [0.34, 0.33, 0.33],
    ]
)
TOY_TARGETS = np.array([0, 1, 1, 2, 2, 0])


def image_folder_params(tmp_path: Path, root: Path, models: list[str], **inference):
    """Parsed params for inference over ``root`` as image-folder dataset ``small`` (batch 4, chunks of 8, no
    workers, no MLflow), caches and results under ``tmp_path``."""
    from beyond_imagenet.base.config import parse_params

    settings = {"batch_size": 4, "chunk_size": 8, "num_workers": 0, "cache_dir": str(tmp_path / "cache")}
    return parse_params(
        {
            "models": models,
            "datasets": {"small": {"path": str(root), "kind": "image_folder"}},
            "inference": {**settings, **inference},
            "tracking": {"enabled": False},
            "results_dir": str(tmp_path / "results"),
        }
    )
