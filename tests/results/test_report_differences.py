"""The report's differences section: only the real differences, with the Holm family and significance it used."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from beyond_imagenet.base.config import StatisticsConfig
from beyond_imagenet.base.record import ResultRecord
from beyond_imagenet.report import MAX_DIFFERENCES, differences_section
from beyond_imagenet.results.comparisons import COMPARISON_COLUMNS, comparisons_table

A, B, C = "vit_sup", "convnext_sup", "vit_clip"
TOP1 = "accuracy/imagenet_val/top1"


def _comparison(name: str, a: str, b: str, difference: float, p_holm: float, real: bool, family: str) -> dict:
    row = dict.fromkeys(COMPARISON_COLUMNS, "")
    row.update(
        name=name, model_a=a, model_b=b, difference=difference, ci_low=difference - 0.5, ci_high=difference + 0.5,
        p_value=p_holm / 3, p_holm=p_holm, real=real, holm_family=family, family_size=3,
    )  # fmt: skip
    return row


def _table() -> pd.DataFrame:
    return pd.DataFrame(
        [
            _comparison(TOP1, A, B, 2.0, 1.5e-5, True, "accuracy/imagenet_val"),
            _comparison(TOP1, B, C, -0.1, 0.81, False, "accuracy/imagenet_val"),
            _comparison("calibration/imagenet_val/ece", A, C, -0.03, 2.5e-3, True, "calibration/imagenet_val"),
            _comparison("accuracy/imagenet_v2/top1", A, C, 0.7, 0.051, False, "accuracy/imagenet_v2"),
        ],
        columns=list(COMPARISON_COLUMNS),
    )


def test_differences_section_lists_only_real_differences():
    text = differences_section(_table(), 0.05)
    assert text.startswith("## Differences between models that are real\n")
    assert "2 of 4 paired comparisons have a Holm-adjusted p-value below 0.05" in text
    assert "Holm within each analysis and dataset" in text
    items = [line for line in text.splitlines() if line.startswith("- ")]
    assert items == [
        "- accuracy/imagenet_val/top1: ViT-sup - ConvNeXt-sup = 2 [1.5, 2.5], p_holm = 1.5e-05",
        "- calibration/imagenet_val/ece: ViT-sup - ViT-clip = -0.03 [-0.53, 0.47], p_holm = 0.0025",
    ]
    assert "ConvNeXt-sup - ViT-clip" not in text and "imagenet_v2" not in text


@pytest.mark.parametrize(
    "family,said",
    [
        ("section", "Holm within each analysis and dataset"),
        ("metric", "Holm within each metric's model pairs"),
        ("all", "Holm over every comparison of the run"),
    ],
)
def test_differences_section_states_the_holm_family_and_significance(family, said):
    text = differences_section(_table(), 0.01, family)
    assert said in text
    assert "below 0.01" in text
    others = {"Holm within each analysis and dataset", "Holm within each metric's model pairs",
              "Holm over every comparison of the run"} - {said}  # fmt: skip
    assert not any(other in text for other in others)


def test_differences_section_of_no_comparisons_is_empty():
    assert differences_section(pd.DataFrame(), 0.05) == ""
    assert differences_section(pd.DataFrame(columns=list(COMPARISON_COLUMNS)), 0.05) == ""


def test_differences_section_with_none_real_says_so():
    table = _table()
    table["real"] = False
    text = differences_section(table, 0.05)
    assert "0 of 4 paired comparisons" in text
    assert not [line for line in text.splitlines() if line.startswith("- ")]


def test_differences_section_caps_the_list():
    rows = [_comparison(TOP1, A, f"m{i}", 1.0 + i, 1e-4 * (i + 1), True, "s") for i in range(MAX_DIFFERENCES + 3)]
    text = differences_section(pd.DataFrame(rows, columns=list(COMPARISON_COLUMNS)), 0.05)
    items = [line for line in text.splitlines() if line.startswith("- ")]
    assert len(items) == MAX_DIFFERENCES + 1
    assert items[-1] == "- ... and 3 more in comparisons.csv"
    assert items[0].startswith(f"- {TOP1}: ViT-sup - m0 = 1 ")  # smallest p_holm first


def test_differences_section_from_a_comparisons_csv(tmp_path):
    rng = np.random.default_rng(0)
    base = rng.normal(80.0, 1.0, 300)
    records = []
    for model, value in ((A, 82.0), (B, 80.0), (C, 80.1)):
        replicates = value + base + rng.normal(0.0, 0.3, 300)
        record = ResultRecord("accuracy", model, "imagenet_val", {TOP1: value})
        record.intervals[TOP1] = {"low": value - 1, "high": value + 1, "level": 0.95, "n": 500, "plan": "val/images"}
        record.replicates[TOP1] = replicates
        records.append(record)
    comparisons = comparisons_table(records, StatisticsConfig(resamples=300))
    path = tmp_path / "comparisons.csv"
    comparisons.to_csv(path, index=False)
    text = differences_section(pd.read_csv(path), 0.05)
    assert text == differences_section(comparisons, 0.05)
    real = comparisons[comparisons["real"]]
    assert set(zip(real["model_a"], real["model_b"], strict=True)) == {(A, B), (A, C)}
    assert "2 of 3 paired comparisons" in text
    assert "ViT-sup - ConvNeXt-sup = 2 [" in text and "ViT-sup - ViT-clip = 1.9 [" in text
    assert "ConvNeXt-sup - ViT-clip" not in text
