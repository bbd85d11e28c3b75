"""Stage train-world: checkpoints and records per model, skips what is up to date, refuses bad params before training.

The CLIP-style checkpoint loads through ``open_clip-file:`` and classifies with the pipeline's own zero-shot head
exactly as the training module's ``predict`` does (same 80 templates, same tokenizer context).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from beyond_imagenet.base.config import parse_params
from beyond_imagenet.base.errors import ParamsError
from beyond_imagenet.data.world import WorldConfig, generate
from beyond_imagenet.stages.train_world import train_world

TINY = {"n_train": 128, "epochs": 1, "batch_size": 64, "train": {"textures": ["solid"], "max_occluders": 0}}
MODELS = {
    "convnext_ce": {"architecture": "world_convnext", "objective": "cross_entropy"},
    "vit_clip": {"architecture": "world_vit", "objective": "clip", "train": {"rotation": [0, 0]}},
}


def _params(tmp_path, **world):
    section = {**TINY, "models_dir": str(tmp_path / "world"), "models": MODELS, **world}
    return parse_params({"models": ["demo_random_convnext"], "datasets": {}, "world": section})


def test_trains_each_model_once_and_records_how(tmp_path):
    params = _params(tmp_path)
    records = train_world(params, accelerator="cpu")
    folder = tmp_path / "world"
    assert sorted(p.name for p in folder.iterdir()) == [
        "classes.txt", "convnext_ce.pth", "convnext_ce.train.json", "vit_clip.json", "vit_clip.pth",
        "vit_clip.train.json",
    ]  # fmt: skip
    record = json.loads((folder / "vit_clip.train.json").read_text())
    assert record["model_id"] == f"open_clip-file:{folder}/vit_clip.json@{folder}/vit_clip.pth"
    assert record["config"]["world"]["rotation"] == [0.0, 0.0] and record["config"]["world"]["textures"] == ["solid"]
    ce_id = f"timm-file:world_convnext@{folder}/convnext_ce.pth?classes={folder}/classes.txt"
    assert records["convnext_ce"]["model_id"] == ce_id
    assert 0 <= record["held_out_top1"] <= 100 and "versions" in record["provenance"]
    stamps = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    train_world(params, accelerator="cpu")  # up to date: nothing rewritten
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == stamps
    upright_removed = {**MODELS, "vit_clip": {**MODELS["vit_clip"], "train": {}}}
    train_world(_params(tmp_path, models=upright_removed), accelerator="cpu")
    changed = {p.name for p in folder.iterdir() if p.stat().st_mtime_ns != stamps[p.name]}
    assert changed == {"vit_clip.json", "vit_clip.pth", "vit_clip.train.json"}  # only the model whose world changed


@pytest.mark.parametrize(
    ("models", "message"),
    [
        ({"m": {**MODELS["vit_clip"], "train": {"rotaton": [0, 1]}}}, "Did you mean 'rotation'"),
        ({"m": {**MODELS["vit_clip"], "train": {"size": [0.9, 0.2]}}}, "size"),
    ],
)
def test_a_bad_world_is_refused_before_any_training(tmp_path, models, message):
    params = _params(tmp_path, models={"ok": MODELS["convnext_ce"], **models})
    with pytest.raises(ParamsError, match=message):
        train_world(params, accelerator="cpu")
    assert not (tmp_path / "world").exists()  # the valid model was not trained either


def test_budget_values_are_checked_with_the_params():
    with pytest.raises(ParamsError, match="caption_detail must be in"):
        parse_params({"models": ["demo_random_convnext"], "datasets": {}, "world": {"caption_detail": 1.5}})


def test_clip_checkpoint_classifies_through_the_pipeline_as_in_training(tmp_path):
    from beyond_imagenet.data.world import SHAPES
    from beyond_imagenet.models.build import build_backbone
    from beyond_imagenet.models.catalogue import resolve_model
    from beyond_imagenet.models.zeroshot import load_or_build_zeroshot_weights
    from beyond_imagenet.training.world import TrainConfig, build_model, normalise, predict

    records = train_world(_params(tmp_path, models={"vit_clip": MODELS["vit_clip"]}), accelerator="cpu")
    spec = resolve_model(records["vit_clip"]["model_id"])
    assert spec.paradigm == "clip" and spec.family == "vit" and spec.input_size == 32 and spec.mean == (0.5, 0.5, 0.5)
    assert spec.weights_id.startswith("sha256:") and spec.weights_id.endswith("(vit_clip.pth)")
    backbone, clip_model = build_backbone(spec)
    head, info = load_or_build_zeroshot_weights(spec, clip_model, list(SHAPES), tmp_path / "cache", torch.device("cpu"))
    images, _ = generate(WorldConfig(), 16, seed=3)
    with torch.no_grad():
        features = torch.nn.functional.normalize(backbone.features(normalise(images)), dim=-1)
    trained = torch.load(tmp_path / "world" / "vit_clip.pth", weights_only=True)
    model = build_model(TrainConfig("world_vit", "clip"))
    model.load_state_dict(trained)
    np.testing.assert_allclose((100 * features @ head).numpy(), predict(model.eval(), "clip", images), atol=1e-4)
    assert info["n_templates"] == 80


def test_a_typo_in_a_model_name_is_refused_with_the_close_match(tmp_path):
    from beyond_imagenet.base.errors import UnknownNameError

    with pytest.raises(UnknownNameError, match="Did you mean 'convnext_ce'"):
        train_world(_params(tmp_path), ["convnext_cee"], accelerator="cpu")
    assert not (tmp_path / "world").exists()
