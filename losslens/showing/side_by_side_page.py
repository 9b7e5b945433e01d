"""The ``vs_<run name>.html`` page of a :class:`~losslens.side_by_side.SideBySide`.

Self-contained (inline CSS, the curves as an embedded PNG, no network). Every string that
comes from a log or a path goes through :func:`html.escape` on the page and is drawn with
mathtext off in the figure, so a term or run name is always shown as written.
"""

from __future__ import annotations

import base64
import io
import math
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from losslens.analysis.axes import X_LABELS
from losslens.errors import LossLensError
from losslens.showing.html_page import CSS, table

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from losslens.showing.side_by_side import SideBySide

_THEIRS_COLOR, _OURS_COLOR = "#d62728", "#1f77b4"


def page_name(theirs: str) -> str:
    """``vs_<run name>.html``, the run name made safe as one file name."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in theirs).strip(".")
    return f"vs_{safe or 'run'}.html"


def figure(sbs: SideBySide) -> Figure:
    """One panel per shared term: yours, ours and the reference's spread band."""
    from matplotlib.figure import Figure

    n = max(len(sbs.terms), 1)
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(4.6 * cols, 3.2 * rows), layout="constrained")
    for k, side in enumerate(sbs.terms):
        ax = fig.add_subplot(rows, cols, k + 1)
        ours, theirs = side.ours_curve, side.theirs_curve
        if ours["lo"].notna().any():
            ax.fill_between(
                ours["x"], ours["lo"], ours["hi"], color=_OURS_COLOR, alpha=0.2, linewidth=0
            )
        ax.plot(ours["x"], ours["y"], color=_OURS_COLOR, label=f"ours: {sbs.ours}")
        ax.plot(theirs["x"], theirs["y"], color=_THEIRS_COLOR, label=f"yours: {sbs.theirs}")
        if side.part_x is not None:
            ax.axvline(side.part_x, color="#555", linestyle=":", linewidth=1)
        ax.set_title(side.term, parse_math=False)
        ax.set_xlabel(X_LABELS.get(sbs.x, sbs.x), parse_math=False)
        for text in ax.legend(fontsize=7).get_texts():
            text.set_parse_math(False)
    return fig


def _png(fig: Figure) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


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
    return "-" if value is None or math.isnan(value) else f"{value:.4g}"


def _part(x: float | None, ratio: float | None, points: int, sbs: SideBySide) -> str:
    if not points:
        return "no matched points"
    if sbs.spread_method == "unmeasured":
        return "spread not measured"
    if x is None or ratio is None:
        return "within the spread"
    return f"{sbs.x} {x:.4g} ({ratio:.3g}x)"


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
    parts = [
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f'<p class="muted">{escape(caption(sbs))}.</p>',
        "<h2>Curves</h2>",
        f'<img alt="loss curves, yours and ours" src="data:image/png;base64,{_png(figure(sbs))}">',
        "<h2>Terms</h2>",
        table(shown_table(sbs), caption(sbs)),
        "<h2>Explanations</h2>",
        f"<ul>{items}</ul>" if items else '<p class="muted">The runs stay together.</p>',
    ]
    if warnings:
        parts += ["<h2>Comparability</h2>", f"<ul>{warnings}</ul>"]
    parts.append("</body></html>")
    return "\n".join(parts)


def write_page(sbs: SideBySide, work_dir: Path, path: Path | None = None) -> Path:
    """Write the page to ``path`` (default ``<work_dir>/vs_<run name>.html``); returns it."""
    target = Path(path) if path is not None else Path(work_dir) / page_name(sbs.theirs)
    try:
        target.write_text(render_page(sbs), encoding="utf-8")
    except OSError as err:
        raise LossLensError(f"cannot write the page: {err.strerror}", path=str(target)) from None
    return target
