"""Model catalogue, preprocessing, the Backbone interface and the offline weights check (PROTOCOL.md §1)."""

from __future__ import annotations

import dataclasses
import gc
import time

import numpy as np
import pytest
import torch
from PIL import Image

from beyond_imagenet.base.compat import import_torchvision
from beyond_imagenet.base.errors import UnknownNameError, UserError, WeightsUnavailableError
from beyond_imagenet.models import weights as weights_mod
from beyond_imagenet.models.backbone import CLIP_LOGIT_SCALE, Backbone
from beyond_imagenet.models.build import build_backbone
from beyond_imagenet.models.catalogue import CATALOGUE, DEMO_MODELS, PAPER_MODELS, resolve_model
from beyond_imagenet.models.preprocessing import PreprocessSpec, build_transform, resolve_preprocessing
from beyond_imagenet.models.spec import IMAGENET_MEAN, IMAGENET_STD, OPENAI_CLIP_MEAN, OPENAI_CLIP_STD
from beyond_imagenet.models.weights import ensure_weights_available, locate_weights

# ----------------------------------------------------------------------------------------------------------
# Catalogue (PROTOCOL §1.1)

PAPER_EXPECTED = {
    # id: (weights_id, source, architecture, weights, family, paradigm, head, paper_name)
    "vit_sup": (
        "timm:deit3_base_patch16_224.fb_in22k_ft_in1k",
        "timm",
        "deit3_base_patch16_224",
        "fb_in22k_ft_in1k",
        "vit",
        "supervised",
        "native",
        "ViT-sup",
    ),
    "convnext_sup": (
        "timm:convnext_base.fb_in22k_ft_in1k",
        "timm",
        "convnext_base",
        "fb_in22k_ft_in1k",
        "convnet",
        "supervised",
        "native",
        "ConvNeXt-sup",
    ),
    "vit_clip": (
        "open_clip:ViT-B-16@laion400m_e31",
        "open_clip",
        "ViT-B-16",
        "laion400m_e31",
        "vit",
        "clip",
        "zeroshot",
        "ViT-clip",
    ),
    "convnext_clip": (
        "open_clip:convnext_base@laion400m_s13b_b51k",
        "open_clip",
        "convnext_base",
        "laion400m_s13b_b51k",
        "convnet",
        "clip",
        "zeroshot",
        "ConvNeXt-clip",
    ),
}


def test_paper_models_are_exactly_the_four_of_protocol():
    assert set(PAPER_MODELS) == set(PAPER_EXPECTED)
    for model_id, spec in PAPER_MODELS.items():
        assert CATALOGUE[model_id] is spec


@pytest.mark.parametrize("model_id", sorted(PAPER_EXPECTED))
def test_paper_model_resolves_to_protocol_weights(model_id):
    weights_id, source, arch, weights, family, paradigm, head, paper_name = PAPER_EXPECTED[model_id]
    spec = resolve_model(model_id)
    assert spec.id == model_id
    assert spec.weights_id == weights_id
    assert (spec.source, spec.architecture, spec.weights) == (source, arch, weights)
    assert (spec.family, spec.paradigm, spec.head) == (family, paradigm, head)
    assert spec.paper_name == paper_name
    assert spec.pretrained and not spec.demo
    assert spec.input_size == 224
    expected_norm = (OPENAI_CLIP_MEAN, OPENAI_CLIP_STD) if paradigm == "clip" else (IMAGENET_MEAN, IMAGENET_STD)
    assert (spec.mean, spec.std) == expected_norm
    record = spec.as_record()
    assert record["weights_id"] == weights_id and record["head"] == head and record["weights"] == weights


def test_demo_models_are_random_init_and_flagged():
    assert set(DEMO_MODELS) == {
        "demo_random_vit_sup",
        "demo_random_convnext_sup",
        "demo_random_vit_clip",
        "demo_random_convnext_clip",
    }
    for spec in DEMO_MODELS.values():
        assert spec.demo and not spec.pretrained and spec.weights is None
        assert spec.weights_id.endswith("(random init)")
        assert spec.as_record()["weights"] == "random-init"
    assert {(s.family, s.paradigm) for s in DEMO_MODELS.values()} == {
        ("vit", "supervised"),
        ("convnet", "supervised"),
        ("vit", "clip"),
        ("convnet", "clip"),
    }


