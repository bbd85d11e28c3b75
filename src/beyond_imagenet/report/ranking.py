"""The scorecard as a ranking, for runs with many models (more than ``RANKING_THRESHOLD``).

Two summaries per model over the scorecard's properties that have a direction:

- mean rank with a rank interval: the average, over the properties, of the bootstrap mean rank and of the rank
  interval's ends in ``rankings.csv`` (row of the property's metric ``name``); a property without a single metric
  row (a mean over shifts, a sweep drop) has no rankings row and is left out of it;
- z-score, as in "Battle of the Backbones" (Goldblum et al., 2023): per property z = (value - mean over models) /
  standard deviation over models (population, ddof 0), sign-flipped when lower is better, averaged per model over
  the properties it has. A property with fewer than two values or no spread is left out.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import pandas as pd

from beyond_imagenet.report.scorecard import Scorecard

RANKING_THRESHOLD = 8  # more models than this: the report shows the ranking instead of the scorecard table


@dataclass(frozen=True)
class Standing:
    """One model's summary: mean rank [low, high] over ``n_ranked`` properties, mean z over ``n_z`` properties."""

    model: str
    mean_rank: float
    rank_low: float
    rank_high: float
    n_ranked: int
    z: float
    n_z: int


def z_scores(card: Scorecard) -> dict[str, list[float]]:
    """{model: its signed z-scores, one per property with a direction, two or more values and some spread}."""
    scores: dict[str, list[float]] = defaultdict(list)
    for row in card.rows:
        if row.direction not in ("higher", "lower"):
            continue
        values = {m: p.value for m, p in row.picks.items() if math.isfinite(p.value)}
        spread = float(np.std(list(values.values()))) if len(values) > 1 else 0.0
        if spread == 0.0:
            continue
        mean = float(np.mean(list(values.values())))
        sign = 1.0 if row.direction == "higher" else -1.0
        for model, value in values.items():
            scores[model].append(sign * (value - mean) / spread)
    return scores


def rank_rows(card: Scorecard, rankings: pd.DataFrame) -> dict[str, list[tuple[float, float, float]]]:
    """{model: (mean rank, rank low, rank high) per scorecard property with a direction and a rankings row}."""
    ranks: dict[str, list[tuple[float, float, float]]] = defaultdict(list)
    if rankings.empty:
        return ranks
    names = {row.name for row in card.rows if row.direction in ("higher", "lower") and row.name}
    rows = rankings[rankings["name"].isin(names)]
    for model, mean, low, high in zip(
        rows["model"], rows["mean_rank"], rows["rank_low"], rows["rank_high"], strict=True
    ):
        if math.isfinite(mean):
            ranks[str(model)].append((float(mean), float(low), float(high)))
    return ranks


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else math.nan


def standings(card: Scorecard, rankings: pd.DataFrame) -> list[Standing]:
    """Every model's standing, best first: by mean rank (missing last), then by mean z-score (higher first)."""
    ranks, scores = rank_rows(card, rankings), z_scores(card)
    result = []
    for model in card.models:
        own = ranks.get(model, [])
        result.append(
            Standing(
                model,
                _mean([r[0] for r in own]),
                _mean([r[1] for r in own]),
                _mean([r[2] for r in own]),
                len(own),
                _mean(scores.get(model, [])),
                len(scores.get(model, [])),
            )
        )
    return sorted(result, key=lambda s: (_or(s.mean_rank, math.inf), -_or(s.z, -math.inf)))


def _or(value: float, default: float) -> float:
    return default if math.isnan(value) else value
