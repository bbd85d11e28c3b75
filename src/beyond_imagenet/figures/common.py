"""Shared figure helpers (Agg backend, atomic PNG writes): grouped bars for paper Figs. 2, 3 and 6.

Every bar chart draws each model with its one display definition (``models.display``: paper name, colour-blind-safe
colour, hatch past the palette's size), models in the paper's order, the legend outside the axes (below them) so
it never covers a bar, a value of exactly 0 as a coloured tick with a "0" label (a zero-height bar is otherwise
invisible), and a missing value as a grey "n/a" label with no bar.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from beyond_imagenet.base.files import atomic_write_with
from beyond_imagenet.models.display import ModelDisplay, model_displays

LABEL_FONTSIZE = 7  # value, "0" and "n/a" labels on bars
HEADROOM = 0.16  # fraction of the y range added above the top tick for value labels
TINY = 0.01  # a bar shorter than this fraction of the y range gets a tick and a label, like a zero
TITLE_PAD = 12.0  # points between the axes (and its labels) and the title
MISSING_LABEL = "n/a"
ZERO_LABEL = "0"


def save_figure(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` as PNG atomically and release it; the canvas grows to hold an outside legend (never clipped)."""
    FigureCanvasAgg(fig)
    saved = atomic_write_with(
        path, lambda handle: fig.savefig(handle, format="png", dpi=100, bbox_inches="tight", pad_inches=0.1)
    )
    fig.clear()
    return saved


def outside_legend(fig: Figure, ax: Axes, n_entries: int, title: str | None = None) -> None:
    """The axes' legend entries as a figure legend below the axes (constrained layout makes room for it)."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ncols = max(1, min(n_entries, 4))
        fig.legend(handles, labels, loc="outside lower center", fontsize="small", ncols=ncols, title=title)


def _bar_label(ax: Axes, x: float, y: float, text: str, **style) -> None:
    """A small label just above ``(x, y)`` (rotated unless one character), offset in points off the bar's top."""
    ax.annotate(
        text,
        xy=(x, y),
        xytext=(0, 2),
        textcoords="offset points",
        ha="center",
        va="bottom",
        rotation=90 if len(text) > 1 else 0,
        fontsize=LABEL_FONTSIZE,
        **style,
    )


def _annotate_bars(ax: Axes, bars, values: Sequence[float | None], display: ModelDisplay, spec: dict) -> None:
    """Per bar: "n/a" for a missing value, a coloured tick + label for a zero (or invisible) one, else its value."""
    low, high = spec["span"]
    base = 0.0 if low <= 0.0 <= high else low
    for bar, value in zip(bars, values, strict=True):
        x = bar.get_x() + bar.get_width() / 2
        if value is None or not np.isfinite(value):
            _bar_label(ax, x, base, MISSING_LABEL, color="dimgrey", style="italic")
        elif abs(value - base) < TINY * (high - low):
            ax.hlines(value, bar.get_x(), bar.get_x() + bar.get_width(), colors=display.colour, linewidth=2.5)
            _bar_label(ax, x, value, ZERO_LABEL if value == 0 else spec["format"].format(value))
        elif spec["value_labels"]:
            _bar_label(ax, x, value, spec["format"].format(value))


def _value_span(ax: Axes, ylim: tuple[float, float] | None, value_labels: bool) -> tuple[float, float]:
    """Fix the y range (``ylim`` or the autoscaled one); with value labels add headroom above the top tick."""
    low, high = ylim if ylim else ax.get_ylim()
    if value_labels:
        ticks = [t for t in MaxNLocator().tick_values(low, high) if low - 1e-9 <= t <= high + 1e-9]
        ax.set_yticks(ticks)
        ax.set_ylim(low, high + HEADROOM * (high - low))
    else:
        ax.set_ylim(low, high)
    return float(low), float(high)


def grouped_bars(
    groups: Sequence[str],
    series: Mapping[str, Sequence[float | None]],
    ylabel: str,
    title: str,
    ylim: tuple[float, float] | None = None,
    reference: float | None = None,
    *,
    value_labels: bool = False,
    value_format: str = "{:.1f}",
    notes: Mapping[str, str] | None = None,
) -> Figure:
    """One group of bars per entry of ``groups``, one bar per model (``series`` keyed by model id), paper order.

    ``None`` (or NaN) is a missing value: a NaN-height bar labelled "n/a". ``value_labels`` writes each value on
    its bar (rotated, small, with headroom below the title); ``notes[model_id]`` is appended to its legend entry.
    ``fig.axes[0].containers`` holds one container of ``len(groups)`` bars per model, in paper order.
    """
    displays = model_displays(series)
    n_series = max(len(displays), 1)
    fig = Figure(figsize=(max(6.0, 0.3 * len(groups) * (n_series + 1)), 4.5), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    centres = np.arange(len(groups), dtype=np.float64)
    width = 0.8 / n_series
    for i, d in enumerate(displays):
        heights = [np.nan if v is None else float(v) for v in series[d.model_id]]
        label = d.name + (notes or {}).get(d.model_id, "")
        x = centres - 0.4 + width * (i + 0.5)
        ax.bar(x, heights, width=width, label=label, color=d.colour, hatch=d.hatch, edgecolor="#333333", lw=0.4)
    if reference is not None:
        ax.axhline(reference, color="grey", linestyle="--", linewidth=1)
    spec = {"span": _value_span(ax, ylim, value_labels), "format": value_format, "value_labels": value_labels}
    for container, d in zip(ax.containers, displays, strict=True):
        _annotate_bars(ax, container, series[d.model_id], d, spec)
    rotate = len(groups) > 8
    ax.set_xticks(centres, list(groups), rotation=45 if rotate else 0, ha="right" if rotate else "center")
    ax.set_ylabel(ylabel)
    ax.set_title(title, pad=TITLE_PAD)
    outside_legend(fig, ax, n_series)
    return fig