def test_generic_timm_id_with_tag():
    spec = resolve_model("timm:convnext_tiny.fb_in1k")
    assert (spec.id, spec.source, spec.architecture, spec.weights) == (
        "timm:convnext_tiny.fb_in1k",
        "timm",
        "convnext_tiny",
        "fb_in1k",
    )
    assert spec.weights_id == "timm:convnext_tiny.fb_in1k"
    assert (spec.family, spec.paradigm, spec.head) == ("convnet", "supervised", "native")
    assert (spec.mean, spec.std, spec.input_size) == (IMAGENET_MEAN, IMAGENET_STD, 224)


def test_generic_timm_id_without_tag_takes_timms_default_weights():
    # as timm.create_model(arch, pretrained=True) does
    spec = resolve_model("timm:vit_tiny_patch16_224")
    assert spec.weights == "augreg_in21k_ft_in1k" and spec.pretrained
    assert spec.family == "vit"
    assert spec.weights_id == "timm:vit_tiny_patch16_224.augreg_in21k_ft_in1k"


def test_timm_architecture_without_any_weights_is_random_init():
    spec = resolve_model("timm:coatnet_0_224")
    assert spec.weights is None and spec.weights_id == "timm:coatnet_0_224 (random init)"


def test_squash_resize_mode_stretches_without_cropping():
    spec = resolve_preprocessing(resolve_model("open_clip:ViT-H-14@dfn5b"), "native")
    assert spec.resize_mode == "squash"
    image = Image.new("RGB", (300, 100), (255, 0, 0))
    image.paste((0, 0, 255), (0, 0, 30, 100))  # blue strip: 10% of the width survives only without a crop
    tensor = build_transform(spec)(image)
    assert tuple(tensor.shape) == (3, 224, 224)
    blue = tensor[2] > tensor[0]
    assert blue[:, :15].all() and not blue[:, 30:].any()


def test_generic_open_clip_id():
    spec = resolve_model("open_clip:ViT-B-32@openai")
    assert (spec.source, spec.architecture, spec.weights) == ("open_clip", "ViT-B-32", "openai")
    assert spec.weights_id == "open_clip:ViT-B-32@openai"
    assert (spec.family, spec.paradigm, spec.head) == ("vit", "clip", "zeroshot")
    assert (spec.mean, spec.std, spec.input_size) == (OPENAI_CLIP_MEAN, OPENAI_CLIP_STD, 224)
    # a generic id for a paper architecture gives the same weights_id as the catalogue entry
    assert resolve_model("open_clip:ViT-B-16@laion400m_e31").weights_id == CATALOGUE["vit_clip"].weights_id
    assert resolve_model("timm:convnext_base.fb_in22k_ft_in1k").weights_id == CATALOGUE["convnext_sup"].weights_id


@pytest.mark.parametrize(
    ("model_id", "close"),
    [
        ("vit_sub", "vit_sup"),
        ("convnext_clp", "convnext_clip"),
        ("timm:convnxt_base", "convnext_base"),
        ("timm:convnext_base.fb_in22k_ft_in1kk", "convnext_base.fb_in22k_ft_in1k"),
        ("open_clip:ViT-B-16@laion400m_e3", "laion400m_e31"),
        ("open_clip:ViT-B-161@laion400m_e31", "ViT-B-16"),
    ],
)
def test_unknown_ids_raise_with_close_matches(model_id, close):
    with pytest.raises(UnknownNameError) as info:
        resolve_model(model_id)
    assert close in info.value.close_matches
    assert repr(close) in str(info.value)
    assert "Did you mean" in str(info.value)


def test_unknown_name_error_is_a_user_error_and_a_key_error():
    with pytest.raises(UnknownNameError) as info:
        resolve_model("no_such_model_at_all")
    assert isinstance(info.value, UserError) and isinstance(info.value, KeyError)
    assert "'no_such_model_at_all'" in str(info.value)


