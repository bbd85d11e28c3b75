"""The results tables: the tidy table (one row per metric with its interval), paired comparisons with Holm's
correction, and rankings with rank intervals, on synthetic records whose expected numbers are computed here."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from beyond_imagenet.base.config import StatisticsConfig
from beyond_imagenet.base.record import ResultRecord
from beyond_imagenet.results.comparisons import (
    COMPARISON_COLUMNS,
    RANKING_COLUMNS,
    comparable_sets,
    comparisons_table,
    rankings_table,
)
from beyond_imagenet.results.tidy import COLUMNS, config_hash, direction, model_facts, results_table, split_name

A, B, C, D = "vit_sup", "convnext_sup", "vit_clip", "convnext_clip"  # the paper's four models
N_REPLICATES = 400
STATS = StatisticsConfig(resamples=N_REPLICATES, seed=0)
VAL_PLAN, V2_PLAN, CUE_PLAN = "imagenet_val/images", "imagenet_v2/images", "cue_conflict/images"

# name -> (plan, noise sd, {model: value}); every model's replicates are value + shared + own noise
DESIGN = {
    ("accuracy", "imagenet_val"): {
        "accuracy/imagenet_val/top1": (VAL_PLAN, 0.3, {A: 82.0, B: 80.0, C: 80.1}),
        "accuracy/imagenet_val/top5": (VAL_PLAN, 0.3, {A: 95.0, B: 94.9, C: 93.0}),
    },
    ("accuracy", "imagenet_v2"): {
        "accuracy/imagenet_v2/top1": (V2_PLAN, 0.3, {A: 70.0, B: 69.3, C: 70.2}),
    },
    ("calibration", "imagenet_val"): {
        "calibration/imagenet_val/ece": (VAL_PLAN, 0.002, {A: 0.03, B: 0.06, C: 0.031}),
    },
    ("shape_bias", "cue_conflict"): {
        "shape_bias/cue_conflict/shape_bias": (CUE_PLAN, 0.01, {A: 0.40, B: 0.20, C: 0.41}),
    },
}


def _record(model: str, analysis: str, dataset: str, metrics: dict[str, tuple[float, np.ndarray | None, str]]):
    """A record of ``model``; ``metrics`` maps name -> (value, replicates or None, plan)."""
    record = ResultRecord(
        analysis,
        model,
        dataset,
        {name: value for name, (value, _, _) in metrics.items()},
        params={"n_bins": 15},
        provenance={"dataset": {"cache_config_hash": f"cache-{dataset}"}},
    )
    for name, (_, replicates, plan) in metrics.items():
        if replicates is None:
            continue
        low, high = np.percentile(replicates, [2.5, 97.5])
        record.intervals[name] = {
            "low": float(low), "high": float(high), "level": 0.95, "n": 500, "method": "percentile", "plan": plan
        }  # fmt: skip
        record.replicates[name] = replicates
    return record


def _design_records(seed: int = 0, sections=tuple(DESIGN)) -> tuple[list[ResultRecord], dict]:
    """Records of A, B, C (in that order) for the sections of DESIGN, and every model's replicates by name."""
    rng = np.random.default_rng(seed)
    replicates: dict[tuple[str, str], np.ndarray] = {}
    records = []
    for analysis, dataset in sections:
        per_model: dict[str, dict] = {A: {}, B: {}, C: {}}
        for name, (plan, sd, values) in DESIGN[(analysis, dataset)].items():
            shared = rng.normal(0.0, 3 * sd, N_REPLICATES)  # the resample's own difficulty, common to all models
            for model, value in values.items():
                replicates[(name, model)] = value + shared + rng.normal(0.0, sd, N_REPLICATES)
                per_model[model][name] = (value, replicates[(name, model)], plan)
        records += [_record(m, analysis, dataset, per_model[m]) for m in (A, B, C)]
    return records, replicates


def _value(name: str, model: str) -> float:
    return next(block[name][2][model] for block in DESIGN.values() if name in block)


def _other_plan(model: str, value: float, seed: int) -> ResultRecord:
    """``model``'s top-1 on imagenet_val drawn on other resamples than A, B and C's."""
    replicates = np.random.default_rng(seed).normal(value, 1.0, N_REPLICATES)
    return _record(model, "accuracy", "imagenet_val", {"accuracy/imagenet_val/top1": (value, replicates, "other/plan")})


