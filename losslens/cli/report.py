"""``losslens report LOG... -o report.html``: one self-contained HTML page."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from losslens.cli import _options as opt
from losslens.cli._common import cli_errors, console, lit, output_path
from losslens.cli._runs import load_runs, log_lines
from losslens.errors import FormatOptionError


@cli_errors
def report(
    logs: Annotated[
        list[Path], typer.Argument(help="Log files or directories.", show_default=False)
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="The HTML file to write.")] = Path(
        "losslens-report.html"
    ),
    format: opt.Format = None,
) -> None:
    """Write summary, curves, findings, evaluations and per-class tables into one HTML file."""
    from losslens.showing.report import render_report

    if out.suffix.lower() not in (".html", ".htm"):
        raise FormatOptionError("the report is HTML; name the output *.html", path=str(out))
    output_path(out, (".html", ".htm"), "the report")
    loaded = load_runs(logs, format)
    runs = loaded.runs
    lines = {r.path: got for r in runs if (got := log_lines(r)) is not None}
    out.write_text(render_report(runs, lines), encoding="utf-8")
    console.print(f"wrote {lit(out)}")
    loaded.finish()
