"""The scorecard, "who wins what" (paper §1, Fig. 1): one headline per property per model, the best and its ties.

The headlines are ``results.headline.HEADLINES`` (one selection, shared with the DVC metrics file). Per property
the best model is the highest or lowest value by the tidy table's ``direction``; a property with direction "none"
(shape bias, CKA) has no best. A model is tied with the best when the paired comparison of the two on that
headline's metric (``comparisons.csv``, same ``name``) is not real (Holm-adjusted p not below the significance
level, or an interval containing 0), or when its value equals the best's. A model with no paired comparison against
the best on that metric (different images, an analysis run for one of them only) is "not compared": never called
behind the best, never tied with it. A headline computed from several rows (a mean over shifts, a sweep drop) has no
paired comparison, so only equal values tie with its best.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from beyond_imagenet.models.display import paper_order
from beyond_imagenet.results.headline import HEADLINES, Picked, headline_picks

# headline key -> (label, report section); the order of HEADLINES is the scorecard's row order.
LABELS: dict[str, tuple[str, str]] = {
    "imagenet_top1": ("ImageNet top-1 (%)", "robustness"),
    "imagenet_x_mean_error_ratio": ("ImageNet-X mean error ratio", "imagenet_x"),
    "pug_mean": ("PUG-ImageNet mean top-1 (%)", "pug"),
    "ece_val": ("ECE, ImageNet val", "calibration"),
    "ece_r": ("ECE, ImageNet-R", "calibration"),
    "shape_bias": ("Shape bias", "shape_bias"),
    "robustness_average": ("Robustness average top-1 (%)", "robustness"),
    "effective_robustness": ("Effective robustness (mean over shifts)", "robustness"),
    "vtab_overall": ("VTAB Overall top-1 (%)", "vtab"),
    "invariance_scale_drop": ("Scale: top-1 change, largest zoom", "invariance"),
    "invariance_shift_drop": ("Shift: top-1 change, largest shift", "invariance"),
    "invariance_resolution_low_drop": ("Resolution: top-1 change, lowest", "invariance"),
    "invariance_resolution_high_drop": ("Resolution: top-1 change, highest", "invariance"),
    "cka_mean_offdiagonal": ("CKA between layers (mean)", "cka"),
    "cka_cross_mean_best_match": ("CKA best match to other models", "cka"),
}
MISSING = "n/a"


@dataclass(frozen=True)
class ScoreRow:
    """One property: its headline ``key``, label, section, direction, the comparisons' ``name`` and the values.

    ``picks`` holds only the models that have the headline; ``best`` is None without a direction or values;
    ``tied`` are the models statistically indistinguishable from the best; ``uncompared`` the other models that have
    no paired comparison with the best on ``name`` (only for a headline with a ``name``).
    """

    key: str
    label: str
    section: str
    direction: str
    name: str | None
    picks: Mapping[str, Picked]
    best: str | None = None
    tied: tuple[str, ...] = ()
    uncompared: tuple[str, ...] = ()

    def marked(self, model: str) -> bool:
        """Whether ``model`` is the best or tied with it (shown in bold)."""
        return model == self.best or model in self.tied


@dataclass(frozen=True)
class Scorecard:
    """The properties (rows, ``HEADLINES`` order, empty ones left out) and the models (paper order)."""

    models: tuple[str, ...]
    rows: tuple[ScoreRow, ...]

    def section(self, name: str) -> list[ScoreRow]:
        """The rows of one report section."""
        return [row for row in self.rows if row.section == name]


def best_model(picks: Mapping[str, Picked], direction: str) -> str | None:
    """The model with the highest (``higher``) or lowest (``lower``) value.

    None for direction "none", for no values, and when several models all have the same value (no one wins).
    """
    finite = {m: p.value for m, p in picks.items() if math.isfinite(p.value)}
    if direction not in ("higher", "lower") or not finite or all_equal(picks):
        return None
    pick = max if direction == "higher" else min
    return pick(finite, key=finite.__getitem__)


Pairs = dict[tuple[str, frozenset[str]], bool]


def all_equal(picks: Mapping[str, Picked]) -> bool:
    """Whether two or more models have values and all of them are the same."""
    finite = {p.value for p in picks.values() if math.isfinite(p.value)}
    return len(finite) == 1 and sum(math.isfinite(p.value) for p in picks.values()) > 1


def comparison_pairs(comparisons: pd.DataFrame) -> Pairs:
    """{(metric name, {model a, model b}): whether their paired comparison is a real difference}."""
    if comparisons.empty:
        return {}
    real = comparisons["real"].astype(str).str.lower().isin(("true", "1"))
    return {
        (str(n), frozenset((str(a), str(b)))): bool(r)
        for n, a, b, r in zip(comparisons["name"], comparisons["model_a"], comparisons["model_b"], real, strict=True)
    }


def ties(best: str | None, name: str | None, picks: Mapping[str, Picked], pairs: Pairs) -> tuple[tuple, tuple]:
    """(tied, uncompared) with ``best``, in ``picks`` order.

    Tied: an equal value, or a paired comparison on ``name`` that is not real. Uncompared: no paired comparison on
    ``name`` with the best (always empty when ``name`` is None: such a headline has no comparisons to consult).
    """
    if best is None:
        return (), ()
    value, tied, uncompared = picks[best].value, [], []
    for model, picked in picks.items():
        if model == best:
            continue
        real = pairs.get((name, frozenset((best, model)))) if name is not None else None
        if picked.value == value or real is False:
            tied.append(model)
        elif name is not None and real is None:
            uncompared.append(model)
    return tuple(tied), tuple(uncompared)


def _direction(picks: Mapping[str, Picked]) -> str:
    directions = {p.direction for p in picks.values()} - {"none", "nan", ""}
    return directions.pop() if len(directions) == 1 else "none"


def build_scorecard(results: pd.DataFrame, comparisons: pd.DataFrame, kinds: Mapping[str, str]) -> Scorecard:
    """The scorecard of the tidy ``results`` table with ties from ``comparisons`` (both may lack rows)."""
    models = tuple(paper_order(results["model"])) if len(results) else ()
    picks = headline_picks(results, kinds) if len(results) else {}
    pairs = comparison_pairs(comparisons)
    rows = []
    for headline in HEADLINES:
        found = picks.get(headline.key, {})
        if not found:
            continue
        label, section = LABELS.get(headline.key, (headline.key, "other"))
        direction = _direction(found)
        names = {p.name for p in found.values()}
        name = names.pop() if len(names) == 1 else None
        best = best_model(found, direction)
        tied, uncompared = ties(best, name, {m: found[m] for m in models if m in found}, pairs)
        rows.append(ScoreRow(headline.key, label, section, direction, name, found, best, tied, uncompared))
    return Scorecard(models, tuple(rows))


def value_format(row: ScoreRow) -> str:
    """A format for every value of ``row``: 1 decimal from 10 up, 2 from 1 up, else 3 (fixed per row)."""
    largest = max((abs(p.value) for p in row.picks.values() if math.isfinite(p.value)), default=0.0)
    return "{:.1f}" if largest >= 10 else "{:.2f}" if largest >= 1 else "{:.3f}"


def cell_text(row: ScoreRow, model: str) -> str:
    """``value [low, high]`` (the interval only when it has one), or "n/a" when the model lacks the headline."""
    picked = row.picks.get(model)
    if picked is None or not math.isfinite(picked.value):
        return MISSING
    fmt = value_format(row)
    text = fmt.format(picked.value)
    if math.isfinite(picked.ci_low) and math.isfinite(picked.ci_high):
        text += f" [{fmt.format(picked.ci_low)}, {fmt.format(picked.ci_high)}]"
    return text
