"""What a researcher sees in the figures: model looks defined once, legible labels, legends clear of the data."""

from __future__ import annotations

import math
from itertools import combinations

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_hex, to_rgb
from matplotlib.figure import Figure

from beyond_imagenet.data.cue_conflict import CATEGORIES
from beyond_imagenet.figures.calibration import CalibrationPanel, calibration_figure
from beyond_imagenet.figures.cka import colour_limits, cross_figure, fig8_figure, layer_ticks
from beyond_imagenet.figures.common import MISSING_LABEL, ZERO_LABEL, grouped_bars
from beyond_imagenet.figures.imagenet_x import factor_effects, factor_order, imagenet_x_figure
from beyond_imagenet.figures.invariance import invariance_figure
from beyond_imagenet.figures.robustness import robustness_figure
from beyond_imagenet.figures.shape_bias import shape_bias_figure
from beyond_imagenet.figures.vtab import fig6_bottom_figure
from beyond_imagenet.metrics.calibration import calibration_bins, ece_from_bins
from beyond_imagenet.metrics.vtab import TABLE3_COLUMNS, ModelScores, Table3
from beyond_imagenet.models.display import (
    PALETTE,
    PAPER_ORDER,
    display_map,
    display_name,
    model_displays,
    paper_order,
)
from beyond_imagenet.models.sweep_transforms import SWEEP_KINDS

PAPER_NAMES = ["ViT-sup", "ConvNeXt-sup", "ViT-clip", "ConvNeXt-clip"]
SHUFFLED = ["convnext_clip", "vit_clip", "convnext_sup", "vit_sup"]


def _drawn(fig: Figure):
    """Draw ``fig`` with Agg and return its renderer (bounding boxes are only known after a draw)."""
    FigureCanvasAgg(fig)
    fig.canvas.draw()
    return fig.canvas.get_renderer()


def _bar_colours(ax) -> list[str]:
    return [to_hex(container.patches[0].get_facecolor()) for container in ax.containers]


def _labels(ax, text: str) -> list:
    return [t for t in ax.texts if t.get_text() == text]


# --- one display definition per model ----------------------------------------------------------------------


def test_palette_is_distinct_and_never_near_black() -> None:
    assert len({c.lower() for c in PALETTE}) == len(PALETTE)
    for colour in PALETTE:
        r, g, b = to_rgb(colour)
        assert 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.15, colour  # relative luminance: far from black
    for a, b in combinations(PALETTE, 2):
        assert np.abs(np.subtract(to_rgb(a), to_rgb(b))).sum() > 0.25, (a, b)


def test_paper_models_first_in_paper_order_with_paper_names_and_fixed_colours() -> None:
    ids = ["timm:resnet50", *SHUFFLED, "open_clip:RN50@openai"]
    assert paper_order(ids) == [*PAPER_ORDER, "timm:resnet50", "open_clip:RN50@openai"]
    looks = model_displays(ids)
    assert [d.name for d in looks[:4]] == PAPER_NAMES
    assert [d.colour for d in looks[:4]] == list(PALETTE[:4])
    assert len({d.marker for d in looks[:4]}) == 4
    assert model_displays(PAPER_ORDER) == looks[:4]  # the same whatever else is in the figure
    assert display_name("timm:resnet50") == "timm:resnet50"


def test_demo_stand_ins_take_their_paper_models_look_unless_it_is_taken() -> None:
    demo = display_map(["demo_random_convnext_clip", "demo_random_vit_sup"])
    assert demo["demo_random_vit_sup"].name == "ViT-sup (demo)"
    assert demo["demo_random_vit_sup"].colour == display_map(["vit_sup"])["vit_sup"].colour
    assert list(demo) == ["demo_random_vit_sup", "demo_random_convnext_clip"]
    both = display_map(["vit_sup", "demo_random_vit_sup"])
    assert both["vit_sup"].colour == PALETTE[0] and both["demo_random_vit_sup"].colour != PALETTE[0]


@pytest.mark.parametrize("n", [2, 7, 12])
def test_looks_are_distinct_within_a_figure_and_independent_of_input_order(n: int) -> None:
    ids = [f"timm:model_{i}" for i in range(n)]
    looks = model_displays(ids)
    if n <= len(PALETTE):
        assert len({d.colour for d in looks}) == n
    assert len({(d.colour, d.marker, d.hatch) for d in looks}) == n
    assert display_map(ids) == display_map(reversed(ids))
    assert [d.model_id for d in looks] == ids  # non-paper ids keep the given order