def _holm_by_hand(p: np.ndarray) -> np.ndarray:
    """Holm: sorted p_(1..m); adjusted p_(i) = max over j <= i of min(1, (m - j + 1) p_(j))."""
    order = np.argsort(p)
    m = len(p)
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    adjusted = np.empty(m)
    adjusted[order] = np.maximum.accumulate(scaled)
    return adjusted


def _rows(table: pd.DataFrame) -> dict[tuple[str, str, str], dict]:
    return {(r["name"], r["model_a"], r["model_b"]): r for r in table.to_dict("records")}


# ---------------------------------------------------------------------------------------------------------------
# tidy


@pytest.mark.parametrize(
    "dataset,name,expected",
    [
        ("imagenet_val", "accuracy/imagenet_val/top1", ("", "top1")),
        ("table2", "robustness/imagenet_c/fog/3/top1", ("imagenet_c/fog/3", "top1")),
        ("imagenet_c", "robustness/imagenet_c/fog/3/top1", ("fog/3", "top1")),
        ("table2", "robustness/average", ("", "average")),
        ("imagenet_val", "invariance/scale/1.25/top1", ("scale/1.25", "top1")),
        ("imagenet_val", "calibration/imagenet_val/ece", ("", "ece")),
        ("cue_conflict", "shape_bias/cue_conflict/shape_bias", ("", "shape_bias")),
        ("clipbench19", "vtab/overall", ("", "overall")),
        ("dtd", "vtab/dtd/mean_per_class_recall", ("", "mean_per_class_recall")),
    ],
)
def test_split_name(dataset, name, expected):
    assert split_name(ResultRecord("x", A, dataset, {}), name) == expected


@pytest.mark.parametrize(
    "analysis,metric,expected",
    [
        ("calibration", "ece", "lower"),
        ("calibration", "mce", "lower"),
        ("calibration", "mean_confidence", "none"),
        ("shape_bias", "shape_bias", "none"),
        ("shape_bias", "accuracy_16", "higher"),
        ("cka", "linear_cka", "none"),
        ("accuracy", "top1", "higher"),
        ("robustness", "top1", "higher"),
        ("vtab", "overall", "higher"),
        ("accuracy", "n_samples", "none"),
    ],
)
def test_direction(analysis, metric, expected):
    assert direction(analysis, metric) == expected


def test_model_facts_from_catalogue_else_provenance():
    assert model_facts(ResultRecord("accuracy", A, "d", {})) == {
        "display_name": "ViT-sup",
        "family": "vit",
        "paradigm": "supervised",
        "weights_id": "timm:deit3_base_patch16_224.fb_in22k_ft_in1k",
    }
    assert model_facts(ResultRecord("accuracy", D, "d", {}))["display_name"] == "ConvNeXt-clip"
    mine = ResultRecord("accuracy", "hf:me/mine", "d", {}, provenance={"model": {"family": "f", "paradigm": "p"}})
    assert model_facts(mine) == {"display_name": "hf:me/mine", "family": "f", "paradigm": "p", "weights_id": ""}
    named = ResultRecord("vtab", A, "clipbench19", {}, provenance={"model": A})  # a bare id (older VTAB summaries)
    assert model_facts(named)["weights_id"] == "timm:deit3_base_patch16_224.fb_in22k_ft_in1k"


def test_config_hash_follows_params_and_cache_hashes_not_the_model():
    one = ResultRecord("calibration", A, "d", {}, params={"n_bins": 15}, provenance={"x": {"cache_config_hash": "h"}})
    same = ResultRecord("calibration", B, "d", {}, params={"n_bins": 15}, provenance={"cache_config_hash": "h"})
    other_params = ResultRecord("calibration", A, "d", {}, params={"n_bins": 10}, provenance=one.provenance)
    other_cache = ResultRecord("calibration", A, "d", {}, params={"n_bins": 15}, provenance={"cache_config_hash": "g"})
    digest = config_hash(one)
    assert len(digest) == 16 and int(digest, 16) >= 0
    assert config_hash(same) == digest
    assert config_hash(other_params) != digest
    assert config_hash(other_cache) != digest


