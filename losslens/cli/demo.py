"""``losslens demo``: train the reference model on the synthetic dataset on the CPU (a few
minutes), then read its log back and show what losslens sees: the parse summary, the findings
and the plot. The README's first command."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import typer

from losslens.cli import _options as opt
from losslens.cli._common import cli_errors, console, lit


@cli_errors
def demo(
    work_dir: Annotated[
        Path | None,
        typer.Option(
            "--work-dir", help="Where the run goes (default: a new temporary folder, kept)."
        ),
    ] = None,
    threads: Annotated[
        int, typer.Option("--threads", help="CPU threads; 0 picks by machine load.")
    ] = 0,
    quiet: opt.Quiet = False,
) -> None:
    """Train on synthetic shapes on the CPU, then parse, diagnose and plot the log it wrote."""
    import losslens
    from losslens.cli import parse as parse_cli
    from losslens.cli.train_reference import report, run_training, show_findings, show_plot
    from losslens.showing.summary import summarize

    out = work_dir or Path(tempfile.mkdtemp(prefix="losslens-demo-"))
    from reference_model.engine.options import RunOptions

    options = RunOptions(device="cpu", work_dir=out, threads=threads)
    result, _ = run_training("synthetic", options, quiet=quiet)
    report(result)
    console.rule("[bold]what losslens reads back[/bold]")
    run = losslens.load(result.log_path, format="mmdet_text")
    parse_cli.render_summary(summarize(run), all_columns=False)
    show_findings(result.log_path)
    show_plot(result)
    console.print(
        f"next: losslens plot {lit(result.diagnostics_path)} --terms rpn.num_pos loss_rpn_cls"
    )
