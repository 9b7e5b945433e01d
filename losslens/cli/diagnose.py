"""``losslens diagnose LOG...``: findings with evidence and advice; exit 1 on any error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from losslens.cli import _options as opt
from losslens.cli._common import cli_errors, console, lit
from losslens.cli._runs import load_runs, log_lines
from losslens.errors import FormatOptionError

if TYPE_CHECKING:
    from losslens.analysis.diagnostics import Finding

_STYLE = {"error": "bold red", "warning": "yellow", "info": "blue"}


@cli_errors
def diagnose(
    logs: Annotated[
        list[Path], typer.Argument(help="Log files or directories.", show_default=False)
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the findings as a JSON list.")
    ] = False,
    min_severity: Annotated[
        str, typer.Option("--min-severity", help="Hide findings below: info, warning or error.")
    ] = "info",
    format: opt.Format = None,
) -> None:
    """Check runs for NaNs, divergence, missing positives, background-only accuracy and more.

    Exit code 1 when any error-level finding exists (for CI gates), 0 otherwise.
    """
    from losslens.analysis.diagnostics import (  # here: keeps `parse` light
        SEVERITIES,
        worst_severity,
    )
    from losslens.analysis.diagnostics import diagnose as run_checks
    from losslens.run import display_names

    if min_severity not in SEVERITIES:
        raise FormatOptionError(
            f"unknown severity {min_severity!r}; expected one of: {', '.join(SEVERITIES)}"
        )
    loaded = load_runs(logs, format)
    runs = loaded.runs
    names = display_names(runs)
    findings = []
    for run, name in zip(runs, names, strict=True):
        for finding in run_checks(run, log_lines(run)):
            finding.run = name  # runs that share a file name are told apart by their folders
            findings.append(finding)
    floor = SEVERITIES.index(min_severity)
    shown = [f for f in findings if SEVERITIES.index(f.severity) >= floor]
    if as_json:
        typer.echo(json.dumps([f.to_dict() for f in shown], indent=2, default=str))
    else:
        render_findings(shown, names)
    loaded.finish()  # a log that could not be read outranks the findings of the others
    if worst_severity(findings) == "error":
        raise typer.Exit(1)


def render_findings(findings: list[Finding], names: list[str]) -> None:
    from losslens.analysis.diagnostics import SEVERITIES

    if not findings:
        console.print(f"[green]no findings[/green] for {lit(', '.join(names))}")
        return
    for f in findings:
        where = f" at step {f.steps[0]}" if f.steps else ""
        console.print(
            f"[{_STYLE[f.severity]}]{f.severity:<7}[/] [bold]{lit(f.code)}[/bold] ({lit(f.run)}{where})"
        )
        console.print(f"  {f.message}", markup=False)
        for line in f.evidence[:4]:
            console.print(f"    | {line}", markup=False, style="dim")
        if f.advice:
            console.print(f"  -> {f.advice}", markup=False)
    counts = Table.grid(padding=(0, 2))
    for sev in reversed(SEVERITIES):
        n = sum(1 for f in findings if f.severity == sev)
        counts.add_row(f"[{_STYLE[sev]}]{sev}[/]", str(n))
    console.print(counts)
