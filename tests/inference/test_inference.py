"""The cached single-pass inference: values, resumption, configuration changes and bad input."""

from __future__ import annotations

import io
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from lightning.pytorch.callbacks import Callback
from PIL import Image

from beyond_imagenet.base.config import Params, parse_params
from beyond_imagenet.base.errors import (
    DatasetLayoutError,
    NonFiniteLogitsError,
    UnknownNameError,
    UserError,
    WeightsUnavailableError,
)
from beyond_imagenet.base.hashing import config_hash
from beyond_imagenet.data.decode import decode_rgb
from beyond_imagenet.inference.cache import cache_path, is_complete, load_cache
from beyond_imagenet.inference.jobs import plan_jobs
from beyond_imagenet.inference.run import run_inference
from beyond_imagenet.models.backbone import Backbone
from beyond_imagenet.models.build import build_backbone
from beyond_imagenet.models.catalogue import CATALOGUE
from beyond_imagenet.models.preprocessing import build_transform, resolve_preprocessing
from beyond_imagenet.models.zeroshot import load_or_build_zeroshot_weights, openai_imagenet_classnames
from beyond_imagenet.stages.infer import infer
from beyond_imagenet.stages.params import dataset_variants
from helpers import image_folder_params

SUP, CLIP = "demo_random_vit_sup", "demo_random_vit_clip"


make_params = image_folder_params


def run_with_callbacks(params: Params, callbacks: list) -> list:
    """The pass of ``infer(params)`` (every dataset and model of params) with Lightning callbacks attached."""
    datasets = [d for name in params.datasets for d in dataset_variants(params, name)]
    return run_inference(datasets, params.models, params.inference, callbacks)


class CountImages(Callback):
    """Counts images that reach the model; optionally interrupts the pass after ``stop_after`` batches."""

    def __init__(self, stop_after: int | None = None):
        self.images = 0
        self.batches = 0
        self.stop_after = stop_after

    def on_predict_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        self.images += len(outputs["index"])
        self.batches += 1
        if self.stop_after is not None and self.batches >= self.stop_after:
            raise RuntimeError("simulated crash")


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory, small_demo_root):
    tmp = tmp_path_factory.mktemp("reference")
    params = make_params(tmp, small_demo_root, [SUP, CLIP])
    counter = CountImages()
    run_with_callbacks(params, [counter])
    return params, counter


