"""Paper Fig. 6 (bottom): VTAB linear-probe top-1 per Table 3 column, one bar per model (docs/transfer.md)."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from beyond_imagenet.base.errors import UserError
from beyond_imagenet.figures.common import grouped_bars, save_figure
from beyond_imagenet.metrics.vtab import TABLE3_COLUMNS, Table3


def fig6_bottom_figure(table: Table3) -> Figure:
    """Paper Fig. 6 (bottom): one group of bars per Table 3 column, one bar per model, values on the bars.

    Models appear by display name in the paper's order (``models.display``). Value labels are small and rotated
    above their bars, with headroom between the top tick and the padded title, so no two labels and no label and
    the title overlap. A missing value is a NaN-height bar labelled "n/a"; the legend (below the axes) counts each
    model's missing tasks. ``fig.axes[0].containers`` holds one container of ``len(TABLE3_COLUMNS)`` bars per model.
    """
    if not table.rows:
        raise UserError("Table 3 has no model to plot")
    series = {model: [row.column(c) for c in TABLE3_COLUMNS] for model, row in table.rows.items()}
    notes = {model: f" ({len(row.missing)} task(s) missing)" for model, row in table.rows.items() if row.missing}
    title = f"VTAB linear probe, {table.preset} (paper Fig. 6, bottom)"
    return grouped_bars(
        TABLE3_COLUMNS, series, "Top-1 accuracy (%)", title, (0.0, 100.0), value_labels=True, notes=notes
    )


def plot_fig6_bottom(table: Table3, path: str | Path) -> Path:
    """Write ``fig6_bottom_figure(table)`` as a PNG at ``path`` atomically (Agg backend); returns the path."""
    return save_figure(fig6_bottom_figure(table), path)
