"""The one-page report: ``report.html`` (self-contained), ``report.md`` (same content) and a tidy ``summary.csv``.

First screen: provenance, the demo warning, and the scorecard ("who wins what", paper §1 / Fig. 1) — or, past
``RANKING_THRESHOLD`` models, the ranking (mean rank and z-score). Then a Fig. 1-style summary chart, the run's
models and datasets, one section per analysis in the paper's order with every figure under the results folder,
paper Tables 2 and 3, and an appendix (tidy tables, real differences). docs/report.md describes each part.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from beyond_imagenet.base.files import atomic_write_text
from beyond_imagenet.base.record import ResultRecord
from beyond_imagenet.figures.common import save_figure
from beyond_imagenet.figures.summary import Panel, summary_chart
from beyond_imagenet.models.display import display_map
from beyond_imagenet.report import html, markdown
from beyond_imagenet.report.catalogue import figure_blocks
from beyond_imagenet.report.document import Block, Bullets, Figure, Section, Span, Table, Text, from_markdown
from beyond_imagenet.report.header import RunInfo, run_blocks, top_blocks
from beyond_imagenet.report.ranking import RANKING_THRESHOLD, standings
from beyond_imagenet.report.scorecard import Scorecard, build_scorecard
from beyond_imagenet.report.sections import analysis_sections, score_table
from beyond_imagenet.report.side_study import SideStudy, side_study_section
from beyond_imagenet.report.tables import (
    HOLM_FAMILIES,
    MAX_DIFFERENCES,
    differences_section,
    summary_frame,
    table2,
    table2_n,
    vtab_n,
    vtab_section,
)

__all__ = [
    "HOLM_FAMILIES", "MAX_DIFFERENCES", "ReportInputs", "RunInfo", "SideStudy", "differences_section", "table2",
    "vtab_section", "write_report",
]  # fmt: skip
TITLE = "beyond-imagenet report"
TIES = (
    "Each cell: value [{level} interval]. Bold: the best model (by the property's direction); bold with "
    '"tied": not distinguishable from the best (their paired comparison is not a real difference). '
    "Properties with no better direction (shape bias, CKA), or the same value for every model, have no best; "
    "summaries without a paired comparison "
    "(means, sweep drops) tie only on equal values. "
    "n/a: not measured."
)
RANKING_NOTE = (
    "{n} models: mean rank [interval] averaged over the scorecard's properties with a direction (rankings.csv), "
    "and the mean z-score over them (sign flipped where lower is better). Best first."
)


@dataclass
class ReportInputs:
    """What the report is built from: the results stage's tables, the records, and the run's provenance."""

    results: pd.DataFrame
    records: list[ResultRecord]
    results_dir: Path
    run: RunInfo
    kinds: Mapping[str, str] = field(default_factory=dict)
    comparisons: pd.DataFrame = field(default_factory=pd.DataFrame)
    rankings: pd.DataFrame = field(default_factory=pd.DataFrame)
    manifests: Path | None = None
    vtab: str = ""  # Table 3 section (Markdown, ``vtab_section``)
    differences: str = ""  # real differences (Markdown, ``differences_section``)
    side_studies: Sequence[SideStudy] = ()  # params ``side_studies``: each its own section (``side_study``)


def _level(results: pd.DataFrame) -> str:
    levels = results["level"].dropna() if "level" in results else pd.Series(dtype=float)
    return f"{100 * float(levels.iloc[0]):.0f}%" if len(levels) else "no"


def _fmt(value: float, digits: int = 2) -> str:
    return "n/a" if not math.isfinite(value) else f"{value:.{digits}f}"


def ranking_table(card: Scorecard, rankings: pd.DataFrame) -> Table:
    """The ranking (many models): position, model, mean rank [low, high], mean z-score, properties counted."""
    displays = display_map(card.models)
    rows = tuple(
        (
            str(position),
            Span(displays[s.model].name, colour=displays[s.model].colour),
            f"{_fmt(s.mean_rank)} [{_fmt(s.rank_low)}, {_fmt(s.rank_high)}]",
            str(s.n_ranked),
            _fmt(s.z),
            str(s.n_z),
        )
        for position, s in enumerate(standings(card, rankings), 1)
    )
    header = ("#", "Model", "mean rank [interval]", "properties ranked", "mean z-score", "properties z-scored")
    return Table(header, rows, "scorecard")


def scorecard_blocks(card: Scorecard, inputs: ReportInputs) -> list[Block]:
    """The first screen's table (scorecard or ranking) and its legend line."""
    if len(card.models) > RANKING_THRESHOLD:
        return [ranking_table(card, inputs.rankings), Text(RANKING_NOTE.format(n=len(card.models)), "legend")]
    return [score_table(card.rows, card.models, "scorecard"), Text(TIES.format(level=_level(inputs.results)), "legend")]


