"""Paper Fig. 6 (top): top-1 per Table 2 column, one bar per model (docs/protocol.md §7)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from beyond_imagenet.base.errors import UserError
from beyond_imagenet.figures.common import grouped_bars, save_figure
from beyond_imagenet.metrics.robustness import DATASET_LABELS, ID_DATASET, TABLE2_SHIFTS, missing_message


def _validate_rows(rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Rows as produced by ``robustness_table``: each has every dataset column."""
    if not rows:
        raise UserError("save_robustness_figure needs at least one row (see robustness_table)")
    for row in rows:
        missing = [c for c in ("model", ID_DATASET, *TABLE2_SHIFTS) if c not in row]
        if missing:
            raise UserError(missing_message(f"row {row.get('model', '?')!r}", missing, list(row)))
    return list(rows)


def robustness_figure(per_model: Mapping[str, Mapping[str, float]]) -> Figure:
    """Paper Fig. 6 (top): one group of bars per Table 2 column (INet-Val, then the shifts), one bar per model.

    Columns no model has are left out; a model missing a column gets an "n/a" label, a 0 % one a visible tick
    and "0". Models by display name and colour (``models.display``), legend below the axes.
    """
    columns = [c for c in (ID_DATASET, *TABLE2_SHIFTS) if any(c in acc for acc in per_model.values())]
    series = {str(model): [acc.get(c) for c in columns] for model, acc in per_model.items()}
    labels = [DATASET_LABELS[c] for c in columns]
    return grouped_bars(labels, series, "Top-1 accuracy (%)", "Robustness (paper Fig. 6, top)", (0.0, 100.0))


def save_robustness_figure(rows: Sequence[Mapping[str, Any]], path: str | Path) -> Path:
    """Write paper Fig. 6 (top) for complete Table 2 rows as a PNG at ``path`` (atomically) and return the path."""
    rows = _validate_rows(rows)
    return save_figure(robustness_figure({row["model"]: row for row in rows}), path)
