"""Loading the runs a command works on (files, directories, a forced format), one way for all."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from losslens.cli._common import error_line, progress
from losslens.errors import LossLensError, NoLogsFoundError
from losslens.log_names import LOG_SUFFIXES

if TYPE_CHECKING:
    from losslens.reading.sources import LoadFailure
    from losslens.run import Run


@dataclass
class Loaded:
    """The runs a command works on and the sources that gave none (already reported)."""

    runs: list[Run]
    failures: list[LoadFailure]

    def finish(self) -> None:
        """End the command with exit code 2 when any source failed (after its output)."""
        if self.failures:
            raise typer.Exit(2)


def load_runs(
    logs: Sequence[Path | str],
    format: str | None = None,
    quiet: bool = True,
    *,
    cache: bool = True,
) -> Loaded:
    """Every log named or found under a named directory (in parallel when there are many).

    A bad source does not stop the others: each gets one line on stderr (path: reason), the
    command shows the good runs and ends with :meth:`Loaded.finish` (exit 2). With no good run
    at all, the command ends here.
    """
    from losslens.reading.sources import expand_batch, load_each, sort_results

    if format is not None:
        from losslens.reading import formats

        formats.get(format)  # a bad --format is one error, not one per file
    files, discovered, failures = expand_batch([str(p) for p in logs])
    with progress(len(files), "parsing", quiet) as advance:
        results = load_each(files, format, cache=cache, on_done=advance)
    runs, failed = sort_results(files, discovered, results)
    failures += failed
    for failure in failures:
        error_line(failure.error)
    if not runs:
        if not failures:
            error_line(
                NoLogsFoundError(
                    "none of these files is a training log we can read",
                    path=", ".join(str(p) for p in logs),
                )
            )
        raise typer.Exit(2)
    return Loaded(runs, failures)


def log_lines(run: Run) -> list[str] | None:
    """The text lines of a run's log, for message-level checks (None for stdin)."""
    from losslens.reading.formats import GLUE_PATTERNS
    from losslens.reading.text import read_log

    if run.path in ("-", "<stdin>"):
        return None
    try:
        return read_log(run.path, GLUE_PATTERNS).lines
    except LossLensError:
        return None


def split_names(values: Sequence[str] | None) -> list[str]:
    """``--terms a,b --terms c`` -> ``[a, b, c]``."""
    out: list[str] = []
    for value in values or ():
        out.extend(v.strip() for v in value.split(",") if v.strip())
    return out


#: The rule, shown in the ``--help`` of every command with ``--terms``.
NAMES_RULE = (
    "Several names may follow the flag (--terms a b c): after --terms/--metrics, an argument "
    "that is not an existing file or folder and does not end in "
    + " ".join(LOG_SUFFIXES)
    + " is a name, so rpn/num_pos_anchors is a term."
)


def names_after_option(logs: Sequence[Path]) -> tuple[list[Path], list[str]]:
    """``plot a.log --terms x y``: click hands ``y`` over as a log; take such names back.

    The rule (:data:`NAMES_RULE`): an argument that is not an existing path and has no log
    suffix is a name for the caller to place (a term, or a metric when the run has it as one).
    Names may hold a ``/`` (detectron2's ``rpn/num_pos_anchors``, ultralytics' ``val/box_loss``).
    """
    kept: list[Path] = []
    names: list[str] = []
    for path in logs:
        text = str(path)
        looks_like_name = (
            text != "-" and not path.exists() and not text.lower().endswith(LOG_SUFFIXES)
        )
        (names.append(text) if looks_like_name else kept.append(path))
    return kept, names