def test_open_clip_id_without_tag_is_a_user_error():
    with pytest.raises(UserError, match="open_clip:<arch>@<tag>"):
        resolve_model("open_clip:ViT-B-16")


def test_empty_timm_tag_is_a_user_error():
    with pytest.raises(UserError):
        resolve_model("timm:convnext_base.")


def test_deprecated_timm_alias_is_not_silently_random_init():
    try:
        spec = resolve_model("timm:deit3_base_patch16_224_in21ft1k")
    except UserError:
        return  # refusing the alias with a pointer to the new name is acceptable too
    assert spec.weights_id == CATALOGUE["vit_sup"].weights_id


def test_open_clip_eva_is_a_vit():
    assert resolve_model("timm:eva02_base_patch14_224.mim_in22k").family == "vit"
    assert resolve_model("open_clip:EVA02-B-16@merged2b_s8b_b131k").family == "vit"


# ----------------------------------------------------------------------------------------------------------
# Paper model sizes (PROTOCOL §1.2): random init, offline


def _count_gmacs(model: torch.nn.Module) -> float:
    """MACs of one 224x224 forward: FlopCounterMode flops / 2.

    Attention must run as plain matmuls so the counter sees it: the CPU flash kernel of
    scaled_dot_product_attention and nn.MultiheadAttention's fused fast path have no flop formula.
    """
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
            model(torch.zeros(1, 3, 224, 224))
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
    return counter.get_total_flops() / 2 / 1e9