def test_cache_equals_direct_forward_of_each_model(reference_run, small_demo_root):
    params, counter = reference_run
    assert counter.images == 24  # 4 classes x 6 images, each decoded and run once for both models
    sup = load_cache(cache_path(params.inference.cache_dir, "small", SUP))
    clip = load_cache(cache_path(params.inference.cache_dir, "small", CLIP))
    files = sorted(small_demo_root.glob("*/*.JPEG"), key=lambda p: (p.parent.name, p.name))
    assert sup.sample_ids == [p.name for p in files] == clip.sample_ids
    np.testing.assert_array_equal(sup.targets, np.repeat(np.arange(4), 6))
    for model_id, cache in ((SUP, sup), (CLIP, clip)):
        spec = CATALOGUE[model_id]
        backbone, clip_model = build_backbone(spec)
        if clip_model is not None:
            weights, _ = load_or_build_zeroshot_weights(
                spec,
                clip_model,
                openai_imagenet_classnames(),
                Path(params.inference.cache_dir),
                torch.device("cpu"),
            )
            backbone.set_zeroshot_weights(weights)
        transform = build_transform(resolve_preprocessing(spec, "paper"))
        batch = torch.stack([transform(decode_rgb(p)) for p in files])
        with torch.no_grad():
            logits, features = backbone(batch)
        np.testing.assert_allclose(cache.logits, logits.numpy(), rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(cache.features, features.numpy(), rtol=1e-4, atol=1e-4)
        assert cache.logits.shape == (24, 1000)  # ImageNet-1k output space; analyses keep the 4 columns


def test_meta_records_provenance(reference_run):
    params, _ = reference_run
    cache = load_cache(cache_path(params.inference.cache_dir, "small", CLIP))
    meta = cache.meta
    assert meta["model"]["weights_id"] == CATALOGUE[CLIP].weights_id
    assert meta["preprocessing"]["interpolation"] == "bicubic" and meta["preprocessing"]["resize"] == 224
    assert meta["precision"] == "fp32" and meta["n_samples"] == 24 and meta["skipped"] == []
    assert len(meta["dataset"]["files_sha256"]) == 64
    assert meta["label_space"]["imagenet_columns"] == [1, 250, 500, 999]
    assert meta["zeroshot_head"]["n_templates"] == 80 and meta["zeroshot_head"]["logit_scale"] == 100.0
    assert {"git_sha", "versions", "platform"} <= set(meta["environment"])
    assert meta["config_hash"] == config_hash(meta["config"])


def test_second_run_reuses_complete_caches_without_building_models(reference_run, monkeypatch, small_demo_root):
    params, _ = reference_run

    def refuse(spec):
        raise AssertionError("a complete cache must not rebuild its model")

    monkeypatch.setattr("beyond_imagenet.inference.run.build_backbone", refuse)
    jobs = infer(params)
    assert all(job.complete for job in jobs)


def test_interrupted_pass_resumes_from_finished_chunks(tmp_path, small_demo_root, reference_run):
    params = make_params(tmp_path, small_demo_root, [SUP, CLIP])
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_with_callbacks(params, [CountImages(stop_after=3)])  # 12 images: chunk 0 done, chunk 1 half
    partial = cache_path(params.inference.cache_dir, "small", SUP) / "partial"
    assert sorted(p.name for p in partial.glob("chunk_*.npz")) == ["chunk_000000.npz"]
    counter = CountImages()
    run_with_callbacks(params, [counter])
    assert counter.images == 16  # chunks 1 and 2 only
    reference_params, _ = reference_run
    for model_id in (SUP, CLIP):
        resumed = load_cache(cache_path(params.inference.cache_dir, "small", model_id))
        reference = load_cache(cache_path(reference_params.inference.cache_dir, "small", model_id))
        np.testing.assert_allclose(resumed.logits, reference.logits, rtol=1e-5, atol=1e-5)
        assert resumed.sample_ids == reference.sample_ids
        assert not (resumed.path / "partial").exists()


def test_changed_configuration_is_recomputed_not_reused(tmp_path, small_demo_root):
    params = make_params(tmp_path, small_demo_root, [SUP])
    infer(params)
    old_hash = load_cache(cache_path(params.inference.cache_dir, "small", SUP)).meta["config_hash"]
    bf16 = make_params(tmp_path, small_demo_root, [SUP], precision="bf16")
    (job,) = plan_jobs(dataset_variants(bf16, "small"), [SUP], bf16.inference)
    assert not job.complete and job.hash != old_hash
    counter = CountImages()
    run_with_callbacks(bf16, [counter])
    assert counter.images == 24
    cache = load_cache(cache_path(bf16.inference.cache_dir, "small", SUP))
    assert cache.meta["precision"] == "bf16" and is_complete(cache.path, job.hash)


def _write_problem_images(class_dir: Path) -> dict[str, str]:
    """Odd but valid images plus broken files; returns {file name: 'ok' | 'bad'}."""
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)
    Image.fromarray(rgb[..., 0]).save(class_dir / "gray.JPEG", "JPEG")
    Image.fromarray(rgb).convert("CMYK").save(class_dir / "cmyk.JPEG", "JPEG")
    Image.fromarray(np.dstack([rgb, rgb[..., :1]])).save(class_dir / "rgba.png")
    Image.fromarray(rgb).convert("P").save(class_dir / "palette.png")
    Image.fromarray(rgb[..., 0].astype(np.uint16) * 257).save(class_dir / "sixteen.png")  # mode I;16
    Image.fromarray(rgb).save(class_dir / "png_named.JPEG", "PNG")
    (class_dir / "empty.JPEG").write_bytes(b"")
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "JPEG")
    (class_dir / "truncated.JPEG").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    names = ["gray.JPEG", "cmyk.JPEG", "rgba.png", "palette.png", "sixteen.png", "png_named.JPEG"]
    return {**dict.fromkeys(names, "ok"), "empty.JPEG": "bad", "truncated.JPEG": "bad"}


@pytest.fixture()
def problem_dataset(tmp_path, small_demo_root):
    root = tmp_path / "problem"
    shutil.copytree(small_demo_root, root)
    expected = _write_problem_images(next(p for p in sorted(root.iterdir()) if p.is_dir()))
    return root, expected


def test_bad_images_stop_the_run_naming_every_path(tmp_path, problem_dataset):
    root, expected = problem_dataset
    params = make_params(tmp_path, root, [SUP])
    with pytest.raises(UserError) as err:
        infer(params)
    message = str(err.value)
    for name, status in expected.items():
        assert (name in message) == (status == "bad"), name
    assert "bad_images: skip" in message


def test_skip_policy_records_skipped_images_and_keeps_the_rest(tmp_path, problem_dataset):
    root, expected = problem_dataset
    params = make_params(tmp_path, root, [SUP], bad_images="skip")
    infer(params)
    cache = load_cache(cache_path(params.inference.cache_dir, "small", SUP))
    assert len(cache) == 24 + 6  # 6 odd-but-valid images decoded, 2 broken ones skipped
    assert {s["sample_id"] for s in cache.meta["skipped"]} == {"empty.JPEG", "truncated.JPEG"}
    assert all(Path(s["path"]).exists() and s["reason"] for s in cache.meta["skipped"])
    assert {n for n, s in expected.items() if s == "ok"} <= set(cache.sample_ids)


