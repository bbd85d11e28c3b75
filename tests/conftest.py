"""Shared test setup: the torchvision import shim, offline hub, and small generated datasets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import beyond_imagenet.base.compat  # noqa: F401  (must run before timm / open_clip / torchmetrics import torchvision)

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never download; missing weights must fail fast
os.environ.setdefault("DVC_NO_ANALYTICS", "1")


@pytest.fixture(scope="session")
def small_demo_root(tmp_path_factory) -> Path:
    """A 4-class x 6-image dataset in the ImageNet-val layout (seeded, same generator as the demo)."""
    from beyond_imagenet.data.demo.imagenet_val import generate_demo_split
    from beyond_imagenet.data.label_space import imagenet_wnids

    root = tmp_path_factory.mktemp("small_demo") / "val"
    wnids = [imagenet_wnids()[i] for i in (1, 250, 500, 999)]
    generate_demo_split(root, wnids, images_per_class=6, seed=7)
    return root
