"""The report as data: sections of blocks that ``report.html`` and ``report.markdown`` both render.

A block is a paragraph (``Text``), a list (``Bullets``), a ``Table`` of ``Span`` cells, a ``Figure`` (a PNG and its
caption) or a ``Grid`` of figures. ``from_markdown`` turns the Markdown that Tables 2 and 3 and the differences list
are written in into blocks, so both renderers share them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Span:
    """A table cell: its text, bold or not, a colour swatch before it, a small note after it (e.g. "tied")."""

    text: str
    bold: bool = False
    colour: str | None = None
    note: str = ""


@dataclass(frozen=True)
class Text:
    """A paragraph; ``kind`` "finding", "warning" or "" styles it in HTML."""

    text: str
    kind: str = ""


@dataclass(frozen=True)
class Bullets:
    """An unordered list; ``links`` items are (label, relative path) pairs instead of text."""

    items: tuple[str, ...] = ()
    links: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Table:
    """A table: a header row and body rows of cells (``Span`` or plain text); ``anchor`` is its HTML id."""

    header: tuple[Span | str, ...]
    rows: tuple[tuple[Span | str, ...], ...]
    anchor: str = ""
    caption: str = ""


@dataclass(frozen=True)
class Figure:
    """A PNG (a path the report's writer can read) with its caption."""

    path: Path
    caption: str


@dataclass(frozen=True)
class Grid:
    """Several small figures side by side under one caption (e.g. the per-model reliability diagrams)."""

    figures: tuple[Figure, ...]
    caption: str


Block = Text | Bullets | Table | Figure | Grid


@dataclass
class Section:
    """A titled part of the report; ``anchor`` is its HTML id."""

    title: str
    anchor: str
    blocks: list[Block] = field(default_factory=list)


def _cells(line: str) -> tuple[str, ...]:
    inner = line.strip().removeprefix("|").removesuffix("|")
    return tuple(cell.strip().replace("\\|", "|") for cell in inner.replace("\\|", "\x00").split("|"))


def _table(lines: list[str]) -> Table:
    rows = [tuple(c.replace("\x00", "|") for c in _cells(line)) for line in lines]
    body = [r for r in rows[1:] if not all(set(c) <= set("-: ") for c in r)]  # drop the |---| separator
    return Table(rows[0], tuple(body))


def from_markdown(text: str) -> list[Block]:
    """Blocks of a simple Markdown text: tables, "- " lists, paragraphs; ``#`` headings are dropped."""
    blocks: list[Block] = []
    table: list[str] = []
    items: list[str] = []
    for line in [*text.splitlines(), ""]:
        if table and not line.startswith("|"):
            blocks.append(_table(table))
            table = []
        if items and not line.startswith("- "):
            blocks.append(Bullets(tuple(items)))
            items = []
        if line.startswith("|"):
            table.append(line)
        elif line.startswith("- "):
            items.append(line[2:])
        elif line.strip() and not line.startswith("#"):
            blocks.append(Text(line.strip()))
    return blocks
