"""The ``losslens`` command line: one thin module per command, registered here."""

from __future__ import annotations

import typer

from losslens.cli import cache as _cache
from losslens.cli import check_data as _check_data
from losslens.cli import compare as _compare
from losslens.cli import demo as _demo
from losslens.cli import diagnose as _diagnose
from losslens.cli import explain as _explain
from losslens.cli import parse as _parse
from losslens.cli import plot as _plot
from losslens.cli import report as _report
from losslens.cli import train_reference as _train_reference
from losslens.cli import watch as _watch

app = typer.Typer(
    name="losslens",
    help="Read, plot, diagnose and compare object-detector training logs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("parse")(_parse.parse)
app.command("plot")(_plot.plot)
app.command("diagnose")(_diagnose.diagnose)
app.command("compare")(_compare.compare)
app.command("explain")(_explain.explain)
app.command("report")(_report.report)
app.command("watch")(_watch.watch)
app.command("train-reference")(_train_reference.train_reference)
app.command("demo")(_demo.demo)
app.command("check-data")(_check_data.check_data)
app.add_typer(_cache.app, name="cache")


def _print_version(value: bool) -> None:
    """``--version``: eager, so it answers before click asks for a command."""
    if value:
        from losslens import __version__

        typer.echo(f"losslens {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False,
        "--version",
        help="Print the version and exit.",
        is_eager=True,
        callback=_print_version,
    ),
) -> None:
    """Read, plot, diagnose and compare object-detector training logs."""


def main() -> None:
    app()
