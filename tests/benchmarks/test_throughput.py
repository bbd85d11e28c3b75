"""Smoke test of benchmarks/throughput.py (issue 6) on CPU: tiny demo models, a few generated JPEGs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from PIL import Image

from helpers import REPO_ROOT, loaded_script

SCRIPT = REPO_ROOT / "benchmarks" / "throughput.py"


@pytest.fixture(scope="module")
def bench():
    with loaded_script(SCRIPT, "bench_throughput") as module:
        yield module


def test_generated_jpegs_are_imagenet_like_and_reused(bench, tmp_path):
    first = bench.generate_jpegs(tmp_path, 16, workers=2)
    root = Path(first["path"])
    files = sorted(root.glob("*/*.JPEG"))
    assert first["generated"] == 16 and len(files) == 16
    assert root == tmp_path / "jpegs"
    assert {f.parent.name for f in files} == {p.parent.name for p in bench.jpeg_paths(root, 16)}
    assert all(f.parent.name.startswith("n") and len(f.parent.name) == 9 for f in files)  # real wnids
    for path in files:
        assert path.stat().st_size >= 10 * 1024
        with Image.open(path) as image:
            assert image.format == "JPEG" and image.mode == "RGB"
            image.load()  # decodes completely
            width, height = image.size
        assert 300 <= min(width, height) <= max(width, height) <= 500
    assert len({Image.open(f).size for f in files}) > 1  # some variety of sizes
    assert first["kib_min"] >= 10 and 10 <= first["kib_mean"] <= 200

    stamps = {f: f.stat().st_mtime_ns for f in files}
    again = bench.generate_jpegs(tmp_path, 16, workers=2)
    assert again["generated"] == 0 and again["generate_s"] == 0.0
    assert {f: f.stat().st_mtime_ns for f in sorted(root.glob("*/*.JPEG"))} == stamps

    smaller = bench.generate_jpegs(tmp_path, 12, workers=1)  # a new count: keeps the files rendered the same way
    assert smaller["generated"] == 0 and len(list(root.glob("*/*.JPEG"))) == 12
    assert bench.generate_jpegs(tmp_path, 13, workers=1)["generated"] == 1
    assert (tmp_path / "jpegs.json").exists() and not (tmp_path / "jpegs.tmp").exists()


def test_combined_throughput(bench):
    assert bench.combined_throughput([100.0]) == 100.0
    assert bench.combined_throughput([100.0, 100.0]) == pytest.approx(50.0)
    assert bench.combined_throughput([7738, 3913, 6694, 3911]) == pytest.approx(1266.0, abs=1.0)


def test_model_only_times_a_clip_tower_with_its_head(bench):
    rates = bench.model_only(["demo_random_vit_clip"], "cpu", ["fp32", "bf16"], batch_size=2, iters=2, warmup=1)
    rows = rates["demo_random_vit_clip"]
    assert set(rows) == {"fp32", "bf16"}
    assert all(row["images_per_s"] > 0 and row["iters"] == 2 for row in rows.values())


def test_defaults_per_device(bench):
    cpu = bench.parse_args(["--device", "cpu"])
    assert cpu.models == list(bench.DEMO_MODELS) and cpu.batch_size == 8 and cpu.images == 64
    assert cpu.modes == ["fp32", "bf16"] and cpu.output == SCRIPT.parent / "throughput_cpu.json"
    assert set(bench.REFERENCE) == set(bench.PAPER_MODELS)
    chosen = bench.parse_args(["--device", "cpu", "--models", "vit_sup", "--modes", "bf16_compile", "--images", "5"])
    assert chosen.models == ["vit_sup"] and chosen.modes == ["bf16_compile"] and chosen.images == 5


@pytest.mark.slow
def test_cpu_smoke_run_writes_a_consistent_record(bench, tmp_path, capsys):
    models = ["demo_random_vit_sup", "demo_random_convnext_sup"]
    output = tmp_path / "throughput.json"
    argv = ["--device", "cpu", "--models", *models, "--images", "16", "--batch-size", "4", "--modes", "fp32"]
    argv += ["--iters", "2", "--warmup", "1", "--jpeg-workers", "2", "--workdir", str(tmp_path / "work")]
    bench.main([*argv, "--output", str(output)])
    record = json.loads(output.read_text())
    printed = capsys.readouterr().out
    assert "model-only img/s" in printed and "end-to-end pass" in printed and "targets not evaluated" in printed

    assert record["machine"]["device"] == "cpu" and record["machine"]["cpu_count"] >= 1
    assert {"torch", "timm", "open_clip"} <= set(record["versions"])
    assert record["settings"]["models"] == models and record["settings"]["batch_size"] == 4
    assert record["jpegs"]["images"] == 16 and record["jpegs"]["generated"] == 16

    for model in models:
        assert record["model_only"][model]["fp32"]["images_per_s"] > 0
    rates = [record["model_only"][m]["fp32"]["images_per_s"] for m in models]
    assert record["model_only_combined"]["fp32"] == pytest.approx(1 / sum(1 / r for r in rates))

    passes = record["end_to_end"]["fp32"]
    assert passes["one_model"]["models"] == models[:1] and passes["all_models"]["models"] == models
    for name, expected_model_only in (("one_model", rates[0]), ("all_models", 1 / sum(1 / r for r in rates))):
        result = passes[name]
        assert result["images"] == 16
        for key in ("images_per_s", "wall_s", "setup_s", "wall_images_per_s", "wall_minus_setup_images_per_s"):
            assert result[key] > 0 and math.isfinite(result[key])
        assert result["wall_s"] > result["setup_s"]
        assert result["model_only_images_per_s"] == pytest.approx(expected_model_only)
        assert result["ratio"] == pytest.approx(result["images_per_s"] / result["model_only_images_per_s"])
        assert result["inference_options"]["precision"] == "fp32"
        assert result["inference_options"].get("compile", False) is False
    assert record["model_only_over_reference"] is None  # reference ratios on CUDA only
    assert record["meets_targets"]["evaluated"] is False
    assert Path(record["settings"]["workdir"], "jpegs.json").exists()  # kept for the next run


def test_a_failing_mode_is_recorded_and_the_rest_still_runs(bench, monkeypatch):
    timed = bench.time_model

    def flaky(fn, images, iters, warmup, bf16):
        if bf16:
            raise RuntimeError("no bf16 here")
        return timed(fn, images, iters, warmup, bf16)

    monkeypatch.setattr(bench, "time_model", flaky)
    results = bench.model_only(["demo_random_vit_sup"], "cpu", ["bf16", "fp32"], batch_size=2, iters=1, warmup=1)
    rows = results["demo_random_vit_sup"]
    assert rows["bf16"]["error"] == "RuntimeError: no bf16 here" and rows["fp32"]["images_per_s"] > 0
    assert bench.combined_of(results, ["demo_random_vit_sup"], "bf16") is None
    assert bench.combined_of(results, ["demo_random_vit_sup"], "fp32") == rows["fp32"]["images_per_s"]
    record = {"model_only": results, "end_to_end": {"fp32": {"one_model": {"models": ["x"], "error": "E: boom"}}}}
    assert bench.failures(record) == ["model-only demo_random_vit_sup bf16", "end-to-end fp32 one_model"]
