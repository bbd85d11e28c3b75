"""The report: every model and metric side by side (Markdown + CSV), Table 2 and Table 3, all from result records."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

from beyond_imagenet.base.files import atomic_write_text
from beyond_imagenet.base.record import ResultRecord
from beyond_imagenet.metrics.robustness import DATASET_LABELS, ID_DATASET, TABLE2_SHIFTS
from beyond_imagenet.metrics.vtab import table3_markdown
from beyond_imagenet.probe.aggregate import not_run_note, table3_from_records


def summary_table(records: list[ResultRecord]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the summary table: every model side by side, one row per namespaced metric.

    One column per model (first-seen order); the metric rows come after two rows giving each model's family and
    paradigm.
    """
    models = list(dict.fromkeys(r.model_id for r in records))
    metrics = sorted({name for r in records for name in r.metrics})
    values = {(r.model_id, name): value for r in records for name, value in r.metrics.items()}
    model_info = {r.model_id: r.provenance.get("model") or {} for r in records}
    rows = [[key, *(str(model_info[m].get(key, "")) for m in models)] for key in ("family", "paradigm")]
    rows += [[name, *(_format(name, values.get((m, name))) for m in models)] for name in metrics]
    return ["metric", *models], rows


def _format(name: str, value: float | None) -> str:
    """Counts as integers, every other metric with four decimals; missing as empty."""
    if value is None:
        return ""
    return f"{value:.0f}" if name.endswith("n_samples") else f"{value:.4f}"


def to_markdown(header: list[str], rows: list[list[str]], figures: list[str]) -> str:
    """The summary table as Markdown, with the all-model figures linked below it."""
    lines = [
        "# beyond-imagenet report",
        "",
        "Accuracy in percent; ECE and confidence as fractions. "
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


def table2(records: list[ResultRecord]) -> str:
    """Paper Table 2 layout (top-1 %; Average over the 7 shifts, INet-Val excluded) from robustness records."""
    rows = [r for r in records if r.analysis == "robustness"]
    if not rows:
        return ""
    columns = (ID_DATASET, *TABLE2_SHIFTS)
    header = ["Model", *(DATASET_LABELS[c] for c in columns), "Average"]
    lines = ["## Robustness (paper Table 2)", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for record in rows:
        row = record.details.get("table2_row", {})
        cells = [f"{row[key]:.1f}" if key in row else "-" for key in columns]
        average = record.metrics.get("robustness/average")
        missing = ", ".join(record.details.get("average_missing", []))
        cells.append(f"{average:.1f}" if average is not None else f"missing {missing}")
        lines.append("| " + " | ".join([record.model_id, *cells]) + " |")
    return "\n".join(lines) + "\n"


def vtab_section(
    records: Sequence[ResultRecord], preset: str, model_ids: Sequence[str], not_run: dict[str, str] | None = None
) -> str:
    """Paper Table 3 (VTAB linear probes) built from the probe records; empty when there are none."""
    if not records:
        return ""
    table = table3_markdown(table3_from_records(records, preset, model_ids)) + not_run_note(not_run or {})
    return "## Transfer: VTAB linear probes (paper Table 3)\n\n" + table.strip() + "\n"


def write_report(records: list[ResultRecord], reports_dir: str | Path, extra_sections: list[str] = ()) -> list[Path]:
    """Write ``summary.md`` and ``summary.csv``; figures are linked relative to the report."""
    reports_dir = Path(reports_dir)
    header, rows = summary_table(records)
    figures = sorted({a for r in records for a in r.artifacts if Path(a).stem == "all_models"})
    links = [Path("..", f).as_posix() if not Path(f).is_absolute() else f for f in figures]
    markdown = to_markdown(header, rows, links)
    if table2(records):
        markdown += "\n" + table2(records)
    for section in extra_sections:
        if section:
            markdown += "\n" + section
    return [
        atomic_write_text(reports_dir / "summary.md", markdown),
        atomic_write_text(reports_dir / "summary.csv", to_csv(header, rows)),
    ]
