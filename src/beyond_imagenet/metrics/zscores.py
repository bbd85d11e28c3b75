"""Battle of the Backbones z-scores (docs/transfer.md §5.1): setting-wise z-scores, mean per backbone, ranking."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from beyond_imagenet.base.errors import UserError


@dataclass(frozen=True)
class ZScores:
    """Setting-wise z-scores, their mean per backbone and the ranking (best first) (docs/transfer.md §5.1)."""

    ddof: int
    matrix: Mapping[str, Mapping[str, float]]  # model -> setting -> z, only the scored settings the model has
    mean: Mapping[str, float]  # model -> mean z over its scored settings (ranked models only)
    ranking: tuple[str, ...]  # by mean z, descending; ties by model name
    settings: tuple[str, ...]  # the scored settings, first-seen order
    skipped: tuple[str, ...]  # settings with fewer than 2 backbones (or no more backbones than ddof)
    setting_mean: Mapping[str, float]  # mu per scored setting
    setting_std: Mapping[str, float]  # sigma per scored setting (with ``ddof``)
    unranked: tuple[str, ...] = ()  # models without any scored setting

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.ranking, self.settings, self.ddof))


def _setting_z(values: Mapping[str, float], ddof: int) -> tuple[dict[str, float], float, float]:
    x = np.array(list(values.values()), dtype=np.float64)
    mu = math.fsum(x.tolist()) / len(x)
    sigma = float(np.sqrt(np.sum((x - mu) ** 2) / (len(x) - ddof)))
    if sigma == 0.0 or x.max() == x.min():  # all tied: z = 0 (not 0/0, nor rounding noise / tiny sigma)
        return dict.fromkeys(values, 0.0), mu, 0.0
    return {m: (float(v) - mu) / sigma for m, v in values.items()}, mu, sigma


def zscores(values: Mapping[str, Mapping[str, float]], ddof: int = 0) -> ZScores:
    """BoB ranking: per setting z = (x - mu) / sigma over the backbones that have it, then the mean z per backbone.

    ``values`` maps backbone -> setting -> value, oriented so that higher is better (negate errors / ECE first).
    sigma is the population std by default (``ddof=0``; BoB does not say, docs/transfer.md §5.1); a setting where all
    backbones tie gets z = 0. Settings with fewer than 2 backbones (or at most ``ddof``) are skipped and listed. A
    backbone's mean z is over the scored settings it has; backbones without any are listed as ``unranked``.
    """
    if isinstance(ddof, bool) or not isinstance(ddof, (int, np.integer)) or ddof < 0:
        raise UserError(f"ddof must be a non-negative integer (0: population std, 1: sample std), got {ddof!r}")
    ddof = int(ddof)
    per_setting: dict[str, dict[str, float]] = {}
    for model, settings in values.items():
        for setting, value in settings.items():
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
                raise UserError(f"z-score input ({model}, {setting}) must be a number, got {value!r}")
            if not math.isfinite(float(value)):
                raise UserError(f"z-score input ({model}, {setting}) must be finite, got {value}")
            per_setting.setdefault(setting, {})[model] = float(value)
    matrix: dict[str, dict[str, float]] = {m: {} for m in values}
    scored, skipped, mus, sigmas = [], [], {}, {}
    for setting, column in per_setting.items():
        if len(column) < max(2, ddof + 1):
            skipped.append(setting)
            continue
        z, mus[setting], sigmas[setting] = _setting_z(column, ddof)
        scored.append(setting)
        for model, value in z.items():
            matrix[model][setting] = value
    mean = {m: math.fsum(row.values()) / len(row) for m, row in matrix.items() if row}
    ranking = tuple(sorted(mean, key=lambda m: (-round(mean[m], 12), m)))
    return ZScores(
        ddof=ddof,
        matrix=MappingProxyType({m: MappingProxyType(row) for m, row in matrix.items()}),
        mean=MappingProxyType({m: mean[m] for m in ranking}),
        ranking=ranking,
        settings=tuple(scored),
        skipped=tuple(skipped),
        setting_mean=MappingProxyType(mus),
        setting_std=MappingProxyType(sigmas),
        unranked=tuple(m for m in values if m not in mean),
    )
