"""What the HTML pages share (the report, the side-by-side page): CSS, tables, the document.

Every string from a log or a path goes through :func:`html.escape` here, so a class called
``<script>`` is shown as text. Cells never break inside a word: a one-word cell (up to
:data:`MAX_UNBROKEN` characters) does not wrap at all; other cells (class ``text``) wrap between
words, and ``overflow-wrap: break-word`` breaks only a word longer than the whole column; wide
tables scroll sideways instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from html import escape

import pandas as pd

from losslens.analysis.numbers import number

#: A cell holding one word up to this long never wraps (``10-200``, ``few-gts-low-ap``); longer
#: ones (paths) wrap where they must rather than widen the table without end.
MAX_UNBROKEN = 40

CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1400px;color:#222;padding:0 1.5em}
h1{font-size:1.6em;margin-bottom:.2em}h2{margin-top:1.6em;border-bottom:1px solid #ddd;padding-bottom:.2em}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;margin:.6em 0;font-size:13px}th,td{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top;overflow-wrap:break-word;white-space:nowrap}td.text{white-space:normal}
th{background:#f4f4f4;white-space:nowrap}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}code{white-space:nowrap}
caption{text-align:left;font-weight:600;padding:.2em 0}
.sev-error,.sev-warning,.sev-info{padding:1px 6px;border-radius:3px;white-space:nowrap}
.sev-error{color:#fff;background:#c62828}.sev-warning{color:#222;background:#ffca28}.sev-info{color:#fff;background:#1e88e5}
code,pre{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px}pre{white-space:pre-wrap;margin:0}
.chart{width:100%}img{max-width:100%;border:1px solid #eee}.muted{color:#777}
"""


def table(frame: pd.DataFrame, caption: str = "") -> str:
    """``frame`` as an HTML table (numbers right-aligned), in a box that scrolls when wide."""
    head = "".join(f"<th>{escape(str(c))}</th>" for c in frame.columns)
    body = []
    for row in frame.itertuples(index=False):
        cells = []
        for value in row:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                cells.append(f'<td class="num">{number(value)}</td>')
            elif value is None or value is pd.NA:
                cells.append('<td class="num">-</td>')
            else:
                text = str(value)
                word = len(text) <= MAX_UNBROKEN and not any(c.isspace() for c in text)
                attrs = "" if word else ' class="text"'

                cells.append(f"<td{attrs}>{escape(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    cap = f"<caption>{escape(caption)}</caption>" if caption else ""
    return (
        f'<div class="scroll"><table>{cap}<thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def document(title: str, parts: Iterable[str]) -> str:
    """A whole page: ``title`` (escaped) as title and heading, then ``parts`` (HTML) as given."""
    return "\n".join(
        [
            '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
            f"<title>{escape(title)}</title><style>{CSS}</style></head><body>",
            f"<h1>{escape(title)}</h1>",
            *parts,
            "</body></html>",
        ]
    )
