"""``losslens compare A B [C...]``: per-term statistics, final metrics, differences, divergence."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from losslens.analysis.numbers import number
from losslens.cli import _options as opt
from losslens.cli._common import cli_errors, console, lit
from losslens.cli._runs import load_runs, names_after_option, split_names
from losslens.errors import FormatOptionError

if TYPE_CHECKING:
    from losslens.analysis.compare import Comparison, Divergence
    from losslens.showing.side_by_side import SideBySide


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
    format: opt.Format = None,
    all_config: Annotated[
        bool,
        typer.Option(
            "--all-config", help="Show every config difference, not only the loss-changing ones."
        ),
    ] = False,
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
    from losslens.analysis.compare import (
        compare as compare_runs,  # here: keeps `losslens parse` light
    )

    result = compare_runs(runs, term_names or None, x=x, batch_size=batch_size, names=name)
    _render(result, all_config)
    loaded.finish()


def _side_by_side(
    logs: list[Path], x: str, batch_size: int | None, format: str | None, html: Path | None
) -> None:
    if len(logs) != 2:
        raise FormatOptionError(
            f"--reference takes two paths, THEIRS (your log) and OURS (the reference's work "
            f"dir), got {len(logs)}"
        )
    from losslens.showing.side_by_side import side_by_side
    from losslens.showing.side_by_side_page import write_page

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
    from losslens.showing.side_by_side_page import caption, shown_table

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
    for note in sbs.notes:
        console.print(Text.assemble(("note: ", "cyan"), note))
    for warning in sbs.warnings:
        console.print(Text.assemble(("warning: ", "yellow"), warning))


def _render(c: Comparison, all_config: bool = False) -> None:
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
        table.add_row(*cells, number(row["final"]), number(row["min"]), number(row["auc"]), ratio)
    console.print(table)
    if not c.metrics.empty:
        mt = Table(title="final evaluation (fractions)", title_justify="left")
        mt.add_column("metric")
        for name in c.metrics.columns:
            mt.add_column(lit(name), justify="right")
        for metric, values in c.metrics.iterrows():
            mt.add_row(lit(metric), *(number(v) for v in values))
        console.print(mt)
    if not c.meta.empty:
        _render_differences(c, all_config)
    for d in c.divergences:
        console.print(_verdict_line(d, c.x), markup=False)
    for warning in c.warnings:
        console.print(f"[yellow]warning:[/yellow] {lit(warning)}")


def _render_differences(c: Comparison, all_config: bool) -> None:
    """Run facts, then the config differences that change the losses, grouped; the rest are
    counted (``--all-config`` shows them)."""
    from losslens.analysis.compare import config_groups

    groups, others = config_groups(c.meta)
    facts = [k for k in c.meta.index if not str(k).startswith("config: ")]
    rows: list[tuple[str | None, str]] = [(None, k) for k in facts]
    rows += [(group, k) for group, keys in groups.items() for k in keys]
    if all_config:
        rows += [("other", k) for k in others]
    dt = Table(title="differences", title_justify="left")
    dt.add_column("what")
    dt.add_column("key", overflow="fold")
    for name in c.meta.columns:
        dt.add_column(lit(name), overflow="fold")
    for group, key in rows:
        dt.add_row(group or "run", lit(key), *(lit(v) for v in c.meta.loc[key]))
    console.print(dt)
    if others and not all_config:
        console.print(
            f"{len(others)} other config differences (workers, hooks, test settings ...); "
            "--all-config shows them",
            markup=False,
        )


def _verdict_line(d: Divergence, x: str) -> str:
    """One sentence per term and run that agrees with the numbers beside it, and with the
    warnings below it (a term the frameworks define differently never reads as diverging)."""
    band = f"noise band ±{(d.band - 1) * 100:.0f}%" if d.band is not None else ""
    auc = f"area {d.auc_ratio:.2f}x" if d.auc_ratio is not None else "area unknown"
    head = f"{d.term}: {d.run_b} vs {d.run_a}:"
    definitions = "definitions differ: see below"
    if d.verdict == "diverges":
        return f"{head} leaves it first at {x} {number(d.step)} ({d.ratio:.2f}x; {auc}, {band})"
    if d.verdict == "differs":
        verdict = f"differs ({definitions})" if d.definitions_differ else "differs"
        if d.step is not None and d.ratio is not None:
            where = f"beyond the {band} from {x} {number(d.step)} ({d.ratio:.2f}x there; {auc})"
            return f"{head} {verdict}: {where}"
        return f"{head} {verdict}: {auc}, beyond the {band}"
    tail = f"; {definitions}" if d.definitions_differ else ""
    if d.verdict == "too few records":
        return f"{head} too few records to measure the noise ({auc}{tail})"
    return f"{head} within the noise ({auc}, {band}{tail})"
