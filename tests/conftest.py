"""Shared test setup: the torchvision import shim, offline hub, and small generated datasets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import beyond_imagenet._compat  # noqa: F401  (must run before timm / open_clip / torchmetrics import torchvision)

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never download; missing weights must fail fast
os.environ.setdefault("DVC_NO_ANALYTICS", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def small_demo_root(tmp_path_factory) -> Path:
    """A 4-class x 6-image dataset in the ImageNet-val layout (seeded, same generator as the demo)."""
    from beyond_imagenet.data.demo import generate_demo_split
    from beyond_imagenet.data.label_space import imagenet_wnids

    root = tmp_path_factory.mktemp("small_demo") / "val"
    wnids = [imagenet_wnids()[i] for i in (1, 250, 500, 999)]
    generate_demo_split(root, wnids, images_per_class=6, seed=7)
    return root


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
