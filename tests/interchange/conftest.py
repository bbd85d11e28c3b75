"""Fixtures of the interchange tests: caches written with the project's own writer, generated, seeded."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from beyond_imagenet.data.cue_conflict import CATEGORIES
from beyond_imagenet.inference.cache import write_cache

IMAGENET1K = {"kind": "imagenet1k", "n_classes": 1000}


@pytest.fixture
def make_cache(tmp_path) -> Callable[..., Path]:
    """``make_cache(name, logits, targets, ids, dataset, label_space=IMAGENET1K, model_id="m")``: a cache folder."""

    def make(name, logits, targets, ids, dataset, label_space=IMAGENET1K, model_id="my_model", output=IMAGENET1K):
        meta = {
            "model": {"model_id": model_id, "family": "vit", "paradigm": "clip"},
            "dataset": dataset,
            "output_space": output,
            "label_space": label_space,
        }
        features = np.ones((len(ids), 3), dtype=np.float32)
        return write_cache(tmp_path / name, np.asarray(logits, np.float32), features, np.asarray(targets), ids, meta)

    return make


def cue_conflict_stimuli() -> list[str]:
    """48 stimulus names in sorted order, 3 per shape class: textures of the next classes, one shape == texture."""
    names = []
    for i, shape in enumerate(CATEGORIES):
        textures = [CATEGORIES[(i + 1) % 16], CATEGORIES[(i + 5) % 16], shape]
        names += [f"{shape}{j + 1}-{texture}{j + 2}.png" for j, texture in enumerate(textures)]
    return sorted(names, key=lambda n: (n.split("-")[0].rstrip("0123456789"), n))


@pytest.fixture
def stimuli() -> list[str]:
    return cue_conflict_stimuli()
