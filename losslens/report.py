"""One self-contained HTML page per set of runs: summary, plots, findings, evaluations, classes.

No network: the CSS is inline and the plot is an embedded PNG (``data:`` URI). Everything that
comes from a log (run names, class names, metric names, messages, raw lines) goes through
:func:`html.escape`, so a class called ``<script>`` is shown as text.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from html import escape

import pandas as pd

from losslens.diagnostics import Finding, diagnose
from losslens.run import Run, display_names
from losslens.terms import TermNotFoundError

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em}h2{margin-top:1.6em;border-bottom:1px solid #ddd;padding-bottom:.2em}
table{border-collapse:collapse;margin:.6em 0;font-size:13px}th,td{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top;overflow-wrap:anywhere}
th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
.sev-error{color:#fff;background:#c62828;padding:1px 6px;border-radius:3px}
.sev-warning{color:#222;background:#ffca28;padding:1px 6px;border-radius:3px}
.sev-info{color:#fff;background:#1e88e5;padding:1px 6px;border-radius:3px}
code,pre{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px}pre{white-space:pre-wrap;margin:0}
img{max-width:100%;border:1px solid #eee}.muted{color:#777}
"""
MAX_EVAL_ROWS = 30


def _num(value: object) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "nan" if isinstance(value, float) else "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return escape(str(value))


def _table(frame: pd.DataFrame, caption: str = "") -> str:
    head = "".join(f"<th>{escape(str(c))}</th>" for c in frame.columns)
    body = []
    for row in frame.itertuples(index=False):
        cells = []
        for value in row:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                cells.append(f'<td class="num">{_num(value)}</td>')
            else:
                cells.append(
                    f"<td>{escape('' if value is pd.NA or value is None else str(value))}</td>"
                )
        body.append("<tr>" + "".join(cells) + "</tr>")
    cap = f"<caption>{escape(caption)}</caption>" if caption else ""
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _summary(runs: Sequence[Run], names: Sequence[str]) -> str:
    rows = []
    for run, name in zip(runs, names, strict=True):
        train = run.train
        steps = (
            f"{int(train['step'].min())}-{int(train['step'].max())}"
            if "step" in train and train["step"].notna().any()
            else "-"
        )
        epochs = (
            int(train["epoch"].max()) if "epoch" in train and train["epoch"].notna().any() else None
        )
        rows.append(
            {
                "run": name,
                "file": run.path,
                "format": run.format,
                "framework": str(run.meta.get("version_guess") or run.meta.get("framework") or ""),
                "records": len(train),
                "steps": steps,
                "epochs": epochs if epochs is not None else "-",
                "evaluations": len(run.evals),
                "skipped lines": len(run.skipped),
            }
        )
    return _table(pd.DataFrame(rows))


def _findings(findings: Sequence[Finding]) -> str:
    if not findings:
        return '<p class="muted">No findings.</p>'
    rows = []
    for f in findings:
        evidence = "".join(f"<pre>{escape(e)}</pre>" for e in f.evidence)
        rows.append(
            f'<tr><td><span class="sev-{escape(f.severity)}">{escape(f.severity)}</span></td>'
            f"<td><code>{escape(f.code)}</code></td><td>{escape(f.run)}</td>"
            f'<td>{escape(f.message)}<br><span class="muted">{escape(f.advice)}</span></td>'
            f"<td>{evidence}</td></tr>"
        )
    head = "<tr><th>severity</th><th>code</th><th>run</th><th>finding and advice</th><th>evidence</th></tr>"
    return f'<table class="findings"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>'


def _evals(run: Run, name: str) -> str:
    ev = run.evals
    if ev.empty:
        return f'<p class="muted">{escape(name)}: no evaluation results in the log.</p>'
    cols = [c for c in ev.columns if c not in ("segment", "timestamp") and ev[c].notna().any()]
    shown = ev[cols].tail(MAX_EVAL_ROWS)
    caption = f"{name}: evaluations" + (
        f" (last {MAX_EVAL_ROWS} of {len(ev)})" if len(ev) > MAX_EVAL_ROWS else ""
    )
    return _table(shown, caption)


def _per_class(run: Run, name: str) -> str:
    pc = run.per_class
    if pc.empty:
        return ""
    last = pc[pc["eval_index"] == pc["eval_index"].max()]
    cols = [
        c
        for c in ("task", "iou_thr", "class", "gts", "dets", "recall", "ap")
        if c in last and last[c].notna().any()
    ]
    return _table(last[cols], f"{name}: per class, final evaluation")


def _plot_png(runs: Sequence[Run], metrics: Sequence[str] | None) -> str:
    from losslens.plotting import plot_runs, resolve_metric

    usable = []
    for name in metrics or ():
        try:
            for run in runs:
                resolve_metric(run, name)
            usable.append(name)
        except TermNotFoundError:
            continue
    fig = plot_runs(runs, metrics=usable or None)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def render_report(
    runs: Sequence[Run],
    lines: Mapping[str, Sequence[str]] | None = None,
    *,
    metrics: Sequence[str] | None = ("bbox_mAP", "mAP"),
    title: str | None = None,
) -> str:
    """The HTML page for ``runs``; ``lines`` maps a run's path to its text lines (for messages)."""
    names = display_names(runs)
    findings = []
    for run, run_name in zip(runs, names, strict=True):
        for finding in diagnose(run, (lines or {}).get(run.path)):
            finding.run = run_name
            findings.append(finding)
    has_losses = any(len(r.train) for r in runs)
    plot = ""
    if has_losses:
        try:
            png = _plot_png(runs, metrics)
            plot = f'<img alt="loss curves" src="data:image/png;base64,{png}">'
        except Exception as err:  # a plot problem must not lose the rest of the report
            plot = f'<p class="muted">no plot: {escape(str(err))}</p>'
    name = title or ", ".join(names)
    parts = [
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
        f"<title>losslens report: {escape(name)}</title><style>{_CSS}</style></head><body>",
        f"<h1>losslens report: {escape(name)}</h1>",
        "<h2>Summary</h2>",
        _summary(runs, names),
        "<h2>Curves</h2>",
        plot or '<p class="muted">no training records to plot.</p>',
        "<h2>Findings</h2>",
        _findings(findings),
        "<h2>Evaluations</h2>",
        *(_evals(r, n) for r, n in zip(runs, names, strict=True)),
        "<h2>Per class</h2>",
        *(
            _per_class(r, n) or f'<p class="muted">{escape(n)}: no per-class table.</p>'
            for r, n in zip(runs, names, strict=True)
        ),
        "</body></html>",
    ]
    return "\n".join(parts)
