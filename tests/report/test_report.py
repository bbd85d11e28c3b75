"""The one-page report: what report.html, report.md and summary.csv hold, from synthetic tables (known truth).

The header's provenance and demo warning, the scorecard before any section (the first screen), every PNG under
the results folder placed once with a caption, a self-contained page, Tables 2 and 3 with n, the appendix, and the
ranking in place of the scorecard past eight models.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from beyond_imagenet.base.record import ResultRecord
from beyond_imagenet.report import differences_section, table2, write_report
from beyond_imagenet.report.catalogue import CAPTIONS
from beyond_imagenet.report.header import DEMO_WARNING
from beyond_imagenet.report.scorecard import LABELS
from report.synthetic_tables import comparison, comparisons, full_rows, inputs, row, table, tiny_png

PAPER = ("vit_sup", "convnext_sup", "vit_clip", "convnext_clip")
FIGURES = (
    "figures/calibration/imagenet_val/all_models.png",
    "figures/calibration/imagenet_val/vit_sup.png",
    "figures/calibration/imagenet_val/convnext_sup.png",
    "figures/shape_bias/cue_conflict/all_models.png",
    "figures/invariance/imagenet_val/consistency_all_models.png",
    "cka/figures/imagenet_val/cross_models.png",
    "vtab/figures/fig6_bottom.png",
    "figures/newthing/d/plot.png",  # no catalogue entry: placed under "Other figures" with a caption from its path
)


@pytest.fixture
def report(tmp_path):
    """A report of the paper's four models with every headline, real ties, figures and a differences list."""
    results_dir = tmp_path / "results"
    for i, path in enumerate(FIGURES):
        tiny_png(results_dir / path, (0.1 * i, 0.5, 0.9 - 0.1 * i))
    results = table([r for i, m in enumerate(PAPER) for r in full_rows(m, 50.0 + i)])
    top1 = "accuracy/imagenet_val/top1"
    pairs = comparisons([comparison(top1, "convnext_clip", "vit_clip", False)])
    written = write_report(inputs(results, results_dir, comparisons=pairs), tmp_path / "reports")
    return {path.name: path for path in written}, results_dir


def _html(report) -> str:
    return report[0]["report.html"].read_text()


def test_writes_the_three_files(report):
    files, _ = report
    assert sorted(files) == ["report.html", "report.md", "summary.csv"]
    assert all(path.stat().st_size > 0 for path in files.values())


def test_header_is_provenance_and_the_scorecard_comes_before_any_section(report):
    page = _html(report)
    assert "commit 0123456789ab · 2024-07-21 12:00 UTC · config params.yaml" in page
    scorecard, first_section = page.index('<table id="scorecard">'), page.index("<section")
    assert scorecard < first_section
    header = re.search(r'<table id="scorecard"><thead>(.*?)</thead>', page)[1]
    names = re.findall(r"</span>([^<]+)</th>", header)
    assert names == ["ViT-sup", "ConvNeXt-sup", "ViT-clip", "ConvNeXt-clip"]  # paper names, paper order
    body = re.search(r'<table id="scorecard">.*?<tbody>(.*?)</tbody>', page)[1]
    for label, _section in LABELS.values():
        assert f"<td>{label}</td>" in body  # every headline is a row


def test_best_is_bold_and_a_tie_says_so(report):
    body = re.search(r'<table id="scorecard">.*?<tbody>(.*?)</tbody>', _html(report))[1]
    top1 = next(r for r in body.split("<tr>") if "ImageNet top-1 (%)" in r)
    cells = re.findall(r"<td>(.*?)</td>", top1)[1:]
    # values 50..53: ConvNeXt-clip (53) is the best; ViT-clip is tied with it by its not-real comparison
    assert cells[3] == "<b>53.0 [52.0, 54.0]</b>"
    assert cells[2] == '<b>52.0 [51.0, 53.0]</b><span class="note">tied</span>'
    assert cells[0] == "50.0 [49.0, 51.0]" and cells[1] == "51.0 [50.0, 52.0]"


def test_every_figure_is_embedded_once_with_a_caption(report):
    page = _html(report)
    _, results_dir = report
    embedded = re.findall(r'<img src="data:image/png;base64,[A-Za-z0-9+/=]+" alt="[^"]*" data-source="([^"]+)"', page)
    assert sorted(Path(p).relative_to(results_dir).as_posix() for p in embedded if "results" in p) == sorted(FIGURES)
    for block in re.findall(r"<figure>.*?</figure>", page, flags=re.S):
        caption = re.search(r"<figcaption>(.+?)</figcaption>", block)
        assert caption and len(caption[1]) > 10
    assert CAPTIONS[("cka", "cross_models")].format(dataset="imagenet_val") in page
    assert "plot (other, d)." in page
    per_model = re.search(r'<div class="grid">(.*?)</div><p class="legend">(.*?)</p>', page, flags=re.S)
    assert per_model[1].index("vit_sup.png") < per_model[1].index("convnext_sup.png")  # paper order in the grid
    assert "summary.png" in page  # the Fig. 1-style chart


