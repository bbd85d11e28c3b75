"""Transformation-invariance transforms and resolution builds (PROTOCOL §9.1 scale, §9.2 shift, §9.3 resolution)."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from beyond_imagenet.base.compat import import_torchvision
from beyond_imagenet.models.build import build_at_resolution, build_backbone, spec_at_resolution
from beyond_imagenet.models.catalogue import CATALOGUE
from beyond_imagenet.models.positional import resize_vit_position_embedding
from beyond_imagenet.models.preprocessing import ShiftCrop, build_transform, resolve_preprocessing, shift_window
from beyond_imagenet.models.spec import ModelSpec
from beyond_imagenet.models.sweep_transforms import (
    RESOLUTIONS,
    SCALES,
    SHIFTS,
    resolution_preprocess,
    scale_transform,
    shift_transform,
    standard_resize,
)

TF = import_torchvision().transforms
SUP = resolve_preprocessing(CATALOGUE["vit_sup"])  # resize 256, crop 224, bilinear, ImageNet stats
CLIP = resolve_preprocessing(CATALOGUE["vit_clip"])  # resize 224, crop 224, bicubic, CLIP stats


def coordinate_image(width: int, height: int) -> Image.Image:
    """R = x // 2, G = y // 2, B = 255: every pixel names its position; only zero padding has B = 0."""
    ys, xs = np.mgrid[0:height, 0:width]
    pixels = np.stack([xs // 2, ys // 2, np.full_like(xs, 255)], axis=-1).astype(np.uint8)
    return Image.fromarray(pixels, "RGB")


def test_sweep_values_and_standard_resize():
    assert (SCALES, SHIFTS, RESOLUTIONS) == ((1, 1.25, 1.5, 2, 3), (0, 5, 30, 75, 100), (112, 224, 336, 512, 640))
    assert (standard_resize("supervised"), standard_resize("clip")) == (256, 224)
    assert (standard_resize(SUP), standard_resize(CLIP)) == (256, 224)


# §9.1 scale ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec,expected", [(SUP, (256, 320, 384, 512, 768)), (CLIP, (224, 280, 336, 448, 672))], ids=["sup", "clip"]
)
def test_scale_shorter_sides_bilinear_centre_crop(spec, expected):
    for s, side in zip(SCALES, expected, strict=True):
        resize, crop, *_ = scale_transform(spec, s).transforms
        assert resize.size == side
        assert resize.interpolation == TF.InterpolationMode.BILINEAR  # even for CLIP (§9)
        assert crop.size == (224, 224)


def test_scale_content_zooms_into_the_centre():
    img = coordinate_image(500, 375)
    standard = build_transform(SUP)(img)
    assert torch.equal(scale_transform(SUP, 1)(img), standard)  # s = 1 is the standard supervised evaluation
    zoomed = scale_transform(SUP, 2, normalize=False)(img)
    # shorter side 512: the image is scaled by 512/375, so the 224 crop spans 224·375/512 = 164 original px.
    x_span = (zoomed[0, 112, -1] - zoomed[0, 112, 0]).item() * 255 * 2
    assert x_span == pytest.approx(224 * 375 / 512, abs=3)
    centre = zoomed[:, 112, 112] * 255 * 2
    assert centre[0].item() == pytest.approx(250, abs=2) and centre[1].item() == pytest.approx(187.5, abs=2)


# §9.2 shift ------------------------------------------------------------------------------------------------------


def test_shift_window_protocol_example_landscape():
    # PROTOCOL §9.2: 500×375 supervised at d = 100 → 328 px wide window starting at x = 185, 13 px outside.
    top, left, size = shift_window(500, 375, 256, 224, 100)
    assert (top, left, size) == (23, 185, 328)  # top = int(16·375/256) = int(23.44)
    assert left + size - 500 == 13


@pytest.mark.parametrize(
    "width,height,R,d,expected",
    [
        (300, 300, 256, 30, (48, 18, 262)),  # square: shifts vertically; 18.75 + 30 → 48, 262.5 → 262
        (375, 500, 256, 100, (185, 23, 328)),  # portrait: shifts top
        (500, 375, 224, 100, (0, 162, 375)),  # CLIP: window = the whole shorter side, left = 62.5 + 100
        (500, 375, 256, 0, (23, 85, 328)),  # d = 0: the centre window, truncated
    ],
)
def test_shift_window_hand_computed(width, height, R, d, expected):
    assert shift_window(width, height, R, 224, d) == expected


def test_shift_crop_zero_pads_outside_the_image():
    img = coordinate_image(500, 375)
    top, left, size = shift_window(500, 375, 256, 224, 100)
    window = np.asarray(import_torchvision().transforms.functional.crop(img, top, left, size, size))
    assert window.shape == (328, 328, 3)
    assert tuple(window[0, 0]) == (185 // 2, 23 // 2, 255)  # crop starts at the original pixel (x=185, y=23)
    assert (window[:, 315:] == 0).all()  # columns 500..512 of the original frame: zero padding
    assert (window[:, :315, 2] == 255).all()
    # Through the whole transform (no Normalize): ~13·224/328 ≈ 8.9 output columns are padding.
    out = shift_transform(SUP, 100, normalize=False)(img)
    assert out.shape == (3, 224, 224)
    assert (out[2, :, :8] == 1).all() and (out[:, :, -8:] == 0).all()
    zero_columns = int((out[2].amax(dim=0) < 0.5).sum())
    assert zero_columns == 9


def test_shift_moves_square_and_portrait_images_down():
    for width, height in ((300, 300), (375, 500)):
        img = coordinate_image(width, height)
        still = shift_transform(SUP, 0, normalize=False)(img) * 255 * 2
        moved = shift_transform(SUP, 30, normalize=False)(img) * 255 * 2
        rows = slice(0, 150)  # away from the zero-padded bottom rows
        assert (moved[1, rows] - still[1, rows]).mean().item() == pytest.approx(30, abs=1.5)  # y moved by d
        assert (moved[0, rows] - still[0, rows]).abs().mean().item() < 1.5  # x unchanged


def test_shift_zero_is_the_standard_crop_up_to_truncation():
    img = coordinate_image(500, 375)
    for spec in (SUP, dataclasses.replace(CLIP, interpolation="bilinear")):
        standard = build_transform(spec)(img)
        unshifted = shift_transform(spec, 0)(img)
        assert unshifted.shape == standard.shape == (3, 224, 224)
        # Under 1 original pixel of offset on a ramp of 0.5 grey levels per pixel, after /std (~0.23).
        assert (unshifted - standard).abs().max().item() < 0.05
        assert (shift_transform(spec, 30)(img) - standard).abs().max().item() > 0.15


def test_shift_transform_normalises_with_the_model_stats():
    img = coordinate_image(320, 240)
    raw = shift_transform(CLIP, 5, normalize=False)(img)
    mean, std = torch.tensor(CLIP.mean)[:, None, None], torch.tensor(CLIP.std)[:, None, None]
    assert torch.allclose(shift_transform(CLIP, 5)(img), (raw - mean) / std, atol=1e-6)
    assert "ShiftCrop(R=224, crop=224, d=5)" in repr(ShiftCrop(224, 224, 5))


# §9.3 resolution -------------------------------------------------------------------------------------------------


def test_resolution_preprocess_values():
    supervised = [resolution_preprocess(SUP, "supervised", r) for r in RESOLUTIONS]
    assert [p.resize for p in supervised] == [128, 256, 384, 585, 731]
    assert [p.crop for p in supervised] == list(RESOLUTIONS)
    assert {p.interpolation for p in supervised} == {"bilinear"} and supervised[1] == SUP
    clip = [resolution_preprocess(CLIP, "clip", r) for r in RESOLUTIONS]
    assert all(p.resize == p.crop == r and p.interpolation == "bicubic" for p, r in zip(clip, RESOLUTIONS, strict=True))
    assert clip[1] == CLIP
    for model_id, spec, paradigm in (("vit_sup", SUP, "supervised"), ("convnext_clip", CLIP, "clip")):
        for r in RESOLUTIONS:  # the paper spec of the model at r is the same transform
            at_r = resolve_preprocessing(spec_at_resolution(CATALOGUE[model_id], r))
            assert at_r == resolution_preprocess(spec, paradigm, r)


def _reference_resize(grid_rows: torch.Tensor, old: int, new: int) -> torch.Tensor:
    image = grid_rows.reshape(1, old, old, -1).permute(0, 3, 1, 2)
    image = torch.nn.functional.interpolate(image, size=(new, new), mode="bicubic", antialias=True, align_corners=False)
    return image.permute(0, 2, 3, 1).reshape(new * new, -1)


@pytest.mark.parametrize("new_grid", [7, 21, 32, 40])
def test_resize_position_embedding_matches_independent_interpolate(new_grid):
    torch.manual_seed(0)
    deit = torch.randn(1, 14 * 14, 12)  # DeiT III: no class row
    out = resize_vit_position_embedding(deit, 14, new_grid, 0)
    assert out.shape == (1, new_grid * new_grid, 12)
    assert torch.allclose(out[0], _reference_resize(deit[0], 14, new_grid), atol=1e-6)

    clip = torch.randn(1 + 14 * 14, 12)  # open_clip: [1 + g², D], class row first
    out = resize_vit_position_embedding(clip, 14, new_grid, 1)
    assert out.shape == (1 + new_grid * new_grid, 12)
    assert torch.equal(out[0], clip[0])
    assert torch.allclose(out[1:], _reference_resize(clip[1:], 14, new_grid), atol=1e-6)


def test_resize_position_embedding_identity_timm_agreement_and_errors():
    from timm.layers import resample_abs_pos_embed

    torch.manual_seed(1)
    pos = torch.randn(1, 1 + 14 * 14, 8)
    same = resize_vit_position_embedding(pos, 14, 14, 1)
    assert torch.equal(same, pos) and same.data_ptr() != pos.data_ptr()
    timm_out = resample_abs_pos_embed(pos, [21, 21], [14, 14], num_prefix_tokens=1)  # bicubic, antialias
    assert torch.allclose(resize_vit_position_embedding(pos, 14, 21, 1), timm_out, atol=1e-6)
    with pytest.raises(ValueError, match="prefix rows"):
        resize_vit_position_embedding(pos, 14, 21, 0)


def test_library_pretrained_resampling_matches_ours(tmp_path):
    """The pretrained routes of §9.3: timm's and open_clip's load-time resampling equal our resize."""
    import timm
    from open_clip.model import resize_pos_embed

    torch.manual_seed(0)
    native = timm.create_model("test_vit", img_size=224, no_embed_class=True)  # DeiT III style: no class row
    torch.save(native.state_dict(), tmp_path / "native.pth")
    overlay = {"file": str(tmp_path / "native.pth"), "hf_hub_id": None, "source": None}
    loaded = timm.create_model(
        "test_vit", pretrained=True, pretrained_cfg_overlay=overlay, img_size=336, no_embed_class=True
    )
    expected = resize_vit_position_embedding(native.pos_embed.detach(), 14, 21, 0)
    assert loaded.pos_embed.shape == (1, 441, 64) and torch.allclose(loaded.pos_embed, expected, atol=1e-6)

    clip_native, _ = build_backbone(CATALOGUE["demo_random_vit_clip"])
    clip_336, _ = build_at_resolution(CATALOGUE["demo_random_vit_clip"], 336)
    state = {"visual.positional_embedding": clip_native.image_model.positional_embedding.detach().clone()}
    resize_pos_embed(state, SimpleNamespace(visual=clip_336.image_model))  # what open_clip runs on load
    assert torch.allclose(state["visual.positional_embedding"], clip_336.image_model.positional_embedding, atol=1e-6)


def _demo(model_id: str) -> ModelSpec:
    return CATALOGUE[model_id]


def test_build_at_resolution_timm_demo_vit_is_the_native_network():
    spec = _demo("demo_random_vit_sup")
    native, _ = build_backbone(spec)
    torch.manual_seed(0)
    images = {r: torch.randn(2, 3, r, r) for r in (112, 224, 336)}
    for r, x in images.items():
        backbone, clip_model = build_at_resolution(spec, r)
        assert clip_model is None and backbone.spec.input_size == r and backbone.spec.id == spec.id
        logits, features = backbone(x)
        assert logits.shape == (2, 1000) and features.shape == (2, 64)
        model = backbone.image_model
        assert model.pos_embed.shape == (1, 1 + (r // 16) ** 2, 64)  # test_vit keeps its class row
        native_state = native.image_model.state_dict()
        for key, value in model.state_dict().items():
            if key != "pos_embed":
                assert torch.equal(value, native_state[key]), key
        assert torch.equal(model.pos_embed, resize_vit_position_embedding(native_state["pos_embed"], 10, r // 16, 1))
        native_logits, native_features = native(x)  # test_vit has dynamic_img_size: resamples the same way
        assert torch.allclose(features, native_features, atol=1e-5)
        if r == 224:
            assert torch.equal(logits, native_logits)


def test_build_at_resolution_open_clip_demo_vit_and_convnext():
    spec = _demo("demo_random_vit_clip")
    native, native_clip = build_backbone(spec)
    head = torch.nn.functional.normalize(torch.randn(64, 1000), dim=0)
    native.set_zeroshot_weights(head)
    for r in (112, 224, 336):
        backbone, clip_model = build_at_resolution(spec, r)
        assert clip_model is not None and backbone.image_model is clip_model.visual
        assert backbone.spec.custom_config["vision_cfg"]["image_size"] == r
        backbone.set_zeroshot_weights(head)
        x = torch.randn(2, 3, r, r)
        logits, features = backbone(x)
        assert logits.shape == (2, 1000) and features.shape == (2, 64)
        pos = backbone.image_model.positional_embedding
        assert pos.shape == (1 + (r // 16) ** 2, 64)
        assert torch.equal(pos[0], native.image_model.positional_embedding[0])  # class row unchanged
        assert torch.equal(clip_model.text_projection, native_clip.text_projection)  # same text tower → same head
        if r == 224:
            assert torch.equal(logits, native(x)[0])
    convnext = _demo("demo_random_convnext_clip")
    native_conv, _ = build_backbone(convnext)
    conv_r, _ = build_at_resolution(convnext, 336)
    x = torch.randn(1, 3, 336, 336)
    assert torch.equal(conv_r.features(x), native_conv.features(x))  # §9.3: ConvNeXt needs no change


@pytest.mark.slow
def test_build_at_resolution_paper_vits_pos_embed_shapes():
    deit = dataclasses.replace(CATALOGUE["vit_sup"], weights=None)
    backbone, _ = build_at_resolution(deit, 336)
    assert backbone.image_model.pos_embed.shape == (1, 21 * 21, 768)  # DeiT III: no class row
    assert backbone(torch.randn(1, 3, 336, 336))[0].shape == (1, 1000)
    vit_b16 = dataclasses.replace(CATALOGUE["vit_clip"], weights=None)
    backbone, _ = build_at_resolution(vit_b16, 336)
    assert backbone.image_model.positional_embedding.shape == (1 + 21 * 21, 768)
