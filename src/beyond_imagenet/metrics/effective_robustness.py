"""Effective robustness, vectorised over replicates (docs/transfer.md §5.2; Taori et al. 2020; Shi et al. 2023).

A baseline of models trained on ImageNet only defines a line ``logit(OOD top-1) = slope * logit(ID top-1) + b``;
a model's effective robustness on a shift is its OOD top-1 minus what the line predicts at its ID top-1, in %
points. Multi-ID effective robustness (Shi et al. 2023) fits a plane on two ID accuracies instead, for models trained
on different data.

Every function takes arrays whose last axis runs over models and whose leading axes (if any) over replicates, so
one call fits the line of every bootstrap replicate. ``weights`` (counts of a bootstrap over the baseline models)
turn a fit into a weighted least-squares fit, which is how the baseline itself is resampled.
"""

from __future__ import annotations

import numpy as np
from scipy import special

LOGIT_CLIP = 1e-4  # accuracies are clipped to [0.01%, 99.99%] before the logit, so 0% or 100% stays finite


def logit_percent(accuracy: np.ndarray) -> np.ndarray:
    """``logit(p)`` of top-1 in % (clipped to [``LOGIT_CLIP``, 1 - ``LOGIT_CLIP``] as a fraction)."""
    p = np.clip(np.asarray(accuracy, dtype=np.float64) / 100.0, LOGIT_CLIP, 1.0 - LOGIT_CLIP)
    return np.log(p / (1.0 - p))


def fit_lines(id_acc: np.ndarray, ood_acc: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """(Weighted) least-squares lines in logit space: [..., 2] = (slope, intercept) per leading index.

    ``id_acc`` and ``ood_acc`` are [..., M] top-1 % of M baseline models; ``weights`` [..., M] (default 1). A fit
    whose weighted ID accuracies do not vary is NaN.
    """
    w = np.ones(1) if weights is None else np.asarray(weights, dtype=np.float64)
    x, y, w = np.broadcast_arrays(logit_percent(id_acc), logit_percent(ood_acc), w)
    total = w.sum(axis=-1, keepdims=True)
    x_mean = (w * x).sum(axis=-1, keepdims=True) / total
    y_mean = (w * y).sum(axis=-1, keepdims=True) / total
    sxx = (w * (x - x_mean) ** 2).sum(axis=-1)
    sxy = (w * (x - x_mean) * (y - y_mean)).sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = np.where(sxx > 0, sxy / sxx, np.nan)
    intercept = y_mean[..., 0] - slope * x_mean[..., 0]
    return np.stack([slope, intercept], axis=-1)


def fit_planes(
    id_acc: np.ndarray, second_id_acc: np.ndarray, ood_acc: np.ndarray, weights: np.ndarray | None = None
) -> np.ndarray:
    """(Weighted) least-squares planes ``logit(ood) = a logit(id) + b logit(id2) + c``: [..., 3] = (a, b, c).

    Shi et al. (2023): with baseline models trained on two different data sets, one ID axis per data set.
    """
    w = np.ones(1) if weights is None else np.asarray(weights, dtype=np.float64)
    x1, x2, y, w = np.broadcast_arrays(logit_percent(id_acc), logit_percent(second_id_acc), logit_percent(ood_acc), w)
    design = np.stack([x1, x2, np.ones_like(x1)], axis=-1)  # [..., M, 3]
    weighted = design * w[..., None]
    gram = np.einsum("...mi,...mj->...ij", weighted, design)
    moment = np.einsum("...mi,...m->...i", weighted, y)
    solvable = np.abs(np.linalg.det(gram)) > 1e-12 * np.abs(gram).max(axis=(-1, -2)) ** 3
    safe = np.where(solvable[..., None, None], gram, np.eye(3))
    coefficients = np.linalg.solve(safe, moment[..., None])[..., 0]
    return np.where(solvable[..., None], coefficients, np.nan)


def line_prediction(id_acc: np.ndarray, line: np.ndarray) -> np.ndarray:
    """OOD top-1 (%) the line [..., 2] predicts at ID top-1 ``id_acc`` (%)."""
    return 100.0 * special.expit(line[..., 0] * logit_percent(id_acc) + line[..., 1])


def plane_prediction(id_acc: np.ndarray, second_id_acc: np.ndarray, plane: np.ndarray) -> np.ndarray:
    """OOD top-1 (%) the plane [..., 3] predicts at the two ID accuracies (%)."""
    z = plane[..., 0] * logit_percent(id_acc) + plane[..., 1] * logit_percent(second_id_acc) + plane[..., 2]
    return 100.0 * special.expit(z)


def effective_robustness_from_line(id_acc: np.ndarray, ood_acc: np.ndarray, line: np.ndarray) -> np.ndarray:
    """ER = OOD top-1 - the line's prediction at the ID top-1, in % points (Taori et al. 2020)."""
    return np.asarray(ood_acc, dtype=np.float64) - line_prediction(id_acc, line)
