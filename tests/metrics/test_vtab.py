"""VTAB aggregation (TRANSFER §0.4, §5.1, §7; paper Table 3, Fig. 6 bottom): hand-computed values and edge cases."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from PIL import Image

from beyond_imagenet.base.errors import UserError
from beyond_imagenet.data.vtab.tasks import PRESETS, get_preset
from beyond_imagenet.figures.vtab import fig6_bottom_figure, plot_fig6_bottom
from beyond_imagenet.metrics.vtab import (
    TABLE3_COLUMNS,
    TABLE3_GROUP_SIZES,
    overall_from_groups,
    table3,
    table3_markdown,
    table3_record,
    table3_settings,
)
from beyond_imagenet.metrics.zscores import zscores

# Synthetic top-1 (%) for the union of both presets' 20 tasks; recall = top-1 - 1 everywhere.
TOP1 = {
    "caltech101": 95.0,
    "cifar100": 84.0,
    "dtd": 80.0,
    "flowers": 96.0,
    "pets": 92.0,
    "svhn": 71.0,
    "sun397": 74.0,  # vtab19 only
    "cifar10": 96.0,  # clipbench19 only
    "pcam": 84.0,
    "eurosat": 96.0,
    "resisc45": 94.0,
    "diabetic_retinopathy": 78.0,
    "clevr_count_all": 72.0,
    "clevr_closest_object_distance": 52.0,
    "dmlab": 52.0,
    "kitti_closest_vehicle_distance": 53.0,
    "dsprites_label_x_position": 57.0,
    "dsprites_label_orientation": 79.0,
    "smallnorb_label_azimuth": 15.0,
    "smallnorb_label_elevation": 37.0,
}
# By hand: the six shared natural tasks sum to 95+84+80+96+92+71 = 518; specialized 84+96+94+78 = 352;
# structured 72+52+52+53+57+79+15+37 = 417.
EXPECTED = {
    "vtab19": {"natural": 592 / 7, "specialized": 88.0, "structured": 52.125, "overall": 1361 / 19},
    "clipbench19": {"natural": 614 / 7, "specialized": 88.0, "structured": 52.125, "overall": 1383 / 19},
}
# Paper Table 3 (TRANSFER §1): (Natural, Specialized, Structured), Overall.
PAPER_TABLE3 = {
    "vit_sup": ((84.2, 84.2, 45.4), 67.8),
    "convnext_sup": ((87.1, 85.0, 50.0), 71.0),
    "vit_clip": ((87.6, 87.8, 50.9), 72.2),
    "convnext_clip": ((87.8, 86.9, 51.2), 72.2),
}


def _results(preset: str, model: str = "m", skip: tuple[str, ...] = (), shift: float = 0.0) -> list[dict]:
    return [
        {
            "model": model,
            "task": t,
            "top1": TOP1[t] + shift,
            "mean_per_class_recall": TOP1[t] + shift - 1.0,
            "weight_decay": 1e-4,
        }
        for t in get_preset(preset).names
        if t not in skip
    ]


# ---------------------------------------------------------------------------------------------- Table 3


def test_both_presets_have_7_4_8_groups() -> None:
    for preset in PRESETS.values():
        assert {g: len(v) for g, v in preset.groups.items()} == dict(TABLE3_GROUP_SIZES)


@pytest.mark.parametrize("preset", ["vtab19", "clipbench19"])
def test_table3_group_means_and_overall_by_hand(preset: str) -> None:
    row = table3(_results(preset), preset).rows["m"]
    want = EXPECTED[preset]
    for g in ("natural", "specialized", "structured"):
        assert row.groups[g] == pytest.approx(want[g], abs=1e-12)
        assert row.groups_mean_per_class_recall[g] == pytest.approx(want[g] - 1.0, abs=1e-12)
    assert row.overall == pytest.approx(want["overall"], abs=1e-12)
    assert row.overall_mean_per_class_recall == pytest.approx(want["overall"] - 1.0, abs=1e-12)
    assert row.missing == ()
    assert tuple(row.tasks) == get_preset(preset).names  # preset order
    assert row.tasks["dtd"].weight_decay == 1e-4
    # the §0.4 identity holds for any complete row
    assert overall_from_groups(*(row.groups[g] for g in ("natural", "specialized", "structured"))) == pytest.approx(
        row.overall, abs=1e-12
    )


def test_presets_differ_only_in_natural() -> None:
    vtab = table3(_results("vtab19"), "vtab19").rows["m"]
    clip = table3(_results("clipbench19"), "clipbench19").rows["m"]
    assert "sun397" in vtab.tasks and "cifar10" not in vtab.tasks
    assert "cifar10" in clip.tasks and "sun397" not in clip.tasks
    assert clip.groups["natural"] - vtab.groups["natural"] == pytest.approx((96.0 - 74.0) / 7)
    assert clip.overall - vtab.overall == pytest.approx((96.0 - 74.0) / 19)


def test_overall_is_task_mean_not_mean_of_group_means() -> None:
    row = table3(_results("clipbench19"), "clipbench19").rows["m"]
    mean_of_groups = (614 / 7 + 88.0 + 52.125) / 3  # 75.95
    assert row.overall == pytest.approx(1383 / 19)  # 72.79
    assert abs(row.overall - mean_of_groups) > 3.0


def test_missing_task_makes_its_group_and_overall_none() -> None:
    results = _results("clipbench19", "full") + _results("clipbench19", "partial", skip=("pcam", "dtd"))
    table = table3(results, "clipbench19")
    row = table.rows["partial"]
    assert row.missing == ("dtd", "pcam")  # preset order
    assert row.groups["natural"] is None and row.groups["specialized"] is None and row.overall is None
    assert row.groups_mean_per_class_recall["natural"] is None and row.overall_mean_per_class_recall is None
    assert row.groups["structured"] == pytest.approx(52.125)
    assert table.rows["full"].overall == pytest.approx(1383 / 19)
    md = table3_markdown(table)
    assert "partial: Overall not computed: missing dtd, pcam" in md
    assert "| partial | — | — | 52.1 | — |" in md
    assert "| dtd | Natural | 80.0 (79.0) | missing |" in md
    assert "full:" not in md  # no note for a complete model


def test_missing_structured_task_keeps_other_groups() -> None:
    row = table3(_results("vtab19", skip=("dmlab",)), "vtab19").rows["m"]
    assert row.groups["natural"] == pytest.approx(592 / 7) and row.groups["specialized"] == 88.0
    assert row.groups["structured"] is None and row.overall is None and row.missing == ("dmlab",)


def test_models_select_and_order_rows() -> None:
    results = _results("vtab19", "a") + _results("vtab19", "b", shift=1.0)
    assert table3(results, "vtab19").models == ("a", "b")
    table = table3(results, "vtab19", models=["b", "ghost"])
    assert table.models == ("b", "ghost")
    assert table.rows["b"].overall == pytest.approx(1361 / 19 + 1.0)
    assert table.rows["ghost"].missing == get_preset("vtab19").names and table.rows["ghost"].overall is None
    with pytest.raises(UserError, match="more than once"):
        table3(results, "vtab19", models=["a", "a"])


def test_vtab_prefix_is_accepted() -> None:
    results = [{**r, "task": f"vtab/{r['task']}"} for r in _results("vtab19")]
    assert table3(results, "vtab19").rows["m"].overall == pytest.approx(1361 / 19)


def test_unknown_task_names_it_and_lists_the_preset() -> None:
    with pytest.raises(UserError) as err:
        table3([*_results("vtab19", skip=("sun397",)), *_results("clipbench19")], "vtab19")
    msg = str(err.value)
    assert "'cifar10'" in msg and "clipbench19" in msg and "sun397" in msg and "smallnorb_label_elevation" in msg
    with pytest.raises(UserError, match="imagenet"):
        table3([{"model": "m", "task": "imagenet", "top1": 80.0, "mean_per_class_recall": 80.0}], "vtab19")
    with pytest.raises(UserError, match="unknown VTAB preset"):
        table3(_results("vtab19"), "vtab20")


def test_duplicate_result_is_an_error() -> None:
    results = [*_results("vtab19"), _results("vtab19")[2]]
    with pytest.raises(UserError, match=r"\(m, dtd\)"):
        table3(results, "vtab19")


@pytest.mark.parametrize(
    ("key", "value"),
    [
        *[("top1", v) for v in (100.5, -0.1, math.nan, math.inf, True, "80")],
        *[("mean_per_class_recall", v) for v in (101.0, math.nan)],
        ("weight_decay", -1.0),
    ],
)
def test_bad_values_are_errors(key: str, value: object) -> None:
    results = _results("vtab19")
    results[5] = {**results[5], key: value}
    with pytest.raises(UserError, match=key):
        table3(results, "vtab19")


def test_missing_keys_are_errors() -> None:
    bad = {"model": "m", "task": "dtd", "top1": 80.0}
    with pytest.raises(UserError, match="mean_per_class_recall"):
        table3([bad], "vtab19")
    good = {**bad, "mean_per_class_recall": 0.0}
    ok = table3([good, {**good, "task": "svhn", "top1": 100.0, "weight_decay": None}], "vtab19")
    assert ok.rows["m"].tasks["svhn"].top1 == 100.0 and ok.rows["m"].tasks["dtd"].weight_decay is None


def test_paper_table3_overall_from_groups() -> None:
    """TRANSFER §0.4: (7 N + 4 Sp + 8 St) / 19 reproduces the paper's Overall; the mean of groups does not."""
    assert overall_from_groups(84.2, 84.2, 45.4) == pytest.approx(1289.4 / 19)  # 67.863
    for groups, overall in PAPER_TABLE3.values():
        assert abs(overall_from_groups(*groups) - overall) < 0.1
        assert abs(sum(groups) / 3 - overall) > 1.0


