"""The GPU paths of the inference pass against the CPU reference (issue 6).

Marked ``gpu`` and skipped without CUDA, so ``make test`` (CI, no GPU) never runs them; on a GPU machine run
``make test-gpu``. Each test computes the same thing on the CPU (fp32, Pillow decoding: the reference path) and
on the GPU with one speed option switched on, and bounds the difference:

- nvJPEG decoding + on-device resize vs Pillow + torchvision transforms: mean absolute difference under 2 of 255
  levels, the bound torchvision's own tests use between nvJPEG and libjpeg;
- channels_last on the GPU vs NCHW on the CPU, fp32: logits and features within 1 % of their scale (cuDNN
  convolutions may run in TF32 by default, about 3 significant digits);
- the whole pass (``infer``) on the GPU with ``decode: tensor`` vs the CPU pass: same samples in the same
  order, logits within 1 % of their scale, top-1 agreement of at least 90 % (the CPU-only bound of
  ``test_tensor_decode``), and the cache recording its accelerator, speed options and TF32 flags;
- bf16 autocast on the GPU: logits within 10 % of their scale of the fp32 pass, and ``fidelity`` reporting
  exactly the agreement computed from the two caches.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from helpers import small_pass_params

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (make test-gpu on a GPU machine)"),
]

SUPERVISED_MODELS = ["demo_random_vit_sup", "demo_random_convnext_sup"]  # timm only: no open_clip needed


def _jpeg_paths(root: Path) -> list[Path]:
    return sorted(root.rglob("*.JPEG"))


def _params(root: Path, cache_dir: Path, **inference) -> object:
    from beyond_imagenet.base.config import parse_params

    return parse_params(small_pass_params(root, cache_dir, SUPERVISED_MODELS, **inference))


def _caches(params) -> dict:
    from beyond_imagenet.inference.cache import load_cache
    from beyond_imagenet.stages.infer import infer

    return {job.spec.id: load_cache(job.path) for job in infer(params)}


def _assert_close_to_scale(reference: np.ndarray, other: np.ndarray, fraction: float) -> None:
    scale = float(np.abs(reference).max())
    worst = float(np.abs(reference - other).max())
    assert worst <= fraction * scale, f"max |diff| {worst:.3g} > {fraction:.0%} of scale {scale:.3g}"


def test_nvjpeg_decode_and_resize_close_to_pillow(small_demo_root):
    from beyond_imagenet.data.decode import decode_rgb
    from beyond_imagenet.inference import tensor_decode
    from beyond_imagenet.models.catalogue import resolve_model
    from beyond_imagenet.models.preprocessing import build_transform, resolve_preprocessing

    assert tensor_decode._native_available(), "torchvision's image extension must load for the nvJPEG path"
    paths = _jpeg_paths(small_demo_root)
    samples = [SimpleNamespace(plain_file=p, sample_id=p.name) for p in paths]
    dataset = tensor_decode.RawBytesDataset(samples, np.arange(len(paths)))
    batch = tensor_decode.collate_raw([dataset[i] for i in range(len(paths))])
    assert all(tensor_decode._plain_jpeg(d.numpy()) for d in batch["data"])  # all go to nvJPEG, none to Pillow
    images, errors = tensor_decode.decode_batch(batch["data"], "cuda")
    assert errors == [""] * len(paths) and all(image.is_cuda for image in images)
    for model in ("demo_random_vit_sup", "demo_random_vit_clip"):  # bilinear and bicubic
        spec = resolve_preprocessing(resolve_model(model), "paper")
        inputs, errors = tensor_decode.decode_and_preprocess(batch["data"], {"k": spec}, "cuda")
        assert errors == [""] * len(paths)
        expected = torch.stack([build_transform(spec)(decode_rgb(p)) for p in paths])
        std = torch.tensor(spec.std).view(1, 3, 1, 1)
        levels = (inputs["k"].cpu() - expected).abs() * std * 255  # back to 8-bit levels
        assert levels.mean() < 2.0, (spec.interpolation, float(levels.mean()))


def test_channels_last_on_gpu_matches_cpu():
    from beyond_imagenet.inference.engine import MultiModelPredictor
    from beyond_imagenet.models.build import build_backbone
    from beyond_imagenet.models.catalogue import resolve_model

    images = torch.randn(4, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    batch = {"index": torch.arange(4), "error": [""] * 4, "inputs": {"k": images}}
    for model in SUPERVISED_MODELS:
        backbone = build_backbone(resolve_model(model))[0].eval()
        with torch.inference_mode():
            reference = MultiModelPredictor({"m": backbone}, {"m": "k"}).predict_step(batch, 0)["outputs"]["m"]
            module = MultiModelPredictor({"m": backbone}, {"m": "k"}, channels_last=True).cuda()
            gpu_batch = {**batch, "inputs": {"k": images.cuda()}}
            outputs = module.predict_step(gpu_batch, 0)["outputs"]["m"]
        for a, b in zip(reference, outputs, strict=True):
            assert b.is_cuda and b.dtype == torch.float32
            _assert_close_to_scale(a.numpy(), b.cpu().numpy(), 0.01)


def test_gpu_pass_with_tensor_decode_matches_cpu_pass(tmp_path, small_demo_root):
    from beyond_imagenet.inference.cache import label_space_logits

    cpu = _caches(_params(small_demo_root, tmp_path / "cpu", device="cpu", decode="pillow"))
    gpu = _caches(_params(small_demo_root, tmp_path / "gpu", device="cuda", decode="tensor", channels_last=True))
    for model in SUPERVISED_MODELS:
        a, b = cpu[model], gpu[model]
        assert a.sample_ids == b.sample_ids and len(a.sample_ids) == 24
        assert b.meta["accelerator"] == "gpu" and b.meta["speed_options"]["channels_last"] is True
        assert set(b.meta["environment"]["cuda_fp32_math"]) == {
            "matmul_allow_tf32",
            "cudnn_allow_tf32",
            "float32_matmul_precision",
        }
        _assert_close_to_scale(a.logits, b.logits, 0.01)
        _assert_close_to_scale(a.features, b.features, 0.01)
        agreement = 100 * np.mean(label_space_logits(a).argmax(1) == label_space_logits(b).argmax(1))
        assert agreement >= 90.0, (model, agreement)


def test_bf16_fidelity_on_gpu(tmp_path, small_demo_root):
    from beyond_imagenet.cli import main
    from beyond_imagenet.inference.cache import label_space_logits, load_cache

    params_file = tmp_path / "params.yaml"
    params_file.write_text(
        json.dumps(small_pass_params(small_demo_root, tmp_path / "c", SUPERVISED_MODELS[:1], device="cuda"))
    )
    out = tmp_path / "fidelity"
    assert main(["fidelity", "--params", str(params_file), "--dataset", "small", "--out", str(out)]) == 0
    result = json.loads(next(out.glob("*.json")).read_text())["results"][f"small/{SUPERVISED_MODELS[0]}"]
    a, b = load_cache(result["caches"]["a"]), load_cache(result["caches"]["b"])
    assert a.meta["precision"] == "fp32" and b.meta["precision"] == "bf16" and b.meta["accelerator"] == "gpu"
    _assert_close_to_scale(a.logits, b.logits, 0.10)
    agreement = 100 * np.mean(label_space_logits(a).argmax(1) == label_space_logits(b).argmax(1))
    assert result["top1_agreement"] == pytest.approx(agreement)
