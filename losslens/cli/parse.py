"""``losslens parse LOG...``: read logs and show what is in them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from losslens.analysis.numbers import number
from losslens.cli import _options as opt
from losslens.cli._common import cli_errors, console, lit, output_path
from losslens.cli._runs import load_runs

if TYPE_CHECKING:
    import pandas as pd

    from losslens.run import Run
    from losslens.showing.summary import RunSummary

#: Terms shown in the summary without --all-columns (bookkeeping first, then losses).
_DEFAULT_TERM_LIMIT = 16
#: Classes shown in the per-class table without --all-columns.
_DEFAULT_CLASS_LIMIT = 25
#: Widest run name the runs table keeps whole, however narrow the terminal.
_RUN_NAME_WIDTH = 40
#: Above this many runs the summary is one table with a row per run.
_COMPACT_ABOVE = 3


@cli_errors
def parse(
    logs: Annotated[
        list[Path],
        typer.Argument(help="Log files or directories ('-' reads stdin).", show_default=False),
    ],
    format: opt.Format = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Write the tables: FILE.csv/.parquet gets the train table, FILE.evals.* the "
            "evaluations and FILE.per_class.* the per-class rows; FILE.json gets all of it "
            "(and meta) in one document. Several runs add a 'run' column.",
        ),
    ] = None,
    all_columns: Annotated[
        bool,
        typer.Option(
            "--all-columns",
            help="Show every term and class, not the first 16 terms and 25 classes.",
        ),
    ] = False,
    show_skipped: Annotated[
        bool, typer.Option("--show-skipped", help="List the lines that could not be placed.")
    ] = False,
    quiet: opt.Quiet = False,
    no_cache: Annotated[
        bool,
        typer.Option(
            "--no-cache", help="Parse every log afresh; neither read nor write the parse cache."
        ),
    ] = False,
) -> None:
    """Read training logs and summarise them: records, steps, terms, evaluations, skipped lines."""
    from losslens.run import display_names
    from losslens.showing import export
    from losslens.showing.summary import summarize

    if out is not None:  # before parsing: a bad --out must not come after the summary
        output_path(out, export.SUFFIXES, "the tables")
    loaded = load_runs(logs, format, quiet, cache=not no_cache)
    runs = loaded.runs
    summaries = [summarize(r) for r in runs]
    if len(runs) > _COMPACT_ABOVE:
        console.print(_runs_table(summaries, display_names(runs)))
    else:
        for run, summary in zip(runs, summaries, strict=True):
            render_summary(summary, all_columns)
            if show_skipped and run.skipped:
                _render_skipped(run)
    if out is not None:
        for written in export.write(runs, out):
            console.print(f"wrote {lit(written)}")
    loaded.finish()


def _runs_table(summaries: list[RunSummary], names: list[str]) -> Table:
    table = Table(title=f"{len(summaries)} runs", title_justify="left")
    for col in ("run", "format", "records", "steps", "epochs", "evals", "final metric", "skipped"):
        table.add_column(
            col, justify="right" if col not in ("run", "format", "final metric") else "left"
        )
    # the run names are what tells the rows apart: the other columns give way first
    table.columns[0].min_width = min(max(map(len, names), default=3), _RUN_NAME_WIDTH)
    for s, name in zip(summaries, names, strict=True):
        metric = next(iter(s.final_eval.items()), None)
        table.add_row(
            lit(name),
            s.format,
            str(s.records),
            f"{number(s.first_step)}-{number(s.last_step)}",
            number(s.epochs),
            str(s.evaluations),
            f"{lit(metric[0])} {number(metric[1])}" if metric else "-",
            str(s.skipped),
        )
    return table


def render_summary(s: RunSummary, all_columns: bool) -> None:
    from losslens.showing.summary import duration_text

    console.rule(f"[bold]{lit(s.name)}[/bold]")
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="dim")
    facts.add_column()
    facts.add_row("file", lit(s.path))
    facts.add_row(
        "format", lit(f"{s.format} ({s.framework}; {s.version_guess or 'version unknown'})")
    )
    facts.add_row(
        "records",
        f"{s.records} training records, steps {number(s.first_step)}-{number(s.last_step)}"
        + (f", {s.epochs} epochs" if s.epochs else ""),
    )
    if s.segments > 1:
        facts.add_row(
            "segments", f"{s.segments} runs in one file (the step went backwards: resumed)"
        )
    if s.start is not None:
        span = duration_text(s.duration.total_seconds()) if s.duration is not None else "-"
        facts.add_row("time span", f"{s.start} -> {s.end} ({span})")
    if s.log_interval:
        facts.add_row("log interval", f"every {s.log_interval} iterations")
    facts.add_row("evaluations", str(s.evaluations))
    style = "yellow" if s.skipped else "green"
    facts.add_row(
        "skipped lines",
        f"[{style}]{s.skipped}[/{style}]" + (" (--show-skipped lists them)" if s.skipped else ""),
    )
    console.print(facts)
    terms = s.terms if all_columns else s.terms.head(_DEFAULT_TERM_LIMIT)
    table = Table(title="terms", title_justify="left")
    for col in ("term", "first", "min", "last", "non-finite"):
        table.add_column(col, justify="left" if col == "term" else "right")
    for row in terms.itertuples(index=False):
        nf = f"[red]{number(row.non_finite)}[/red]" if row.non_finite else "0"
        table.add_row(lit(row.term), number(row.first), number(row.min), number(row.last), nf)
    console.print(table)
    if len(s.terms) > len(terms):
        console.print(f"[dim]... {len(s.terms) - len(terms)} more terms (--all-columns)[/dim]")
    if s.final_eval:
        ev = Table(
            title=f"final evaluation ({s.eval_units or 'units unknown'})", title_justify="left"
        )
        ev.add_column("metric")
        ev.add_column("value", justify="right")
        for key, value in s.final_eval.items():
            ev.add_row(lit(key), number(value))
        console.print(ev)
    if len(s.final_per_class):
        frame = s.final_per_class
        # mmdet's VOC table (gts, dets, recall, ap) and its COCO classwise table (AP@[.5:.95]
        # only) can close the same evaluation: one table each, titled by what it holds
        counted = frame["gts"].notna() if "gts" in frame else None
        if counted is None or counted.all() or not counted.any():
            _render_per_class(frame, "per class (final evaluation)", all_columns)
        else:
            _render_per_class(
                frame[counted], "per class (final evaluation, VOC table)", all_columns
            )
            _render_per_class(
                frame[~counted], "per class (final evaluation, COCO AP@[.5:.95])", all_columns
            )


def _render_per_class(frame: pd.DataFrame, title: str, all_columns: bool) -> None:
    pc = Table(title=title, title_justify="left", min_width=len(title))
    cols = [
        c
        for c in ("task", "iou_thr", "class", "gts", "dets", "recall", "ap")
        if c in frame and frame[c].notna().any()
    ]
    for col in cols:
        pc.add_column(col, justify="left" if col in ("class", "task") else "right")
    shown = frame if all_columns else frame.head(_DEFAULT_CLASS_LIMIT)
    for row in shown[cols].itertuples(index=False):
        pc.add_row(*(number(v) if not isinstance(v, str) else lit(v) for v in row))
    console.print(pc)
    if len(frame) > len(shown):
        console.print(f"[dim]... {len(frame) - len(shown)} more classes (--all-columns)[/dim]")


def _render_skipped(run: Run) -> None:
    table = Table(title=f"skipped lines of {lit(run.name)}", title_justify="left")
    table.add_column("line", justify="right")
    table.add_column("text", overflow="fold")
    table.add_column("why", overflow="fold")
    for item in run.skipped:
        table.add_row(str(item.line_no), lit(item.text), lit(item.reason))
    console.print(table)
