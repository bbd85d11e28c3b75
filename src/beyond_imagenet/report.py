"""Report stage: one side-by-side table of every model and metric (markdown + CSV), from result records."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from beyond_imagenet.analyses.common import ResultRecord
from beyond_imagenet.io_utils import atomic_write_text


def summary_table(records: list[ResultRecord]) -> tuple[list[str], list[list[str]]]:
    """Header and rows: one row per model (in first-seen order), one column per namespaced metric."""
    models = list(dict.fromkeys(r.model_id for r in records))
    metrics = sorted({name for r in records for name in r.metrics})
    values = {(r.model_id, name): value for r in records for name, value in r.metrics.items()}
    paradigm = {r.model_id: (r.provenance.get("model") or {}).get("paradigm", "") for r in records}
    family = {r.model_id: (r.provenance.get("model") or {}).get("family", "") for r in records}
    rows = []
    for model in models:
        cells = [_format(name, values.get((model, name))) for name in metrics]
        rows.append([model, str(family[model]), str(paradigm[model]), *cells])
    return ["model", "family", "paradigm", *metrics], rows


def _format(name: str, value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:.0f}" if name.endswith("n_samples") else f"{value:.4f}"


def to_markdown(header: list[str], rows: list[list[str]], figures: list[str]) -> str:
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
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def write_report(records: list[ResultRecord], reports_dir: str | Path) -> list[Path]:
    """Write ``summary.md`` and ``summary.csv``; figures are linked relative to the report."""
    reports_dir = Path(reports_dir)
    header, rows = summary_table(records)
    figures = sorted({a for r in records for a in r.artifacts if Path(a).stem == "all_models"})
    links = [Path("..", f).as_posix() if not Path(f).is_absolute() else f for f in figures]
    return [
        atomic_write_text(reports_dir / "summary.md", to_markdown(header, rows, links)),
        atomic_write_text(reports_dir / "summary.csv", to_csv(header, rows)),
    ]
