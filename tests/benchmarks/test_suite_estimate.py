"""benchmarks/suite_estimate.py: the paper suite's wall time from a measured four-model rate (issue 6)."""

from __future__ import annotations

import importlib.util
import json

import pytest

from helpers import REPO_ROOT


@pytest.fixture(scope="module")
def estimator():
    spec = importlib.util.spec_from_file_location("suite_estimate", REPO_ROOT / "benchmarks" / "suite_estimate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_workload_sizes_follow_the_protocol(estimator):
    sizes = dict(estimator.workload())
    assert sizes["ImageNet-C (15 corruptions x 5 severities)"] == 3_750_000
    assert sizes["ImageNet-Sketch"] == 50_889 and sizes["PUG-ImageNet"] == 88_328
    # (112/224)^2 + 1 + (336/224)^2 + (512/224)^2 + (640/224)^2 = 0.25 + 1 + 2.25 + 5.2245 + 8.1633
    assert sizes["invariance: resolution sweep (5 points, pixel-weighted)"] == pytest.approx(16.8878 * 50_000, rel=1e-4)
    assert sizes["VTAB clipbench19 features"] == 1_713_767


def test_total_is_images_over_rate(estimator, tmp_path, capsys):
    _, total = estimator.estimate(2_000.0)
    assert total == pytest.approx(sum(images for _, images in estimator.workload()) / 2_000.0)
    measured = {"machine": {"device_name": "H100"}, "end_to_end": {"bf16": {"all_models": {"images_per_s": 1600.0}}}}
    path = tmp_path / "t.json"
    path.write_text(json.dumps(measured))
    assert estimator.main(["--throughput", str(path)]) == 0
    out = capsys.readouterr().out
    expected_min = sum(images for _, images in estimator.workload()) / 1600.0 / 60
    assert f"{expected_min:8.1f} min" in out and "H100, bf16 end-to-end" in out
    with pytest.raises(SystemExit):
        estimator.main(["--throughput", str(path), "--mode", "fp32"])