def test_results_table_one_row_per_metric_with_its_interval():
    rng = np.random.default_rng(1)
    record = _record(
        A,
        "accuracy",
        "imagenet_val",
        {
            "accuracy/imagenet_val/top1": (81.5, rng.normal(81.5, 1.0, 200), VAL_PLAN),
            "accuracy/imagenet_val/n_samples": (500.0, None, ""),
        },
    )
    robustness = _record(
        C, "robustness", "table2", {"robustness/imagenet_c/fog/3/top1": (40.0, rng.normal(40, 1, 200), "c/fog/3")}
    )
    table = results_table([record, robustness])
    assert list(table.columns) == list(COLUMNS)
    assert len(table) == 3
    top1, n_samples, fog = table.to_dict("records")
    interval = record.intervals["accuracy/imagenet_val/top1"]
    assert top1["model"] == A and top1["display_name"] == "ViT-sup" and top1["paradigm"] == "supervised"
    where = (top1["analysis"], top1["dataset"], top1["variant"], top1["metric"])
    assert where == ("accuracy", "imagenet_val", "", "top1")
    assert top1["value"] == 81.5
    assert top1["ci_low"] == interval["low"] and top1["ci_high"] == interval["high"]
    assert (top1["level"], top1["n"], top1["method"], top1["plan"]) == (0.95, 500.0, "percentile", VAL_PLAN)
    assert top1["direction"] == "higher" and top1["config_hash"] == config_hash(record)
    # a metric without an interval: empty interval columns
    assert n_samples["value"] == 500.0 and n_samples["direction"] == "none"
    assert np.isnan(n_samples["ci_low"]) and np.isnan(n_samples["ci_high"]) and np.isnan(n_samples["n"])
    assert n_samples["method"] == "" and n_samples["plan"] == ""
    assert (fog["model"], fog["display_name"]) == (C, "ViT-clip")
    assert (fog["variant"], fog["metric"]) == ("imagenet_c/fog/3", "top1")
    assert fog["ci_low"] == robustness.intervals["robustness/imagenet_c/fog/3/top1"]["low"]


def test_results_table_of_nothing_has_the_columns():
    table = results_table([])
    assert table.empty and list(table.columns) == list(COLUMNS)


# ---------------------------------------------------------------------------------------------------------------
# comparisons


def test_comparable_sets_group_by_analysis_dataset_name_and_plan():
    records, _ = _design_records(sections=[("accuracy", "imagenet_val")])
    records.append(_other_plan(D, 79.0, seed=2))
    groups = comparable_sets(records)
    assert sorted(groups) == [
        ("accuracy", "imagenet_val", "accuracy/imagenet_val/top1", VAL_PLAN),
        ("accuracy", "imagenet_val", "accuracy/imagenet_val/top1", "other/plan"),
        ("accuracy", "imagenet_val", "accuracy/imagenet_val/top5", VAL_PLAN),
    ]
    same_plan = groups[("accuracy", "imagenet_val", "accuracy/imagenet_val/top1", VAL_PLAN)]
    assert [e.model for e in same_plan] == [A, B, C]
    assert [e.display_name for e in same_plan] == ["ViT-sup", "ConvNeXt-sup", "ViT-clip"]
    assert [e.model for e in groups[("accuracy", "imagenet_val", "accuracy/imagenet_val/top1", "other/plan")]] == [D]


def test_only_models_on_the_same_plan_are_compared():
    records, _ = _design_records(sections=[("accuracy", "imagenet_val")])
    records.append(_other_plan(D, 60.0, seed=3))
    # a model with a metric but no replicates is not compared either
    records.append(_record("hf:me/mine", "accuracy", "imagenet_val", {"accuracy/imagenet_val/top1": (50.0, None, "")}))
    table = comparisons_table(records, STATS)
    assert list(table.columns) == list(COMPARISON_COLUMNS)
    assert len(table) == 6  # 3 pairs x 2 metrics of A, B, C
    assert set(table["model_a"]) | set(table["model_b"]) == {A, B, C}
    assert set(table["plan"]) == {VAL_PLAN}