@pytest.mark.slow
@pytest.mark.parametrize(
    ("model_id", "params_m", "gmacs_range"),
    [
        ("vit_sup", 86.59, (17.5, 17.6)),
        ("convnext_sup", 88.59, (15.4, 15.4)),
        ("vit_clip", 86.19, (17.5, 17.6)),  # image tower only
        ("convnext_clip", 88.09, (15.4, 15.4)),  # image tower only
    ],
)
def test_paper_model_sizes(model_id, params_m, gmacs_range, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    spec = dataclasses.replace(CATALOGUE[model_id], weights=None)
    backbone, clip_model = build_backbone(spec)
    del clip_model  # the text tower is not part of Table 1's image-model numbers
    gc.collect()
    try:
        n_params = sum(p.numel() for p in backbone.image_model.parameters()) / 1e6
        assert n_params == pytest.approx(params_m, abs=0.01)
        gmacs = _count_gmacs(backbone.image_model)
        low, high = gmacs_range
        assert low * 0.98 <= gmacs <= high * 1.02, f"{model_id}: {gmacs:.3f} GMACs"
    finally:
        del backbone
        gc.collect()


# ----------------------------------------------------------------------------------------------------------
# Preprocessing (PROTOCOL §1.3)


@pytest.mark.parametrize("model_id", ["vit_sup", "convnext_sup"])
def test_paper_preprocessing_supervised(model_id):
    spec = resolve_preprocessing(CATALOGUE[model_id], "paper")
    assert spec == PreprocessSpec("paper", 256, 224, "bilinear", IMAGENET_MEAN, IMAGENET_STD, True, "pil")


@pytest.mark.parametrize("model_id", ["vit_clip", "convnext_clip"])
def test_paper_preprocessing_clip(model_id):
    spec = resolve_preprocessing(CATALOGUE[model_id], "paper")
    assert spec == PreprocessSpec("paper", 224, 224, "bicubic", OPENAI_CLIP_MEAN, OPENAI_CLIP_STD, True, "pil")


def test_paper_is_the_default_mode():
    assert resolve_preprocessing(CATALOGUE["convnext_sup"]) == resolve_preprocessing(CATALOGUE["convnext_sup"], "paper")


def test_native_preprocessing_follows_timm_pretrained_cfg():
    vit = resolve_preprocessing(CATALOGUE["vit_sup"], "native")
    assert (vit.mode, vit.resize, vit.crop, vit.interpolation) == (
        "native",
        224,
        224,
        "bicubic",
    )  # crop_pct 1.0
    convnext = resolve_preprocessing(CATALOGUE["convnext_sup"], "native")
    assert (convnext.resize, convnext.crop, convnext.interpolation) == (256, 224, "bicubic")  # crop_pct 0.875
    assert (vit.mean, vit.std) == (convnext.mean, convnext.std) == (IMAGENET_MEAN, IMAGENET_STD)
    assert vit.key() != resolve_preprocessing(CATALOGUE["vit_sup"], "paper").key()


def test_native_preprocessing_of_clip_is_open_clip_eval_transform():
    spec = resolve_preprocessing(CATALOGUE["vit_clip"], "native")
    assert (spec.resize, spec.crop, spec.interpolation) == (224, 224, "bicubic")
    assert (spec.mean, spec.std) == (OPENAI_CLIP_MEAN, OPENAI_CLIP_STD)


def test_native_open_clip_preprocessing_uses_pretrained_interpolation():
    import open_clip

    assert open_clip.get_pretrained_cfg("MobileCLIP-S1", "datacompdr")["interpolation"] == "bilinear"
    spec = resolve_preprocessing(resolve_model("open_clip:MobileCLIP-S1@datacompdr"), "native")
    assert spec.interpolation == "bilinear"


@pytest.mark.parametrize("model_id", ["vit_sup", "demo_random_vit_sup"])
def test_unknown_preprocessing_mode_raises(model_id):
    with pytest.raises(UnknownNameError) as info:
        resolve_preprocessing(CATALOGUE[model_id], "nativ")
    assert "native" in info.value.close_matches


def test_preprocess_key_is_stable_and_discriminating():
    a = resolve_preprocessing(CATALOGUE["vit_sup"], "paper")
    b = resolve_preprocessing(CATALOGUE["convnext_sup"], "paper")
    c = resolve_preprocessing(CATALOGUE["vit_clip"], "paper")
    assert a.key() == b.key()  # same transform -> shared preprocessed tensors
    assert a.key() != c.key()
    assert a.as_record()["key"] == a.key() and a.as_record()["mean"] == list(IMAGENET_MEAN)


def _random_image(width: int, height: int, seed: int = 0) -> Image.Image:
    pixels = np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    return Image.fromarray(pixels, "RGB")


@pytest.mark.parametrize("model_id", ["vit_sup", "vit_clip"])
def test_build_transform_equals_independent_torchvision_composition(model_id):
    transforms = import_torchvision().transforms
    spec = resolve_preprocessing(CATALOGUE[model_id], "paper")
    mode = transforms.InterpolationMode.BILINEAR if model_id == "vit_sup" else transforms.InterpolationMode.BICUBIC
    size = 256 if model_id == "vit_sup" else 224
    mean, std = (IMAGENET_MEAN, IMAGENET_STD) if model_id == "vit_sup" else (OPENAI_CLIP_MEAN, OPENAI_CLIP_STD)
    reference = transforms.Compose(
        [
            transforms.Resize(size, interpolation=mode, antialias=True),
            transforms.CenterCrop(224),
            transforms.ToTensor(),
            transforms.Normalize(mean, std),
        ]
    )
    image = _random_image(333, 257, seed=3)
    out = build_transform(spec)(image)
    assert out.shape == (3, 224, 224) and out.dtype == torch.float32
    torch.testing.assert_close(out, reference(image), rtol=0, atol=0)


def test_transform_geometry_and_normalisation_golden():
    # A 256x256 image under the supervised paper transform: resize 256 is the identity, the centre crop keeps
    # rows/cols 16..239, and each value is (x/255 - mean) / std.
    pixels = np.random.default_rng(5).integers(0, 256, size=(256, 256, 3), dtype=np.uint8)
    out = build_transform(resolve_preprocessing(CATALOGUE["convnext_sup"], "paper"))(Image.fromarray(pixels))
    crop = torch.from_numpy(pixels[16:240, 16:240].astype(np.float32) / 255).permute(2, 0, 1)
    expected = (crop - torch.tensor(IMAGENET_MEAN)[:, None, None]) / torch.tensor(IMAGENET_STD)[:, None, None]
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-6)


