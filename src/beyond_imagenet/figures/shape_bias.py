"""Paper Fig. 5: shape vs texture decisions per cue-conflict category, one marker series per model (§6).

Each model is drawn with its display name, colour and marker (``models.display``), in the paper's order. Its
pooled shape bias is a dashed vertical line of the same colour, and the legend entry (marker and dashed line)
names the model and that value, so each line can be read off without matching colours by eye.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from beyond_imagenet.data.cue_conflict import CATEGORIES
from beyond_imagenet.figures.common import outside_legend, save_figure
from beyond_imagenet.models.display import model_displays


def mean_label(name: str, result: dict) -> str:
    """Legend text of one model: its display name and pooled shape bias ("n/a" when undefined)."""
    if not result.get("shape_bias_defined"):
        return f"{name}: shape bias n/a"
    return f"{name}: shape bias {result['shape_bias']:.2f}"


def shape_bias_figure(results: dict[str, dict]) -> Figure:
    """Fig. 5: per shape class (rows) the fraction of texture decisions; dashed line = pooled, per model."""
    fig = Figure(figsize=(6.0, 6.5), layout="constrained")
    ax = fig.add_subplot()
    rows = np.arange(len(CATEGORIES))
    for d in model_displays(results):
        result = results[d.model_id]
        per_class = [result["per_class"].get(c, {}).get("shape_bias", np.nan) for c in CATEGORIES]
        ax.plot(1 - np.asarray(per_class, dtype=float), rows, d.marker, color=d.colour)
        linestyle = "none"
        if result["shape_bias_defined"]:
            ax.axvline(1 - result["shape_bias"], color=d.colour, linestyle="--", linewidth=1)
            linestyle = "--"
        # An empty line (no data) carries the legend entry: the model's marker with its dashed mean line.
        ax.plot([], [], color=d.colour, marker=d.marker, linestyle=linestyle, label=mean_label(d.name, result))
    ax.set_yticks(rows, CATEGORIES)
    ax.set_xlim(0, 1)
    ax.set_xlabel("Fraction of texture decisions (1 - shape bias)")
    ax.set_title("Shape vs texture bias (Fig. 5)")
    outside_legend(fig, ax, 1, title="dashed line: 1 - pooled shape bias")
    return fig


def save_shape_bias_figure(results: dict[str, dict], path: Path) -> Path:
    """Write :func:`shape_bias_figure` as a PNG at ``path`` atomically and return the path."""
    return save_figure(shape_bias_figure(results), path)
