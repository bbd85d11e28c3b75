"""One short section per analysis in the paper's order (docs/protocol.md §3-§10): a finding, figures, one table.

The finding is one sentence computed from the section's scorecard rows: per property the best model with its value
and interval and which models the paired comparisons cannot tell apart from it (or, for a property without a
direction, the range of values).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from beyond_imagenet.models.display import display_map, display_name
from beyond_imagenet.report.document import Block, Section, Span, Table, Text
from beyond_imagenet.report.scorecard import Scorecard, ScoreRow, all_equal, cell_text

# section -> (title, paper anchor); the paper's order of the analyses.
TITLES: dict[str, str] = {
    "imagenet_x": "Model mistakes: ImageNet-X (paper Fig. 2, §3)",
    "pug": "Synthetic data: PUG-ImageNet (paper Fig. 3, §4)",
    "calibration": "Calibration (paper Fig. 4, §5)",
    "shape_bias": "Shape / texture bias (paper Fig. 5, §6)",
    "robustness": "Robustness and ImageNet accuracy (paper Fig. 6 top, Table 2, §7)",
    "vtab": "Transfer: VTAB linear probes (paper Fig. 6 bottom, Table 3, §8)",
    "invariance": "Transformation invariance (paper Fig. 7, §9)",
    "cka": "Representation similarity: CKA (paper Fig. 8, §10)",
    "other": "Other figures",
}
TRANSPOSE_ABOVE = 8  # more models than this: a section table has one row per model


def _value(row: ScoreRow, model: str) -> str:
    return f"{display_name(model)} {cell_text(row, model)}"


def clause(row: ScoreRow) -> str:
    """One property's part of a finding (no final full stop)."""
    finite = {m: p.value for m, p in row.picks.items() if math.isfinite(p.value)}
    if not finite:
        return f"{row.label}: no values"
    if all_equal(row.picks):
        return f"{row.label}: {cell_text(row, next(iter(finite)))} for every model (no difference to call)"
    if row.best is None:
        low, high = min(finite, key=finite.__getitem__), max(finite, key=finite.__getitem__)
        return f"{row.label} ranges from {_value(row, low)} to {_value(row, high)} (no better direction)"
    word = "Highest" if row.direction == "higher" else "Lowest"
    text = f"{word} {row.label}: {_value(row, row.best)}"
    others = [m for m in row.picks if m != row.best]
    if row.tied:
        verb = "is" if len(row.tied) == 1 else "are"
        text += f"; {_names(row.tied)} {verb} not distinguishable"
    if row.uncompared:
        text += f"; not compared with {_names(row.uncompared)} (no paired comparison on the same images)"
    if others and row.name is None and not row.tied:
        text += " (no paired comparison for this summary)"
    elif others and row.name is not None and not row.tied and not row.uncompared:
        text += "; ahead of every other model (paired comparisons)"
    return text


def _names(models: Sequence[str]) -> str:
    return ", ".join(display_name(m) for m in models)


def finding(rows: Sequence[ScoreRow]) -> str:
    """The section's one-sentence finding: its properties' clauses joined by "; "."""
    if not rows:
        return "No headline numbers for this analysis in this run."
    return "; ".join(clause(row) for row in rows) + "."


def cell(row: ScoreRow, model: str) -> Span:
    """A scorecard cell: bold for the best and its ties; ties carry a "tied" note."""
    tied = model in row.tied
    return Span(cell_text(row, model), bold=row.marked(model), note="tied" if tied else "")


def model_header(models: Sequence[str]) -> tuple[Span, ...]:
    """One header cell per model: its display name after its colour swatch."""
    displays = display_map(models)
    return tuple(Span(displays[m].name, colour=displays[m].colour) for m in models)


def score_table(rows: Sequence[ScoreRow], models: Sequence[str], anchor: str = "") -> Table:
    """Properties as rows and models as columns; transposed (a row per model) past ``TRANSPOSE_ABOVE`` models."""
    if len(models) > TRANSPOSE_ABOVE:
        colours = display_map(models)
        body = tuple((Span(colours[m].name, colour=colours[m].colour), *(cell(row, m) for row in rows)) for m in models)
        return Table(("Model", *(row.label for row in rows)), body, anchor)
    body = tuple((Span(row.label), *(cell(row, m) for m in models)) for row in rows)
    return Table(("Property", *model_header(models)), body, anchor)


def analysis_sections(
    card: Scorecard, figures: Mapping[str, list[Block]], extra: Mapping[str, list[Block]]
) -> list[Section]:
    """The sections in paper order: finding, the section's scorecard table, ``extra`` blocks, then its figures.

    A section with no headline, no figure and no extra block is left out; "other" collects unplaced figures.
    """
    sections = []
    for key, title in TITLES.items():
        rows = card.section(key)
        if not rows and not figures.get(key) and not extra.get(key):
            continue
        blocks: list[Block] = []
        if key != "other":
            blocks.append(Text(finding(rows), "finding"))
        if rows:
            blocks.append(score_table(rows, card.models))
        blocks += [*extra.get(key, []), *figures.get(key, [])]
        sections.append(Section(title, key, blocks))
    return sections