# ---------------------------------------------------------------------------------------------- z-scores

WORKED = {"vit_sup": 67.8, "convnext_sup": 71.0, "vit_clip": 72.2, "convnext_clip": 72.2}


@pytest.mark.parametrize(
    ("ddof", "sigma", "z"),
    [(0, 1.8, [-1.667, 0.111, 0.778, 0.778]), (1, 2.078, [-1.443, 0.096, 0.674, 0.674])],
)
def test_zscores_worked_example(ddof: int, sigma: float, z: list[float]) -> None:
    result = zscores({m: {"overall": v} for m, v in WORKED.items()}, ddof=ddof)
    assert result.setting_mean["overall"] == pytest.approx(70.8)
    assert result.setting_std["overall"] == pytest.approx(sigma, abs=5e-4)
    got = [result.matrix[m]["overall"] for m in WORKED]
    np.testing.assert_allclose(got, z, atol=5e-4)
    assert [result.mean[m] for m in WORKED] == pytest.approx(got)
    assert result.ranking == ("convnext_clip", "vit_clip", "convnext_sup", "vit_sup")  # tie broken by name
    assert result.ddof == ddof and result.skipped == () and result.unranked == ()


def test_zscores_all_tied_are_zero() -> None:
    result = zscores({m: {"s": 72.2, "t": 0.1 + 0.2} for m in ("b", "a", "c")})
    assert all(result.matrix[m] == {"s": 0.0, "t": 0.0} for m in "abc")
    assert result.setting_std == {"s": 0.0, "t": 0.0} and result.ranking == ("a", "b", "c")


