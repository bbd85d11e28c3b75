"""Paper Fig. 7: a metric against each sweep's magnitude, one panel per sweep, a line per model (§9).

Each model is one line with its display name, colour and marker (``models.display``), in the paper's order.
"""

from __future__ import annotations

from matplotlib.figure import Figure

from beyond_imagenet.figures.common import outside_legend
from beyond_imagenet.models.display import model_displays
from beyond_imagenet.models.sweep_transforms import SWEEP_KINDS

AXIS_LABELS: dict[str, str] = {
    "scale": "scale factor s (shorter side int(s·R))",
    "shift": "shift d (original pixels)",
    "resolution": "input resolution r (px)",
}


def invariance_figure(curves: dict[str, dict], metric: str, ylabel: str, title: str) -> Figure:
    """Fig. 7 layout: one panel per sweep (scale, shift, resolution), ``metric`` against magnitude, a line per model."""
    fig = Figure(figsize=(13.0, 4.0), layout="constrained")
    axes = fig.subplots(1, len(SWEEP_KINDS), squeeze=False)[0]
    for ax, kind in zip(axes, SWEEP_KINDS, strict=True):
        for d in model_displays(curves):
            curve = curves[d.model_id][kind]
            ax.plot(curve["values"], curve[metric], marker=d.marker, color=d.colour, label=d.name)
        ax.set_xticks(sorted({v for model_curves in curves.values() for v in model_curves[kind]["values"]}))
        ax.set_xlabel(AXIS_LABELS[kind])
        ax.set_ylabel(ylabel)
        ax.set_title(kind)
        ax.grid(alpha=0.3)
    outside_legend(fig, axes[0], len(curves))  # below the panels, clear of every line
    fig.suptitle(title)
    return fig
