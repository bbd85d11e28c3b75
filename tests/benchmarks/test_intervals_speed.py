"""Smoke test of benchmarks/intervals_speed.py at a tiny scale: the JSON's structure and its counts (no timings)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from helpers import REPO_ROOT, loaded_script

SCRIPT = REPO_ROOT / "benchmarks" / "intervals_speed.py"
TINY = ["--scale", "0.002", "--resamples", "100"]
DERIVED_PER_MODEL = 2 + 15 + 1 + 1 + 4  # ImageNet-C top-1/top-5 means, per-corruption means, mean, mCE; VTAB summary


@pytest.fixture(scope="module")
def bench():
    with loaded_script(SCRIPT, "bench_intervals_speed") as module:
        yield module


@pytest.fixture(scope="module")
def tiny(bench, tmp_path_factory):
    out = tmp_path_factory.mktemp("intervals_speed") / "tiny.json"
    result = bench.main([*TINY, "--out", str(out)])
    return result, json.loads(out.read_text())


def test_json_is_written_with_every_section(tiny):
    result, written = tiny
    assert written == json.loads(json.dumps(result, default=float))
    for key in ("what", "excluded", "scale", "resamples", "image_sets", "counts", "seconds", "cpu_seconds", "memory",
                "machine", "targets"):  # fmt: skip
        assert key in written, key
    assert written["scale"] == 0.002 and written["resamples"] == 100
    assert "logits" in written["excluded"] and "15.0 GB" in written["excluded"]
    assert written["bootstrap_grouping"] == "one call per model per image set"  # the default


def test_counts_are_consistent(bench, tiny):
    _, result = tiny
    counts, sets = result["counts"], result["image_sets"]
    per_model = counts["metrics_with_replicates_per_model"]
    assert list(per_model) == list(bench.MODELS) and counts["models"] == 4
    metrics = per_model["vit_sup"]
    assert set(per_model.values()) == {metrics}  # every model has the same metrics
    assert metrics == sum(s["statistics_per_model"] for s in sets) + DERIVED_PER_MODEL
    assert counts["comparisons"] == 6 * metrics  # all 6 model pairs on every metric with replicates
    assert counts["ranking_rows"] == 4 * metrics and counts["results_rows"] == 4 * metrics
    assert 0 <= counts["comparisons_real"] <= counts["comparisons"]
    assert counts["image_sets"] == len(sets) == 1 + 4 + 1 + 16  # val (+C), 4 shifts, cue-conflict, 16 VTAB sources
    assert counts["bootstrap_calls"] == 4 * len(sets)


def test_image_sets_follow_the_paper_at_scale(tiny):
    _, result = tiny
    sets = {s["name"].split(" ")[0]: s for s in result["image_sets"]}
    val = sets["imagenet_val"]
    assert val["images"] == 50 * val["classes"] and val["plan"] == "within class"
    assert val["imagenet_c_sets"] == 75 and val["calibration_bins"] == 15
    assert val["statistics_per_model"] >= 2 + 4 + 150 + 3  # top-1/5, calibration, C sets, ImageNet-X (some factors)
    assert sets["imagenet_v2"]["images"] == 10 * sets["imagenet_v2"]["classes"]
    assert sets["imagenet_a"]["plan"] == "over images"
    assert sets["cue_conflict"]["images"] == 16 * 10 and sets["cue_conflict"]["plan"] == "within class"
    tasks = [t for s in result["image_sets"] if s["name"].startswith("vtab/") for t in s["tasks"]]
    assert len(tasks) == len(set(tasks)) == 19
    assert all(s["resamples"] == 100 and s["columns_per_model"] >= 2 for s in result["image_sets"])


def test_phases_memory_machine_and_targets(bench, tiny):
    _, result = tiny
    seconds, cpu = result["seconds"], result["cpu_seconds"]
    for phase in ("generate", *bench.STATISTICS_PHASES):
        assert seconds[phase] >= 0 and cpu[phase] >= 0
    assert math.isclose(seconds["statistics_total"], sum(seconds[p] for p in bench.STATISTICS_PHASES))
    memory = result["memory"]
    assert "ru_maxrss" in memory["measure"]
    assert memory["peak_rss_mib"] >= memory["rss_after_imports_mib"] > 0
    assert memory["peak_by_step"][0]["after"] == "imports"
    assert len(memory["peak_by_step"]) == len(result["image_sets"]) + 3
    assert result["machine"]["numpy"] == np.__version__ and result["machine"]["cpu_count"] >= 1
    targets = result["targets"]
    assert targets["total_s"] == 120 and targets["peak_rss_gib"] == 4
    assert targets["pass"] == (targets["total_pass"] and targets["peak_pass"])


@pytest.mark.parametrize(("grouping", "calls_per_set"), [("set", lambda s: 1), ("pipeline", lambda s: 4 if s else 1)])
def test_grouping_draws_the_same_resamples(bench, tiny, tmp_path, grouping, calls_per_set):
    _, per_model = tiny
    other = bench.main([*TINY, "--grouping", grouping, "--out", str(tmp_path / f"{grouping}.json")])
    assert other["bootstrap_grouping"] == bench.GROUPING[grouping]
    expected = sum(calls_per_set(s["name"].startswith("vtab/")) for s in other["image_sets"])
    assert other["counts"]["bootstrap_calls"] == expected
    for key in ("comparisons", "ranking_rows", "metrics_with_replicates_per_model", "comparisons_real"):
        assert other["counts"][key] == per_model["counts"][key], key  # the draws depend on the plan alone


@pytest.mark.parametrize("argv", [["--scale", "0"], ["--scale", "1.5"], ["--resamples", "50"]])
def test_bad_arguments_are_refused(bench, argv):
    with pytest.raises(SystemExit):
        bench.main(argv)
