"""Trained world models through the unchanged pipeline: infer + analyze on a world test set written as class folders.

The accuracy record of each model equals the training module's own classification of the same images (PNG is
lossless, geometry ``none``): the CE model by its 8-class head matched to the folders by class name
(``classes=``), the CLIP-style model by its zero-shot head over the folder names.
"""

from __future__ import annotations

import numpy as np
import pytest

from beyond_imagenet.base.config import parse_params
from beyond_imagenet.base.errors import UserError
from beyond_imagenet.data.world import SHAPES, WorldConfig, generate
from beyond_imagenet.data.world.folders import FACTORS_FILE, read_factors, write_image_folder
from beyond_imagenet.stages.train_world import train_world

WORLD = {"textures": ["solid"], "max_occluders": 0, "rotation": [0, 0]}
MODELS = {
    "ce": {"architecture": "world_convnext", "objective": "cross_entropy"},
    "clip": {"architecture": "world_vit", "objective": "clip"},
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("world")
    section = {"n_train": 256, "epochs": 2, "batch_size": 64, "train": WORLD, "models": MODELS}
    params = parse_params(
        {"models": ["demo_random_convnext"], "datasets": {}, "world": {**section, "models_dir": str(root / "models")}}
    )
    return train_world(params, accelerator="cpu")


def test_a_written_folder_keeps_pixels_and_factors(tmp_path):
    images, factors = generate(WorldConfig(), 16, seed=1)
    names = write_image_folder(tmp_path, images, [f.label for f in factors], factors)
    from PIL import Image

    assert names[3] == f"{SHAPES[3]}/00003.png"
    assert np.array_equal(np.asarray(Image.open(tmp_path / names[3])), images[3])
    assert read_factors(tmp_path)[names[5]] == factors[5]
    stamp = (tmp_path / FACTORS_FILE).stat().st_mtime_ns
    write_image_folder(tmp_path, images, [f.label for f in factors], factors)
    assert (tmp_path / FACTORS_FILE).stat().st_mtime_ns == stamp  # unchanged bytes are not rewritten
    relabelled = write_image_folder(tmp_path, images[:4], [7, 7, 7, 7])
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.png")) == sorted(relabelled)


def test_accuracy_through_the_pipeline_equals_the_models_own(trained, tmp_path):
    from beyond_imagenet.stages.analyze import analyze
    from beyond_imagenet.stages.infer import infer
    from beyond_imagenet.training.world import predict

    records = trained
    images, factors = generate(WorldConfig(textures=("solid",), max_occluders=0, rotation=(0.0, 0.0)), 64, seed=2)
    labels = np.array([f.label for f in factors])
    write_image_folder(tmp_path / "val", images, labels, factors)
    ids = [records["ce"]["model_id"], records["clip"]["model_id"]]
    params = parse_params(
        {
            "models": ids,
            "datasets": {
                "world_val": {
                    "path": str(tmp_path / "val"),
                    "kind": "image_folder",
                    "label_space": "custom",
                    "class_folders": "any",
                    "geometry": "none",
                }
            },
            "inference": {"batch_size": 32, "num_workers": 0, "cache_dir": str(tmp_path / "cache")},
            "analyses": {"accuracy": {"datasets": ["world_val"]}},
            "statistics": {"resamples": 100},
            "tracking": {"enabled": False},
            "results_dir": str(tmp_path / "results"),
        }
    )
    infer(params)
    results = {r.model_id: r for r in analyze(params, ["accuracy"])}
    from beyond_imagenet.models.build import build_backbone
    from beyond_imagenet.models.catalogue import resolve_model

    for name, objective in (("ce", "cross_entropy"), ("clip", "clip")):
        spec = resolve_model(records[name]["model_id"])
        model = build_backbone(spec)[0 if objective == "cross_entropy" else 1]
        model = model.image_model if objective == "cross_entropy" else model
        expected = 100 * float((predict(model, objective, images).argmax(1) == labels).mean())
        metrics = results[records[name]["model_id"]].metrics
        top1 = next(v for k, v in metrics.items() if k.endswith("top1"))
        assert top1 == pytest.approx(expected, abs=1e-9), (name, metrics)


def test_a_dataset_with_a_class_the_model_lacks_is_refused(trained, tmp_path):
    from beyond_imagenet.stages.infer import infer

    records = trained
    (tmp_path / "val" / "pentagon").mkdir(parents=True)
    images, _ = generate(WorldConfig(), 2, seed=3)
    write_image_folder(tmp_path / "val", images, [0, 1])
    from PIL import Image

    Image.fromarray(images[0]).save(tmp_path / "val" / "pentagon" / "a.png")
    params = parse_params(
        {
            "models": [records["ce"]["model_id"]],
            "datasets": {
                "v": {
                    "path": str(tmp_path / "val"),
                    "kind": "image_folder",
                    "label_space": "custom",
                    "class_folders": "any",
                }
            },
            "inference": {"num_workers": 0, "cache_dir": str(tmp_path / "cache")},
        }
    )
    with pytest.raises(UserError, match=r"\['pentagon'\] are not among them"):
        infer(params)
