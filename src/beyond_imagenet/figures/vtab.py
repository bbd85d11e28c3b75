"""Paper Fig. 6 (bottom): VTAB linear-probe top-1 per Table 3 column, one bar per model (docs/transfer.md)."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from beyond_imagenet.base.errors import UserError
from beyond_imagenet.figures.common import grouped_bars, save_figure
from beyond_imagenet.metrics.vtab import TABLE3_COLUMNS, Table3


def fig6_bottom_figure(table: Table3) -> Figure:
    """Paper Fig. 6 (bottom): one group of bars per Table 3 column, one bar per model, values on the bars.

    A missing value is a NaN-height (invisible) bar annotated "missing"; the legend counts each model's missing
    tasks. ``fig.axes[0].containers`` holds one container of ``len(TABLE3_COLUMNS)`` bars per model.
    """
    if not table.rows:
        raise UserError("Table 3 has no model to plot")
    series, labels = {}, []
    for model, row in table.rows.items():
        label = f"{model} ({len(row.missing)} task(s) missing)" if row.missing else model
        series[label] = [row.column(c) for c in TABLE3_COLUMNS]
        labels.append(label)
    title = f"VTAB linear probe, {table.preset} (paper Fig. 6, bottom)"
    fig = grouped_bars(TABLE3_COLUMNS, series, "Top-1 accuracy (%)", title, (0.0, 100.0))
    ax = fig.axes[0]
    rotation = 90 if len(series) > 4 else 0
    for container, label in zip(ax.containers, labels, strict=True):
        for bar, value in zip(container, series[label], strict=True):
            x = bar.get_x() + bar.get_width() / 2
            if value is None:
                ax.text(x, 1.0, "missing", ha="center", va="bottom", rotation=90, fontsize=7, color="dimgrey")
            else:
                ax.text(x, value + 0.5, f"{value:.1f}", ha="center", va="bottom", rotation=rotation, fontsize=7)
    ax.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.08), ncols=min(len(series), 2))
    return fig


def plot_fig6_bottom(table: Table3, path: str | Path) -> Path:
    """Write ``fig6_bottom_figure(table)`` as a PNG at ``path`` atomically (Agg backend); returns the path."""
    return save_figure(fig6_bottom_figure(table), path)
