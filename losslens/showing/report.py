"""One self-contained HTML page per set of runs: summary, curves, findings, evaluations, classes.

A tool, not a printout: the curves are interactive (:mod:`losslens.showing.interactive`: zoom, hover,
toggle runs and terms, a smoothing slider), every evaluation is listed and drawn, the per-class
table sorts, and each finding that cites a step is a marker on its curve that the finding's row
links to. No network: CSS and plotly.js are inline, so the one file opens offline. Everything
from a log (run, term, class and metric names, messages, raw lines) is escaped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from losslens.analysis import terms
from losslens.analysis.diagnostics import MAIN_METRICS, Finding, diagnose
from losslens.run import Run, display_names
from losslens.showing.html_page import document, table

if TYPE_CHECKING:
    from losslens.showing.interactive import Mark, Series

LOSS_CHART_ID = "chart-losses"
EVAL_CHART_ID = "chart-evaluations"
#: Loss terms shown when the page opens; the rest are one legend click away.
TERMS_SHOWN = 6
#: Evaluation columns that are bookkeeping, not results (``line_no`` feeds the finding links).
_EVAL_HIDDEN = ("segment", "timestamp", "line_no")
_PER_CLASS_COLUMNS = ("task", "iou_thr", "class", "gts", "dets", "recall", "ap")
_WORD_RE = re.compile(r"[\w./-]+")


@dataclass(frozen=True)
class _Shown:
    """A run as the page draws it: its name, canonical train frame and the loss terms."""

    run: Run
    name: str
    frame: pd.DataFrame
    losses: list[str]


@dataclass(frozen=True)
class _Link:
    """Where a finding points: the chart (anchor id), the cited step and its log line."""

    chart: str
    step: int
    line_no: int | None


def _summary(runs: Sequence[Run], names: Sequence[str]) -> str:
    rows = []
    for run, name in zip(runs, names, strict=True):
        train = run.train
        has_steps = "step" in train and train["step"].notna().any()
        has_epochs = "epoch" in train and train["epoch"].notna().any()
        rows.append(
            {
                "run": name,
                "file": run.path,
                "format": run.format,
                "framework": str(run.meta.get("version_guess") or run.meta.get("framework") or ""),
                "records": len(train),
                "steps": f"{int(train['step'].min())}-{int(train['step'].max())}"
                if has_steps
                else "-",
                "epochs": int(train["epoch"].max()) if has_epochs else "-",
                "evaluations": len(run.evals),
                "skipped lines": len(run.skipped),
            }
        )
    return table(pd.DataFrame(rows))


def _values(frame: pd.DataFrame, column: str) -> np.ndarray:
    return frame[column].to_numpy(dtype="float64", na_value=np.nan)


def _parts(frame: pd.DataFrame) -> tuple[np.ndarray, ...]:
    """Row positions of each resumed segment, drawn apart."""
    if "segment" not in frame or frame["segment"].nunique(dropna=True) <= 1:
        return ()
    seg = _values(frame, "segment")
    return tuple(np.flatnonzero(seg == s) for s in np.unique(seg[np.isfinite(seg)]))


def _loss_series(shown: Sequence[_Shown]) -> list[Series]:
    from losslens.showing.interactive import Series, color, dash

    every = list(dict.fromkeys(t for s in shown for t in s.losses))
    first = set(every[:TERMS_SHOWN])
    out = []
    for k, s in enumerate(shown):
        x = _values(s.frame, "step") if "step" in s.frame else _rows(s.frame)
        parts = _parts(s.frame)
        for term in s.losses:
            partner = terms.validation_partner(s.frame, term)
            for column, label, style in ((term, term, dash(k)), (partner, f"{term} (val)", "dot")):
                if column is None:
                    continue
                out.append(
                    Series(
                        label=label,
                        group=s.name,
                        x=x,
                        y=_values(s.frame, column),
                        color=color(every.index(term)),
                        dash=style,
                        parts=parts,
                        shown=term in first,
                    )
                )
    return out


def _rows(frame: pd.DataFrame) -> np.ndarray:
    return np.arange(1.0, len(frame) + 1)


def _main_metric(run: Run) -> str | None:
    from losslens.showing.plotting import metric_columns

    have = metric_columns(run)
    return next((m for m in MAIN_METRICS if m in have), have[0] if have else None)


def _eval_series(shown: Sequence[_Shown]) -> list[Series]:
    from losslens.showing.interactive import Series, color, dash
    from losslens.showing.plotting import metric_columns

    every = list(dict.fromkeys(m for s in shown for m in metric_columns(s.run)))
    out = []
    for k, s in enumerate(shown):
        main = _main_metric(s.run)
        ev = s.run.evals
        x = _values(ev, "step") if "step" in ev else _rows(ev)
        for metric in metric_columns(s.run):
            y = _values(ev, metric)
            y = np.where(y >= 0, y, np.nan)  # -1: undefined (no objects of that size)
            out.append(
                Series(
                    label=metric,
                    group=s.name,
                    x=x,
                    y=y,
                    color=color(every.index(metric)),
                    dash=dash(k),
                    shown=metric == main or metric in MAIN_METRICS[:2],
                )
            )
    return out


def _cited_column(finding: Finding, shown: _Shown) -> str | None:
    """The loss term a finding's message names, else the run's total loss."""
    words = _WORD_RE.findall(finding.message)
    named = [w for w in words if w in shown.losses]
    return named[0] if named else terms.total_loss_column(shown.frame)


def _row_at(frame: pd.DataFrame, step: int) -> int | None:
    if "step" not in frame:
        return None
    hits = np.flatnonzero(_values(frame, "step") == step)
    return int(hits[0]) if len(hits) else None


def _point(frame: pd.DataFrame, column: str | None, step: int) -> tuple[float, int | None] | None:
    """The y of ``column`` at ``step`` (the last finite value at or before it when the value
    itself is not finite: a NaN loss is marked where the curve stops) and the row's log line."""
    row = _row_at(frame, step)
    if row is None or column is None or column not in frame:
        return None
    y = _values(frame, column)[: row + 1]
    finite = np.flatnonzero(np.isfinite(y))
    if not len(finite):
        return None
    line = frame["line_no"].iloc[row] if "line_no" in frame else None
    return float(y[finite[-1]]), (None if line is None or pd.isna(line) else int(line))


