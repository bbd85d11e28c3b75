"""``report.html``: the report as one self-contained page (inline CSS, every figure a base64 PNG data URI).

Nothing is fetched when it opens (no scripts, no external stylesheet, font or image); the only links are relative
ones to the tidy tables next to it. Text is escaped with ``html.escape``.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Sequence
from pathlib import Path

from beyond_imagenet.report.document import Block, Bullets, Figure, Grid, Section, Span, Table, Text

CSS = """
body{font:13px/1.35 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:12px 20px;color:#222;max-width:1360px}
h1{font-size:19px;margin:0 0 2px}h2{font-size:16px;margin:22px 0 6px;border-bottom:1px solid #ccc}
p{margin:4px 0}.meta{color:#555}
.warning{background:#fff3cd;border:1px solid #e0c36a;padding:3px 8px;display:inline-block}
.finding{font-weight:500}.legend{color:#555;font-size:12px}
table{border-collapse:collapse;margin:6px 0}
th,td{border:1px solid #ddd;padding:2px 7px;text-align:left;white-space:nowrap}
th{background:#f4f4f4}td b{font-weight:700}.note{color:#0a6;font-size:11px;margin-left:4px}
.sw{display:inline-block;width:10px;height:10px;margin-right:5px;border:1px solid #333;vertical-align:-1px}
figure{margin:8px 0}figure img{max-width:100%;max-height:1100px;width:auto;height:auto}
figcaption{color:#444;font-size:12px}
.grid{display:flex;flex-wrap:wrap;gap:8px}.grid figure{width:24%;margin:0}
"""


def inline(text: str) -> str:
    """Escaped text with Markdown's `code` and **bold** turned into tags."""
    escaped = html.escape(text)
    escaped = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", escaped)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", escaped)


def data_uri(path: Path) -> str:
    """The PNG at ``path`` as a ``data:image/png;base64,`` URI."""
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def _cell(cell: Span | str, tag: str) -> str:
    span = cell if isinstance(cell, Span) else Span(cell)
    text = inline(span.text)
    if span.bold:
        text = f"<b>{text}</b>"
    if span.colour:
        text = f'<span class="sw" style="background:{html.escape(span.colour)}"></span>{text}'
    if span.note:
        text += f'<span class="note">{html.escape(span.note)}</span>'
    return f"<{tag}>{text}</{tag}>"


def table(block: Table) -> str:
    """A ``<table>`` with its header row and body."""
    anchor = f' id="{html.escape(block.anchor)}"' if block.anchor else ""
    head = "<tr>" + "".join(_cell(c, "th") for c in block.header) + "</tr>"
    body = "".join("<tr>" + "".join(_cell(c, "td") for c in row) + "</tr>" for row in block.rows)
    caption = f"<caption>{inline(block.caption)}</caption>" if block.caption else ""
    return f"<table{anchor}>{caption}<thead>{head}</thead><tbody>{body}</tbody></table>"


def figure(block: Figure) -> str:
    """A ``<figure>`` with the PNG embedded and its caption."""
    alt = html.escape(block.path.stem)
    return (
        f'<figure><img src="{data_uri(block.path)}" alt="{alt}" data-source="{html.escape(block.path.as_posix())}">'
        f"<figcaption>{inline(block.caption)}</figcaption></figure>"
    )


def block_html(block: Block) -> str:
    """Any block as HTML."""
    if isinstance(block, Text):
        kind = f' class="{block.kind}"' if block.kind else ""
        return f"<p{kind}>{inline(block.text)}</p>"
    if isinstance(block, Bullets):
        items = [inline(i) for i in block.items]
        items += [f'<a href="{html.escape(href)}">{html.escape(label)}</a>' for label, href in block.links]
        return "<ul>" + "".join(f"<li>{i}</li>" for i in items) + "</ul>"
    if isinstance(block, Table):
        return table(block)
    if isinstance(block, Grid):
        figures = "".join(figure(f) for f in block.figures)
        return f'<div class="grid">{figures}</div><p class="legend">{inline(block.caption)}</p>'
    return figure(block)


def render(title: str, top: Sequence[Block], sections: Sequence[Section]) -> str:
    """The whole page: ``top`` blocks (header and scorecard) under the title, then each section."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        *(block_html(b) for b in top),
    ]
    for section in sections:
        parts.append(f'<section id="{html.escape(section.anchor)}"><h2>{html.escape(section.title)}</h2>')
        parts += [block_html(b) for b in section.blocks]
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
