"""Shared figure helpers (Agg backend, atomic PNG writes): grouped bars for Figs. 2, 3 and 6."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from beyond_imagenet.base.files import atomic_write_with


def save_figure(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` as PNG atomically and release it."""
    FigureCanvasAgg(fig)
    saved = atomic_write_with(path, lambda handle: fig.savefig(handle, format="png", dpi=100))
    fig.clear()
    return saved


def grouped_bars(
    groups: Sequence[str],
    series: Mapping[str, Sequence[float | None]],
    ylabel: str,
    title: str,
    ylim: tuple[float, float] | None = None,
    reference: float | None = None,
) -> Figure:
    """One group of bars per entry of ``groups``, one bar per series (model); ``None`` leaves a gap."""
    n_series = max(len(series), 1)
    fig = Figure(figsize=(max(6.0, 0.3 * len(groups) * (n_series + 1)), 4.0), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    centres = np.arange(len(groups), dtype=np.float64)
    width = 0.8 / n_series
    for i, (name, values) in enumerate(series.items()):
        heights = [np.nan if v is None else float(v) for v in values]
        ax.bar(centres - 0.4 + width * (i + 0.5), heights, width=width, label=name)
    if reference is not None:
        ax.axhline(reference, color="grey", linestyle="--", linewidth=1)
    ax.set_xticks(
        centres, list(groups), rotation=45 if len(groups) > 8 else 0, ha="right" if len(groups) > 8 else "center"
    )
    if ylim:
        ax.set_ylim(*ylim)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize="small", ncols=min(n_series, 4))
    return fig