def test_the_page_fetches_nothing(report):
    page = _html(report)
    assert "<script" not in page and "<link" not in page
    assert not re.findall(r'(?:src|href)="(?:https?:)?//', page)
    assert set(re.findall(r'href="([^"]+)"', page)) == {
        "../results/results.csv", "../results/comparisons.csv", "../results/rankings.csv", "summary.csv",
    }  # fmt: skip


def test_sections_follow_the_paper_order_with_a_finding_each(report):
    page = _html(report)
    ids = re.findall(r'<section id="([a-z_]+)">', page)
    assert ids == ["summary", "run", "imagenet_x", "pug", "calibration", "shape_bias", "robustness", "vtab",
                   "invariance", "cka", "other", "appendix"]  # fmt: skip
    calibration = re.search(r'<section id="calibration">(.*?)</section>', page, flags=re.S)[1]
    finding = re.search(r'<p class="finding">(.*?)</p>', calibration)[1]
    assert finding.startswith(  # lower is better; no comparisons on ECE in this table: none is called behind
        "Lowest ECE, ImageNet val: ViT-sup 50.0 [49.0, 51.0]; not compared with ConvNeXt-sup, ViT-clip, ConvNeXt-clip"
    )


def test_markdown_holds_the_same_report_with_relative_figure_links(report):
    files, _results_dir = report
    text = files["report.md"].read_text()
    assert text.startswith("# beyond-imagenet report\n")
    assert "| Property | ViT-sup | ConvNeXt-sup | ViT-clip | ConvNeXt-clip |" in text
    assert "| ImageNet top-1 (%) | 50.0 [49.0, 51.0] | 51.0 [50.0, 52.0] | **52.0 [51.0, 53.0]** (tied) |" in text
    for figure in FIGURES:
        assert f"](../results/{figure})" in text
    assert text.index("## Summary chart") < text.index("## Model mistakes") < text.index("## Calibration")


def test_summary_csv_is_tidy_and_numeric(report):
    files, _ = report
    summary = pd.read_csv(files["summary.csv"])
    assert list(summary.columns) == [
        "headline", "label", "model", "display_name", "value", "ci_low", "ci_high", "direction", "name",
    ]  # fmt: skip
    assert summary["value"].dtype == float and summary["ci_low"].dtype == float
    top1 = summary[summary["headline"] == "imagenet_top1"].set_index("model")
    assert top1.loc["convnext_clip", ["value", "ci_low", "ci_high"]].tolist() == [53.0, 52.0, 54.0]
    assert len(summary) == len(LABELS) * len(PAPER)


def test_a_demo_run_says_its_numbers_are_noise(tmp_path):
    demo = table([row("demo_random_vit_sup", "accuracy", "imagenet_val", "top1", 0.5, 0.1, 1.0)])
    real = table([row("vit_sup", "accuracy", "imagenet_val", "top1", 85.0, 84.0, 86.0)])
    demo_page = write_report(inputs(demo, tmp_path / "r"), tmp_path / "a")[0].read_text()
    real_page = write_report(inputs(real, tmp_path / "r"), tmp_path / "b")[0].read_text()
    assert DEMO_WARNING in demo_page and "ViT-sup (demo)" in demo_page
    assert DEMO_WARNING not in real_page


def test_forty_models_get_a_ranking_and_a_legible_chart(tmp_path):
    from PIL import Image

    models = [f"model_{i:02d}" for i in range(40)]
    results = table([r for i, m in enumerate(models) for r in full_rows(m, float(i))])
    files = write_report(inputs(results, tmp_path / "results"), tmp_path / "reports")
    page = files[0].read_text()
    header = re.search(r'<table id="scorecard"><thead>(.*?)</thead>', page)[1]
    assert "mean rank [interval]" in header and "mean z-score" in header
    body = re.search(r'<table id="scorecard">.*?<tbody>(.*?)</tbody>', page)[1]
    first = re.findall(r"<tr>(.*?)</tr>", body)[0]
    assert "model_39" in first  # the highest values everywhere: ranked first by z-score
    chart = Image.open(tmp_path / "reports" / "figures" / "summary.png")
    assert chart.height / 40 >= 15  # at least 15 px per model row at 100 dpi