def test_constant_image_maps_to_normalised_constant():
    color = (200, 30, 117)
    image = Image.new("RGB", (500, 375), color)
    out = build_transform(resolve_preprocessing(CATALOGUE["vit_clip"], "paper"))(image)
    expected = (torch.tensor(color) / 255 - torch.tensor(OPENAI_CLIP_MEAN)) / torch.tensor(OPENAI_CLIP_STD)
    torch.testing.assert_close(out, expected[:, None, None].expand(3, 224, 224), rtol=0, atol=1e-5)


# ----------------------------------------------------------------------------------------------------------
# Backbone


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.randn(3, 3, 224, 224, generator=torch.Generator().manual_seed(11))


@pytest.mark.parametrize("model_id", ["demo_random_vit_sup", "demo_random_convnext_sup"])
def test_timm_backbone_logits_equal_timm_forward(model_id, images):
    backbone, clip_model = build_backbone(CATALOGUE[model_id])
    assert clip_model is None and isinstance(backbone, Backbone)
    assert not backbone.training
    assert not any(p.requires_grad for p in backbone.parameters())
    with torch.no_grad():
        logits, features = backbone(images)
        reference = backbone.image_model(images)
    torch.testing.assert_close(logits, reference, rtol=0, atol=1e-5)
    width = backbone.image_model.num_features
    assert features.shape == (3, width) == (3, backbone.classifier.in_features)
    assert logits.shape == (3, backbone.output_dim) == (3, backbone.image_model.num_classes)
    # logits are the model's own linear head applied to the returned features
    torch.testing.assert_close(logits, backbone.classifier(features), rtol=0, atol=1e-5)


@pytest.mark.parametrize("model_id", ["demo_random_vit_clip", "demo_random_convnext_clip"])
def test_clip_backbone_logits_are_scaled_cosines(model_id, images):
    backbone, clip_model = build_backbone(CATALOGUE[model_id])
    embed_dim = CATALOGUE[model_id].custom_config["embed_dim"]
    assert backbone.image_model is clip_model.visual
    assert backbone.output_dim is None
    with pytest.raises(RuntimeError, match="zero-shot head"):
        backbone(images)
    weights = torch.nn.functional.normalize(
        torch.randn(embed_dim, 5, generator=torch.Generator().manual_seed(2)), dim=0
    )
    backbone.set_zeroshot_weights(weights)
    assert backbone.output_dim == 5
    with torch.no_grad():
        logits, features = backbone(images)
        unnormalised = clip_model.encode_image(images)
    assert CLIP_LOGIT_SCALE == 100.0
    torch.testing.assert_close(features, unnormalised, rtol=0, atol=1e-6)
    expected = 100.0 * torch.nn.functional.normalize(features, dim=-1) @ weights
    torch.testing.assert_close(logits, expected, rtol=0, atol=1e-4)
    assert logits.abs().max() <= 100.0 + 1e-3  # cosines times 100


def test_set_zeroshot_weights_rejects_supervised_models():
    backbone, _ = build_backbone(CATALOGUE["demo_random_vit_sup"])
    with pytest.raises(ValueError, match="not a CLIP model"):
        backbone.set_zeroshot_weights(torch.zeros(4, 2))


@pytest.mark.parametrize("model_id", ["demo_random_convnext_sup", "demo_random_vit_clip"])
def test_random_init_is_seeded_and_leaves_global_rng_alone(model_id):
    with torch.random.fork_rng(devices=[]):  # this test's seeding must not leak into other tests
        torch.manual_seed(1234)
        state_before = torch.random.get_rng_state()
        first, _ = build_backbone(CATALOGUE[model_id])
        assert torch.equal(torch.random.get_rng_state(), state_before)
        torch.rand(10)  # a different global RNG state must not change the weights
        second, _ = build_backbone(CATALOGUE[model_id])
    a, b = first.state_dict(), second.state_dict()
    assert a.keys() == b.keys() and len(a) > 0
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_forward_in_train_mode_raises(images):
    backbone, _ = build_backbone(CATALOGUE["demo_random_vit_sup"])
    backbone.train()
    with pytest.raises(RuntimeError, match="eval mode"):
        backbone(images[:1])