def _marks(
    findings: Sequence[Finding], shown: Mapping[str, _Shown]
) -> tuple[list[Mark], list[Mark], list[_Link | None]]:
    """Markers on the loss and the evaluation chart, and where each finding's row links."""
    from losslens.showing.interactive import Mark

    loss_marks: list[Mark] = []
    eval_marks: list[Mark] = []
    links: list[_Link | None] = []
    for k, finding in enumerate(findings):
        s = shown.get(finding.run)
        link = None
        for step in finding.steps if s is not None else []:
            assert s is not None
            text = f"finding {k + 1}, {finding.code} at step {step}: {finding.message}"
            label = f"{k + 1}: {finding.code} ({s.name})"
            on_loss = _point(s.frame, _cited_column(finding, s), step)
            on_eval = _point(s.run.evals, _main_metric(s.run), step)
            if on_loss is not None:
                loss_marks.append(Mark(float(step), on_loss[0], label, text))
                link = link or _Link(LOSS_CHART_ID, step, on_loss[1])
            elif on_eval is not None:
                eval_marks.append(Mark(float(step), on_eval[0], label, text))
                link = link or _Link(EVAL_CHART_ID, step, on_eval[1])
        links.append(link)
    return loss_marks, eval_marks, links


def _findings(findings: Sequence[Finding], links: Sequence[_Link | None]) -> str:
    if not findings:
        return '<p class="muted">No findings.</p>'
    rows = []
    for k, (f, link) in enumerate(zip(findings, links, strict=True)):
        evidence = "".join(f"<pre>{escape(e)}</pre>" for e in f.evidence)
        where = "-"
        if link is not None:
            line = f", log line {link.line_no}" if link.line_no is not None else ""
            where = f'<a href="#{link.chart}">step {link.step}{line}</a>'
        rows.append(
            f'<tr id="finding-{k + 1}"><td class="num">{k + 1}</td>'
            f'<td><span class="sev-{escape(f.severity)}">{escape(f.severity)}</span></td>'
            f"<td><code>{escape(f.code)}</code></td><td>{escape(f.run)}</td>"
            f'<td class="text">{where}</td>'
            f'<td class="text">{escape(f.message)}<br><span class="muted">{escape(f.advice)}</span>'
            f'</td><td class="text">{evidence}</td></tr>'
        )
    head = "".join(
        f"<th>{h}</th>"
        for h in ("#", "severity", "code", "run", "on the curve", "finding and advice", "evidence")
    )
    return (
        f'<div class="scroll"><table class="findings"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def _evals_table(run: Run, name: str) -> str:
    ev = run.evals
    if ev.empty:
        return f'<p class="muted">{escape(name)}: no evaluation results in the log.</p>'
    cols = [c for c in ev.columns if c not in _EVAL_HIDDEN and ev[c].notna().any()]
    return table(ev[cols], f"{name}: evaluations ({len(ev)})")


def _per_class(run: Run, name: str, div_id: str) -> str:
    from losslens.showing.interactive import sortable_bars, to_div

    pc = run.per_class
    if pc.empty:
        return f'<p class="muted">{escape(name)}: no per-class table.</p>'
    last = pc[pc["eval_index"] == pc["eval_index"].max()]
    cols = [c for c in _PER_CLASS_COLUMNS if c in last and last[c].notna().any()]
    columns: dict[str, list[Any]] = {
        c: [None if pd.isna(v) else v for v in last[c].tolist()] for c in cols
    }
    kinds = last[["task", "iou_thr"]].drop_duplicates() if {"task", "iou_thr"} <= set(last) else []
    if len(kinds) > 1:
        columns["class"] = [
            f"{c} ({t} @{i:g})"
            for c, t, i in zip(last["class"], last["task"], last["iou_thr"], strict=True)
        ]
    value = "ap" if "ap" in columns else cols[-1]
    fig = sortable_bars(
        columns,
        label="class",
        value=value,
        title=f"{name}: {value} per class, final evaluation",
        sort_keys=[c for c in ("ap", "gts", "dets", "recall", "class") if c in columns],
    )
    return to_div(fig, div_id, with_library=False)


def _charts(shown: Sequence[_Shown], findings: Sequence[Finding]) -> tuple[str, str, list]:
    """The loss chart, the evaluation chart (plotly.js inlined in the first) and the links."""
    from losslens.showing.interactive import curves_figure, points_figure, to_div

    loss_marks, eval_marks, links = _marks(findings, {s.name: s for s in shown})
    loss_series = _loss_series(shown)
    losses = (
        to_div(
            curves_figure(loss_series, title="losses", x_label="step", marks=loss_marks, logy=True),
            LOSS_CHART_ID,
            with_library=False,
        )
        if loss_series
        else '<p class="muted">no training records to plot.</p>'
    )
    eval_series = _eval_series(shown)
    evals = (
        to_div(
            points_figure(eval_series, title="evaluations", x_label="step", marks=eval_marks),
            EVAL_CHART_ID,
            with_library=False,
        )
        if eval_series
        else ""
    )
    return losses, evals, links


def _library() -> str:
    """plotly.js, inline, once per page."""
    from plotly.offline import get_plotlyjs

    return f'<script type="text/javascript">{get_plotlyjs()}</script>'


def render_report(
    runs: Sequence[Run],
    lines: Mapping[str, Sequence[str]] | None = None,
    *,
    title: str | None = None,
) -> str:
    """The HTML page for ``runs``; ``lines`` maps a run's path to its text lines (for messages)."""
    names = display_names(runs)
    findings = []
    for run, run_name in zip(runs, names, strict=True):
        for finding in diagnose(run, (lines or {}).get(run.path)):
            finding.run = run_name
            findings.append(finding)
    shown = []
    for run, name in zip(runs, names, strict=True):
        frame = terms.canonical_frame(run)
        shown.append(_Shown(run, name, frame, terms.loss_columns(frame)))
    losses, evals, links = _charts(shown, findings)
    parts = [
        _library(),
        "<h2>Summary</h2>",
        _summary(runs, names),
        "<h2>Curves</h2>",
        losses,
        "<h2>Findings</h2>",
        _findings(findings, links),
        "<h2>Evaluations</h2>",
        evals,
        *(_evals_table(r, n) for r, n in zip(runs, names, strict=True)),
        "<h2>Per class</h2>",
        *(
            _per_class(r, n, f"chart-classes-{k}")
            for k, (r, n) in enumerate(zip(runs, names, strict=True))
        ),
    ]
    return document(f"losslens report: {title or ', '.join(names)}", parts)