def test_zscores_average_over_own_settings_and_skip_thin_settings() -> None:
    values = {"a": {"s1": 1.0, "s2": 10.0}, "b": {"s1": 3.0, "s2": 20.0, "solo": 5.0}, "c": {"s1": 5.0}}
    result = zscores(values)
    z1 = 2.0 / math.sqrt(8.0 / 3.0)  # s1: mu 3, population sigma sqrt(8/3)
    assert result.matrix["c"] == {"s1": pytest.approx(z1)}
    assert result.mean["a"] == pytest.approx((-z1 - 1.0) / 2)  # s2: mu 15, sigma 5
    assert result.mean["b"] == pytest.approx(0.5)
    assert result.mean["c"] == pytest.approx(z1)
    assert result.ranking == ("c", "b", "a")
    assert result.settings == ("s1", "s2") and result.skipped == ("solo",)
    assert "solo" not in result.matrix["b"]


def test_zscores_unranked_and_bad_input() -> None:
    result = zscores({"a": {"x": 1.0, "y": 2.0}, "b": {"x": 3.0}, "lonely": {"z": 4.0}})
    assert result.unranked == ("lonely",) and "lonely" not in result.mean and result.skipped == ("y", "z")
    assert zscores({"a": {"x": 1.0}, "b": {"x": 3.0}}, ddof=2).skipped == ("x",)  # N <= ddof: no sigma
    with pytest.raises(UserError, match="ddof"):
        zscores({"a": {"x": 1.0}}, ddof=-1)
    with pytest.raises(UserError, match="finite"):
        zscores({"a": {"x": math.nan}, "b": {"x": 1.0}})


