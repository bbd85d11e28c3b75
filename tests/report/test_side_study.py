"""A side study's section (params ``side_studies``): metrics with intervals and readings, its own figures only."""

from __future__ import annotations

import pytest

from beyond_imagenet.base.config import parse_params
from beyond_imagenet.base.errors import UserError
from beyond_imagenet.base.record import ResultRecord
from beyond_imagenet.report import SideStudy, write_report
from beyond_imagenet.report.side_study import metric_rows, reading
from beyond_imagenet.stages.report import load_side_studies
from beyond_imagenet.stages.side_study import side_study_params
from report.synthetic_tables import full_rows, inputs, table, tiny_png

REAL = "timm-file:tf_efficientnet_lite0@data/demo/weights/lite0.pth?map=order"


def _records() -> list[ResultRecord]:
    accuracy = ResultRecord(
        "accuracy", REAL, "photos", {"accuracy/photos/top1": 75.0, "accuracy/photos/n_samples": 4.0},
        provenance={"model": {"weights_id": "sha256:abc (lite0.pth)"}},
        intervals={"accuracy/photos/top1": {"low": 19.41, "high": 99.37, "n": 4, "level": 0.95}},
    )  # fmt: skip
    shape = ResultRecord(
        "shape_bias", REAL, "cue", {"shape_bias/overall": 0.142857, "shape_bias/cat/shape_bias": 0.5},
        intervals={"shape_bias/overall": {"low": 0.0345, "high": 0.2858, "n": 48, "level": 0.95},
                   "shape_bias/cat/shape_bias": {"low": 0.0, "high": 1.0, "n": 3, "level": 0.95}},
    )  # fmt: skip
    return [accuracy, shape]


def test_rows_carry_value_interval_n_and_a_reading_and_skip_per_class_metrics():
    rows = metric_rows(_records())
    assert [r[3:6] for r in rows] == [("75.0", "[19.4, 99.4]", "4"), ("0.143", "[0.035, 0.286]", "48")]
    assert rows[0][6] == "3 of 4 images; with n = 4 the interval spans 80 points"
    assert rows[1][6].startswith("the whole interval lies below 0.5: the model decides by texture")


@pytest.mark.parametrize(
    ("low", "high", "start"),
    [(0.6, 0.9, "the whole interval lies above 0.5"), (0.3, 0.7, "the interval covers 0.5"),
     (0.1, 0.4, "the whole interval lies below 0.5")],
)  # fmt: skip
def test_the_shape_bias_reading_follows_the_interval_not_the_value(low, high, start):
    assert reading("shape_bias/overall", 0.5, low, high, 45).startswith(start)


def test_the_report_gives_the_study_its_section_and_keeps_its_figures_out_of_the_others(tmp_path):
    results_dir, side_dir = tmp_path / "results", tmp_path / "results" / "real_model"
    tiny_png(results_dir / "figures/shape_bias/cue/all_models.png")
    tiny_png(side_dir / "figures/shape_bias/real_cue/all_models.png", (0.9, 0.1, 0.1))
    study = SideStudy("A real model on real images", "configs/demo_real.yaml", [REAL], _records(), side_dir)
    results = table(full_rows("vit_sup", 50.0) + full_rows("convnext_sup", 60.0))
    written = write_report(inputs(results, results_dir, side_studies=[study]), tmp_path / "reports")
    markdown = next(p for p in written if p.name == "report.md").read_text()
    side = markdown[markdown.index("## A real model on real images") :]
    side = side[: side.index("\n## ", 1)]
    assert "| tf_efficientnet_lite0 (lite0.pth) | photos | top-1 (%) | 75.0 | [19.4, 99.4] | 4 |" in side
    assert "- top-1 (%): share of images whose highest-scoring class is the label" in side
    assert "sha256:abc (lite0.pth)" in side and "real_cue" in side
    before = markdown[: markdown.index("## A real model on real images")]
    assert "real_cue" not in before and "shape_bias/cue/all_models.png" in before


def _main_params(side_file: str):
    return parse_params(
        {
            "models": ["demo_random_vit_sup"],
            "datasets": {"v": {"path": "x", "kind": "imagenet_val"}},
            "results_dir": "out/results",
            "side_studies": {"real": {"title": "Real", "params": side_file}},
        }
    )


def test_a_missing_side_study_file_or_name_fails_before_any_work_naming_the_entry(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match=r"side_studies.real.params: configs/nope.yaml not found"):
        load_side_studies(_main_params("configs/nope.yaml"))
    with pytest.raises(UserError, match=r"unknown side study 'rael'. Did you mean 'real'"):
        side_study_params(_main_params("configs/nope.yaml"), "rael")


def test_a_side_study_writes_under_the_main_results_dir_whatever_its_file_says(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "side.yaml").write_text(
        "models: [demo_random_vit_sup]\n"
        "datasets: {v: {path: x, kind: imagenet_val}}\n"
        "results_dir: results\n"  # the main run's folder: must not be where the side study writes
        "inference: {cache_dir: cache, batch_size: 3}\n"
    )
    side = side_study_params(_main_params("side.yaml"), "real")
    assert side.results_dir == "out/results/side_studies/real"
    assert side.inference.cache_dir == "out/results/side_studies/real/cache" and side.inference.batch_size == 3
    assert side.side_studies == {}


def test_a_local_checkpoint_is_named_by_its_architecture_and_file():
    from beyond_imagenet.models.display import display_name

    assert display_name(REAL) == "tf_efficientnet_lite0 (lite0.pth)"
    assert display_name("timm-file:convnext_tiny@best.pth") == "convnext_tiny (best.pth)"
