"""Figure-returning plots of training runs (no pyplot state: ``matplotlib.figure.Figure``).

Layout: one panel per term (or all terms on one axis with ``overlay``), then an optional
evaluation panel sharing the x axis. Every run has its own colour; raw logged values are drawn
faint and the smoothed curve bold. Long runs are decimated for *drawing* only (min/max per
bucket, so spikes survive); smoothing and statistics always use every record.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from losslens.analysis import terms
from losslens.analysis.axes import (  # x axes live in axes.py; re-exported for callers of plotting
    X_AXES,
    X_LABELS,
    lr_schedule,
    segment_rows,
    x_values,
)
from losslens.analysis.axes import images_per_step as images_per_step
from losslens.errors import FormatOptionError
from losslens.run import display_names
from losslens.showing import _plot_draw as draw
from losslens.showing import smoothing

if TYPE_CHECKING:
    from matplotlib.artist import Artist
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from losslens.run import Run

#: Points drawn per line at most; beyond this, min/max decimation per bucket.
MAX_DRAWN_POINTS = 4000
#: Epoch boundaries are drawn only up to this many epochs (beyond, they are a grey wall).
MAX_EPOCH_LINES = 60
#: Free space left and right of the records, as a fraction of their x span.
X_MARGIN = 0.01
#: Panels stacked in one column at most; beyond, the grid has two columns.
MAX_PANELS_PER_COLUMN = 6
#: Classes drawn in the per-class AP panel at most (the lowest at the last evaluation).
DEFAULT_MAX_CLASSES = 10


@dataclass(frozen=True)
class PlotOptions:
    x: str = "step"
    overlay: bool = False
    smooth: float = smoothing.TB_DEFAULT_WEIGHT
    smooth_method: str = "ema"
    logy: bool = False
    batch_size: int | None = None
    max_points: int = MAX_DRAWN_POINTS
    per_class: bool = False
    max_classes: int = DEFAULT_MAX_CLASSES

    def check(self) -> None:
        if self.x not in X_AXES:
            raise FormatOptionError(
                f"unknown x axis {self.x!r}; expected one of: {', '.join(X_AXES)}"
            )
        if self.smooth_method not in smoothing.METHODS:
            raise FormatOptionError(
                f"unknown smoothing method {self.smooth_method!r}; expected one of: {', '.join(smoothing.METHODS)}"
            )
        if not 0 <= self.smooth <= 1 or self.smooth != self.smooth:
            raise FormatOptionError(f"smoothing weight must be between 0 and 1, got {self.smooth}")
        if self.max_classes < 1:
            raise FormatOptionError(
                f"the number of classes shown must be at least 1, got {self.max_classes}"
            )


# --------------------------------------------------------------------------- drawing helpers
def decimate(x: np.ndarray, y: np.ndarray, max_points: int) -> tuple[np.ndarray, np.ndarray]:
    """At most ``max_points`` points keeping each bucket's min and max (spikes survive)."""
    n = len(x)
    if n <= max_points or max_points < 4:
        return x, y
    buckets = max_points // 2
    size = int(np.ceil(n / buckets))
    pad = buckets * size - n
    finite_y = np.where(np.isfinite(y), y, np.nan)
    grid = np.concatenate([finite_y, np.full(pad, np.nan)]).reshape(buckets, size)
    filled_lo = np.where(np.isnan(grid), np.inf, grid)
    filled_hi = np.where(np.isnan(grid), -np.inf, grid)
    base = np.arange(buckets) * size
    lo = base + filled_lo.argmin(axis=1)
    hi = base + filled_hi.argmax(axis=1)
    keep = np.unique(np.concatenate([lo, hi, [0, n - 1]]))
    keep = keep[keep < n]
    return x[keep], y[keep]


def _mark_nonfinite(ax: Axes, x: np.ndarray, y: np.ndarray, color: str) -> int:
    bad = ~np.isfinite(y) & np.isfinite(x)
    if not bad.any():
        return 0
    transform = ax.get_xaxis_transform()  # x in data, y in axes fraction
    ax.scatter(
        x[bad],
        np.full(int(bad.sum()), 0.03),
        marker="x",
        color=color,
        s=18,
        transform=transform,
        zorder=5,
        clip_on=False,
    )
    return int(bad.sum())


