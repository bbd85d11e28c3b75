"""The CLIP zero-shot head (PROTOCOL.md §1.4): names, templates, W, batching and the on-disk head cache."""

from __future__ import annotations

import dataclasses

import open_clip
import pytest
import torch

from beyond_imagenet.data.label_space import imagenet_wnids
from beyond_imagenet.models import zeroshot
from beyond_imagenet.models.backends import backend_for
from beyond_imagenet.models.build import build_at_resolution, build_backbone, spec_at_resolution
from beyond_imagenet.models.catalogue import CATALOGUE
from beyond_imagenet.models.zeroshot import (
    build_zeroshot_weights,
    head_key,
    load_or_build_zeroshot_weights,
    openai_imagenet_classnames,
    openai_templates,
)

SPEC = CATALOGUE["demo_random_vit_clip"]
CLASSES = ["tench", "goldfish", "toilet paper"]
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def clip_model():
    _, model = build_backbone(SPEC)
    return model


@pytest.fixture(scope="module")
def tokenizer():
    return open_clip.get_tokenizer("ViT-B-16")


def reference_weights(model, classnames: list[str]) -> torch.Tensor:
    """§1.4 steps 1-5 one class at a time, written independently of the package."""
    columns = []
    with torch.no_grad():
        for name in classnames:
            prompts = [template(name) for template in open_clip.OPENAI_IMAGENET_TEMPLATES]
            tokens = open_clip.tokenize(prompts)  # CLIP BPE, context length 77
            embeddings = model.encode_text(tokens).float()
            embeddings = embeddings / embeddings.norm(dim=-1, keepdim=True)
            mean = embeddings.mean(dim=0)
            columns.append(mean / mean.norm())
    return torch.stack(columns, dim=1)


def test_eighty_openai_templates():
    templates = openai_templates()
    assert len(templates) == 80
    prompts = [t("dog") for t in templates]
    assert prompts[0] == "a bad photo of a dog."
    assert prompts[-1] == "a tattoo of the dog."
    assert len(set(prompts)) == 80
    assert all("dog" in p for p in prompts)


def test_thousand_openai_classnames_in_standard_order():
    names = openai_imagenet_classnames()
    assert len(names) == 1000
    assert names == list(open_clip.IMAGENET_CLASSNAMES)
    assert names[0] == "tench" and names[1] == "goldfish"
    assert names[999] == "toilet paper"
    assert imagenet_wnids()[0] == "n01440764" and imagenet_wnids()[999] == "n15075141"


def test_weights_equal_independent_computation(clip_model, tokenizer):
    weights = build_zeroshot_weights(clip_model, tokenizer, CLASSES, CPU)
    embed_dim = SPEC.custom_config["embed_dim"]
    assert weights.shape == (embed_dim, 3) and weights.dtype == torch.float32
    torch.testing.assert_close(weights, reference_weights(clip_model, CLASSES), rtol=0, atol=1e-6)
    torch.testing.assert_close(weights.norm(dim=0), torch.ones(3), rtol=0, atol=1e-6)
    # different class names give different columns
    assert not torch.allclose(weights[:, 0], weights[:, 1])


@pytest.mark.parametrize("per_batch", [1, 7])
def test_batching_does_not_change_the_head(clip_model, tokenizer, monkeypatch, per_batch):
    classes = openai_imagenet_classnames()[:9]
    default = build_zeroshot_weights(clip_model, tokenizer, classes, CPU)
    monkeypatch.setattr(zeroshot, "CLASSES_PER_TEXT_BATCH", per_batch)
    rebatched = build_zeroshot_weights(clip_model, tokenizer, classes, CPU)
    assert rebatched.shape == (SPEC.custom_config["embed_dim"], 9)
    torch.testing.assert_close(rebatched, default, rtol=0, atol=1e-6)


def test_head_is_cached_and_reused(clip_model, tmp_path, monkeypatch):
    calls = []
    original = clip_model.encode_text

    def counting_encode_text(tokens, *args, **kwargs):
        calls.append(len(tokens))
        return original(tokens, *args, **kwargs)

    monkeypatch.setattr(clip_model, "encode_text", counting_encode_text)
    weights, info = load_or_build_zeroshot_weights(SPEC, clip_model, CLASSES, tmp_path, CPU)
    assert sum(calls) == 3 * 80  # every prompt encoded exactly once
    files = list((tmp_path / "zeroshot_heads").rglob("*.pt"))
    assert len(files) == 1
    key = head_key(SPEC, CLASSES)
    assert files[0] == tmp_path / "zeroshot_heads" / SPEC.id / f"{key}.pt"
    assert info["head_key"] == key
    assert (info["n_templates"], info["n_classes"], info["logit_scale"]) == (80, 3, 100.0)
    assert info["learned_logit_scale"] == pytest.approx(clip_model.logit_scale.detach().exp().item())
    torch.testing.assert_close(weights, reference_weights(clip_model, CLASSES), rtol=0, atol=1e-6)

    calls.clear()
    again, info_again = load_or_build_zeroshot_weights(SPEC, clip_model, CLASSES, tmp_path, CPU)
    assert calls == []  # read from disk, not re-encoded
    assert torch.equal(again, weights)
    assert info_again == info


def test_different_class_list_gives_different_key_and_file(clip_model, tmp_path):
    other = ["tench", "goldfish"]
    assert head_key(SPEC, CLASSES) != head_key(SPEC, other)
    assert head_key(SPEC, CLASSES) != head_key(SPEC, list(reversed(CLASSES)))  # order matters: column k = class k
    assert head_key(SPEC, CLASSES) == head_key(SPEC, list(CLASSES))  # deterministic
    assert head_key(SPEC, CLASSES) != head_key(CATALOGUE["demo_random_convnext_clip"], CLASSES)
    first, _ = load_or_build_zeroshot_weights(SPEC, clip_model, CLASSES, tmp_path, CPU)
    second, info = load_or_build_zeroshot_weights(SPEC, clip_model, other, tmp_path, CPU)
    assert second.shape == (SPEC.custom_config["embed_dim"], 2)
    assert info["head_key"] == head_key(SPEC, other)
    torch.testing.assert_close(second, first[:, :2], rtol=0, atol=1e-6)  # same classes -> same columns
    assert len(list((tmp_path / "zeroshot_heads").rglob("*.pt"))) == 2


def test_resolution_sweep_specs_share_one_head(clip_model):
    # the head is the text tower's: the sweep's specs (vision_cfg.image_size = r) reuse it; the text config does not
    at_336 = spec_at_resolution(SPEC, 336)
    assert at_336.custom_config["vision_cfg"]["image_size"] == 336
    assert head_key(at_336, CLASSES) == head_key(SPEC, CLASSES)
    tokenizer = backend_for(SPEC).tokenizer(SPEC)
    reference = zeroshot.build_zeroshot_weights(clip_model, tokenizer, CLASSES, CPU)
    for r in (112, 336):
        swept = build_at_resolution(SPEC, r)[1]  # the network the sweep evaluates at r
        torch.testing.assert_close(zeroshot.build_zeroshot_weights(swept, tokenizer, CLASSES, CPU), reference)
    wider_text = {**SPEC.custom_config, "text_cfg": {**SPEC.custom_config["text_cfg"], "width": 96}}
    assert head_key(dataclasses.replace(SPEC, custom_config=wider_text), CLASSES) != head_key(SPEC, CLASSES)
