"""The ``vs_<run name>.html`` page of a :class:`~losslens.showing.side_by_side.SideBySide`.

Self-contained (inline CSS, plotly.js inlined once, no network): one interactive chart per
shared term (:mod:`losslens.showing.interactive`: zoom, hover, toggles, a smoothing slider) with ours'
spread band and the point where the runs part. Every string that comes from a log or a path
goes through :func:`html.escape`, on the page and in the charts, so a term or run name is
always shown as written.
"""

from __future__ import annotations

import math
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from losslens.analysis.axes import X_LABELS
from losslens.analysis.numbers import number
from losslens.errors import LossLensError
from losslens.showing.html_page import CSS, table

if TYPE_CHECKING:
    from losslens.showing.interactive import Mark, Series
    from losslens.showing.side_by_side import SideBySide, TermSide

_THEIRS_COLOR, _OURS_COLOR = "#d62728", "#1f77b4"
#: Chart ``div`` ids: the prefix and the term's position in the table.
CHART_ID_PREFIX = "term-chart-"


def page_name(theirs: str) -> str:
    """``vs_<run name>.html``, the run name made safe as one file name."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in theirs).strip(".")
    return f"vs_{safe or 'run'}.html"


def _series(sbs: SideBySide, side: TermSide) -> list[Series]:
    """Yours, ours and ours' spread band (dotted, in ours' legend group)."""
    from losslens.showing.interactive import Series

    ours, theirs = side.ours_curve, side.theirs_curve
    ours_group, yours_group = f"ours: {sbs.ours}", f"yours: {sbs.theirs}"

    def values(frame: pd.DataFrame, column: str) -> np.ndarray:
        return frame[column].to_numpy(dtype="float64", na_value=np.nan)

    out = [
        Series("yours", yours_group, values(theirs, "x"), values(theirs, "y"), _THEIRS_COLOR),
        Series("ours", ours_group, values(ours, "x"), values(ours, "y"), _OURS_COLOR),
    ]
    if ours["lo"].notna().any():
        for label, column in (("ours - spread", "lo"), ("ours + spread", "hi")):
            out.append(
                Series(
                    label, ours_group, values(ours, "x"), values(ours, column), _OURS_COLOR, "dot"
                )
            )
    return out


def _part_mark(sbs: SideBySide, side: TermSide) -> list[Mark]:
    from losslens.showing.interactive import Mark

    if side.part_x is None or side.part_ratio is None:
        return []
    at = side.points[side.points["x"] == side.part_x]
    y = float(at["theirs"].iloc[0]) if len(at) else float("nan")
    text = f"parts at {sbs.x} {number(side.part_x)}: yours {side.part_ratio:.3g}x ours from there"
    return [Mark(side.part_x, y, "parts", text)]


def charts(sbs: SideBySide) -> str:
    """One interactive chart per shared term (plotly.js inlined in the first, once)."""
    from losslens.showing.interactive import curves_figure, to_div

    divs = []
    for k, side in enumerate(sbs.terms):
        fig = curves_figure(
            _series(sbs, side),
            title=side.term,
            x_label=X_LABELS.get(sbs.x, sbs.x),
            y_label=side.term,
            marks=_part_mark(sbs, side),
            logy=True,
        )
        divs.append(to_div(fig, f"{CHART_ID_PREFIX}{k}", with_library=k == 0))
    return "\n".join(divs) or '<p class="muted">no shared term to draw.</p>'


def shown_table(sbs: SideBySide) -> pd.DataFrame:
    """The table as people read it (the page and the CLI): ratios as ``1.23x``."""
    rows = []
    for row in sbs.table().to_dict("records"):
        rows.append(
            {
                "term": row["term"],
                "logged as": row["logged_as"],
                "points": row["points"],
                "first": _ratio(row["ratio_first"]),
                "median": _ratio(row["ratio_median"]),
                "spread": _ratio(row["spread"]),
                "part at": _part(row["part_x"], row["part_ratio"], row["points"], sbs),
                "yours last": _value(row["theirs_last"]),
                "ours last": _value(row["ours_last"]),
            }
        )
    return pd.DataFrame(rows)


def _ratio(value: float) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.3g}x"


def _value(value: float) -> str:
    return number(value, nan="-")


def _part(x: float | None, ratio: float | None, points: int, sbs: SideBySide) -> str:
    if not points:
        return "no matched points"
    if sbs.spread_method == "unmeasured":
        return "spread not measured"
    if x is None or ratio is None:
        return "within the spread"
    return f"{sbs.x} {number(x)} ({ratio:.3g}x)"


def caption(sbs: SideBySide) -> str:
    """What the table's numbers are, including how the spread was measured."""
    return (
        f"yours ({sbs.theirs}) / ours ({sbs.ours}) at matched points on "
        f"{X_LABELS.get(sbs.x, sbs.x)}, first and median; spread: x/÷ band of ours; "
        f"{sbs.spread_note}"
    )


def render_page(sbs: SideBySide) -> str:
    """The HTML text of the page."""
    title = f"{sbs.theirs} vs the losslens reference"
    items = "".join(f"<li>{escape(line)}</li>" for line in sbs.explanations)
    warnings = "".join(f"<li>{escape(line)}</li>" for line in sbs.warnings)
    notes = "".join(f"<li>{escape(line)}</li>" for line in sbs.notes)
    parts = [
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f'<p class="muted">{escape(caption(sbs))}.</p>',
        "<h2>Terms</h2>",
        table(shown_table(sbs), caption(sbs)),
        "<h2>Explanations</h2>",
        f"<ul>{items}</ul>" if items else '<p class="muted">The runs stay together.</p>',
    ]
    if notes:
        parts += ["<h2>Settings taken from your run</h2>", f"<ul>{notes}</ul>"]
    if warnings:
        parts += ["<h2>Comparability</h2>", f"<ul>{warnings}</ul>"]
    parts += ["<h2>Curves</h2>", charts(sbs), "</body></html>"]
    return "\n".join(parts)


def write_page(sbs: SideBySide, work_dir: Path, path: Path | None = None) -> Path:
    """Write the page to ``path`` (default ``<work_dir>/vs_<run name>.html``); returns it."""
    target = Path(path) if path is not None else Path(work_dir) / page_name(sbs.theirs)
    try:
        target.write_text(render_page(sbs), encoding="utf-8")
    except OSError as err:
        raise LossLensError(f"cannot write the page: {err.strerror}", path=str(target)) from None
    return target