def test_nan_logits_raise_naming_the_samples(tmp_path, small_demo_root, monkeypatch):
    original = Backbone.logits_from_features

    def poisoned(self, features):
        logits = original(self, features).clone()
        logits[1] = float("nan")
        return logits

    monkeypatch.setattr(Backbone, "logits_from_features", poisoned)
    params = make_params(tmp_path, small_demo_root, [SUP])
    with pytest.raises(NonFiniteLogitsError) as err:
        infer(params)
    first_ids = sorted(p.name for p in small_demo_root.glob("*/*.JPEG"))
    assert "ILSVRC2012_val_" in str(err.value) and "never counted" in str(err.value)
    assert any(sample in str(err.value) for sample in first_ids)
    assert not (cache_path(params.inference.cache_dir, "small", SUP) / "meta.json").exists()


def test_missing_weights_offline_fail_fast_before_any_model_is_built(tmp_path, small_demo_root, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.try_to_load_from_cache", lambda *a, **k: None)

    def refuse(spec):
        raise AssertionError("no model may be built when weights are missing")

    monkeypatch.setattr("beyond_imagenet.inference.run.build_backbone", refuse)
    params = make_params(tmp_path, small_demo_root, ["vit_sup", "convnext_clip"])
    start = time.perf_counter()
    with pytest.raises(WeightsUnavailableError) as err:
        infer(params)
    assert time.perf_counter() - start < 10
    message = str(err.value)
    assert "timm/deit3_base_patch16_224.fb_in22k_ft_in1k" in message
    assert "laion/CLIP-convnext_base-laion400M-s13B-b51K" in message
    assert "make fetch-weights" in message


def test_unknown_model_and_dataset_names_suggest_close_matches(tmp_path, small_demo_root):
    params = make_params(tmp_path, small_demo_root, ["demo_random_vit_sop"])
    with pytest.raises(UnknownNameError) as err:
        infer(params)
    assert "demo_random_vit_sup" in str(err.value)
    params = make_params(tmp_path, small_demo_root, [SUP])
    with pytest.raises(UnknownNameError) as err:
        infer(params, dataset_names=["smal"])
    assert "'small'" in str(err.value)


def test_wrong_layout_is_reported_before_models_load(tmp_path, small_demo_root, monkeypatch):
    flat = tmp_path / "flat"
    flat.mkdir()
    for image in list(small_demo_root.glob("*/*.JPEG"))[:3]:
        shutil.copy(image, flat / image.name)
    monkeypatch.setattr("beyond_imagenet.inference.run.build_backbone", lambda spec: 1 / 0)
    with pytest.raises(DatasetLayoutError) as err:
        infer(make_params(tmp_path, flat, [SUP]))
    assert str(flat) in str(err.value) and "<wnid>" in str(err.value)


def test_custom_label_space_uses_clip_head_over_its_own_names(tmp_path, small_demo_root):
    root = tmp_path / "custom"
    for class_dir, name in zip(sorted(small_demo_root.iterdir()), ["apple", "boat", "cloud", "dune"], strict=True):
        shutil.copytree(class_dir, root / name)
    params = parse_params(
        {
            "models": [SUP, CLIP],
            "datasets": {
                "mine": {
                    "path": str(root),
                    "kind": "image_folder",
                    "label_space": "custom",
                    "class_folders": "any",
                }
            },
            "inference": {"num_workers": 0, "cache_dir": str(tmp_path / "cache")},
            "tracking": {"enabled": False},
        }
    )
    with pytest.raises(UserError, match="no mapping into ImageNet-1k"):
        infer(params)
    infer(params, model_ids=[CLIP])
    cache = load_cache(cache_path(params.inference.cache_dir, "mine", CLIP))
    assert cache.logits.shape == (24, 4)
    assert cache.meta["output_space"]["kind"] == "label_space"


def test_accelerator_setting_is_resolved_or_named_in_the_error():
    from beyond_imagenet.inference.engine import resolve_accelerator

    assert resolve_accelerator("cpu") == "cpu"
    assert resolve_accelerator("auto") == ("gpu" if torch.cuda.is_available() else "cpu")
    with pytest.raises(UserError, match=r"probe accelerator must be 'auto', 'cpu', 'cuda' or 'gpu', got 'tpu'"):
        resolve_accelerator("tpu", "probe accelerator")
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match=r"params: inference\.device is 'gpu' but no CUDA GPU is visible"):
            resolve_accelerator("gpu")
