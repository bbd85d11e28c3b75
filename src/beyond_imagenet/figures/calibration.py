"""Reliability diagrams and confidence histograms, laid out like paper Fig. 4 (docs/protocol.md §5, Plots).

Each model's bars take its colour from ``models.display`` and its column is headed by its display name, once: a
figure of one model has the suptitle only, a figure of several has one title per column (above the reliability
diagram; the histogram below it is untitled). Columns follow the paper's order.

Figures are built with the object-oriented ``matplotlib.figure.Figure`` API and rendered by Agg, so no window
ever opens whatever backend the caller uses; PNGs are written atomically (temp file + ``os.replace``).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from beyond_imagenet.figures.common import save_figure
from beyond_imagenet.metrics.calibration import CalibrationBins
from beyond_imagenet.models.display import display_map

# Agg only matters to a later pyplot import; never switch a live pyplot session or override MPLBACKEND.
if "matplotlib.pyplot" not in sys.modules and "MPLBACKEND" not in os.environ:
    matplotlib.use("Agg")

BAR_COLOR = "#fc8e62"  # official plot's bar colour (the default when no model colour is given)
# The gap is a translucent white wash with dark hatching, not the official yellow: over a model-coloured bar a
# yellow wash would mix into a new hue (blue + yellow reads as green); white only lightens, on any bar colour.
GAP_FACE = (1.0, 1.0, 1.0, 0.45)
GAP_EDGE = "#333333"
PANEL_SIZE_IN = (4.0, 4.0)  # width, height of one reliability or histogram panel
DPI = 100


@dataclass(frozen=True, eq=False)
class CalibrationPanel:
    """One model's column in the calibration figure (paper Fig. 4)."""

    model: str
    bins: CalibrationBins
    ece: float
    accuracy: float
    mean_confidence: float


def _bin_geometry(bins: CalibrationBins) -> tuple[np.ndarray, float]:
    """Left edges of the bins and their common width."""
    return np.asarray(bins.edges[:-1], dtype=np.float64), 1.0 / bins.n_bins


def draw_reliability_diagram(
    ax: Axes, bins: CalibrationBins, ece: float, title: str | None = None, colour: str = BAR_COLOR
) -> None:
    """Accuracy per confidence bin with the gap to the bin midpoint, the diagonal and the ECE (paper Fig. 4).

    As in the official plot, the hatched gap runs from ``acc_i`` to the bin midpoint (visual only; the ECE
    uses the mean confidence). Empty bins get a zero-height bar and no gap. ``title=None`` leaves the axes untitled.
    """
    left, width = _bin_geometry(bins)
    nonempty = bins.counts > 0
    acc = np.where(nonempty, np.nan_to_num(bins.accuracy, nan=0.0), 0.0)
    mid = left + width / 2.0
    gap = np.where(nonempty, np.abs(mid - acc), 0.0)
    ax.bar(left, acc, width=width, align="edge", color=colour, edgecolor="k", label="Predictions")
    ax.bar(
        left,
        gap,
        bottom=np.minimum(acc, mid),
        width=width,
        align="edge",
        facecolor=GAP_FACE,
        edgecolor=GAP_EDGE,
        hatch="//",
        label="Gap",
    )
    ax.plot([0.0, 1.0], [0.0, 1.0], linestyle="--", color="tab:grey")
    ax.text(0.5, 0.95, f"ECE = {ece:.4f}", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(0.0, 1.0)
    ax.set_xlabel("Confidence")
    ax.set_ylabel("Accuracy")
    if title:
        ax.set_title(title)
    ax.legend(loc="upper left", bbox_to_anchor=(0.0, 0.9), fontsize="small")


def draw_confidence_histogram(
    ax: Axes,
    bins: CalibrationBins,
    accuracy: float,
    mean_confidence: float,
    title: str | None = None,
    colour: str = BAR_COLOR,
) -> None:
    """Fraction of samples per confidence bin, with overall accuracy and mean confidence marked (Fig. 4)."""
    left, width = _bin_geometry(bins)
    ax.bar(left, bins.proportion, width=width, align="edge", color=colour, edgecolor="k")
    ax.axvline(accuracy, linestyle="--", color="tab:blue", label=f"Accuracy = {accuracy:.3f}")
    conf_label = f"Mean confidence = {mean_confidence:.3f}"
    ax.axvline(mean_confidence, linestyle="--", color="tab:red", label=conf_label)
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(0.0, 1.0)  # fixed scale so columns compare across models
    ax.set_xlabel("Confidence")
    ax.set_ylabel("Fraction of samples")
    if title:
        ax.set_title(title)
    ax.legend(loc="upper left", fontsize="small")


def calibration_figure(datasets: list[tuple[str, list[CalibrationPanel]]], suptitle: str) -> Figure:
    """Per dataset two rows (reliability, histogram), one column per model: the layout of paper Fig. 4.

    One title per model column (on its reliability diagram); a figure of a single model has only ``suptitle``.
    """
    looks = display_map(p.model for _, panels in datasets for p in panels)
    order = list(looks)
    cols = max(len(panels) for _, panels in datasets)
    rows = 2 * len(datasets)
    single = rows == 2 and cols == 1
    fig = Figure(figsize=(PANEL_SIZE_IN[0] * cols, PANEL_SIZE_IN[1] * rows), dpi=DPI, layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for block, (dataset, panels) in enumerate(datasets):
        prefix = f"{dataset}: " if len(datasets) > 1 else ""
        for col, p in enumerate(sorted(panels, key=lambda q: order.index(q.model))):
            look = looks[p.model]
            title = None if single else prefix + look.name
            draw_reliability_diagram(axes[2 * block, col], p.bins, p.ece, title, look.colour)
            draw_confidence_histogram(
                axes[2 * block + 1, col], p.bins, p.accuracy, p.mean_confidence, None, look.colour
            )
        for col in range(len(panels), cols):
            axes[2 * block, col].set_visible(False)
            axes[2 * block + 1, col].set_visible(False)
    fig.suptitle(suptitle)
    return fig


def save_calibration_grid(datasets: list[tuple[str, list[CalibrationPanel]]], path: str | Path, suptitle: str) -> Path:
    """Write the Fig. 4 layout for several datasets (e.g. ImageNet val and ImageNet-R) and models."""
    if not datasets or not all(panels for _, panels in datasets):
        raise ValueError("save_calibration_grid needs at least one panel per dataset")
    return save_figure(calibration_figure(list(datasets), suptitle), path)


def save_calibration_figure(panels: list[CalibrationPanel], path: str | Path, suptitle: str) -> Path:
    """Write the paper-Fig.-4 layout for one dataset and one or many models to a PNG at ``path``."""
    if not panels:
        raise ValueError("save_calibration_figure needs at least one panel")
    return save_figure(calibration_figure([("", list(panels))], suptitle), path)
