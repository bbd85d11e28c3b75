"""Paired comparisons of every pair of models on every metric, Holm's correction, and rankings with rank intervals.

Two models are compared on a metric only when their replicates were drawn on the same resamples (same ``plan``):
the bootstrap distribution of the difference then carries the pairing (the same images for both). A difference is
*real* when its Holm-adjusted p-value is below ``statistics.significance`` and its interval excludes 0; Holm's
family is set by ``statistics.holm_family`` (``section``: one analysis on one dataset, one table or figure).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd

from beyond_imagenet.base.config import StatisticsConfig
from beyond_imagenet.base.record import ResultRecord
from beyond_imagenet.metrics.intervals import holm, paired_difference, rank_intervals
from beyond_imagenet.results.tidy import direction, model_facts, split_name

COMPARISON_COLUMNS = (
    "analysis", "dataset", "variant", "metric", "name", "model_a", "model_b", "display_a", "display_b", "value_a",
    "value_b", "difference", "ci_low", "ci_high", "level", "p_value", "p_holm", "holm_family", "family_size", "real",
    "direction", "better", "plan",
)  # fmt: skip
RANKING_COLUMNS = (
    "analysis", "dataset", "variant", "metric", "name", "model", "display_name", "value", "rank", "mean_rank",
    "rank_low", "rank_high", "n_models", "direction", "plan",
)  # fmt: skip


@dataclass(frozen=True)
class Entry:
    """One model's value and replicates of one metric."""

    model: str
    display_name: str
    value: float
    replicates: np.ndarray


def comparable_sets(records: Sequence[ResultRecord]) -> dict[tuple[str, str, str, str], list[Entry]]:
    """Models' entries grouped by (analysis, dataset, metric name, plan): each group is drawn on the same resamples."""
    groups: dict[tuple[str, str, str, str], list[Entry]] = {}
    for record in records:
        display = model_facts(record)["display_name"]
        for name, replicates in record.replicates.items():
            plan = record.intervals.get(name, {}).get("plan")
            if plan and name in record.metrics:
                entry = Entry(record.model_id, display, float(record.metrics[name]), np.asarray(replicates))
                groups.setdefault((record.analysis, record.dataset, name, plan), []).append(entry)
    return groups


def _holm_key(row: dict, family: str) -> str:
    if family == "all":
        return "all"
    section = f"{row['analysis']}/{row['dataset']}"
    return section if family == "section" else f"{section}/{row['name']}"


def _better(row: dict) -> str:
    if not row["real"] or row["direction"] == "none":
        return ""
    a_higher = row["difference"] > 0
    return row["model_a"] if a_higher == (row["direction"] == "higher") else row["model_b"]


def comparisons_table(records: Sequence[ResultRecord], statistics: StatisticsConfig) -> pd.DataFrame:
    """Every pair of models on every metric they share a plan on: difference a - b, its interval, p, Holm, real."""
    rows = []
    for (analysis, dataset, name, plan), entries in comparable_sets(records).items():
        variant, metric = split_name(ResultRecord(analysis, "", dataset, {}), name)
        for a, b in combinations(entries, 2):
            diff = paired_difference(
                a.replicates, b.replicates, a.value, b.value, statistics.level, statistics.method
            )  # fmt: skip
            rows.append(
                {
                    "analysis": analysis, "dataset": dataset, "variant": variant, "metric": metric, "name": name,
                    "model_a": a.model, "model_b": b.model, "display_a": a.display_name, "display_b": b.display_name,
                    "value_a": a.value, "value_b": b.value, "difference": diff.difference, "ci_low": diff.low,
                    "ci_high": diff.high, "level": statistics.level, "p_value": diff.p_value,
                    "direction": direction(analysis, metric), "plan": plan,
                }
            )  # fmt: skip
    table = pd.DataFrame(rows, columns=[c for c in COMPARISON_COLUMNS if c not in _ADDED])
    return _adjust(table, statistics)


_ADDED = ("p_holm", "holm_family", "family_size", "real", "better")


def _adjust(table: pd.DataFrame, statistics: StatisticsConfig) -> pd.DataFrame:
    """Holm-adjusted p-values within each family, the ``real`` flag and which model is better where real."""
    table = table.copy()
    table["holm_family"] = [_holm_key(row, statistics.holm_family) for row in table.to_dict("records")]
    table["p_holm"] = np.nan
    table["family_size"] = 0
    for _, index in table.groupby("holm_family").groups.items():
        p = table.loc[index, "p_value"].to_numpy(dtype=np.float64)
        table.loc[index, "p_holm"] = holm(p)
        table.loc[index, "family_size"] = int(np.isfinite(p).sum())
    excludes_zero = (table["ci_low"] > 0) | (table["ci_high"] < 0)  # a skewed bootstrap can disagree with the p
    table["real"] = (table["p_holm"] < statistics.significance) & excludes_zero
    table["better"] = [_better(row) for row in table.to_dict("records")]
    return table[list(COMPARISON_COLUMNS)]


def rankings_table(records: Sequence[ResultRecord], statistics: StatisticsConfig) -> pd.DataFrame:
    """Per metric (two or more models on the same plan) each model's rank, mean rank over resamples and interval.

    Rank 1 is the best model; for a metric without a better direction (shape bias, CKA) rank 1 is the largest value.
    """
    rows = []
    for (analysis, dataset, name, plan), entries in comparable_sets(records).items():
        if len(entries) < 2:
            continue
        variant, metric = split_name(ResultRecord(analysis, "", dataset, {}), name)
        better = direction(analysis, metric)
        estimates = np.array([e.value for e in entries])
        replicates = np.stack([e.replicates for e in entries], axis=1)
        ranks = rank_intervals(estimates, replicates, better != "lower", statistics.level)
        for entry, rank in zip(entries, ranks, strict=True):
            rows.append(
                {
                    "analysis": analysis, "dataset": dataset, "variant": variant, "metric": metric, "name": name,
                    "model": entry.model, "display_name": entry.display_name, "value": entry.value,
                    "rank": rank.rank, "mean_rank": rank.mean_rank, "rank_low": rank.low, "rank_high": rank.high,
                    "n_models": len(entries), "direction": better, "plan": plan,
                }
            )  # fmt: skip
    return pd.DataFrame(rows, columns=list(RANKING_COLUMNS))
