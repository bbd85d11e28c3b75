"""Paper Fig. 5: shape vs texture decisions per cue-conflict category, one marker series per model (§6)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from beyond_imagenet.data.cue_conflict import CATEGORIES
from beyond_imagenet.figures.common import save_figure


def save_shape_bias_figure(results: dict[str, dict], path: Path) -> Path:
    """Fig. 5: per shape class (rows) the fraction of texture decisions; dashed line = pooled, per model."""
    fig = Figure(figsize=(6.0, 6.0), layout="constrained")
    ax = fig.add_subplot()
    rows = np.arange(len(CATEGORIES))
    for i, (model_id, result) in enumerate(results.items()):
        colour = f"C{i}"
        per_class = [result["per_class"].get(c, {}).get("shape_bias", np.nan) for c in CATEGORIES]
        ax.plot(1 - np.asarray(per_class, dtype=float), rows, "o", color=colour, label=model_id)
        if result["shape_bias_defined"]:
            ax.axvline(1 - result["shape_bias"], color=colour, linestyle="--", linewidth=1)
    ax.set_yticks(rows, CATEGORIES)
    ax.set_xlim(0, 1)
    ax.set_xlabel("Fraction of texture decisions (1 - shape bias)")
    ax.set_title("Shape vs texture bias (Fig. 5)")
    ax.legend(fontsize="small")
    return save_figure(fig, path)
