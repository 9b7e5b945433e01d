"""``losslens watch LOG``: follow a growing log with a live table and findings as they fire."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from rich.text import Text

from losslens.cli._common import cli_errors, console, lit

if TYPE_CHECKING:
    from losslens.diagnostics import Finding
    from losslens.run import Run

_STYLE = {"error": "bold red", "warning": "yellow", "info": "blue"}


@cli_errors
def watch(
    log: Annotated[
        Path,
        typer.Argument(help="The log file to follow (text or JSON lines).", show_default=False),
    ],
    interval: Annotated[float, typer.Option("--interval", help="Seconds between reads.")] = 2.0,
    once: Annotated[
        bool, typer.Option("--once", help="Read what is there, show it and exit.")
    ] = False,
    format: Annotated[
        str | None, typer.Option("--format", "-f", help="Force a log format.")
    ] = None,
) -> None:
    """Follow a training log like tail -f. Ctrl-C stops."""
    from rich.live import Live

    from losslens._text import regular_file
    from losslens.watch import LogFollower

    regular_file(log)  # a directory, a device or a FIFO is refused here, in one line
    follower = LogFollower(log, format)
    update = follower.poll()
    _print_findings(update.new_findings)
    if once:
        console.print(_table(update.run, str(log)))
        return
    try:
        with Live(_table(update.run, str(log)), console=console, refresh_per_second=4) as live:
            while True:
                time.sleep(interval)
                update = follower.poll()
                if update.new_lines:
                    live.update(_table(update.run, str(log)))
                for finding in update.new_findings:
                    live.console.print(_finding_line(finding))
    except KeyboardInterrupt:
        console.print("stopped")


def _finding_line(f: Finding) -> Text:
    return Text.assemble((f.severity, _STYLE[f.severity]), " ", (f.code, "bold"), ": ", f.message)


def _print_findings(findings: list[Finding]) -> None:
    for finding in findings:
        console.print(_finding_line(finding))


def _table(run: Run | None, name: str) -> Table:
    from losslens.watch import status_rows

    if run is None or not len(run.train):
        table = Table(title=f"{lit(name)}: waiting for training records", title_justify="left")
        table.add_column("")
        return table
    last = run.train.iloc[-1]
    where = f"step {int(last['step'])}" if "step" in run.train else ""
    if "epoch" in run.train and last["epoch"] is not None and str(last["epoch"]) != "<NA>":
        where += f", epoch {int(last['epoch'])}"
    table = Table(title=f"{lit(run.name)}: {len(run.train)} records, {where}", title_justify="left")
    table.add_column("term")
    table.add_column("last", justify="right")
    table.add_column("trend")
    for term, value, spark in status_rows(run):
        table.add_row(lit(term), value, spark)
    return table
