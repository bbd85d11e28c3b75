"""The report: every model and metric side by side with intervals, Tables 2 and 3, and the differences that are real.

Built from the ``results`` stage's tables (``results.parquet``: values and intervals; ``comparisons.csv``: paired
differences with Holm-adjusted p-values) and, for Table 2's layout and the figures, from the records.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from beyond_imagenet.base.files import atomic_write_text
from beyond_imagenet.base.record import ResultRecord
from beyond_imagenet.metrics.robustness import DATASET_LABELS, ID_DATASET, TABLE2_SHIFTS
from beyond_imagenet.metrics.vtab import table3_markdown
from beyond_imagenet.probe.aggregate import not_run_note, table3_from_records

MAX_DIFFERENCES = 40  # real differences listed in the report; comparisons.csv has them all


def _format(name: str, value: float | None, low: float = math.nan, high: float = math.nan) -> str:
    """Counts as integers, every other metric with four decimals and its interval when it has one; missing: empty."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if name.endswith(("n_samples", "n_unlabeled_skipped")):
        return f"{value:.0f}"
    interval = f" [{low:.4f}, {high:.4f}]" if math.isfinite(low) and math.isfinite(high) else ""
    return f"{value:.4f}{interval}"


def summary_table(results: pd.DataFrame, intervals: bool = True) -> tuple[list[str], list[list[str]]]:
    """Header and rows: one column per model (first-seen order), a row per metric after family and paradigm rows."""
    models = list(dict.fromkeys(results["model"]))
    info = results.drop_duplicates("model").set_index("model")
    rows = [[key, *(str(info.loc[m, key]) for m in models)] for key in ("family", "paradigm")]
    cells = {(r["model"], r["name"]): r for r in results.to_dict("records")}
    for name in sorted(set(results["name"])):
        row = [name]
        for model in models:
            found = cells.get((model, name))
            if found is None:
                row.append("")
            elif intervals:
                row.append(_format(name, found["value"], found["ci_low"], found["ci_high"]))
            else:
                row.append(_format(name, found["value"]))
        rows.append(row)
    return ["metric", *models], rows


def to_markdown(header: list[str], rows: list[list[str]], figures: list[str], level: float | None) -> str:
    """The summary table as Markdown, with the all-model figures linked below it."""
    shown = f"{100 * level:.0f}% intervals in brackets" if level else "no intervals"
    lines = [
        "# beyond-imagenet report",
        "",
        f"Accuracy in percent; ECE and confidence as fractions; {shown} (exact for accuracies, bootstrap otherwise). "
        "Demo models have random weights: their numbers are noise.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    if figures:
        lines += ["", "## Figures", ""] + [f"![{Path(f).stem}]({f})" for f in figures]
    return "\n".join(lines) + "\n"


def to_csv(header: list[str], rows: list[list[str]]) -> str:
    """The summary table as CSV."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def _table2_cell(row: dict, key: str, interval: dict | None) -> str:
    if key not in row:
        return "-"
    if interval and interval.get("low") is not None and interval.get("high") is not None:
        return f"{row[key]:.1f} ({interval['low']:.1f}-{interval['high']:.1f})"
    return f"{row[key]:.1f}"


def table2(records: list[ResultRecord]) -> str:
    """Paper Table 2 layout (top-1 % with intervals; Average over the 7 shifts, INet-Val excluded)."""
    rows = [r for r in records if r.analysis == "robustness"]
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
        lines.append("| " + " | ".join([record.model_id, *cells]) + " |")
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
            f"- {row['name']}: {row['model_a']} - {row['model_b']} = {row['difference']:.4g} "
            f"[{row['ci_low']:.4g}, {row['ci_high']:.4g}], p_holm = {row['p_holm']:.2g}"
        )
    if len(real) > MAX_DIFFERENCES:
        lines.append(f"- ... and {len(real) - MAX_DIFFERENCES} more in comparisons.csv")
    return "\n".join(lines) + "\n"


def vtab_section(
    records: Sequence[ResultRecord], preset: str, model_ids: Sequence[str], not_run: dict[str, str] | None = None
) -> str:
    """Paper Table 3 (VTAB linear probes) built from the probe records; empty when there are none."""
    if not records:
        return ""
    table = table3_markdown(table3_from_records(records, preset, model_ids)) + not_run_note(not_run or {})
    return "## Transfer: VTAB linear probes (paper Table 3)\n\n" + table.strip() + "\n"


def write_report(
    results: pd.DataFrame, records: list[ResultRecord], reports_dir: str | Path, extra_sections: Sequence[str] = ()
) -> list[Path]:
    """Write ``summary.md`` (values with intervals) and ``summary.csv`` (values); figures linked relative to it."""
    reports_dir = Path(reports_dir)
    figures = sorted({a for r in records for a in r.artifacts if Path(a).stem == "all_models"})
    links = [Path("..", f).as_posix() if not Path(f).is_absolute() else f for f in figures]
    levels = results["level"].dropna()
    markdown = to_markdown(*summary_table(results), links, float(levels.iloc[0]) if len(levels) else None)
    if table2(records):
        markdown += "\n" + table2(records)
    for section in extra_sections:
        if section:
            markdown += "\n" + section
    return [
        atomic_write_text(reports_dir / "summary.md", markdown),
        atomic_write_text(reports_dir / "summary.csv", to_csv(*summary_table(results, intervals=False))),
    ]
