"""Loading the runs a command works on (files, directories, a forced format), one way for all."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from losslens.cli._common import progress
from losslens.errors import LossLensError, NoLogsFoundError

if TYPE_CHECKING:
    from losslens.run import Run


def load_runs(
    logs: Sequence[Path | str],
    format: str | None = None,
    quiet: bool = True,
    *,
    cache: bool = True,
) -> list[Run]:
    """Every log named or found under a named directory (in parallel when there are many);
    named files must load."""
    from losslens.run import expand_sources, keep_runs, load_each

    files, discovered = expand_sources([str(p) for p in logs])
    with progress(len(files), "parsing", quiet) as advance:
        results = load_each(files, format, cache=cache, on_done=advance)
    try:
        return keep_runs(files, discovered, results)
    except NoLogsFoundError:
        raise NoLogsFoundError(
            "no training logs found", path=", ".join(str(p) for p in logs)
        ) from None


def log_lines(run: Run) -> list[str] | None:
    """The text lines of a run's log, for message-level checks (None for stdin)."""
    from losslens._text import read_log

    if run.path in ("-", "<stdin>"):
        return None
    try:
        return read_log(run.path).lines
    except LossLensError:
        return None


def split_names(values: Sequence[str] | None) -> list[str]:
    """``--terms a,b --terms c`` -> ``[a, b, c]``."""
    out: list[str] = []
    for value in values or ():
        out.extend(v.strip() for v in value.split(",") if v.strip())
    return out


def names_after_option(logs: Sequence[Path]) -> tuple[list[Path], list[str]]:
    """``plot a.log --terms x y``: click hands ``y`` over as a log; take such names back.

    A "log" that does not exist and looks like a name (no folder, no log suffix) is returned
    as a name for the caller to place (a term, or a metric when the run has it as one).
    """
    kept: list[Path] = []
    names: list[str] = []
    for path in logs:
        text = str(path)
        looks_like_name = (
            not path.exists()
            and "/" not in text
            and text != "-"
            and not text.endswith((".log", ".json", ".txt", ".gz", ".jsonl"))
        )
        (names.append(text) if looks_like_name else kept.append(path))
    return kept, names