def _draw_series(
    ax: Axes,
    x: np.ndarray,
    y: np.ndarray,
    color: str,
    label: str,
    opts: PlotOptions,
    style: str = "-",
    marker: str = "",
) -> int:
    finite = np.isfinite(y) & np.isfinite(x)
    smoothed = smoothing.smooth(y, opts.smooth_method, opts.smooth)
    if opts.smooth > 0:
        rx, ry = decimate(x[finite], y[finite], opts.max_points)
        ax.plot(rx, ry, color=color, alpha=0.25, linewidth=0.8, linestyle=style)
    sx, sy = decimate(x[finite], smoothed[finite], opts.max_points)
    ax.plot(
        sx,
        sy,
        color=color,
        linewidth=1.6,
        label=label,
        linestyle=style,
        marker=marker or None,
        markevery=max(1, len(sx) // 20),
        markersize=4,
    )
    return _mark_nonfinite(ax, x, y, color)


def _mark_epochs_and_lr(ax: Axes, run: Run, opts: PlotOptions) -> None:
    train = run.train
    if opts.x != "time" and "epoch" in train and train["epoch"].notna().any():
        epochs = train["epoch"].dropna()
        n_epochs = int(epochs.nunique())
        if 1 < n_epochs <= MAX_EPOCH_LINES:
            first_rows = train.loc[epochs.drop_duplicates().index[1:]]
            per = run.meta.get("iters_per_epoch")
            if per:
                starts = (first_rows["epoch"].to_numpy(dtype="float64") - 1) * float(per)
                frame = pd.DataFrame({"step": starts, "timestamp": pd.NaT})
                for xv in x_values(run, frame, opts.x, opts.batch_size):
                    ax.axvline(xv, color="0.85", linewidth=0.6, zorder=0)
    schedule = lr_schedule(run)
    if schedule.changes:
        frame = pd.DataFrame(
            {
                "step": [float(c.step) for c in schedule.changes],
                "timestamp": [c.timestamp for c in schedule.changes],
            }
        )
        for xv in x_values(run, frame, opts.x, opts.batch_size):
            ax.axvline(xv, color="#b58900", linewidth=0.9, linestyle="--", alpha=0.7, zorder=0)


# --------------------------------------------------------------------------- public
def default_terms(runs: Sequence[Run]) -> list[str]:
    """Every loss term shared by the runs (canonical), total first (Cascade's ``s1.*`` too)."""
    frames = [terms.canonical_frame(r) for r in runs]
    first = terms.loss_columns(frames[0]) if frames else []
    return [t for t in first if all(t in f.columns for f in frames[1:])] or first


def _panel_title(name: str, sources: set[str]) -> str:
    term = terms.TERMS.get(name.split(".", 1)[-1] if name.startswith("s") and "." in name else name)
    title = name if term is None else f"{name}: {term.title}"
    logged = sorted(s for s in sources if s != name)
    return title + (f"  (logged as {', '.join(logged)})" if logged else "")


def plot_runs(
    runs: Sequence[Run],
    term_names: Sequence[str] | None = None,
    *,
    metrics: Sequence[str] | None = None,
    options: PlotOptions | None = None,
) -> Figure:
    """Plot terms of one or more runs; returns a ``matplotlib.figure.Figure``.

    ``term_names`` may be logged, canonical or short names; a name missing from a run raises
    :class:`losslens.analysis.terms.TermNotFoundError` listing what that run has. Without names, every
    loss term is drawn (the grid grows a second column beyond :data:`MAX_PANELS_PER_COLUMN`).
    Loss panels clip their y range to the bulk of the data (:func:`_plot_draw.robust_limits`)
    and mark what lies beyond with triangles at the edge; resumed segments are drawn as their
    own pieces in lighter shades of the run's colour.
    """
    opts = options or PlotOptions()
    opts.check()
    if not runs:
        raise FormatOptionError("nothing to plot: no runs given")
    frames = [terms.canonical_frame(r) for r in runs]
    wanted = list(term_names) if term_names else default_terms(runs)
    if not wanted and not metrics and not opts.per_class:
        raise FormatOptionError(
            f"{runs[0].name} has no loss terms to plot; name terms with --terms", path=runs[0].path
        )
    columns = [
        [terms.resolve_column(r, t, f) for t in wanted] for r, f in zip(runs, frames, strict=True)
    ]
    # two names may stand for one column of a run (mAP and bbox_mAP): draw it once
    metric_cols = [list(dict.fromkeys(resolve_metric(r, m) for m in metrics or ())) for r in runs]
    n_loss = (1 if opts.overlay else len(wanted)) if wanted else 0
    fig, axes = _figure(n_loss + bool(metrics) + opts.per_class, opts.x)
    loss_axes = axes[:n_loss]
    drawn: list[list[tuple[np.ndarray, np.ndarray, str]]] = [[] for _ in loss_axes]
    labels = display_names(runs)
    n_bad = 0
    for k, (run, frame, cols) in enumerate(zip(runs, frames, columns, strict=True)):
        n_bad += _draw_run(loss_axes, drawn, run, frame, cols, k, labels[k], opts)
    _title_loss_panels(loss_axes, columns[0], frames, opts.overlay)
    ylabel = "loss" if all("loss" in c for c in columns[0]) else "value"
    n_out = sum(
        _finish_loss_panel(ax, series, runs[0], opts, ylabel)
        for ax, series in zip(loss_axes, drawn, strict=True)
    )
    xs = [x for series in drawn for x, _, _ in series]
    rest = list(axes[n_loss:])
    if metrics:
        xs += _plot_metrics(rest.pop(0), runs, metric_cols, opts)
    if opts.per_class:
        xs += _plot_per_class(rest[0], runs, opts)
    _set_x_range(axes[0], xs)
    _legend(fig, axes[: n_loss + bool(metrics)])
    fig.suptitle(_suptitle(runs, labels, opts, n_bad, n_out), fontsize=10)
    _show_literally(fig)
    return fig


def _figure(n_panels: int, x: str) -> tuple[Figure, list[Axes]]:
    """A figure of ``n_panels`` axes sharing x: one column, two beyond a handful of panels."""
    from matplotlib.figure import Figure

    n_panels = max(n_panels, 1)
    n_cols = 1 if n_panels <= MAX_PANELS_PER_COLUMN else 2
    n_rows = -(-n_panels // n_cols)
    fig = Figure(figsize=(9 * n_cols, 2.4 * n_rows + 1.6), layout="constrained")
    grid = fig.subplots(n_rows, n_cols, sharex=True, squeeze=False)
    axes = list(grid.flat)
    for ax in axes[n_panels:]:
        fig.delaxes(ax)
    for k, ax in enumerate(axes[:n_panels]):
        if k + n_cols >= n_panels:  # the lowest panel of its column
            ax.xaxis.set_tick_params(labelbottom=True)
            ax.set_xlabel(X_LABELS[x])
    return fig, axes[:n_panels]


def _draw_run(
    axes: Sequence[Axes],
    drawn: list[list[tuple[np.ndarray, np.ndarray, str]]],
    run: Run,
    frame: pd.DataFrame,
    cols: Sequence[str],
    k: int,
    label: str,
    opts: PlotOptions,
) -> int:
    """Draw run ``k``'s terms, each resumed segment its own piece; returns the non-finite count."""
    xs = x_values(run, frame, opts.x, opts.batch_size)
    segments = segment_rows(frame)
    starts = [_first_step(frame, rows) for rows in segments]
    # a validation loss (ultralytics val/*, DETR test_*) goes beside its term, dashed
    items: list[tuple[int, str, str]] = []
    for j, col in enumerate(cols):
        items.append((j, col, ""))
        partner = terms.validation_partner(frame, col)
        if partner is not None:
            items.append((j, partner, " (val)"))
    n_bad = 0
    for i, (j, name, suffix) in enumerate(items):
        if opts.overlay:
            color, style, marker = draw.pair_style(i, k, len(items))
            panel, text = 0, f"{label}: {name}"
        else:
            color, style, marker = draw.COLORS[k % len(draw.COLORS)], "--" if suffix else "-", ""
            panel, text = j, label + suffix
        y = frame[name].to_numpy(dtype="float64", na_value=np.nan)
        for s, rows in enumerate(segments):
            shade = draw.shade(color, s, len(segments))
            shown = text if s == 0 else f"{label}: resumed at step {starts[s]}"
            n_bad += _draw_series(axes[panel], xs[rows], y[rows], shade, shown, opts, style, marker)
            drawn[panel].append((xs[rows], y[rows], shade))
    return n_bad


def _first_step(frame: pd.DataFrame, rows: np.ndarray) -> int:
    if "step" in frame and len(rows) and pd.notna(frame["step"].iloc[rows[0]]):
        return int(frame["step"].iloc[rows[0]])
    return int(rows[0]) + 1 if len(rows) else 0


def _title_loss_panels(
    axes: Sequence[Axes], columns: Sequence[str], frames: Sequence[pd.DataFrame], overlay: bool
) -> None:
    if overlay:
        if axes:
            axes[0].set_title(", ".join(columns), fontsize=10, loc="left")
        return
    mapping = [f.attrs.get("columns", {}) for f in frames]
    for ax, name in zip(axes, columns, strict=True):
        sources = {s for m in mapping if name in m for s in m[name].sources}
        ax.set_title(_panel_title(name, sources), fontsize=10, loc="left")


def _finish_loss_panel(
    ax: Axes,
    series: list[tuple[np.ndarray, np.ndarray, str]],
    run: Run,
    opts: PlotOptions,
    ylabel: str,
) -> int:
    """Scale, marks, grid and label of a loss panel; returns how many values lie beyond its
    y limits (clipped to the bulk of the data, marked at the edge)."""
    _mark_epochs_and_lr(ax, run, opts)
    ax.grid(True, alpha=0.3)
    ax.set_ylabel(ylabel)
    if opts.logy:
        ax.set_yscale("log")
        return 0
    limits = draw.robust_limits(np.concatenate([y for _, y, _ in series] or [np.empty(0)]))
    if limits is None:
        return 0
    ax.set_ylim(*limits)
    return sum(draw.mark_outside(ax, x, y, limits, color) for x, y, color in series)


def _set_x_range(ax: Axes, xs: Sequence[np.ndarray]) -> None:
    """The x range of every record drawn or marked (a NaN tail's markers included)."""
    values = np.concatenate([np.asarray(x, dtype="float64") for x in xs] or [np.empty(0)])
    values = values[np.isfinite(values)]
    if len(values) == 0 or values.min() == values.max():
        return
    lo, hi = float(values.min()), float(values.max())
    margin = X_MARGIN * (hi - lo)
    ax.set_xlim(lo - margin, hi + margin)


def _legend(fig: Figure, axes: Sequence[Axes]) -> None:
    """One legend for the figure, below the panels: each label once."""
    entries: dict[str, Artist] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            entries.setdefault(label, handle)
    if entries:
        fig.legend(
            list(entries.values()),
            list(entries),
            loc="outside lower center",
            ncols=_legend_columns(fig, list(entries)),
            fontsize=LEGEND_FONT_SIZE,
        )


LEGEND_FONT_SIZE = 8
#: Width of one character of the legend's font, in inches (~0.6 em), and of a line handle
#: with its padding, in characters.
_LEGEND_CHAR_IN = 0.6 * LEGEND_FONT_SIZE / 72
_LEGEND_HANDLE_CHARS = 8


def _legend_columns(fig: Figure, labels: list[str]) -> int:
    """As many columns (at most 4) as the longest label lets fit in the figure's width, so a
    legend of long labels (a run's resumed segments) wraps instead of running off the page."""
    width_chars = fig.get_figwidth() / _LEGEND_CHAR_IN
    per_column = max(len(label) for label in labels) + _LEGEND_HANDLE_CHARS
    return max(1, min(4, len(labels), int(width_chars // per_column)))


def _show_literally(fig: Figure) -> None:
    """Draw titles, legends, labels and notes as written: run and term names come from logs and
    file names, and a ``$`` in them must not start mathtext (a crash on an odd count). Tick
    labels keep mathtext: the log scale writes its ``10^-1`` with it."""
    from matplotlib.text import Text

    ticks = {
        id(text)
        for ax in fig.axes
        for axis in (ax.xaxis, ax.yaxis)
        for text in axis.findobj(Text)
        if text is not axis.label
    }
    for text in fig.findobj(Text):
        if id(text) not in ticks:
            text.set_parse_math(False)


#: Characters per line of the figure title (9-inch figure, 10 pt).
_SUPTITLE_WIDTH = 110


def _suptitle(
    runs: Sequence[Run], labels: Sequence[str], opts: PlotOptions, n_bad: int, n_out: int
) -> str:
    priors = {terms.smoothing_of(r) for r in runs}
    prior = "; ".join(sorted(p for p in priors if p))
    curves = "faint: logged values, bold: smoothed" if opts.smooth > 0 else "lines: logged values"
    lines = [
        ("run: " if len(runs) == 1 else "runs: ") + ", ".join(labels),
        f"{curves}; dashed: lr changes, grey: epochs",
        "smoothing: "
        + smoothing.describe(
            opts.smooth_method, opts.smooth, f"already {prior}" if prior else None
        ),
    ]
    if any(len(segment_rows(r.train)) > 1 for r in runs):
        lines.append("resumed segments: lighter shades of the run's colour")
    if n_bad:
        lines.append(f"{_count(n_bad, 'non-finite value')} marked x at the bottom")
    if n_out:
        lines.append(
            f"{_count(n_out, 'value')} beyond the y range of the bulk of the data (robust limits) "
            "marked ^ at the top edge, v at the bottom; --logy shows them all"
        )
    # wrapped so that two runs' smoothing notes fit the figure's width instead of being cut off
    return "\n".join(textwrap.fill(line, _SUPTITLE_WIDTH) for line in lines)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _plot_metrics(
    ax: Axes, runs: Sequence[Run], metric_cols: list[list[str]], opts: PlotOptions
) -> list[np.ndarray]:
    """The evaluation panel (each resumed segment its own piece); returns the x drawn."""
    labels = display_names(runs)
    xs_drawn = []
    for k, (run, cols) in enumerate(zip(runs, metric_cols, strict=True)):
        color = draw.COLORS[k % len(draw.COLORS)]
        evals = run.evals
        xs = x_values(run, evals, opts.x, opts.batch_size)
        segments = segment_rows(evals)
        for j, col in enumerate(cols):
            y = evals[col].to_numpy(dtype="float64", na_value=np.nan)
            ok = np.isfinite(y) & np.isfinite(xs) & (y >= 0)  # -1: undefined (no such objects)
            style = draw.LINESTYLES[j % len(draw.LINESTYLES)]
            for s, rows in enumerate(segments):
                rows = rows[ok[rows]]
                ax.plot(
                    xs[rows],
                    y[rows],
                    marker="o",
                    markersize=3,
                    color=draw.shade(color, s, len(segments)),
                    linestyle=style,
                    label=f"{labels[k]}: {col}" if s == 0 else "_nolegend_",
                )
                xs_drawn.append(xs[rows])
    ax.set_title("evaluation", fontsize=10, loc="left")
    ax.set_ylabel("metric")
    ax.grid(True, alpha=0.3)
    return xs_drawn


def per_class_ap(run: Run) -> tuple[pd.DataFrame, str]:
    """AP per class (columns) at each evaluation (rows, with ``step`` and ``epoch``) of the
    run's first task and IoU threshold in its ``per_class`` table, and what that selection is."""
    table = run.per_class
    table = table[table["ap"].notna()] if "ap" in table else table.iloc[:0]
    if table.empty:
        raise terms.TermNotFoundError(
            "per-class AP: this log prints no per-class AP table", path=run.path
        )
    first = table.iloc[0]
    same_task = table["task"].isna() if pd.isna(first["task"]) else table["task"] == first["task"]
    thr = first["iou_thr"]
    same_thr = table["iou_thr"].isna() if pd.isna(thr) else table["iou_thr"] == thr
    table = table[same_task & same_thr]
    wide = table.pivot_table(index="eval_index", columns="class", values="ap", aggfunc="first")
    where = table.groupby("eval_index")[["step", "epoch"]].first()
    what = "" if pd.isna(first["task"]) else str(first["task"])
    what += "" if pd.isna(thr) else f" at IoU {thr:g}"
    return where.join(wide).reset_index(drop=True), what.strip()


def _plot_per_class(ax: Axes, runs: Sequence[Run], opts: PlotOptions) -> list[np.ndarray]:
    """Per-class AP across evaluations: the classes lowest at the first run's last evaluation."""
    table, what = per_class_ap(runs[0])
    classes = [c for c in table.columns if c not in ("step", "epoch")]
    shown = table[classes].iloc[-1].sort_values(kind="stable").index[: opts.max_classes].tolist()
    labels = display_names(runs)
    xs_drawn = []
    for k, run in enumerate(runs):
        wide = table if k == 0 else per_class_ap(run)[0]
        xs = x_values(run, wide, opts.x, opts.batch_size)
        # a resumed run evaluates again from a lower step: each stretch is its own piece
        pieces = np.split(np.arange(len(xs)), np.flatnonzero(np.diff(xs) < 0) + 1)
        for c, name in enumerate(c for c in shown if c in wide):
            y = wide[name].to_numpy(dtype="float64", na_value=np.nan)
            for p, rows in enumerate(pieces):
                ax.plot(
                    xs[rows],
                    y[rows],
                    marker="o",
                    markersize=3,
                    color=draw.COLORS[c % len(draw.COLORS)],
                    linestyle=draw.LINESTYLES[k % len(draw.LINESTYLES)],
                    label=(name if len(runs) == 1 else f"{labels[k]}: {name}")
                    if p == 0
                    else "_nolegend_",
                )
            xs_drawn.append(xs)
    left_out = len(classes) - len(shown)
    note = f"; {left_out} more with --classes {len(classes)}" if left_out else ""
    ax.set_title(
        f"per-class AP{f' ({what})' if what else ''}: {len(shown)} of {len(classes)} classes, "
        f"the lowest at the last evaluation{note}",
        fontsize=10,
        loc="left",
    )
    ax.set_ylabel("AP (as logged)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", ncols=2)
    return xs_drawn


# --------------------------------------------------------------------------- eval metrics
#: Evaluation metric aliases across frameworks: prefixed mmengine names, detectron2 names.
_METRIC_ALIASES = {
    "bbox_mAP": ("coco/bbox_mAP", "bbox/AP", "bbox_AP"),
    "bbox_mAP_50": ("coco/bbox_mAP_50", "bbox/AP50", "AP50"),
    "bbox_mAP_75": ("coco/bbox_mAP_75", "bbox/AP75"),
    "segm_mAP": ("coco/segm_mAP", "segm/AP"),
    "mAP": ("pascal_voc/mAP", "bbox_mAP", "coco/bbox_mAP", "bbox/AP"),
    "AP50": ("pascal_voc/AP50", "bbox_mAP_50", "coco/bbox_mAP_50", "bbox/AP50"),
}


def metric_columns(run: Run) -> list[str]:
    """The evaluation metric columns of a run."""
    return [
        c
        for c in run.evals.columns
        if c not in terms.INDEX_COLUMNS and run.evals[c].dtype.kind == "f"
    ]


def resolve_metric(run: Run, name: str) -> str:
    """The eval column ``name`` stands for in ``run`` (aliases across frameworks accepted)."""
    have = metric_columns(run)
    if name in have:
        return name
    for alias in _METRIC_ALIASES.get(name, ()):
        if alias in have:
            return alias
    for canon, aliases in _METRIC_ALIASES.items():
        if name in aliases and canon in have:
            return canon
    if not have:
        raise terms.TermNotFoundError(
            f"metric {name!r}: this log has no evaluation results (trained without validation, or "
            "the evaluation printed nothing we could read)",
            path=run.path,
        )
    raise terms.TermNotFoundError(
        f"metric {name!r} is not in this log. Available: {', '.join(have)}", path=run.path
    )
