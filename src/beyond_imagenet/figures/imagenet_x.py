"""Paper Fig. 2: ImageNet-X error ratios per factor of variation, one bar per model (docs/protocol.md §3).

Factors are ordered by their effect, the mean error ratio over the models (largest first), so the factors a
model family struggles with most lead; the legend sits below the axes, clear of the bars.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from beyond_imagenet.figures.common import grouped_bars

TITLE = "ImageNet-X error ratios (paper Fig. 2), factors by mean error ratio"


def factor_effects(factors: Sequence[str], series: Mapping[str, Sequence[float | None]]) -> dict[str, float]:
    """Mean error ratio of each factor over the models that have it (NaN when no model has it)."""
    effects = {}
    for i, factor in enumerate(factors):
        values = [float(v[i]) for v in series.values() if v[i] is not None and np.isfinite(v[i])]
        effects[factor] = float(np.mean(values)) if values else float("nan")
    return effects


def factor_order(factors: Sequence[str], series: Mapping[str, Sequence[float | None]]) -> list[str]:
    """``factors`` by descending mean error ratio (Fig. 2's strongest effects first); factors without data last.

    Ties keep the given order (stable sort), so the order is deterministic.
    """
    effects = factor_effects(factors, series)
    return sorted(factors, key=lambda f: (np.isnan(effects[f]), -np.nan_to_num(effects[f])))


def imagenet_x_figure(factors: Sequence[str], series: Mapping[str, Sequence[float | None]]) -> Figure:
    """Paper Fig. 2: error ratio per factor (ordered by :func:`factor_order`), one bar per model, 1.0 dashed.

    Args:
        factors: The factor names, in the order of each model's values.
        series: Model id -> error ratio per factor (``None`` when the model has no value for it: "n/a").
    """
    order = factor_order(factors, series)
    index = [list(factors).index(f) for f in order]
    reordered = {model: [values[i] for i in index] for model, values in series.items()}
    return grouped_bars(order, reordered, "Error ratio", TITLE, reference=1.0, value_format="{:.2f}")