def test_difference_interval_and_p_value_by_hand():
    records, replicates = _design_records()
    table = comparisons_table(records, STATS)
    assert len(table) == 15  # 5 metrics x 3 pairs
    for row in table.to_dict("records"):
        name, a, b = row["name"], row["model_a"], row["model_b"]
        diffs = replicates[(name, a)] - replicates[(name, b)]
        expected = _value(name, a) - _value(name, b)
        assert row["value_a"] == _value(name, a) and row["value_b"] == _value(name, b)
        assert row["difference"] == pytest.approx(expected, rel=1e-12, abs=1e-12)
        low, high = np.percentile(diffs, [2.5, 97.5])
        assert row["ci_low"] == pytest.approx(low, rel=1e-12) and row["ci_high"] == pytest.approx(high, rel=1e-12)
        assert row["p_value"] == pytest.approx(2 * norm.sf(abs(expected) / np.std(diffs, ddof=1)), rel=1e-9)
        assert row["level"] == 0.95
    rows = _rows(table)
    first = rows[("accuracy/imagenet_val/top1", A, B)]
    assert (first["display_a"], first["display_b"]) == ("ViT-sup", "ConvNeXt-sup")
    assert (first["variant"], first["metric"], first["plan"]) == ("", "top1", VAL_PLAN)
    assert first["difference"] == pytest.approx(2.0)
    assert first["ci_low"] > 0  # a 2-point difference with a 0.42 standard error excludes 0
    close = rows[("accuracy/imagenet_val/top1", B, C)]
    assert close["ci_low"] < 0 < close["ci_high"]


def test_basic_interval_of_the_difference():
    records, replicates = _design_records(sections=[("accuracy", "imagenet_val")])
    table = comparisons_table(records, StatisticsConfig(resamples=N_REPLICATES, level=0.9, method="basic"))
    row = _rows(table)[("accuracy/imagenet_val/top5", A, C)]
    diffs = replicates[("accuracy/imagenet_val/top5", A)] - replicates[("accuracy/imagenet_val/top5", C)]
    q_lo, q_hi = np.percentile(diffs, [5, 95])
    assert row["level"] == 0.9
    assert row["ci_low"] == pytest.approx(2 * 2.0 - q_hi, rel=1e-9)
    assert row["ci_high"] == pytest.approx(2 * 2.0 - q_lo, rel=1e-9)


@pytest.mark.parametrize(
    "family,sizes",
    [
        ("section", {"accuracy/imagenet_val": 6, "accuracy/imagenet_v2": 3}),
        (
            "metric",
            {
                "accuracy/imagenet_val/accuracy/imagenet_val/top1": 3,
                "accuracy/imagenet_val/accuracy/imagenet_val/top5": 3,
                "accuracy/imagenet_v2/accuracy/imagenet_v2/top1": 3,
            },
        ),
        ("all", {"all": 9}),
    ],
)
def test_holm_within_each_family_by_hand(family, sizes):
    records, _ = _design_records(sections=[("accuracy", "imagenet_val"), ("accuracy", "imagenet_v2")])
    table = comparisons_table(records, StatisticsConfig(resamples=N_REPLICATES, holm_family=family))
    assert len(table) == 9
    assert table.groupby("holm_family")["family_size"].first().to_dict() == sizes
    assert table.groupby("holm_family").size().to_dict() == sizes
    for _, group in table.groupby("holm_family"):
        expected = _holm_by_hand(group["p_value"].to_numpy())
        np.testing.assert_allclose(group["p_holm"].to_numpy(), expected, rtol=1e-12)
        assert (group["p_holm"] >= group["p_value"]).all()


def test_holm_families_differ_and_all_is_the_most_conservative():
    records, _ = _design_records(sections=[("accuracy", "imagenet_val"), ("accuracy", "imagenet_v2")])
    tables = {
        family: comparisons_table(records, StatisticsConfig(resamples=N_REPLICATES, holm_family=family))
        for family in ("section", "metric", "all")
    }
    sizes = {family: sorted(t["family_size"]) for family, t in tables.items()}
    assert sizes == {"section": [3] * 3 + [6] * 6, "metric": [3] * 9, "all": [9] * 9}
    metric, section, everything = (tables[f]["p_holm"].to_numpy() for f in ("metric", "section", "all"))
    assert np.all(metric <= section + 1e-15) and np.all(section <= everything + 1e-15)
    assert np.any(metric < everything)
    # the smallest p of the run is multiplied by its family's size
    smallest = tables["all"]["p_value"].idxmin()
    assert tables["all"].loc[smallest, "p_holm"] == pytest.approx(min(1.0, 9 * tables["all"].loc[smallest, "p_value"]))
    assert tables["section"].loc[smallest, "p_holm"] == pytest.approx(6 * tables["section"].loc[smallest, "p_value"])
    assert tables["metric"].loc[smallest, "p_holm"] == pytest.approx(3 * tables["metric"].loc[smallest, "p_value"])


