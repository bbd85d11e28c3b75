"""The procedural world's two timm architectures: registered with their 32 px cfg, loadable through timm-file ids."""

from __future__ import annotations

import pytest
import torch

from beyond_imagenet.base.errors import UserError
from beyond_imagenet.models.backends.timm_backend import timm_module
from beyond_imagenet.models.build import build_backbone
from beyond_imagenet.models.catalogue import resolve_model


@pytest.mark.parametrize(
    ("name", "params_m", "family"), [("world_convnext", 1.04, "convnet"), ("world_vit", 0.47, "vit")]
)
def test_registered_with_a_32_px_cfg_and_the_stated_size(name, params_m, family):
    timm = timm_module()
    assert timm.is_model(name)
    cfg = timm.models.get_pretrained_cfg(name).to_dict()
    assert cfg["input_size"] == (3, 32, 32) and cfg["mean"] == (0.5, 0.5, 0.5) and cfg["crop_pct"] == 1.0
    model = timm.create_model(name, pretrained=False).eval()
    assert sum(p.numel() for p in model.parameters()) / 1e6 == pytest.approx(params_m, abs=0.01)
    with torch.no_grad():
        assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 8)
        assert model.forward_head(model.forward_features(torch.zeros(1, 3, 32, 32)), pre_logits=True).ndim == 2
    with pytest.raises(ValueError, match="no pretrained weights"):
        timm.create_model(name, pretrained=True)
    assert resolve_model(f"timm:{name}").family == family


def test_a_trained_checkpoint_loads_through_timm_file_with_the_world_preprocessing(tmp_path):
    timm = timm_module()
    torch.manual_seed(0)
    trained = timm.create_model("world_vit")
    torch.save(trained.state_dict(), tmp_path / "vit.pth")
    spec = resolve_model(f"timm-file:world_vit@{tmp_path / 'vit.pth'}")
    assert (spec.input_size, spec.mean, spec.std) == (32, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    backbone, _ = build_backbone(spec)
    for key, value in trained.state_dict().items():
        assert torch.equal(backbone.image_model.state_dict()[key], value), key
    with pytest.raises(UserError, match=r"\?num_classes="):
        build_backbone(resolve_model(f"timm-file:world_vit@{tmp_path / 'vit.pth'}?num_classes=10"))
