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

from losslens import smoothing, terms
from losslens.axes import (  # x axes live in axes.py; re-exported for callers of plotting
    X_AXES,
    X_LABELS,
    lr_schedule,
    x_values,
)
from losslens.axes import images_per_step as images_per_step
from losslens.axes import total_batch_from_config as total_batch_from_config
from losslens.errors import FormatOptionError
from losslens.run import display_names

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from losslens.run import Run

#: Points drawn per line at most; beyond this, min/max decimation per bucket.
MAX_DRAWN_POINTS = 4000
#: Epoch boundaries are drawn only up to this many epochs (beyond, they are a grey wall).
MAX_EPOCH_LINES = 60
DEFAULT_TERMS_SHOWN = 6
_COLORS = (
    "#1f77b4",
    "#d62728",
    "#2ca02c",
    "#9467bd",
    "#ff7f0e",
    "#17becf",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
)
_LINESTYLES = ("-", "--", ":", "-.")


@dataclass(frozen=True)
class PlotOptions:
    x: str = "step"
    overlay: bool = False
    smooth: float = smoothing.TB_DEFAULT_WEIGHT
    smooth_method: str = "ema"
    logy: bool = False
    batch_size: int | None = None
    max_points: int = MAX_DRAWN_POINTS

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


def _segments(frame: pd.DataFrame) -> list[np.ndarray]:
    """Row positions of each resumed segment (a run appended to the same file)."""
    if "segment" not in frame or frame["segment"].nunique(dropna=True) <= 1:
        return [np.arange(len(frame))]
    seg = frame["segment"].to_numpy(dtype="float64", na_value=-1)
    return [np.flatnonzero(seg == s) for s in np.unique(seg)]


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
) -> int:
    finite = np.isfinite(y) & np.isfinite(x)
    smoothed = smoothing.smooth(y, opts.smooth_method, opts.smooth)
    if opts.smooth > 0:
        rx, ry = decimate(x[finite], y[finite], opts.max_points)
        ax.plot(rx, ry, color=color, alpha=0.25, linewidth=0.8, linestyle=style)
    sx, sy = decimate(x[finite], smoothed[finite], opts.max_points)
    ax.plot(sx, sy, color=color, linewidth=1.6, label=label, linestyle=style)
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
    """The loss terms shared by the runs (canonical), total first, at most a handful."""
    frames = [r.canonical() for r in runs]
    first = terms.loss_columns(frames[0]) if frames else []
    shared = [t for t in first if all(t in f.columns for f in frames[1:])] or first
    return shared[:DEFAULT_TERMS_SHOWN]


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
    :class:`losslens.terms.TermNotFoundError` listing what that run has.
    """
    from matplotlib.figure import Figure

    opts = options or PlotOptions()
    opts.check()
    if not runs:
        raise FormatOptionError("nothing to plot: no runs given")
    frames = [r.canonical() for r in runs]
    wanted = list(term_names) if term_names else default_terms(runs)
    if not wanted and not metrics:
        raise FormatOptionError(
            f"{runs[0].name} has no loss terms to plot; name terms with --terms", path=runs[0].path
        )
    columns = [
        [terms.resolve_column(r, t, f) for t in wanted] for r, f in zip(runs, frames, strict=True)
    ]
    # two names may stand for one column of a run (mAP and bbox_mAP): draw it once
    metric_cols = (
        [list(dict.fromkeys(resolve_metric(r, m) for m in metrics)) for r in runs]
        if metrics
        else []
    )
    n_panels = (1 if opts.overlay else len(wanted)) + (1 if metrics else 0)
    n_panels = max(n_panels, 1)
    fig = Figure(figsize=(9, 2.4 * n_panels + 0.8), layout="constrained")
    axes = fig.subplots(n_panels, 1, sharex=True, squeeze=False)[:, 0]
    n_bad = 0
    labels = display_names(runs)
    for k, (run, frame, cols) in enumerate(zip(runs, frames, columns, strict=True)):
        color = _COLORS[k % len(_COLORS)]
        xs = x_values(run, frame, opts.x, opts.batch_size)
        for j, col in enumerate(cols):
            ax = axes[0] if opts.overlay else axes[j]
            style = _LINESTYLES[j % len(_LINESTYLES)] if opts.overlay else "-"
            label = f"{labels[k]}: {col}" if opts.overlay else labels[k]
            # a validation loss (ultralytics val/*, DETR test_*) goes beside its term, dashed
            partner = terms.validation_partner(frame, col)
            for name, suffix, dash in ((col, "", style), (partner, " (val)", "--")):
                if name is None:
                    continue
                for s, rows in enumerate(_segments(frame)):
                    y = frame[name].to_numpy(dtype="float64", na_value=np.nan)[rows]
                    shown = label + suffix if s == 0 else "_nolegend_"
                    n_bad += _draw_series(ax, xs[rows], y, color, shown, opts, dash)
    mapping = [f.attrs.get("columns", {}) for f in frames]
    for j, name in enumerate(columns[0] if not opts.overlay else []):
        sources = {s for m in mapping if name in m for s in m[name].sources}
        axes[j].set_title(_panel_title(name, sources), fontsize=10, loc="left")
    if opts.overlay:
        axes[0].set_title(", ".join(columns[0]), fontsize=10, loc="left")
    loss_axes = axes[:-1] if metrics else axes
    for ax in loss_axes:
        if opts.logy:
            ax.set_yscale("log")
        _mark_epochs_and_lr(ax, runs[0], opts)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8, loc="upper right")
    if metrics:
        _plot_metrics(axes[-1], runs, metric_cols, opts)
    axes[-1].set_xlabel(X_LABELS[opts.x])
    fig.suptitle(_suptitle(runs, opts, n_bad), fontsize=10)
    _show_literally(fig)
    return fig


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


def _suptitle(runs: Sequence[Run], opts: PlotOptions, n_bad: int) -> str:
    priors = {terms.smoothing_of(r) for r in runs}
    prior = "; ".join(sorted(p for p in priors if p))
    curves = "faint: logged values, bold: smoothed" if opts.smooth > 0 else "lines: logged values"
    lines = [
        f"{curves}; dashed: lr changes, grey: epochs",
        "smoothing: "
        + smoothing.describe(
            opts.smooth_method, opts.smooth, f"already {prior}" if prior else None
        ),
    ]
    if n_bad:
        lines.append(f"{n_bad} non-finite values marked x at the bottom")
    # wrapped so that two runs' smoothing notes fit the figure's width instead of being cut off
    return "\n".join(textwrap.fill(line, _SUPTITLE_WIDTH) for line in lines)


def _plot_metrics(
    ax: Axes, runs: Sequence[Run], metric_cols: list[list[str]], opts: PlotOptions
) -> None:
    labels = display_names(runs)
    for k, (run, cols) in enumerate(zip(runs, metric_cols, strict=True)):
        color = _COLORS[k % len(_COLORS)]
        evals = run.evals
        xs = x_values(run, evals, opts.x, opts.batch_size)
        for j, col in enumerate(cols):
            y = evals[col].to_numpy(dtype="float64", na_value=np.nan)
            ok = (
                np.isfinite(y) & np.isfinite(xs) & (y >= 0)
            )  # -1 = undefined (no objects of that size)
            style = _LINESTYLES[j % len(_LINESTYLES)]
            ax.plot(
                xs[ok],
                y[ok],
                marker="o",
                markersize=3,
                color=color,
                linestyle=style,
                label=f"{labels[k]}: {col}",
            )
    ax.set_title("evaluation", fontsize=10, loc="left")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")


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