def test_zscores_on_table3_tasks() -> None:
    results = _results("vtab19", "lo") + _results("vtab19", "hi", shift=2.0, skip=("dtd",))
    settings = table3_settings(table3(results, "vtab19"))
    assert len(settings["lo"]) == 19 and len(settings["hi"]) == 18
    result = zscores(settings)
    assert result.mean == {"hi": pytest.approx(1.0), "lo": pytest.approx(-1.0)}  # lo's lone dtd is skipped
    assert result.skipped == ("dtd",) and result.ranking == ("hi", "lo")


# ---------------------------------------------------------------------------------------------- report


def test_markdown_layout() -> None:
    table = table3(_results("clipbench19", "vit_clip"), "clipbench19")
    md = table3_markdown(table)
    lines = md.splitlines()
    assert "| Model | Natural | Specialized | Structured | Overall |" in lines
    assert "| vit_clip | 87.7 | 88.0 | 52.1 | 72.8 |" in lines
    assert "| vit_clip | 86.7 | 87.0 | 51.1 | 71.8 |" in lines  # mean per-class recall
    assert "| Task | Group | vit_clip |" in lines
    task_rows = [line.split(" | ") for line in lines if line.endswith(")|") or line.endswith(") |")]
    assert tuple(r[0].removeprefix("| ") for r in task_rows) == get_preset("clipbench19").names
    assert task_rows[0] == ["| caltech101", "Natural", "95.0 (94.0) |"]
    assert task_rows[-1] == ["| smallnorb_label_elevation", "Structured", "37.0 (36.0) |"]
    assert "not computed" not in md


def test_record_is_json_and_round_trips() -> None:
    results = _results("vtab19", "a") + _results("vtab19", "b", skip=("svhn",))
    table = table3(results, "vtab19")
    record = table3_record(table)
    text = json.dumps(record, allow_nan=False)
    assert json.loads(text) == record
    a = json.loads(text)["models"]["a"]
    assert a["overall"] == pytest.approx(1361 / 19) and a["groups"]["structured"] == 52.125
    assert a["overall_mean_per_class_recall"] == pytest.approx(1361 / 19 - 1.0)
    assert a["tasks"]["dtd"] == {"top1": 80.0, "mean_per_class_recall": 79.0, "weight_decay": 1e-4}
    assert list(a["tasks"]) == list(get_preset("vtab19").names) and a["missing"] == []
    b = json.loads(text)["models"]["b"]
    assert b["overall"] is None and b["groups"]["natural"] is None and b["missing"] == ["svhn"]
    assert '"overall": null' in text and record["preset"] == "vtab19"
    assert record["task_groups"]["natural"][-1] == "sun397"


def test_fig6_bottom_bars_and_png(tmp_path) -> None:
    results = [
        *_results("clipbench19", "vit_sup", shift=-5.0),
        *_results("clipbench19", "vit_clip"),
        *_results("clipbench19", "convnext_clip", skip=("dmlab",)),
    ]
    table = table3(results, "clipbench19")
    fig = fig6_bottom_figure(table)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == list(TABLE3_COLUMNS)
    assert len(ax.containers) == 3 and all(len(c) == len(TABLE3_COLUMNS) for c in ax.containers)
    heights = [[bar.get_height() for bar in c] for c in ax.containers]
    np.testing.assert_allclose(heights[1], [614 / 7, 88.0, 52.125, 1383 / 19])
    assert np.isnan(heights[2][2]) and np.isnan(heights[2][3]) and heights[2][0] == pytest.approx(614 / 7)
    texts = [t.get_text() for t in ax.texts]
    assert texts.count("n/a") == 2 and "72.8" in texts and "67.8" in texts
    assert any(t.get_text() == "ConvNeXt-clip (1 task(s) missing)" for t in fig.legends[0].get_texts())

    path = plot_fig6_bottom(table, tmp_path / "plots" / "fig6_bottom.png")
    assert path == tmp_path / "plots" / "fig6_bottom.png"
    with Image.open(path) as img:
        assert img.format == "PNG" and img.size[0] >= 400 and img.size[1] >= 300
    assert path.stat().st_size > 10_000
    assert [p.name for p in (tmp_path / "plots").iterdir()] == ["fig6_bottom.png"]  # no temp file left
    with pytest.raises(UserError, match="no model"):
        fig6_bottom_figure(table3([], "clipbench19"))