def test_tables_2_and_3_with_n_and_the_appendix(tmp_path):
    record = ResultRecord("robustness", "vit_sup", "table2", {"robustness/average": 60.2})
    record.details = {"table2_row": {"imagenet_val": 85.5, "imagenet_v2": 76.2}, "average_missing": []}
    results = table([
        row("vit_sup", "robustness", "imagenet_val", "top1", 85.5, variant="imagenet_val", n=50000),
        row("vit_sup", "robustness", "imagenet_v2", "top1", 76.2, variant="imagenet_v2", n=10000),
        row("vit_sup", "vtab_probe", "eurosat", "top1", 97.0, n=5400),
    ])  # fmt: skip
    pairs = comparisons([{**comparison("accuracy/imagenet_val/top1", "vit_sup", "b", True), "ci_low": 1.0,
                          "ci_high": 2.0, "difference": 1.5}])  # fmt: skip
    base = inputs(results, tmp_path / "results")
    base.records = [record]
    base.differences = differences_section(pairs, 0.05)
    page = write_report(base, tmp_path / "reports")[0].read_text()
    tables = re.search(r'<section id="tables">(.*?)</section>', page, flags=re.S)[1]
    assert "<td>n</td><td>50000</td><td>10000</td>" in tables
    assert "Test images per task (n): eurosat 5400." in tables
    appendix = re.search(r'<section id="appendix">(.*?)</section>', page, flags=re.S)[1]
    assert "1 of 1 paired comparisons" in appendix and "ViT-sup - b = 1.5 [1, 2]" in appendix


def test_table2_in_the_paper_layout_says_what_the_average_misses():
    full = ResultRecord("robustness", "vit_sup", "table2", {"robustness/average": 60.2})
    full.details = {
        "table2_row": {"imagenet_val": 85.5, "imagenet_v2": 76.2, "imagenet_a": 60.0, "imagenet_c": 59.8,
                       "imagenet_hard": 28.5, "imagenet_r": 61.6, "imagenet_sketch": 46.1, "imagenet_real": 89.2},
        "average_missing": [],
    }  # fmt: skip
    full.intervals = {"robustness/imagenet_v2/top1": {"low": 75.36, "high": 77.04}}
    partial = ResultRecord("robustness", "mine", "table2", {})
    partial.details = {"table2_row": {"imagenet_val": 70.0}, "average_missing": ["imagenet_hard"]}
    text = table2([partial, full], {"imagenet_val": 50000.0, "average": 50000.0})
    assert "| Model | INet-Val | V2 | A | C | Hard | R | Sketch | Real | Average |" in text
    lines = text.splitlines()
    assert lines[4] == "| ViT-sup | 85.5 | 76.2 (75.4-77.0) | 60.0 | 59.8 | 28.5 | 61.6 | 46.1 | 89.2 | 60.2 |"
    assert lines[5] == "| mine | 70.0 | - | - | - | - | - | - | - | missing imagenet_hard |"  # paper's first
    assert lines[6] == "| n | 50000 | - | - | - | - | - | - | - | 50000 |"


def test_datasets_come_from_the_manifests_and_the_vtab_test_splits(tmp_path):
    import json

    from beyond_imagenet.report.header import VTAB_KIND, dataset_sizes

    manifests = tmp_path / "manifests"
    manifests.mkdir()
    (manifests / "val.json").write_text(json.dumps({"name": "val", "kind": "imagenet_val", "n_images": 400}))
    variants = [{"name": "c", "kind": "imagenet_c", "n_images": 10} for _ in range(3)]
    (manifests / "c.json").write_text(json.dumps(variants))
    results = table([
        row("vit_sup", "accuracy", "val", "top1", 1.0, n=400),
        row("vit_sup", "robustness", "table2", "average", 1.0, n=1051),  # a summary over datasets
        row("vit_sup", "vtab_probe", "eurosat", "top1", 1.0, n=13),
        row("vit_sup", "vtab", "clipbench19", "overall", 1.0, n=166),  # a summary over tasks
    ])  # fmt: skip
    assert dataset_sizes(results, manifests) == {
        "c": ("imagenet_c (3 variants)", 30.0), "val": ("imagenet_val", 400.0), "eurosat": (VTAB_KIND, 13.0),
    }  # fmt: skip
    assert dataset_sizes(results, None) == {"val": ("", 400.0), "eurosat": (VTAB_KIND, 13.0)}


def test_table3_uses_display_names_in_paper_order_with_intervals():
    from beyond_imagenet.data.vtab.tasks import get_preset
    from beyond_imagenet.report import vtab_section

    natural = [t.name for t in get_preset("clipbench19").tasks if t.group == "natural"]
    records = []
    for model, value in (("convnext_clip", 70.0), ("vit_sup", 80.0)):
        for task in natural:  # every Natural task: the group mean exists
            metrics = {f"vtab/{task}/top1": value, f"vtab/{task}/mean_per_class_recall": value - 5}
            records.append(ResultRecord("vtab_probe", model, task, metrics, details={"group": "natural"}))
    results = table([row("vit_sup", "vtab", "clipbench19", "natural", 80.0, 78.25, 81.5)])
    text = vtab_section(records, "clipbench19", ["convnext_clip", "vit_sup"], results=results)
    lines = text.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("| Model |"))
    assert lines[first + 2].startswith("| ViT-sup | 80.0 (78.2-81.5) |")  # paper order: ViT-sup first
    assert lines[first + 3].startswith("| ConvNeXt-clip | 70.0 |")  # no interval in the table: the value alone
    assert "| Task | Group | ViT-sup | ConvNeXt-clip |" in text and "convnext_clip" not in text
