"""Paper Fig. 8: minibatch linear CKA heatmaps per layer type, and cross-model CKA (docs/protocol.md §10).

Both axes carry a readable subset of layer indices (layers in forward order, 0 = first tapped layer). The colour
scale follows the data, not a fixed 0..1: its lower end is the smallest off-diagonal CKA (the diagonal is 1 by
definition) rounded down to a tenth, so the structure the paper discusses (block patterns, ViT vs ConvNeXt) keeps
its contrast when every similarity is high. One colour bar per figure, shared by its panels. Models are named by
their display names (``models.display``) in the paper's order.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from beyond_imagenet.figures.common import save_figure
from beyond_imagenet.models.display import display_name, paper_order

TYPE_TITLES = {"all": "all", "attention_or_conv": "attention / conv", "linear": "linear", "normalisation": "norm"}
MAX_TICKS = 6  # layer-index ticks per axis
TICK_FONTSIZE = 6
CMAP = "magma"


def _finite(parts: list[np.ndarray]) -> np.ndarray:
    """The finite entries of ``parts``, flattened into one array."""
    data = np.concatenate(parts) if parts else np.array([])
    return data[np.isfinite(data)]


def colour_limits(matrices: Iterable[np.ndarray], off_diagonal: bool) -> tuple[float, float]:
    """(vmin, vmax) of a shared colour scale: the data's range rounded out to tenths, within [0, 1].

    Args:
        matrices: The heatmaps sharing the scale.
        off_diagonal: Leave each square matrix's diagonal (CKA of a layer with itself, 1 by definition) out of
            the lower end, as for Fig. 8; False for cross-model matrices, whose diagonal means nothing special.
    """
    lows, highs = [], []
    for matrix in matrices:
        m = np.asarray(matrix, dtype=np.float64)
        square = off_diagonal and m.ndim == 2 and m.shape[0] == m.shape[1] and m.shape[0] > 1
        lows.append(m[~np.eye(m.shape[0], dtype=bool)] if square else m.ravel())
        highs.append(m.ravel())
    low_data, high_data = _finite(lows), _finite(highs)
    if low_data.size == 0:
        return 0.0, 1.0
    low = min(1.0, max(0.0, math.floor(float(low_data.min()) * 10 + 1e-9) / 10))
    high = min(1.0, max(0.0, math.ceil(float(high_data.max()) * 10 - 1e-9) / 10))
    if high <= low:  # constant data: a tenth-wide scale around it
        high = min(1.0, low + 0.1)
        low = high - 0.1
    return low, high


def layer_ticks(n_layers: int) -> list[int]:
    """A readable subset of layer indices 0..n_layers-1 (at most ``MAX_TICKS``, integers, nicely spaced)."""
    if n_layers <= 1:
        return [0]
    ticks = MaxNLocator(nbins=MAX_TICKS - 1, integer=True).tick_values(0, n_layers - 1)
    return [int(t) for t in ticks if 0 <= t <= n_layers - 1]


def _heatmap(ax: Axes, matrix: np.ndarray, limits: tuple[float, float], aspect: str = "equal"):
    """One CKA heatmap with layer-index ticks on both axes; returns the image for the colour bar."""
    image = ax.imshow(
        matrix, vmin=limits[0], vmax=limits[1], cmap=CMAP, origin="lower", interpolation="nearest", aspect=aspect
    )
    ax.set_xticks(layer_ticks(matrix.shape[1]))
    ax.set_yticks(layer_ticks(matrix.shape[0]))
    ax.tick_params(labelsize=TICK_FONTSIZE, length=2, pad=1)
    return image


def fig8_figure(per_model: dict[str, dict[str, np.ndarray]]) -> Figure:
    """Fig. 8 layout: a row per model (paper order), a heatmap per layer type (all, attention/conv, linear, norm)."""
    models = paper_order(per_model)
    kinds = list(per_model[models[0]])
    limits = colour_limits((per_model[m][k] for m in models for k in kinds), off_diagonal=True)
    fig = Figure(figsize=(3.2 * len(kinds) + 1, 3.0 * len(models)), layout="constrained")
    axes = fig.subplots(len(models), len(kinds), squeeze=False)
    image = None
    for row, model_id in zip(axes, models, strict=True):
        for ax, kind in zip(row, kinds, strict=True):
            matrix = per_model[model_id][kind]
            image = _heatmap(ax, matrix, limits)
            ax.set_title(f"{TYPE_TITLES.get(kind, kind)} ({matrix.shape[0]})", fontsize=9)
        row[0].set_ylabel(f"{display_name(model_id)}\nlayer", fontsize=8)
    for ax in axes[-1]:
        ax.set_xlabel("layer", fontsize=8)
    fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.6, label="linear CKA")
    fig.suptitle("Fig. 8: minibatch linear CKA between layers (layers in forward order)")
    return fig


def save_fig8_grid(per_model: dict[str, dict[str, np.ndarray]], path: Path) -> Path:
    """Write :func:`fig8_figure` as a PNG at ``path`` atomically and return the path."""
    return save_figure(fig8_figure(per_model), path)


def cross_figure(cross: dict[tuple[str, str], np.ndarray]) -> Figure:
    """Beyond the paper: one heatmap per pair of models, rows = first model's layers, columns = second's."""
    limits = colour_limits(cross.values(), off_diagonal=False)
    fig = Figure(figsize=(3.6 * len(cross) + 1, 3.8), layout="constrained")
    axes = fig.subplots(1, len(cross), squeeze=False)[0]
    image = None
    for ax, ((a, b), matrix) in zip(axes, cross.items(), strict=True):
        image = _heatmap(ax, matrix, limits, aspect="auto")
        ax.set_ylabel(f"{display_name(a)} layer", fontsize=7)
        ax.set_xlabel(f"{display_name(b)} layer", fontsize=7)
    fig.colorbar(image, ax=list(axes), shrink=0.8, label="linear CKA")
    fig.suptitle("Cross-model CKA, all tapped layers")
    return fig


def save_cross_grid(cross: dict[tuple[str, str], np.ndarray], path: Path) -> Path:
    """Write :func:`cross_figure` as a PNG at ``path`` atomically and return the path."""
    return save_figure(cross_figure(cross), path)
