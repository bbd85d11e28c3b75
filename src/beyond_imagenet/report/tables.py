"""The report's tables: paper Tables 2 and 3 in paper layout and model order, the real differences, summary.csv.

Table 2 comes from the robustness records (its layout), Table 3 from the probe records; the differences from
``comparisons.csv`` (paired differences with Holm-adjusted p-values); ``summary.csv`` is the scorecard, tidy.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import pandas as pd

from beyond_imagenet.base.record import ResultRecord
from beyond_imagenet.metrics.robustness import DATASET_LABELS, ID_DATASET, TABLE2_SHIFTS
from beyond_imagenet.metrics.vtab import table3_markdown
from beyond_imagenet.models.display import display_name, paper_order
from beyond_imagenet.probe.aggregate import not_run_note, table3_from_records

MAX_DIFFERENCES = 40  # real differences listed in the report; comparisons.csv has them all


def _table2_cell(row: dict, key: str, interval: dict | None) -> str:
    if key not in row:
        return "-"
    if interval and interval.get("low") is not None and interval.get("high") is not None:
        return f"{row[key]:.1f} ({interval['low']:.1f}-{interval['high']:.1f})"
    return f"{row[key]:.1f}"


def _n_cell(value: float | None) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.0f}"


def table2(records: list[ResultRecord], n: Mapping[str, float] | None = None) -> str:
    """Paper Table 2 layout (top-1 % with intervals; Average over the 7 shifts, INet-Val excluded), paper order.

    ``n`` ({column key: images}) adds a last row with each column's number of images.
    """
    by_model = {r.model_id: r for r in records if r.analysis == "robustness"}
    rows = [by_model[m] for m in paper_order(by_model)]
    if not rows:
        return ""
    columns = (ID_DATASET, *TABLE2_SHIFTS)
    header = ["Model", *(DATASET_LABELS[c] for c in columns), "Average"]
    lines = ["## Robustness (paper Table 2)", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for record in rows:
        row = dict(record.details.get("table2_row", {}))
        cells = [_table2_cell(row, key, record.intervals.get(f"robustness/{key}/top1")) for key in columns]
        average = record.metrics.get("robustness/average")
        missing = ", ".join(record.details.get("average_missing", []))
        if average is None:
            cells.append(f"missing {missing}")
        else:
            cells.append(_table2_cell({"average": average}, "average", record.intervals.get("robustness/average")))
        lines.append("| " + " | ".join([display_name(record.model_id), *cells]) + " |")
    if n:
        lines.append("| n | " + " | ".join(_n_cell(n.get(c)) for c in (*columns, "average")) + " |")
    return "\n".join(lines) + "\n"


HOLM_FAMILIES = {
    "section": "Holm within each analysis and dataset",
    "metric": "Holm within each metric's model pairs",
    "all": "Holm over every comparison of the run",
}


def differences_section(comparisons: pd.DataFrame, significance: float, holm_family: str = "section") -> str:
    """The real differences (Holm-adjusted p below ``significance``, interval without 0), by family, best first."""
    if comparisons.empty:
        return ""
    real = comparisons[comparisons["real"].astype(bool)].sort_values(["holm_family", "p_holm"])
    lines = [
        "## Differences between models that are real",
        "",
        f"{len(real)} of {len(comparisons)} paired comparisons have a Holm-adjusted p-value below {significance} "
        f"and an interval without 0 (same images for both models; {HOLM_FAMILIES[holm_family]}). "
        "All are in comparisons.csv.",
        "",
    ]
    for row in real.head(MAX_DIFFERENCES).to_dict("records"):
        lines.append(
            f"- {row['name']}: {display_name(str(row['model_a']))} - {display_name(str(row['model_b']))} "
            f"= {row['difference']:.4g} "
            f"[{row['ci_low']:.4g}, {row['ci_high']:.4g}], p_holm = {row['p_holm']:.2g}"
        )
    if len(real) > MAX_DIFFERENCES:
        lines.append(f"- ... and {len(real) - MAX_DIFFERENCES} more in comparisons.csv")
    return "\n".join(lines) + "\n"


def vtab_intervals(results: pd.DataFrame) -> dict[tuple[str, str], tuple[float, float]]:
    """{(model, group or "overall"): (low, high)} of the tidy table's VTAB summary rows (top-1)."""
    if results.empty:
        return {}
    rows = results[(results["analysis"] == "vtab") & results["ci_low"].notna() & results["ci_high"].notna()]
    return {
        (str(m), str(metric)): (float(low), float(high))
        for m, metric, low, high in zip(rows["model"], rows["metric"], rows["ci_low"], rows["ci_high"], strict=True)
    }


def vtab_section(
    records: Sequence[ResultRecord],
    preset: str,
    model_ids: Sequence[str],
    not_run: dict[str, str] | None = None,
    results: pd.DataFrame | None = None,
) -> str:
    """Paper Table 3 (VTAB linear probes) from the probe records, paper order and display names; "" without records.

    With the tidy ``results`` table, the top-1 group and Overall cells carry their intervals.
    """
    if not records:
        return ""
    order = paper_order(model_ids)
    names = {m: display_name(m) for m in order}
    intervals = vtab_intervals(results) if results is not None else {}
    table = table3_markdown(table3_from_records(records, preset, order), names, intervals)
    table += not_run_note(not_run or {})
    return "## Transfer: VTAB linear probes (paper Table 3)\n\n" + table.strip() + "\n"


def table2_n(results: pd.DataFrame) -> dict[str, float]:
    """{Table 2 column key: number of images} from the tidy table's robustness rows (the largest n over models)."""
    rows = results[(results["analysis"] == "robustness") & results["metric"].isin(("top1", "average"))]
    n = {}
    for variant, metric, value in zip(rows["variant"].fillna(""), rows["metric"], rows["n"], strict=True):
        key = "average" if metric == "average" else str(variant)
        if pd.notna(value):
            n[key] = max(float(value), n.get(key, 0.0))
    return n


def vtab_n(results: pd.DataFrame) -> str:
    """One line with each VTAB task's number of test images (paper Table 3's n per column), or ""."""
    rows = results[(results["analysis"] == "vtab_probe") & (results["metric"] == "top1")].dropna(subset=["n"])
    if rows.empty:
        return ""
    n = rows.groupby("dataset", sort=False)["n"].max()
    return "Test images per task (n): " + ", ".join(f"{task} {value:.0f}" for task, value in n.items()) + "."


SUMMARY_COLUMNS = ("headline", "label", "model", "display_name", "value", "ci_low", "ci_high", "direction", "name")


def summary_frame(rows: Sequence, models: Sequence[str]) -> pd.DataFrame:
    """``summary.csv``: one row per model x scorecard headline, value and interval as numbers (NaN when none)."""
    records = [
        (row.key, row.label, model, display_name(model), p.value, p.ci_low, p.ci_high, row.direction, row.name or "")
        for row in rows
        for model in models
        if (p := row.picks.get(model)) is not None
    ]
    return pd.DataFrame(records, columns=list(SUMMARY_COLUMNS))
