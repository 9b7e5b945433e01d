"""The ``losslens`` command line: one thin module per command, registered here."""

from __future__ import annotations

import typer

from losslens.cli import demo as _demo
from losslens.cli import parse as _parse
from losslens.cli import train_reference as _train_reference

app = typer.Typer(
    name="losslens",
    help="Read, plot, diagnose and compare object-detector training logs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("parse")(_parse.parse)
app.command("train-reference")(_train_reference.train_reference)
app.command("demo")(_demo.demo)


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", help="Print the version and exit.", is_eager=True
    ),
) -> None:
    """Read, plot, diagnose and compare object-detector training logs."""
    if version:
        from losslens import __version__

        typer.echo(f"losslens {__version__}")
        raise typer.Exit()


def main() -> None:
    app()
