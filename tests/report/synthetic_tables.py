"""Synthetic tidy results, comparisons and rankings tables for the report tests (known truth)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from beyond_imagenet.report import ReportInputs, RunInfo
from beyond_imagenet.results.comparisons import COMPARISON_COLUMNS
from beyond_imagenet.results.headline import HEADLINES, SweepDrop

RESULT_COLUMNS = ("model", "display_name", "family", "paradigm", "weights_id", "analysis", "dataset", "variant",
                  "metric", "name", "value", "ci_low", "ci_high", "level", "n", "method", "plan", "direction",
                  "config_hash")  # fmt: skip


def row(model: str, analysis: str, dataset: str, metric: str, value: float, low: float = math.nan,
        high: float = math.nan, variant: str = "", direction: str = "higher", n: float = 100.0) -> dict:  # fmt: skip
    """One tidy row; its name is ``analysis/dataset/metric`` (or ``analysis/variant/metric``)."""
    name = f"{analysis}/{variant or dataset}/{metric}"
    return dict(
        model=model, display_name=model, family="vit", paradigm="supervised", weights_id=f"w:{model}",
        analysis=analysis, dataset=dataset, variant=variant, metric=metric, name=name, value=value, ci_low=low,
        ci_high=high, level=0.95, n=n, method="m", plan="p", direction=direction, config_hash="h",
    )  # fmt: skip


def table(rows: list[dict]) -> pd.DataFrame:
    """The tidy results table of ``rows``."""
    return pd.DataFrame(rows, columns=list(RESULT_COLUMNS))


def comparison(name: str, a: str, b: str, real: bool) -> dict:
    """One comparisons.csv row between ``a`` and ``b`` on ``name``."""
    out = dict.fromkeys(COMPARISON_COLUMNS, "")
    out.update(name=name, model_a=a, model_b=b, real=real, difference=0.0, p_holm=0.5, holm_family="f")
    return out


def comparisons(rows: list[dict]) -> pd.DataFrame:
    """The comparisons table of ``rows``."""
    return pd.DataFrame(rows, columns=list(COMPARISON_COLUMNS))


DIRECTIONS = {"ece": "lower", "mean_error_ratio": "lower", "overall": "none", "mean_offdiagonal": "none",
              "mean_best_match": "none"}  # fmt: skip  # as the analyses declare them; other headlines: higher


def full_rows(model: str, value: float) -> list[dict]:
    """A row (or sweep rows) for every headline of ``results.headline.HEADLINES``, values around ``value``."""
    rows = []
    for headline in HEADLINES:
        if isinstance(headline, SweepDrop):
            for point in (headline.reference, headline.reference + 1.0, headline.reference - 1.0):
                variant = f"{headline.sweep}/{point:g}"
                rows.append(
                    row(model, "invariance", "d", "top1", value - abs(point - headline.reference), variant=variant)
                )
            continue
        source = headline.sources[0]
        variant = source.variant if source.variant is not None else "x"
        dataset = source.kind or "d"
        direction = "higher" if source.analysis == "vtab" else DIRECTIONS.get(source.metric, "higher")
        rows.append(
            row(model, source.analysis, dataset, source.metric, value, value - 1, value + 1, variant, direction)
        )
    return rows


def inputs(results: pd.DataFrame, results_dir: Path, **extra) -> ReportInputs:
    """Report inputs of a synthetic table (no records, no git)."""
    run = RunInfo("0123456789abcdef", False, "2024-07-21 12:00 UTC", "params.yaml")
    return ReportInputs(results, [], results_dir, run, **extra)


def tiny_png(path: Path, colour: tuple[float, float, float] = (0.2, 0.4, 0.6)) -> Path:
    """A small real PNG at ``path``."""
    from matplotlib.figure import Figure

    from beyond_imagenet.figures.common import save_figure

    fig = Figure(figsize=(1.5, 1.0), dpi=50)
    fig.add_subplot().imshow(np.ones((4, 4, 3)) * np.array(colour))
    return save_figure(fig, path)