def test_same_model_same_colour_and_name_in_every_figure() -> None:
    expected = {d.name: d.colour.lower() for d in model_displays(SHUFFLED)}
    figures = {
        "robustness": robustness_figure({m: {"imagenet_val": 80.0, "imagenet_r": 50.0} for m in SHUFFLED}),
        "imagenet_x": imagenet_x_figure(["a", "b"], {m: [1.2, 0.8] for m in SHUFFLED}),
        "vtab": fig6_bottom_figure(_table3({m: [60.0, 70.0, 50.0, 60.0] for m in SHUFFLED})),
    }
    for name, fig in figures.items():
        ax = fig.axes[0]
        legend = [t.get_text() for t in fig.legends[0].get_texts()]
        assert legend == PAPER_NAMES, name
        assert dict(zip(legend, _bar_colours(ax), strict=True)) == expected, name
    inv = invariance_figure(_curves(SHUFFLED), "accuracy", "Top-1", "Fig. 7")
    lines = {line.get_label(): to_hex(line.get_color()) for line in inv.axes[0].lines}
    assert lines == expected
    shape = shape_bias_figure(_shape_results(SHUFFLED))
    assert [to_hex(line.get_color()) for line in shape.axes[0].lines if not line.get_label().startswith("_")] == [
        expected[n] for n in PAPER_NAMES
    ]
    calibration = calibration_figure([("val", [_panel(m) for m in SHUFFLED])], "Calibration")
    tops = calibration.axes[:4]
    assert [ax.get_title() for ax in tops] == PAPER_NAMES
    assert [to_hex(ax.patches[0].get_facecolor()) for ax in tops] == [expected[n] for n in PAPER_NAMES]


# --- Fig. 6 bottom: value labels ----------------------------------------------------------------------------


def _table3(values: dict[str, list[float | None]]) -> Table3:
    rows = {}
    for model, (natural, specialized, structured, overall) in values.items():
        groups = {"natural": natural, "specialized": specialized, "structured": structured}
        missing = ("svhn",) if any(v is None for v in values[model]) else ()
        rows[model] = ModelScores(model, {}, groups, groups, overall, overall, missing)
    return Table3("vtab19", {}, rows)


def test_fig6_bottom_value_labels_overlap_nothing() -> None:
    values = {m: [99.9, 99.8, 99.7, 99.9] for m in [*SHUFFLED, "timm:resnet50", "timm:vit_small"]}
    values["vit_clip"][2] = None
    fig = fig6_bottom_figure(_table3(values))
    renderer = _drawn(fig)
    ax = fig.axes[0]
    labels = [t for t in ax.texts if t.get_text()]
    assert len(labels) == 6 * len(TABLE3_COLUMNS)
    boxes = [t.get_window_extent(renderer) for t in labels]
    pairs = combinations(zip(labels, boxes, strict=True), 2)
    assert not [(a.get_text(), b.get_text()) for (a, x), (b, y) in pairs if x.overlaps(y)]
    title = ax.title.get_window_extent(renderer)
    assert not any(box.overlaps(title) for box in boxes)
    assert all(t.get_fontsize() <= 8 for t in labels)
    assert ax.get_ylim()[1] > 100.0 and max(ax.get_yticks()) == 100.0  # headroom above the top tick
    axes_box = ax.get_window_extent(renderer)
    assert all(box.y1 <= axes_box.y1 for box in boxes)  # inside the axes, below the title
    assert not fig.legends[0].get_window_extent(renderer).overlaps(axes_box)
    assert ax.get_legend() is None


# --- Fig. 2 ImageNet-X: order and legend --------------------------------------------------------------------


def test_imagenet_x_factors_ordered_by_mean_error_ratio_and_legend_outside() -> None:
    factors = ["pose", "color", "style", "shape", "none_at_all"]
    series = {
        "vit_sup": [1.0, 2.0, 0.5, 3.5, None],
        "vit_clip": [1.4, 1.0, 0.7, 1.0, None],
        "timm:resnet50": [1.0, 2.5, None, 1.5, None],
    }
    effects = factor_effects(factors, series)
    assert effects["color"] == pytest.approx(5.5 / 3) and effects["style"] == pytest.approx(0.6)
    assert math.isnan(effects["none_at_all"])
    order = factor_order(factors, series)
    assert order == ["shape", "color", "pose", "style", "none_at_all"]
    fig = imagenet_x_figure(factors, series)
    renderer = _drawn(fig)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == order
    heights = [bar.get_height() for bar in ax.containers[0]]  # vit_sup, reordered with the factors
    assert heights[:4] == [3.5, 2.0, 1.0, 0.5]
    legend = fig.legends[0].get_window_extent(renderer)
    assert not legend.overlaps(ax.get_window_extent(renderer))
    assert legend.y1 <= ax.get_window_extent(renderer).y0  # below the axes
    assert ax.get_legend() is None


