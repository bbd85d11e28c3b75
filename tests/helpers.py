"""Helpers shared by tests in every folder (import as ``from helpers import ...``); fixtures live in conftest.py."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


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
