"""``losslens plot LOG... --terms loss_rpn_bbox loss_cls``: loss curves to PNG, SVG or PDF."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from losslens.cli import _options as opt
from losslens.cli._common import cli_errors, console, lit, output_path
from losslens.cli._runs import NAMES_RULE, load_runs, names_after_option, split_names
from losslens.errors import LossLensError

if TYPE_CHECKING:
    from losslens.run import Run

DEFAULT_OUT = Path("losslens-plot.png")
SUFFIXES = (".png", ".svg", ".pdf")


@cli_errors
def plot(
    logs: Annotated[
        list[Path], typer.Argument(help="Log files or directories.", show_default=False)
    ],
    terms: Annotated[
        list[str] | None,
        typer.Option(
            "--terms",
            "-t",
            help="Terms to plot (logged or canonical names, comma-separated, or the flag repeated). "
            + NAMES_RULE
            + " Default: every loss term.",
        ),
    ] = None,
    metrics: Annotated[
        list[str] | None,
        typer.Option(
            "--metrics",
            "-m",
            help="Evaluation metrics for a panel below (bbox_mAP, AP50, bbox/AP ...); names as for --terms.",
        ),
    ] = None,
    overlay: Annotated[bool, typer.Option("--overlay", help="All terms on one axis.")] = False,
    smooth: Annotated[
        float,
        typer.Option("--smooth", help="Smoothing weight 0-1 (0: off). TensorBoard default 0.6."),
    ] = 0.6,
    smooth_method: Annotated[
        str, typer.Option("--smooth-method", help="ema (TensorBoard), median or mean.")
    ] = "ema",
    x: Annotated[str, typer.Option("--x", help="x axis: step, epoch, time or images.")] = "step",
    logy: Annotated[bool, typer.Option("--logy", help="Log-scale y axes.")] = False,
    batch_size: Annotated[
        int | None,
        typer.Option(
            "--batch-size", help="Images per step for --x images when the log does not say."
        ),
    ] = None,
    per_class: Annotated[
        bool,
        typer.Option("--per-class", help="A panel of per-class AP across evaluations."),
    ] = False,
    classes: Annotated[
        int,
        typer.Option(
            "--classes", help="Classes in the per-class panel: the lowest at the last evaluation."
        ),
    ] = 10,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Output file: .png, .svg or .pdf.")
    ] = None,
    format: opt.Format = None,
) -> None:
    """Plot loss terms (one panel each), raw faint and smoothed bold, every run in its colour."""
    from losslens.showing.plotting import PlotOptions, plot_runs

    term_names, metric_names = split_names(terms), split_names(metrics)
    if term_names or metric_names:
        logs, extra = names_after_option(logs)
    else:
        extra = []
    target = output_path(out or DEFAULT_OUT, SUFFIXES, "a plot")
    loaded = load_runs(logs, format)
    runs = loaded.runs
    for name in extra:  # names listed after --terms/--metrics: a metric if the run has it as one
        (metric_names if metric_names and _is_metric(runs[0], name) else term_names).append(name)
    options = PlotOptions(
        x=x,
        overlay=overlay,
        smooth=smooth,
        smooth_method=smooth_method,
        logy=logy,
        batch_size=batch_size,
        per_class=per_class,
        max_classes=classes,
    )
    fig = plot_runs(runs, term_names or None, metrics=metric_names or None, options=options)
    fig.savefig(target, dpi=110)
    console.print(f"wrote {lit(target)}")
    loaded.finish()


def _is_metric(run: Run, name: str) -> bool:
    from losslens.showing.plotting import resolve_metric

    try:
        resolve_metric(run, name)
    except LossLensError:
        return False
    return True
