"""Reliability diagrams and confidence histograms, laid out like paper Fig. 4 (PROTOCOL §5, Plots).

Figures are built with the object-oriented ``matplotlib.figure.Figure`` API and rendered by Agg, so no window
ever opens whatever backend the caller uses; PNGs are written atomically (temp file + ``os.replace``).
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from beyond_imagenet.analyses.calibration_metrics import CalibrationBins

# Agg only matters to a later pyplot import; never switch a live pyplot session or override MPLBACKEND.
if "matplotlib.pyplot" not in sys.modules and "MPLBACKEND" not in os.environ:
    matplotlib.use("Agg")

BAR_COLOR = "#fc8e62"  # official plot's bar colour
GAP_COLOR = "#ffff00"
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


def draw_reliability_diagram(ax: Axes, bins: CalibrationBins, ece: float, title: str) -> None:
    """Accuracy per confidence bin with the gap to the bin midpoint, the diagonal and the ECE (paper Fig. 4).

    As in the official plot, the hatched gap runs from ``acc_i`` to the bin midpoint (visual only; the ECE
    uses the mean confidence). Empty bins get a zero-height bar and no gap.
    """
    left, width = _bin_geometry(bins)
    nonempty = bins.counts > 0
    acc = np.where(nonempty, np.nan_to_num(bins.accuracy, nan=0.0), 0.0)
    mid = left + width / 2.0
    gap = np.where(nonempty, np.abs(mid - acc), 0.0)
    ax.bar(left, acc, width=width, align="edge", color=BAR_COLOR, edgecolor="k", label="Predictions")
    ax.bar(
        left,
        gap,
        bottom=np.minimum(acc, mid),
        width=width,
        align="edge",
        color=GAP_COLOR,
        alpha=0.5,
        edgecolor="r",
        hatch="/",
        label="Gap",
    )
    ax.plot([0.0, 1.0], [0.0, 1.0], linestyle="--", color="tab:grey")
    ax.text(0.5, 0.95, f"ECE = {ece:.4f}", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(0.0, 1.0)
    ax.set_xlabel("Confidence")
    ax.set_ylabel("Accuracy")
    ax.set_title(title)
    ax.legend(loc="upper left", bbox_to_anchor=(0.0, 0.9), fontsize="small")


def draw_confidence_histogram(
    ax: Axes, bins: CalibrationBins, accuracy: float, mean_confidence: float, title: str
) -> None:
    """Fraction of samples per confidence bin, with overall accuracy and mean confidence marked (Fig. 4)."""
    left, width = _bin_geometry(bins)
    ax.bar(left, bins.proportion, width=width, align="edge", color=BAR_COLOR, edgecolor="k")
    ax.axvline(accuracy, linestyle="--", color="tab:blue", label=f"Accuracy = {accuracy:.3f}")
    conf_label = f"Mean confidence = {mean_confidence:.3f}"
    ax.axvline(mean_confidence, linestyle="--", color="tab:red", label=conf_label)
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(0.0, 1.0)  # fixed scale so columns compare across models
    ax.set_xlabel("Confidence")
    ax.set_ylabel("Fraction of samples")
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize="small")


def _build_figure(panels: list[CalibrationPanel], suptitle: str) -> Figure:
    """Two rows (reliability, histogram) by one column per model."""
    cols = len(panels)
    fig = Figure(figsize=(PANEL_SIZE_IN[0] * cols, PANEL_SIZE_IN[1] * 2), dpi=DPI, layout="constrained")
    axes = fig.subplots(2, cols, squeeze=False)
    for col, p in enumerate(panels):
        draw_reliability_diagram(axes[0, col], p.bins, p.ece, p.model)
        draw_confidence_histogram(axes[1, col], p.bins, p.accuracy, p.mean_confidence, p.model)
    fig.suptitle(suptitle)
    return fig


def _save_png_atomic(fig: Figure, path: Path) -> None:
    """Render ``fig`` to a temp file next to ``path`` and move it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fig.savefig(fh, format="png")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def save_calibration_figure(panels: list[CalibrationPanel], path: str | Path, suptitle: str) -> Path:
    """Write the paper-Fig.-4 layout for one or many models to a PNG at ``path`` and return the path."""
    if not panels:
        raise ValueError("save_calibration_figure needs at least one panel")
    out = Path(path)
    fig = _build_figure(list(panels), suptitle)
    try:
        _save_png_atomic(fig, out)
    finally:
        fig.clear()  # a pyplot-free Figure has no manager to close; clearing frees its artists
    return out