def chart(card: Scorecard, reports_dir: Path) -> Figure:
    """The Fig. 1-style summary chart of the scorecard, saved under ``reports_dir/figures``."""
    panels = [
        Panel(row.label, row.direction, {m: (p.value, p.ci_low, p.ci_high) for m, p in row.picks.items()})
        for row in card.rows
    ]
    path = save_figure(summary_chart(panels, card.models), reports_dir / "figures" / "summary.png")
    caption = "Summary of the scorecard: each model's value (marker) and interval (whisker) per property."
    return Figure(path, caption)


def _relative(path: Path, base: Path) -> str:
    return Path(os.path.relpath(path.resolve(), base.resolve())).as_posix()


def closing_sections(inputs: ReportInputs, reports_dir: Path) -> list[Section]:
    """Tables 2 and 3 in the paper's layout, then the appendix (tidy tables, real differences)."""
    tables: list[Block] = from_markdown(table2(inputs.records, table2_n(inputs.results)))
    tables += from_markdown(inputs.vtab) + from_markdown(vtab_n(inputs.results))
    names = ("results.csv", "comparisons.csv", "rankings.csv")
    links = tuple((name, _relative(inputs.results_dir / name, reports_dir)) for name in names)
    appendix: list[Block] = [
        Text("The tidy tables behind every number (one row per model x metric, with intervals):"),
        Bullets(links=(*links, ("summary.csv (this scorecard, tidy)", "summary.csv"))),
        *from_markdown(inputs.differences),
    ]
    sections = [Section("Paper Tables 2 and 3", "tables", tables)] if tables else []
    return [*sections, Section("Appendix: tables and real differences", "appendix", appendix)]


def build(inputs: ReportInputs, reports_dir: Path) -> tuple[list[Block], list[Section], Scorecard]:
    """The top blocks (header, scorecard), the sections and the scorecard."""
    card = build_scorecard(inputs.results, inputs.comparisons, inputs.kinds)
    top = [*top_blocks(inputs.run, inputs.results), *scorecard_blocks(card, inputs)]
    sections = [Section("Summary chart", "summary", [chart(card, reports_dir)])] if card.rows else []
    sections.append(Section("Run: models and datasets", "run", run_blocks(inputs.results, inputs.manifests)))
    side_dirs = [study.results_dir for study in inputs.side_studies]
    sections += analysis_sections(card, figure_blocks(inputs.results_dir, card.models, side_dirs), {})
    sections += [side_study_section(s, f"side-{i}") for i, s in enumerate(inputs.side_studies, 1)]
    return top, sections + closing_sections(inputs, reports_dir), card


def write_report(inputs: ReportInputs, reports_dir: str | Path) -> list[Path]:
    """Write ``report.html``, ``report.md`` and ``summary.csv`` under ``reports_dir``; returns their paths."""
    reports_dir = Path(reports_dir)
    top, sections, card = build(inputs, reports_dir)
    summary = summary_frame(card.rows, card.models).to_csv(index=False)
    return [
        atomic_write_text(reports_dir / "report.html", html.render(TITLE, top, sections)),
        atomic_write_text(reports_dir / "report.md", markdown.render(TITLE, top, sections, reports_dir)),
        atomic_write_text(reports_dir / "summary.csv", summary),
    ]
