"""``report.md``: the same report as Markdown, figures linked by their path relative to the report."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from beyond_imagenet.report.document import Block, Bullets, Figure, Grid, Section, Span, Table, Text


def _cell(cell: Span | str) -> str:
    span = cell if isinstance(cell, Span) else Span(cell)
    text = span.text.replace("|", "\\|")
    if span.bold and text:
        text = f"**{text}**"
    if span.note:
        text += f" ({span.note})"
    return text


def table(block: Table) -> str:
    """A pipe table."""
    lines = ["| " + " | ".join(_cell(c) for c in block.header) + " |", "|" + "---|" * len(block.header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in block.rows]
    return "\n".join(lines)


def _link(path: Path, base: Path) -> str:
    return Path(os.path.relpath(Path(path).resolve(), base.resolve())).as_posix()


def figure(block: Figure, base: Path) -> str:
    """An image linked relative to ``base`` (the report's folder) with its caption in italics below."""
    return f"![{block.path.stem}]({_link(block.path, base)})\n\n*{block.caption}*"


def block_markdown(block: Block, base: Path) -> str:
    """Any block as Markdown."""
    if isinstance(block, Text):
        return f"> {block.text}" if block.kind == "warning" else block.text
    if isinstance(block, Bullets):
        return "\n".join([*(f"- {i}" for i in block.items), *(f"- [{label}]({href})" for label, href in block.links)])
    if isinstance(block, Table):
        return table(block)
    if isinstance(block, Grid):
        cells = " ".join(f"![{f.path.stem}]({_link(f.path, base)})" for f in block.figures)
        names = "; ".join(f.caption for f in block.figures)
        return f"{cells}\n\n*{block.caption} {names}*"
    return figure(block, base)


def render(title: str, top: Sequence[Block], sections: Sequence[Section], base: Path) -> str:
    """The whole report; figure links relative to ``base``."""
    parts = [f"# {title}", *(block_markdown(b, base) for b in top)]
    for section in sections:
        parts.append(f"## {section.title}")
        parts += [block_markdown(b, base) for b in section.blocks]
    return "\n\n".join(parts) + "\n"
