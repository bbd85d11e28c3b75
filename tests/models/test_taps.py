"""Layer taps for CKA (PROTOCOL §10): the layer sets per family and library, and flattened activations."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from beyond_imagenet.models.build import build_backbone
from beyond_imagenet.models.catalogue import CATALOGUE
from beyond_imagenet.models.taps import LAYER_TYPES, flatten_activation, layer_sets, record_activations


def test_flatten_tokens_maps_tuples_and_sequence_first():
    tokens = torch.arange(2 * 5 * 3, dtype=torch.float32).reshape(2, 5, 3)
    assert torch.equal(flatten_activation(tokens, 2), tokens.reshape(2, 15))
    assert torch.equal(flatten_activation((tokens, None), 2), tokens.reshape(2, 15))  # nn.MultiheadAttention
    assert torch.equal(flatten_activation(tokens.transpose(0, 1), 2), tokens.reshape(2, 15))  # [T, B, D]
    maps = torch.randn(2, 4, 3, 3)
    assert flatten_activation(maps, 2).shape == (2, 36)
    with pytest.raises(ValueError, match="batch axis"):
        flatten_activation(torch.randn(5, 7, 3), 2)


@pytest.mark.parametrize(
    "model_id,counts,first_norm,last_norm",
    [
        ("demo_random_vit_sup", {"attention_or_conv": 6, "linear": 12, "normalisation": 13}, "blocks.0.norm1", "norm"),
        ("demo_random_vit_clip", {"attention_or_conv": 2, "linear": 4, "normalisation": 6}, "ln_pre", "ln_post"),
        ("demo_random_convnext_sup", {"attention_or_conv": 9, "linear": 18, "normalisation": 13}, "stem.1", None),
        (
            "demo_random_convnext_clip",
            {"attention_or_conv": 9, "linear": 18, "normalisation": 13},
            "trunk.stem.1",
            None,
        ),
    ],
)
def test_layer_sets_of_the_demo_models(model_id, counts, first_norm, last_norm):
    backbone, _ = build_backbone(CATALOGUE[model_id])
    sets = layer_sets(backbone)
    assert list(sets) == list(LAYER_TYPES)
    assert {k: len(v) for k, v in sets.items() if k != "all"} == counts
    assert len(sets["all"]) == sum(counts.values())  # the union, each layer once, in forward order
    assert sets["normalisation"][0] == first_norm
    if last_norm:
        assert sets["normalisation"][-1] == last_norm
    with torch.no_grad(), record_activations(backbone, sets["all"], 3) as activations:
        backbone.features(torch.randn(3, 3, 224, 224))
    assert list(activations) == sets["all"] and all(a.shape[0] == 3 and a.dim() == 2 for a in activations.values())
    names = dict(backbone.image_model.named_modules())
    assert all(not names[n]._forward_hooks for n in sets["all"])  # hooks removed afterwards


def test_attention_tap_is_the_output_projection_before_the_residual_add():
    backbone, _ = build_backbone(CATALOGUE["demo_random_vit_sup"])
    block = backbone.image_model.blocks[0]
    seen = {}

    def keep(module, inputs, output) -> None:  # returns None: a forward hook's return value replaces the output
        seen["proj"] = output.reshape(2, -1)

    handle = block.attn.proj.register_forward_hook(keep)
    with torch.no_grad(), record_activations(backbone, ["blocks.0.attn"], 2) as activations:
        backbone.features(torch.randn(2, 3, 224, 224))
    handle.remove()
    assert torch.allclose(activations["blocks.0.attn"], seen["proj"])


@pytest.mark.slow
def test_layer_sets_of_the_paper_architectures():
    expected = {
        "vit_sup": (12, 24, 25),  # 12 blocks; 2 norms per block + final norm
        "vit_clip": (12, 24, 26),  # + ln_pre and ln_post
        "convnext_sup": (36, 72, 40),  # 3+3+27+3 blocks; block norms + stem + 3 downsample norms
        "convnext_clip": (36, 72, 40),
    }
    for model_id, (conv_or_attention, linear, norm) in expected.items():
        backbone, _ = build_backbone(dataclasses.replace(CATALOGUE[model_id], weights=None))
        sets = layer_sets(backbone)
        assert (len(sets["attention_or_conv"]), len(sets["linear"]), len(sets["normalisation"])) == (
            conv_or_attention,
            linear,
            norm,
        ), model_id
        del backbone
