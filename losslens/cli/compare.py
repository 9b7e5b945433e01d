"""``losslens compare A B [C...]``: per-term statistics, final metrics, differences, divergence."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from losslens.cli._common import cli_errors, console, fmt, lit
from losslens.cli._runs import load_runs, names_after_option, split_names
from losslens.errors import FormatOptionError

if TYPE_CHECKING:
    from losslens.compare import Comparison
    from losslens.side_by_side import SideBySide

#: Rows of the differences table shown (configs of two framework versions differ a lot).
_DIFFERENCES_SHOWN = 40


@cli_errors
def compare(
    logs: Annotated[
        list[Path],
        typer.Argument(help="Two or more logs; the first is the reference.", show_default=False),
    ],
    terms: Annotated[
        list[str] | None,
        typer.Option(
            "--terms", "-t", help="Terms to compare (default: the loss terms all runs share)."
        ),
    ] = None,
    x: Annotated[
        str | None,
        typer.Option(
            "--x",
            help="Align on step, epoch, time or images (default: step; with --reference: "
            "images when your batch size is known, else epoch).",
        ),
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option("--batch-size", help="Images per step for --x images.")
    ] = None,
    format: Annotated[
        str | None, typer.Option("--format", "-f", help="Force a log format.")
    ] = None,
    name: Annotated[
        list[str] | None,
        typer.Option(
            "--name",
            help="Name of a run in the tables, once per run in the order of the logs "
            "(default: the file names).",
        ),
    ] = None,
    reference: Annotated[
        bool,
        typer.Option(
            "--reference",
            help="Side by side: THEIRS (your log) against OURS (a train-reference work dir); "
            "writes vs_<run name>.html into OURS.",
        ),
    ] = False,
    html: Annotated[
        Path | None,
        typer.Option("--html", help="With --reference: write the page here instead."),
    ] = None,
) -> None:
    """Compare runs term by term (final, min, area under the curve, ratio to the first run)."""
    if reference:
        _side_by_side(logs, x or "auto", batch_size, format, html)
        return
    x = x or "step"
    term_names = split_names(terms)
    if term_names:
        logs, extra = names_after_option(logs)
        term_names += extra
    loaded = load_runs(logs, format)
    runs = loaded.runs
    if len(runs) < 2 and loaded.failures:
        loaded.finish()  # nothing left to compare: the failures said why
    from losslens.compare import compare as compare_runs  # here: keeps `losslens parse` light

    result = compare_runs(runs, term_names or None, x=x, batch_size=batch_size, names=name)
    _render(result)
    loaded.finish()


def _side_by_side(
    logs: list[Path], x: str, batch_size: int | None, format: str | None, html: Path | None
) -> None:
    if len(logs) != 2:
        raise FormatOptionError(
            f"--reference takes two paths, THEIRS (your log) and OURS (the reference's work "
            f"dir), got {len(logs)}"
        )
    from losslens.side_by_side import side_by_side
    from losslens.side_by_side_page import write_page

    loaded = load_runs([logs[0]], format)
    loaded.finish()  # THEIRS did not load: its line is printed, exit 2
    theirs = loaded.runs[0]
    result = side_by_side(theirs, logs[1], x=x, batch_size=batch_size)
    work_dir = logs[1].parent if logs[1].is_file() else logs[1]
    page = write_page(result, work_dir, html)
    render_side_by_side(result)
    console.print(f"page: {page}", markup=False)


def render_side_by_side(sbs: SideBySide) -> None:
    """The side-by-side table, explanations and warnings (also used after train-reference)."""
    from losslens.side_by_side_page import caption, shown_table

    frame = shown_table(sbs)
    table = Table(title=caption(sbs), title_justify="left")
    for col in frame.columns:
        table.add_column(
            escape(str(col)), justify="left" if col in ("term", "logged as") else "right"
        )
    for row in frame.itertuples(index=False):
        table.add_row(*(Text(str(v)) for v in row))
    console.print(table)
    for line in sbs.explanations:
        console.print(line, markup=False)
    for warning in sbs.warnings:
        console.print(Text.assemble(("warning: ", "yellow"), warning))


def _render(c: Comparison) -> None:
    table = Table(
        title=f"terms aligned on {c.x} (auc = mean level over the shared range)",
        title_justify="left",
    )
    for col in ("term", "run", "logged as", "final", "min", "auc", "vs first"):
        table.add_column(col, justify="left" if col in ("term", "run", "logged as") else "right")
    for row in c.terms.to_dict("records"):
        r = float(row["ratio_to_first"])
        ratio = "" if math.isnan(r) else f"{r:.3f}x"
        cells = [lit(row[k]) for k in ("term", "run", "logged_as")]
        table.add_row(*cells, fmt(row["final"]), fmt(row["min"]), fmt(row["auc"]), ratio)
    console.print(table)
    if not c.metrics.empty:
        mt = Table(title="final evaluation (fractions)", title_justify="left")
        mt.add_column("metric")
        for name in c.metrics.columns:
            mt.add_column(lit(name), justify="right")
        for metric, values in c.metrics.iterrows():
            mt.add_row(lit(metric), *(fmt(v) for v in values))
        console.print(mt)
    if not c.meta.empty:
        shown = c.meta.head(_DIFFERENCES_SHOWN)
        dt = Table(title="differences", title_justify="left")
        dt.add_column("key", overflow="fold")
        for name in c.meta.columns:
            dt.add_column(lit(name), overflow="fold")
        for key, values in shown.iterrows():
            dt.add_row(lit(key), *(lit(v) for v in values))
        console.print(dt)
        if len(c.meta) > len(shown):
            console.print(f"[dim]... {len(c.meta) - len(shown)} more differences[/dim]")
    for d in c.divergences:
        if d.step is None:
            console.print(f"{d.term}: {d.run_b} stays within the noise of {d.run_a}", markup=False)
        else:
            console.print(
                f"{d.term}: {d.run_b} leaves {d.run_a} first at {c.x} {fmt(d.step)} ({d.ratio:.2f}x)",
                markup=False,
            )
    for warning in c.warnings:
        console.print(f"[yellow]warning:[/yellow] {lit(warning)}")