# --- zero and missing values in bar charts ------------------------------------------------------------------


def _bar_centres(ax, model_index: int) -> list[float]:
    return [bar.get_x() + bar.get_width() / 2 for bar in ax.containers[model_index]]


ZERO_AND_MISSING = {
    "robustness": lambda: robustness_figure(
        {"vit_sup": {"imagenet_val": 0.0, "imagenet_r": 40.0}, "convnext_sup": {"imagenet_val": 5.0}}
    ),
    "vtab": lambda: fig6_bottom_figure(
        _table3({"vit_sup": [0.0, 50.0, 50.0, 40.0], "convnext_sup": [60.0, None, 50.0, None]})
    ),
    "imagenet_x": lambda: imagenet_x_figure(["pose", "color"], {"vit_sup": [0.0, 1.5], "convnext_sup": [1.0, None]}),
    # PUG-ImageNet (Fig. 3) draws through the same helper, as the analysis does
    "pug": lambda: grouped_bars(
        ["Camera_Yaw", "average"], {"vit_sup": [0.0, 30.0], "convnext_sup": [20.0, None]}, "%", "PUG", (0, 100)
    ),
}


@pytest.mark.parametrize("chart", list(ZERO_AND_MISSING))
def test_zero_values_get_a_visible_mark_and_missing_ones_an_n_a_label(chart: str) -> None:
    models = ["vit_sup", "convnext_sup"]
    fig = ZERO_AND_MISSING[chart]()
    renderer = _drawn(fig)
    ax = fig.axes[0]
    zero_index = [i for i, bar in enumerate(ax.containers[0]) if bar.get_height() == 0.0]
    assert len(zero_index) == 1
    (zero,) = _labels(ax, ZERO_LABEL)
    assert zero.xy[0] == pytest.approx(_bar_centres(ax, 0)[zero_index[0]])
    assert zero.get_window_extent(renderer).height > 3  # drawn, not a zero-size artist
    ticks = [c for c in ax.collections if to_hex(c.get_colors()[0]) == display_map(models)["vit_sup"].colour.lower()]
    assert len(ticks) == 1 and ticks[0].get_linewidths()[0] >= 2  # a coloured tick where the bar would be
    missing = _labels(ax, MISSING_LABEL)
    missing_index = [i for i, bar in enumerate(ax.containers[1]) if np.isnan(bar.get_height())]
    assert missing and len(missing) == len(missing_index)
    assert sorted(t.xy[0] for t in missing) == pytest.approx([_bar_centres(ax, 1)[i] for i in missing_index])
    assert missing[0].get_color() != zero.get_color()  # missing is marked differently from zero


# --- Fig. 4 calibration: one title ---------------------------------------------------------------------------


def _panel(model: str) -> CalibrationPanel:
    rng = np.random.default_rng(0)
    conf = rng.uniform(0.3, 1.0, 200)
    bins = calibration_bins(conf, rng.uniform(size=200) < conf)
    return CalibrationPanel(model, bins, ece_from_bins(bins), 0.7, float(conf.mean()))


def _titles(fig: Figure) -> list[str]:
    axes_titles = [t.get_text() for ax in fig.axes for t in (ax.title, ax._left_title, ax._right_title)]
    return [t for t in [*axes_titles, fig.get_suptitle()] if t]


def test_per_model_reliability_figure_has_one_title() -> None:
    fig = calibration_figure([("", [_panel("vit_sup")])], "ViT-sup on val")
    assert _titles(fig) == ["ViT-sup on val"]


def test_multi_model_calibration_figure_titles_each_model_once() -> None:
    fig = calibration_figure([("", [_panel(m) for m in SHUFFLED])], "Calibration on val")
    titles = _titles(fig)
    assert titles == [*PAPER_NAMES, "Calibration on val"]
    grid = calibration_figure([("val", [_panel("vit_sup")]), ("r", [_panel("vit_sup")])], "Fig. 4")
    assert _titles(grid) == ["val: ViT-sup", "r: ViT-sup", "Fig. 4"]


