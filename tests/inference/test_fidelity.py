"""`beyond-imagenet fidelity`: two inference settings on the same images, compared (issue 6)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from beyond_imagenet.base.config import parse_params
from beyond_imagenet.base.errors import UserError
from beyond_imagenet.inference.fidelity import compare_logits, parse_side, side_inference, side_label
from helpers import small_pass_params


def test_compare_logits_against_hand_computation():
    a = np.array([[2.0, 0.0, 0.0], [0.0, 3.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    b = np.array([[2.0, 0.0, 0.0], [0.0, 3.0, 4.0], [0.0, 0.0, 1.0], [0.0, 2.0, 0.0]])
    targets = np.array([0, 1, 2, 1])
    r = compare_logits(a, b, targets)
    assert r["top1_agreement"] == 50.0  # rows 0 and 2 keep their prediction
    assert r["top1_a"] == 75.0 and r["top1_b"] == 75.0 and r["delta_top1"] == 0.0
    assert r["max_abs_logit_diff"] == 4.0 and r["mean_abs_logit_diff"] == pytest.approx(7.0 / 12)
    conf_a = np.exp(a.max(1)) / np.exp(a).sum(1)
    correct_a = a.argmax(1) == targets
    # 15 equal-width bins; rows 2 and 3 share a confidence (e / (e + 2)), so a bin: sum_bins |conf - acc| n_b / n
    bins = np.floor(conf_a * 15).astype(int)
    ece_a = sum(abs(conf_a[bins == k].mean() - correct_a[bins == k].mean()) * (bins == k).sum() for k in set(bins)) / 4
    assert r["ece_a"] == pytest.approx(ece_a)
    assert r["delta_ece"] == pytest.approx(r["ece_b"] - r["ece_a"])


def test_sides_parse_and_get_their_own_cache_folder():
    assert parse_side("precision=bf16, compile=true") == {"precision": "bf16", "compile": True}
    assert side_label({"precision": "bf16", "compile": True}) == "compile-true_precision-bf16"
    params = parse_params({"models": ["demo_random_vit_sup"], "datasets": {}})
    side = side_inference(params.inference, {"precision": "bf16"})
    assert side.precision == "bf16" and side.cache_dir == "cache/fidelity/precision-bf16"
    for bad in ("precision", "batch_size=3", ""):
        with pytest.raises(UserError):
            parse_side(bad)
    with pytest.raises(UserError, match="precision"):
        side_inference(params.inference, {"precision": "fp16"})


def test_fidelity_fp32_vs_bf16_on_cpu(tmp_path, small_demo_root):
    from beyond_imagenet.cli import main
    from beyond_imagenet.inference.cache import load_cache
    from beyond_imagenet.stages.infer import infer

    params_file = tmp_path / "params.yaml"
    params = small_pass_params(small_demo_root, tmp_path / "c", ["demo_random_convnext_sup"], device="cpu")
    params_file.write_text(json.dumps(params))
    out = tmp_path / "fid"
    argv = ["fidelity", "--params", str(params_file), "--dataset", "small", "--out", str(out)]
    assert main(argv) == 0
    report = json.loads(next(out.glob("*.json")).read_text())
    result = report["results"]["small/demo_random_convnext_sup"]
    a, b = load_cache(result["caches"]["a"]), load_cache(result["caches"]["b"])
    assert a.meta["precision"] == "fp32" and b.meta["precision"] == "bf16"
    assert result["max_abs_logit_diff"] > 0  # bf16 autocast does change the numbers
    # the fp32 side is the normal pass: identical logits to the main cache
    from beyond_imagenet.base.config import load_params

    (main_job,) = infer(load_params(params_file))
    np.testing.assert_array_equal(load_cache(main_job.path).logits, a.logits)
    from beyond_imagenet.inference.cache import label_space_logits

    agreement = 100 * np.mean(label_space_logits(a).argmax(1) == label_space_logits(b).argmax(1))
    assert result["top1_agreement"] == pytest.approx(agreement) and result["n_samples"] == 24
    assert main([*argv[:-2], "--out", str(out), "--b", "precision=fp32"]) == 2  # identical sides: clear error
