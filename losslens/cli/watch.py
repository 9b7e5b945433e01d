"""``losslens watch LOG``: follow a growing log with a live table and findings as they fire."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from losslens.cli import _options as opt
from losslens.cli._common import cli_errors, console, lit

if TYPE_CHECKING:
    from losslens.analysis.diagnostics import Finding
    from losslens.run import Run
    from losslens.showing.watch import LogFollower, WatchUpdate

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
    format: opt.Format = None,
) -> None:
    """Follow a training log like tail -f (waiting for it to appear). Ctrl-C stops.

    On a terminal the table and the findings are updated in place; piped, the table is printed
    when records arrive and each finding once, when its check first fires.
    """
    from losslens.reading.text import regular_file
    from losslens.showing.watch import LogFollower

    follower = LogFollower(log, format)
    if once or log.exists():
        regular_file(log)  # missing, a directory, a device or a FIFO: one line here
    update = follower.poll(final=once)
    if once:
        console.print(_view(update, str(log)))
        return
    try:
        if console.is_terminal:
            _follow_live(follower, update, str(log), interval)
        else:
            _follow_piped(follower, update, str(log), interval)
    except KeyboardInterrupt:
        console.print("stopped")


def _follow_live(follower: LogFollower, update: WatchUpdate, name: str, interval: float) -> None:
    from rich.live import Live

    with Live(_view(update, name), console=console, refresh_per_second=4) as live:
        while True:
            time.sleep(interval)
            update = follower.poll()
            live.update(_view(update, name))


def _follow_piped(follower: LogFollower, update: WatchUpdate, name: str, interval: float) -> None:
    """Plain lines for a pipe or a file: nothing is redrawn, so nothing is said twice."""
    waiting_said = False
    while True:
        if not _has_records(update):
            if not waiting_said:
                console.print(_waiting(update, name))
                waiting_said = True
        elif update.new_lines or update.restarted:
            console.print(_table(update.run))  # type: ignore[arg-type]
        for finding in update.new_findings:
            console.print(_finding_line(finding))
        time.sleep(interval)
        update = follower.poll()


def _view(update: WatchUpdate, name: str) -> RenderableType:
    """The table (or what is waited for) with the latest message of every finding below it."""
    head = _table(update.run) if _has_records(update) else _waiting(update, name)  # type: ignore[arg-type]
    return Group(head, *(_finding_line(f) for f in update.findings))


def _has_records(update: WatchUpdate) -> bool:
    return update.run is not None and len(update.run.train) > 0


def _waiting(update: WatchUpdate, name: str) -> Text:
    what = "to appear" if update.missing else "for training records"
    return Text(f"{name}: waiting {what}")


def _finding_line(f: Finding) -> Text:
    return Text.assemble((f.severity, _STYLE[f.severity]), " ", (f.code, "bold"), ": ", f.message)


def _table(run: Run) -> Table:
    from losslens.showing.watch import status_rows

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