# --- Fig. 8 CKA: ticks and colour scale ---------------------------------------------------------------------


def _cka(n: int, low: float) -> np.ndarray:
    distance = np.abs(np.subtract.outer(np.arange(n), np.arange(n)))
    return low + (1.0 - low) * np.exp(-distance / 5.0)


def test_cka_heatmaps_have_layer_ticks_and_a_data_range_colour_bar() -> None:
    per_model = {m: {"all": _cka(30, 0.47), "linear": _cka(9, 0.62)} for m in ("convnext_sup", "vit_sup")}
    fig = fig8_figure(per_model)
    _drawn(fig)
    heatmaps = [ax for ax in fig.axes if ax.images]
    assert len(heatmaps) == 4
    for ax in heatmaps:
        n = ax.images[0].get_array().shape[0]
        for labels in (ax.get_xticklabels(), ax.get_yticklabels()):
            texts = [t.get_text() for t in labels]
            assert 2 <= len(texts) <= 6 and all(t.isdigit() and int(t) < n for t in texts)
            assert texts[0] == "0"
    assert heatmaps[0].get_ylabel().startswith("ViT-sup")  # paper order, display names
    off_diagonal_min = min(m[~np.eye(len(m), dtype=bool)].min() for d in per_model.values() for m in d.values())
    image = heatmaps[0].images[0]
    assert image.norm.vmin == pytest.approx(math.floor(off_diagonal_min * 10) / 10) == pytest.approx(0.4)
    assert image.norm.vmax == pytest.approx(1.0)
    colour_bar = [ax for ax in fig.axes if not ax.images]
    assert len(colour_bar) == 1 and colour_bar[0].get_ylim() == pytest.approx((0.4, 1.0))


def test_cross_model_cka_scale_follows_data_and_has_ticks() -> None:
    matrix = 0.33 + 0.5 * np.random.default_rng(1).uniform(size=(12, 20))
    fig = cross_figure({("vit_sup", "convnext_clip"): matrix})
    _drawn(fig)
    ax = fig.axes[0]
    assert ax.images[0].norm.vmin == pytest.approx(0.3) and ax.images[0].norm.vmax == pytest.approx(0.9)
    assert ax.get_xticklabels() and ax.get_yticklabels()
    assert ax.get_ylabel() == "ViT-sup layer" and ax.get_xlabel() == "ConvNeXt-clip layer"


def test_colour_limits_edge_cases() -> None:
    assert colour_limits([np.full((3, 3), np.nan)], off_diagonal=True) == (0.0, 1.0)
    assert colour_limits([np.ones((3, 3))], off_diagonal=True) == pytest.approx((0.9, 1.0))
    assert colour_limits([np.array([[1.0, -0.2], [-0.2, 1.0]])], off_diagonal=True) == (0.0, 1.0)
    assert layer_ticks(1) == [0] and layer_ticks(200)[-1] <= 199 and len(layer_ticks(200)) <= 6


# --- Fig. 5 shape bias: labelled mean lines ------------------------------------------------------------------


def _shape_results(models: list[str]) -> dict[str, dict]:
    rng = np.random.default_rng(2)
    return {
        m: {
            "per_class": {c: {"shape_bias": float(rng.uniform())} for c in CATEGORIES},
            "shape_bias": 0.2 + 0.1 * i,
            "shape_bias_defined": m != "convnext_clip",
        }
        for i, m in enumerate(models)
    }


def test_shape_bias_mean_lines_are_labelled_with_name_and_value() -> None:
    results = _shape_results(SHUFFLED)
    fig = shape_bias_figure(results)
    renderer = _drawn(fig)
    ax = fig.axes[0]
    texts = [t.get_text() for t in fig.legends[0].get_texts()]
    expected = {m: f"{display_name(m)}: shape bias {results[m]['shape_bias']:.2f}" for m in SHUFFLED}
    expected["convnext_clip"] = "ConvNeXt-clip: shape bias n/a"
    assert texts == [expected[m] for m in PAPER_ORDER]
    dashed = [line for line in ax.lines if line.get_linestyle() == "--" and len(line.get_xdata()) == 2]
    assert len(dashed) == 3  # one mean line per model whose shape bias is defined
    assert not fig.legends[0].get_window_extent(renderer).overlaps(ax.get_window_extent(renderer))


def _curves(models: list[str]) -> dict[str, dict]:
    return {m: {k: {"values": [1, 2, 3], "accuracy": [70.0, 60.0, 50.0]} for k in SWEEP_KINDS} for m in models}