# ----------------------------------------------------------------------------------------------------------
# Weights: offline check against the local Hugging Face cache

FAKE_SHA = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def empty_hf_cache(tmp_path, monkeypatch):
    """An offline hub client pointing at an empty cache under tmp_path.

    huggingface_hub reads HF_HOME / HF_HUB_CACHE into ``constants.HF_HUB_CACHE`` at import time and
    ``try_to_load_from_cache`` reads that constant at call time, so both are patched.
    """
    from huggingface_hub import constants

    hub_cache = tmp_path / "hf" / "hub"
    hub_cache.mkdir(parents=True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(hub_cache))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hub_cache))
    return hub_cache


def _fake_cached_file(hub_cache, repo: str, filename: str) -> None:
    """The snapshot layout huggingface_hub writes: refs/main -> snapshots/<sha>/<file>."""
    repo_dir = hub_cache / ("models--" + repo.replace("/", "--"))
    (repo_dir / "refs").mkdir(parents=True)
    (repo_dir / "refs" / "main").write_text(FAKE_SHA)
    snapshot = repo_dir / "snapshots" / FAKE_SHA
    snapshot.mkdir(parents=True)
    (snapshot / filename).write_bytes(b"not really weights")


@pytest.mark.parametrize(
    ("model_id", "repo", "first_file"),
    [
        ("vit_sup", "timm/deit3_base_patch16_224.fb_in22k_ft_in1k", "model.safetensors"),
        ("convnext_sup", "timm/convnext_base.fb_in22k_ft_in1k", "model.safetensors"),
        ("vit_clip", "timm/vit_base_patch16_clip_224.laion400m_e31", "open_clip_model.safetensors"),
        ("convnext_clip", "laion/CLIP-convnext_base-laion400M-s13B-b51K", "open_clip_model.safetensors"),
    ],
)
def test_locate_weights_of_paper_models(model_id, repo, first_file):
    location = locate_weights(CATALOGUE[model_id])
    assert location.hub_repo == repo
    assert location.hub_files[0] == first_file


def test_missing_weights_fail_fast_offline(empty_hf_cache, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("the offline check must not probe the network")

    monkeypatch.setattr(weights_mod, "hub_reachable", no_network)
    start = time.monotonic()
    with pytest.raises(WeightsUnavailableError) as info:
        ensure_weights_available([CATALOGUE["vit_sup"]])
    assert time.monotonic() - start < 5.0
    message = str(info.value)
    assert "timm/deit3_base_patch16_224.fb_in22k_ft_in1k" in message
    assert "make fetch-weights" in message
    assert "HF_HUB_OFFLINE=1" in message


def test_random_init_specs_need_no_weights(empty_hf_cache):
    specs = [*DEMO_MODELS.values(), *(dataclasses.replace(s, weights=None) for s in PAPER_MODELS.values())]
    assert all(locate_weights(s) is None for s in specs)
    ensure_weights_available(specs)  # raises if anything is considered missing
    assert weights_mod.missing_weights(specs) == []


def test_cached_file_passes_the_check(empty_hf_cache):
    _fake_cached_file(empty_hf_cache, "timm/deit3_base_patch16_224.fb_in22k_ft_in1k", "model.safetensors")
    ensure_weights_available([CATALOGUE["vit_sup"], CATALOGUE["demo_random_vit_clip"]])
    # only the model still missing is named
    with pytest.raises(WeightsUnavailableError) as info:
        ensure_weights_available([CATALOGUE["vit_sup"], CATALOGUE["convnext_clip"]])
    message = str(info.value)
    assert "laion/CLIP-convnext_base-laion400M-s13B-b51K" in message
    assert "deit3" not in message
    assert 'MODELS="convnext_clip"' in message


def test_cached_open_clip_file_passes_the_check(empty_hf_cache):
    _fake_cached_file(empty_hf_cache, "laion/CLIP-convnext_base-laion400M-s13B-b51K", "open_clip_pytorch_model.bin")
    ensure_weights_available([CATALOGUE["convnext_clip"]])