def test_real_iff_holm_p_below_significance_and_the_interval_excludes_zero():
    records, _ = _design_records()
    table = comparisons_table(records, STATS)
    assert table["real"].dtype == bool
    excludes_zero = (table["ci_low"] > 0) | (table["ci_high"] < 0)
    assert (table["real"] == ((table["p_holm"] < STATS.significance) & excludes_zero)).all()
    rows = _rows(table)
    assert rows[("accuracy/imagenet_val/top1", A, B)]["real"]  # 2 points, se 0.42
    assert not rows[("accuracy/imagenet_val/top1", B, C)]["real"]  # 0.1 point
    # moving the threshold around one comparison's adjusted p flips that comparison only
    movable = table[excludes_zero & (table["p_holm"] > 1e-12) & (table["p_holm"] < 0.5)]
    row = movable.iloc[0]
    key = (row["name"], row["model_a"], row["model_b"])
    for significance, expected in ((row["p_holm"] * 1.001, True), (row["p_holm"] * 0.999, False)):
        stats = StatisticsConfig(resamples=N_REPLICATES, significance=significance)
        flipped = _rows(comparisons_table(records, stats))[key]
        assert bool(flipped["real"]) is expected


def test_a_skewed_difference_whose_interval_holds_zero_is_not_real():
    # 95% of the differences near +1, a 5% tail at -0.5: z = 1 / sd gives p ~ 0.001, the percentile interval holds 0
    rng = np.random.default_rng(3)
    base = rng.normal(0.5, 0.05, N_REPLICATES)
    diffs = np.where(np.arange(N_REPLICATES) < N_REPLICATES // 20, -0.5, 1.0 + rng.normal(0, 0.02, N_REPLICATES))
    name = "calibration/imagenet_r/ece"
    records = [
        _record(A, "calibration", "imagenet_r", {name: (1.5, base + diffs, VAL_PLAN)}),
        _record(B, "calibration", "imagenet_r", {name: (0.5, base, VAL_PLAN)}),
    ]
    row = comparisons_table(records, STATS).iloc[0]
    assert row["p_holm"] < 0.01 and row["ci_low"] < 0 < row["ci_high"]
    assert not row["real"] and row["better"] == ""


def test_better_follows_the_direction_and_is_empty_unless_real():
    records, _ = _design_records()
    rows = _rows(comparisons_table(records, STATS))
    expected = {
        ("accuracy/imagenet_val/top1", A, B): ("higher", True, A),  # a - b = +2
        ("accuracy/imagenet_val/top1", A, C): ("higher", True, A),
        ("accuracy/imagenet_val/top1", B, C): ("higher", False, ""),
        ("accuracy/imagenet_val/top5", A, C): ("higher", True, A),
        ("accuracy/imagenet_val/top5", B, C): ("higher", True, B),
        ("accuracy/imagenet_val/top5", A, B): ("higher", False, ""),
        ("calibration/imagenet_val/ece", A, B): ("lower", True, A),  # a - b = -0.03: a has the lower ECE
        ("calibration/imagenet_val/ece", B, C): ("lower", True, C),  # a - b = +0.029: b has the lower ECE
        ("calibration/imagenet_val/ece", A, C): ("lower", False, ""),
        ("shape_bias/cue_conflict/shape_bias", A, B): ("none", True, ""),  # a property: real but no better model
        ("shape_bias/cue_conflict/shape_bias", B, C): ("none", True, ""),
    }
    for key, (better_direction, real, better) in expected.items():
        row = rows[key]
        assert (row["direction"], bool(row["real"]), row["better"]) == (better_direction, real, better), key


def test_a_difference_without_sampling_variation_is_not_tested():
    rng = np.random.default_rng(4)
    # accuracies of 500 images (multiples of 0.2 points) and a shift of exactly one image: equal differences
    base = rng.integers(390, 410, N_REPLICATES) / 5.0
    name = "accuracy/imagenet_val/top1"
    records = [
        _record(A, "accuracy", "imagenet_val", {name: (80.2, base + 0.2, VAL_PLAN)}),
        _record(B, "accuracy", "imagenet_val", {name: (80.0, base, VAL_PLAN)}),
        _record(C, "accuracy", "imagenet_val", {name: (75.0, base - 5 + rng.normal(0, 0.3, N_REPLICATES), VAL_PLAN)}),
    ]
    rows = _rows(comparisons_table(records, STATS))
    constant = rows[(name, A, B)]
    assert constant["difference"] == pytest.approx(0.2)
    assert constant["ci_low"] == pytest.approx(0.2) and constant["ci_high"] == pytest.approx(0.2)
    assert np.isnan(constant["p_value"]) and np.isnan(constant["p_holm"])
    assert not constant["real"] and constant["better"] == ""
    # the family counts the two testable comparisons only
    assert rows[(name, A, C)]["family_size"] == 2
    assert rows[(name, A, C)]["real"] and rows[(name, A, C)]["better"] == A


def test_comparisons_of_records_without_replicates_is_an_empty_table():
    record = _record(A, "accuracy", "imagenet_val", {"accuracy/imagenet_val/top1": (80.0, None, "")})
    other = _record(B, "accuracy", "imagenet_val", {"accuracy/imagenet_val/top1": (70.0, None, "")})
    table = comparisons_table([record, other], STATS)
    assert table.empty and list(table.columns) == list(COMPARISON_COLUMNS)
    assert rankings_table([record], STATS).empty


# ---------------------------------------------------------------------------------------------------------------
# rankings


def _separated(analysis: str, dataset: str, name: str, values: dict[str, float], sd: float, seed: int):
    rng = np.random.default_rng(seed)
    shared = rng.normal(0, sd, N_REPLICATES)
    replicates = {m: v + shared + rng.normal(0, sd, N_REPLICATES) for m, v in values.items()}
    records = [_record(m, analysis, dataset, {name: (v, replicates[m], "plan")}) for m, v in values.items()]
    return records, replicates


@pytest.mark.parametrize(
    "analysis,name,values,sd,order",
    [
        ("accuracy", "accuracy/imagenet_val/top1", {A: 80.0, B: 90.0, C: 75.0, D: 85.0}, 0.3, [B, D, A, C]),
        ("calibration", "calibration/imagenet_val/ece", {A: 0.04, B: 0.01, C: 0.03, D: 0.02}, 0.001, [B, D, C, A]),
        # no better direction (shape bias): rank 1 is the largest value
        ("shape_bias", "shape_bias/imagenet_val/shape_bias", {A: 0.2, B: 0.6, C: 0.4, D: 0.8}, 0.01, [D, B, C, A]),
    ],
)
def test_rankings_of_clearly_separated_models(analysis, name, values, sd, order):
    records, _ = _separated(analysis, "imagenet_val", name, values, sd, seed=5)
    table = rankings_table(records, STATS)
    assert list(table.columns) == list(RANKING_COLUMNS)
    assert len(table) == 4
    by_model = table.set_index("model")
    for rank, model in enumerate(order, start=1):
        row = by_model.loc[model]
        assert (row["rank"], row["rank_low"], row["rank_high"], row["mean_rank"]) == (rank, rank, rank, float(rank))
        assert row["n_models"] == 4 and row["value"] == values[model]
    assert set(table["direction"]) == {direction(analysis, name.rsplit("/", 1)[1])}
    assert by_model.loc[A, "display_name"] == "ViT-sup"


def test_rank_intervals_of_two_close_models_overlap():
    name = "accuracy/imagenet_val/top1"
    records, replicates = _separated("accuracy", "imagenet_val", name, {A: 80.05, B: 80.0, C: 70.0}, 0.3, seed=6)
    table = rankings_table(records, STATS).set_index("model")
    a_behind = np.mean(replicates[B] > replicates[A])  # share of resamples where B beats A
    assert 0.2 < a_behind < 0.8
    assert (table.loc[A, "rank"], table.loc[B, "rank"], table.loc[C, "rank"]) == (1, 2, 3)
    assert table.loc[A, "mean_rank"] == pytest.approx(1 + a_behind)
    assert table.loc[B, "mean_rank"] == pytest.approx(2 - a_behind)
    assert (table.loc[A, "rank_low"], table.loc[A, "rank_high"]) == (1, 2)
    assert (table.loc[B, "rank_low"], table.loc[B, "rank_high"]) == (1, 2)
    assert (table.loc[C, "rank_low"], table.loc[C, "rank_high"]) == (3, 3)


def test_a_model_alone_on_its_plan_is_not_ranked():
    records, _ = _design_records(sections=[("accuracy", "imagenet_val")])
    records.append(_other_plan(D, 99.0, seed=7))
    table = rankings_table(records, STATS)
    assert len(table) == 6 and D not in set(table["model"])
    top1 = table[table["name"] == "accuracy/imagenet_val/top1"].set_index("model")
    assert top1.loc[A, "rank"] == 1 and top1.loc[A, "n_models"] == 3
