"""The headline metrics: about fifteen numbers per model, picked from the tidy results table, for DVC to compare.

``HEADLINES`` below is the one declaration of what they are and where each comes from. The ``results`` stage writes
them as a flat JSON object keyed ``<headline>/<model>`` (e.g. ``ece_val/vit_sup``), the pipeline's only DVC metrics
file, kept in git so that ``dvc metrics diff`` and ``dvc exp show`` compare commits and experiments. A headline whose
rows are missing (an analysis not run, a sweep without its reference point) is left out, never written as 0.

Analyses whose dataset is a user-chosen name (accuracy, calibration) are matched by the dataset's registered kind
(``imagenet_val``, ``imagenet_r``), which ``dataset_kinds`` reads from params.yaml's ``datasets``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import pandas as pd

from beyond_imagenet.base.config import DatasetConfig

SEPARATOR = "/"  # between headline and model in a key; DVC's own separator for nested keys is ".", which model
# ids use (timm tags: convnext_base.fb_in22k), so the file is flat rather than nested
SIGNIFICANT_DIGITS = 6  # values are rounded so that reruns and git diffs do not show float noise


@dataclass(frozen=True)
class Rows:
    """Where a headline's rows are: the tidy table's ``analysis`` and ``metric``, a dataset kind, a variant.

    ``kind`` None matches any dataset; ``variant`` None matches any variant ("" is the analysis's summary row).
    """

    analysis: str
    metric: str
    kind: str | None = None
    variant: str | None = ""

    def select(self, rows: pd.DataFrame) -> pd.DataFrame:
        """The rows of one model's table (with a ``kind`` column) that this selector names."""
        keep = (rows["analysis"] == self.analysis) & (rows["metric"] == self.metric)
        if self.kind is not None:
            keep &= rows["kind"] == self.kind
        if self.variant is not None:
            keep &= rows["variant"] == self.variant
        return rows[keep]


@dataclass(frozen=True)
class Picked:
    """One model's headline: value, interval (NaN when there is none), the tidy row's ``name`` and ``direction``.

    ``name`` is None for a headline computed from several rows (a mean, a sweep drop): no paired comparison has it.
    """

    value: float
    ci_low: float = math.nan
    ci_high: float = math.nan
    name: str | None = None
    direction: str = "none"


@dataclass(frozen=True)
class Pick:
    """A headline read from rows: the first source that has rows wins; ``first`` row, or the ``mean`` of them."""

    key: str
    sources: tuple[Rows, ...]
    reduce: Literal["first", "mean"] = "first"

    def value(self, rows: pd.DataFrame) -> float | None:
        """The headline of one model's rows, or None when no source has a row."""
        picked = self.picked(rows)
        return None if picked is None else picked.value

    def picked(self, rows: pd.DataFrame) -> Picked | None:
        """The headline with its interval, name and direction (a ``first`` row's own; a ``mean`` has no interval)."""
        for source in self.sources:
            selected = source.select(rows)
            selected = selected[selected["value"].notna()]
            if not len(selected):
                continue
            row = selected.iloc[0]
            if self.reduce == "mean" and len(selected) > 1:
                return Picked(float(selected["value"].mean()), direction=str(row["direction"]))
            low, high = _float(row["ci_low"]), _float(row["ci_high"])
            return Picked(float(row["value"]), low, high, str(row["name"]), str(row["direction"]))
        return None


@dataclass(frozen=True)
class SweepDrop:
    """Invariance (§9): top-1 at a sweep's smallest or largest point minus top-1 at its reference point.

    Negative when accuracy falls away from the reference; missing when the sweep lacks the reference point.
    """

    key: str
    sweep: Literal["scale", "shift", "resolution"]
    extreme: Literal["min", "max"]
    reference: float

    def value(self, rows: pd.DataFrame) -> float | None:
        """The drop of one model's rows, or None when the sweep or its reference point is missing."""
        points = sweep_top1(rows, self.sweep)
        if self.reference not in points:
            return None
        extreme = min(points) if self.extreme == "min" else max(points)
        return points[extreme] - points[self.reference]

    def picked(self, rows: pd.DataFrame) -> Picked | None:
        """The drop as a :class:`Picked` (higher, i.e. a smaller fall, is better; no interval, no single row)."""
        value = self.value(rows)
        return None if value is None else Picked(value, direction="higher")


IMAGENET_VAL, IMAGENET_R = "imagenet_val", "imagenet_r"
HEADLINES: tuple[Pick | SweepDrop, ...] = (
    Pick("imagenet_top1", (Rows("accuracy", "top1", IMAGENET_VAL), Rows("robustness", "top1", variant=IMAGENET_VAL))),
    Pick("imagenet_x_mean_error_ratio", (Rows("imagenet_x", "mean_error_ratio"),)),
    Pick("pug_mean", (Rows("pug", "average"),)),
    Pick("ece_val", (Rows("calibration", "ece", IMAGENET_VAL),)),
    Pick("ece_r", (Rows("calibration", "ece", IMAGENET_R),)),
    Pick("shape_bias", (Rows("shape_bias", "overall"),)),
    Pick("robustness_average", (Rows("robustness", "average"),)),
    Pick("effective_robustness", (Rows("robustness", "effective_robustness", variant=None),), "mean"),  # over shifts
    Pick("vtab_overall", (Rows("vtab", "overall"),)),
    SweepDrop("invariance_scale_drop", "scale", "max", 1.0),
    SweepDrop("invariance_shift_drop", "shift", "max", 0.0),
    SweepDrop("invariance_resolution_low_drop", "resolution", "min", 224.0),
    SweepDrop("invariance_resolution_high_drop", "resolution", "max", 224.0),
    Pick("cka_mean_offdiagonal", (Rows("cka", "mean_offdiagonal", variant="all"),)),
    Pick("cka_cross_mean_best_match", (Rows("cka", "mean_best_match", variant=None),), "mean"),  # over other models
)


def sweep_top1(rows: pd.DataFrame, sweep: str) -> dict[float, float]:
    """{sweep point: top-1} of one model's invariance rows (variants ``scale/1.25``, ``resolution/224``)."""
    top1 = rows[(rows["analysis"] == "invariance") & (rows["metric"] == "top1")]
    points = {}
    for variant, value in zip(top1["variant"], top1["value"], strict=True):
        name, _, point = str(variant).partition("/")
        if name == sweep and not math.isnan(value):
            points[float(point)] = float(value)
    return points


def dataset_kinds(datasets: Mapping[str, DatasetConfig]) -> dict[str, str]:
    """{dataset name: registered kind} of params.yaml's ``datasets`` (the kind defaults to the name)."""
    return {name: config.kind or name for name, config in datasets.items()}


def _float(value) -> float:
    return math.nan if value is None or pd.isna(value) else float(value)


def _rounded(value: float) -> float:
    return float(f"{value:.{SIGNIFICANT_DIGITS}g}")


def _with_kinds(table: pd.DataFrame, kinds: Mapping[str, str]) -> pd.DataFrame:
    return table.assign(
        kind=table["dataset"].map(lambda name: kinds.get(name, name)),
        variant=table["variant"].fillna(""),
    )


def headline_picks(table: pd.DataFrame, kinds: Mapping[str, str]) -> dict[str, dict[str, Picked]]:
    """``{headline key: {model: Picked}}`` in ``HEADLINES`` order and the table's model order; missing left out."""
    per_model = {model: group for model, group in _with_kinds(table, kinds).groupby("model", sort=False)}
    picks: dict[str, dict[str, Picked]] = {}
    for headline in HEADLINES:
        picks[headline.key] = {}
        for model, group in per_model.items():
            picked = headline.picked(group)
            if picked is not None and math.isfinite(picked.value):
                picks[headline.key][model] = picked
    return picks


def headline_metrics(table: pd.DataFrame, kinds: Mapping[str, str]) -> dict[str, float]:
    """``{"<headline>/<model>": value}`` in ``HEADLINES`` order, then the table's model order; missing left out.

    Args:
        table: the tidy results table (``results.tidy.COLUMNS``).
        kinds: dataset name -> kind (``dataset_kinds``); a dataset not listed is its own kind.
    """
    return {
        f"{key}{SEPARATOR}{model}": _rounded(picked.value)
        for key, picks in headline_picks(table, kinds).items()
        for model, picked in picks.items()
    }
