"""The headline metrics: picked from a tidy table built from records named as the analyses name them."""

from __future__ import annotations

import json

import numpy as np
import pytest

from beyond_imagenet.base.config import parse_params
from beyond_imagenet.base.record import ResultRecord
from beyond_imagenet.results.headline import HEADLINES, dataset_kinds, headline_metrics
from beyond_imagenet.results.tidy import results_table

KINDS = {"my_val": "imagenet_val", "my_r": "imagenet_r", "my_v2": "imagenet_v2"}


def _sweeps() -> dict[str, float]:
    points = {"scale": [1, 1.25, 3], "shift": [0, 30, 100], "resolution": [112, 224, 640]}
    top1 = {"scale": [80.0, 79.0, 61.5], "shift": [80.0, 78.0, 70.25], "resolution": [55.0, 80.0, 77.0]}
    metrics = {}
    for sweep, values in points.items():
        for value, accuracy in zip(values, top1[sweep], strict=True):
            metrics[f"invariance/{sweep}/{value}/top1"] = accuracy
            metrics[f"invariance/{sweep}/{value}/consistency"] = 99.0  # not a headline
    return metrics


def _full_records(model: str) -> list[ResultRecord]:
    """One model with every analysis the headlines read, named as in a demo run."""
    robustness = {
        "robustness/imagenet_val/top1": 79.0,
        "robustness/average": 50.0,
        "robustness/imagenet_c/mce": 60.0,
        "robustness/imagenet_v2/effective_robustness": -1.0,
        "robustness/imagenet_r/effective_robustness": 4.0,
    }
    cka = {
        "cka/all/mean_offdiagonal": 0.6,
        "cka/linear/mean_offdiagonal": 0.1,
        "cka_cross/b/mean_best_match": 0.8,
        "cka_cross/c/mean_best_match": 0.9,
    }
    rows = [
        ("accuracy", "my_v2", {"accuracy/my_v2/top1": 70.0}),  # not ImageNet val: never picked
        ("accuracy", "my_val", {"accuracy/my_val/top1": 80.0, "accuracy/my_val/top5": 95.0}),
        ("calibration", "my_val", {"calibration/my_val/ece": 0.031, "calibration/my_val/top1": 80.0}),
        ("calibration", "my_r", {"calibration/my_r/ece": 0.12}),
        ("imagenet_x", "my_val", {"imagenet_x/pose/error_ratio": 2.0, "imagenet_x/mean_error_ratio": 1.4}),
        ("pug", "my_pug", {"pug/Worlds/top1": 9.0, "pug/average": 30.0}),
        ("shape_bias", "cc", {"shape_bias/overall": 0.25, "shape_bias/boat/shape_bias": 1.0}),
        ("robustness", "table2", robustness),
        ("vtab", "clipbench19", {"vtab/natural": 60.0, "vtab/overall": 65.5}),
        ("invariance", "my_val", _sweeps()),
        ("cka", "my_val", cka),
    ]
    return [ResultRecord(analysis, model, dataset, metrics) for analysis, dataset, metrics in rows]


EXPECTED = {
    "imagenet_top1": 80.0,
    "imagenet_x_mean_error_ratio": 1.4,
    "pug_mean": 30.0,
    "ece_val": 0.031,
    "ece_r": 0.12,
    "shape_bias": 0.25,
    "robustness_average": 50.0,
    "effective_robustness": 1.5,  # mean of -1 and 4 over the shifts present
    "vtab_overall": 65.5,
    "invariance_scale_drop": -18.5,  # scale 3 - scale 1
    "invariance_shift_drop": -9.75,  # shift 100 - shift 0
    "invariance_resolution_low_drop": -25.0,  # 112 - 224
    "invariance_resolution_high_drop": -3.0,  # 640 - 224
    "cka_mean_offdiagonal": 0.6,
    "cka_cross_mean_best_match": 0.85,  # mean over the other models
}


def test_every_headline_is_picked_from_its_rows():
    metrics = headline_metrics(results_table(_full_records("vit")), KINDS)
    assert metrics == {f"{key}/vit": pytest.approx(value) for key, value in EXPECTED.items()}
    assert [h.key for h in HEADLINES] == list(EXPECTED)  # the test covers every declared headline


def test_keys_are_flat_headline_then_model_in_declaration_then_table_order():
    records = [*_full_records("vit"), ResultRecord("accuracy", "conv", "my_val", {"accuracy/my_val/top1": 70.0})]
    metrics = headline_metrics(results_table(records), KINDS)
    assert list(metrics)[:3] == ["imagenet_top1/vit", "imagenet_top1/conv", "imagenet_x_mean_error_ratio/vit"]
    assert all(isinstance(v, float) for v in metrics.values())
    assert json.loads(json.dumps(metrics, allow_nan=False)) == metrics  # flat, strict JSON: what DVC reads


def test_missing_headlines_are_left_out_not_zero():
    sweeps = {k: v for k, v in _sweeps().items() if not k.startswith("invariance/resolution/224/")}
    records = [
        ResultRecord("accuracy", "conv", "my_val", {"accuracy/my_val/top1": 70.0}),
        ResultRecord("calibration", "conv", "my_val", {"calibration/my_val/ece": float("nan")}),
        ResultRecord("invariance", "conv", "my_val", sweeps),  # the resolution sweep lost its reference point
    ]
    metrics = headline_metrics(results_table(records), KINDS)
    assert metrics == {
        "imagenet_top1/conv": 70.0,
        "invariance_scale_drop/conv": -18.5,
        "invariance_shift_drop/conv": -9.75,
    }


def test_datasets_are_matched_by_kind_and_a_dataset_not_in_params_is_its_own_kind():
    records = [
        ResultRecord("calibration", "m", "my_r", {"calibration/my_r/ece": 0.2}),
        ResultRecord("calibration", "m", "imagenet_val", {"calibration/imagenet_val/ece": 0.1}),
    ]
    table = results_table(records)
    assert headline_metrics(table, KINDS) == {"ece_val/m": 0.1, "ece_r/m": 0.2}
    assert headline_metrics(table, {}) == {"ece_val/m": 0.1}  # my_r is of kind my_r without params


def test_imagenet_top1_falls_back_to_table2_and_values_are_rounded():
    records = [ResultRecord("robustness", "m", "table2", {"robustness/imagenet_val/top1": 81.23456789})]
    metrics = headline_metrics(results_table(records), KINDS)
    assert metrics == {"imagenet_top1/m": 81.2346}


def test_headline_reads_the_table_as_results_csv_stores_it():
    """Empty variants come back from CSV as NaN: still the summary rows."""
    table = results_table(_full_records("vit"))
    table["variant"] = table["variant"].replace("", np.nan)
    assert headline_metrics(table, KINDS) == headline_metrics(results_table(_full_records("vit")), KINDS)


def test_dataset_kinds_default_to_the_entry_name():
    params = parse_params(
        {
            "models": ["demo_random_vit_sup"],
            "datasets": {"imagenet_r": {"path": "r"}, "v": {"path": "v", "kind": "imagenet_val"}},
        }
    )
    assert dataset_kinds(params.datasets) == {"imagenet_r": "imagenet_r", "v": "imagenet_val"}
