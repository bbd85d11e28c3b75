"""Speed options of the inference pass (issue 6): channels_last and torch.compile change speed, not results."""

from __future__ import annotations

import pytest
import torch

from beyond_imagenet.base.config import parse_params
from beyond_imagenet.inference.engine import MultiModelPredictor, speed_options
from beyond_imagenet.models.build import build_backbone
from beyond_imagenet.models.catalogue import resolve_model


def _outputs(module: MultiModelPredictor, images: torch.Tensor) -> dict:
    batch = {"index": torch.arange(len(images)), "error": [""] * len(images), "inputs": {"k": images}}
    with torch.inference_mode():
        return module.predict_step(batch, 0)["outputs"]


@pytest.fixture(scope="module")
def convnext():
    return build_backbone(resolve_model("demo_random_convnext_sup"))[0]


def test_channels_last_gives_the_same_logits_and_features(convnext):
    images = torch.randn(3, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    plain = _outputs(MultiModelPredictor({"m": convnext}, {"m": "k"}), images)["m"]
    nhwc_module = MultiModelPredictor({"m": convnext}, {"m": "k"}, channels_last=True)
    conv = next(m for m in convnext.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    nhwc = _outputs(nhwc_module, images)["m"]
    for a, b in zip(plain, nhwc, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    features_only = _outputs(MultiModelPredictor({"m": convnext}, {"m": "k"}, features_only=True), images)["m"]
    assert features_only[0].shape == (3, 0)
    torch.testing.assert_close(features_only[1], plain[1], rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_compiled_backbone_matches_eager():
    backbone = build_backbone(resolve_model("demo_random_vit_sup"))[0]
    images = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    eager = _outputs(MultiModelPredictor({"m": backbone}, {"m": "k"}), images)["m"]
    compiled = _outputs(MultiModelPredictor({"m": backbone}, {"m": "k"}, compile=True), images)["m"]
    for a, b in zip(eager, compiled, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-3)


def test_speed_options_channels_last_only_on_gpu():
    params = parse_params({"models": ["demo_random_vit_sup"], "datasets": {}, "inference": {"compile": True}})
    assert speed_options(params.inference, "gpu") == {"channels_last": True, "compile": True}
    assert speed_options(params.inference, "cpu") == {"channels_last": False, "compile": True}


def test_environment_records_the_gpu_fp32_math_flags_in_force(monkeypatch):
    """``precision: fp32`` on a GPU may mean TF32 matmuls or convolutions: the flags in force are recorded."""
    from beyond_imagenet.base import provenance

    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32  # backend flags: no monkeypatch
    try:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = True, False
        assert provenance.cuda_fp32_math() == {
            "matmul_allow_tf32": True,
            "cudnn_allow_tf32": False,
            "float32_matmul_precision": torch.get_float32_matmul_precision(),
        }
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = False, True
        assert provenance.cuda_fp32_math()["matmul_allow_tf32"] is False
        assert provenance.cuda_fp32_math()["cudnn_allow_tf32"] is True
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert "cuda_fp32_math" not in provenance.environment_record()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index: "NVIDIA H100 80GB HBM3")
    record = provenance.environment_record()
    assert record["device_name"] == "NVIDIA H100 80GB HBM3"
    assert record["cuda_fp32_math"] == provenance.cuda_fp32_math()
