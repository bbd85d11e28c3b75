"""The report's summary chart, in the spirit of paper Fig. 1: one small panel per scorecard property.

Each panel has the models on its y axis (paper order, top first, shared by all panels) and a property's value on
its x axis: a marker in the model's colour and marker shape (``models.display``) with its interval as a horizontal
whisker; a missing value is a grey "n/a". The title says which way is better. Panels wrap in rows of ``columns``;
the figure grows with the number of models, so forty models stay legible.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from beyond_imagenet.figures.common import MISSING_LABEL
from beyond_imagenet.models.display import ModelDisplay, model_displays

BETTER = {"higher": " (higher better)", "lower": " (lower better)"}
PANEL_WIDTH_IN = 2.6
ROW_HEIGHT_IN = 0.22  # per model
TITLE_WIDTH = 34  # characters per title line
MANY_MODELS = 8  # above this: three panels a row instead of five


@dataclass(frozen=True)
class Panel:
    """One property: its title, ``direction`` (higher/lower/none) and {model: (value, low, high)}; NaN = none."""

    title: str
    direction: str
    values: Mapping[str, tuple[float, float, float]] = field(default_factory=dict)


def _draw_panel(ax: Axes, panel: Panel, displays: Sequence[ModelDisplay]) -> None:
    """Markers with interval whiskers for each model (row ``i`` = ``displays[i]``), "n/a" for a missing value."""
    finite = [v for v in panel.values.values() if math.isfinite(v[0])]
    centre = float(np.mean([v[0] for v in finite])) if finite else 0.0
    for row, display in enumerate(displays):
        value, low, high = panel.values.get(display.model_id, (math.nan, math.nan, math.nan))
        if not math.isfinite(value):
            ax.text(centre, row, MISSING_LABEL, ha="center", va="center", fontsize=7, color="dimgrey", style="italic")
            continue
        if math.isfinite(low) and math.isfinite(high):
            ax.hlines(row, low, high, colors=display.colour, linewidth=1.6)
        ax.plot(value, row, marker=display.marker, color=display.colour, markeredgecolor="#333333", markersize=6)
    ax.set_title(textwrap.fill(panel.title + BETTER.get(panel.direction, ""), TITLE_WIDTH), fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(axis="x", color="#dddddd", linewidth=0.5)
    if not finite:
        ax.set_xlim(-1.0, 1.0)
        ax.set_xticks([])


def summary_chart(panels: Sequence[Panel], model_ids: Sequence[str]) -> Figure:
    """The grid of panels for ``model_ids`` (drawn in paper order); the first column carries the model names."""
    displays = model_displays(model_ids)
    columns = 3 if len(displays) > MANY_MODELS else 5
    n_rows = max(1, math.ceil(len(panels) / columns))
    height = n_rows * (0.9 + ROW_HEIGHT_IN * max(len(displays), 2))
    fig = Figure(figsize=(PANEL_WIDTH_IN * columns + 1.4, height), dpi=100, layout="constrained")
    axes = fig.subplots(n_rows, columns, sharey=True, squeeze=False)
    for index, ax in enumerate(axes.flat):
        if index >= len(panels):
            ax.set_axis_off()
            continue
        _draw_panel(ax, panels[index], displays)
    first = axes[0, 0]
    first.set_yticks(range(len(displays)), [d.name for d in displays])
    first.set_ylim(len(displays) - 0.5, -0.5)  # first model on top
    return fig
