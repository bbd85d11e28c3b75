"""Paper Fig. 8: minibatch linear CKA heatmaps per layer type, and cross-model CKA (docs/protocol.md §10)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from beyond_imagenet.figures.common import save_figure

TYPE_TITLES = {"all": "all", "attention_or_conv": "attention / conv", "linear": "linear", "normalisation": "norm"}


def save_fig8_grid(per_model: dict[str, dict[str, np.ndarray]], path: Path) -> Path:
    """Fig. 8 layout: one row per model, one heatmap per layer type (all, attention/conv, linear, norm), 0..1."""
    kinds = list(next(iter(per_model.values())))
    fig = Figure(figsize=(3.2 * len(kinds) + 1, 3.0 * len(per_model)), layout="constrained")
    axes = fig.subplots(len(per_model), len(kinds), squeeze=False)
    image = None
    for row, (model_id, matrices) in zip(axes, per_model.items(), strict=True):
        for ax, kind in zip(row, kinds, strict=True):
            matrix = matrices[kind]
            image = ax.imshow(matrix, vmin=0.0, vmax=1.0, cmap="magma", origin="lower", interpolation="nearest")
            ax.set_title(f"{TYPE_TITLES.get(kind, kind)} ({matrix.shape[0]})", fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
        row[0].set_ylabel(model_id, fontsize=8)
    fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.6, label="linear CKA")
    fig.suptitle("Fig. 8: minibatch linear CKA between layers (layers in forward order)")
    return save_figure(fig, path)


def save_cross_grid(cross: dict[tuple[str, str], np.ndarray], path: Path) -> Path:
    """Beyond the paper: one heatmap per pair of models, rows = first model's layers, columns = second's."""
    fig = Figure(figsize=(3.6 * len(cross) + 1, 3.6), layout="constrained")
    axes = fig.subplots(1, len(cross), squeeze=False)[0]
    image = None
    for ax, ((a, b), matrix) in zip(axes, cross.items(), strict=True):
        image = ax.imshow(matrix, vmin=0.0, vmax=1.0, cmap="magma", origin="lower", aspect="auto")
        ax.set_ylabel(a, fontsize=7)
        ax.set_xlabel(b, fontsize=7)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(image, ax=list(axes), shrink=0.8, label="linear CKA")
    fig.suptitle("Cross-model CKA, all tapped layers")
    return save_figure(fig, path)
