"""``losslens cache info`` and ``losslens cache clear [LOG...]``: the parse cache."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from losslens.cli._common import cli_errors, console

app = typer.Typer(
    help="Show what the parse cache holds, or empty it ($LOSSLENS_CACHE, "
    "capped at $LOSSLENS_CACHE_MAX_MB megabytes).",
    no_args_is_help=True,
)


@app.command("info")
@cli_errors
def info() -> None:
    """Where the parse cache is, how many entries it holds, their size and last uses."""
    from losslens.reading import cache

    found = cache.info()
    table = Table(title="parse cache", title_justify="left", show_header=False)
    table.add_column(style="dim")
    table.add_column(overflow="fold")  # a long location wraps rather than losing its end
    table.add_row("location", Text(str(found.location)))  # a path, not markup
    table.add_row("entries", str(found.entries))
    table.add_row("total size", f"{_size(found.total_bytes)} (at most {_size(found.max_bytes)})")
    table.add_row("oldest (last used)", _when(found.oldest))
    table.add_row("newest (last used)", _when(found.newest))
    if found.unsafe is not None:
        table.add_row("not used", Text(f"the folder {found.unsafe}"))
    console.print(table)


@app.command("clear")
@cli_errors
def clear(
    logs: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Remove only the entries of these logs (a directory: of the files under it).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Remove every cache entry, or those of the given logs (only entries losslens wrote:
    datasets and other folders in the cache folder stay)."""
    from losslens.reading import cache

    removed = cache.clear(logs or None)
    noun = "entry" if removed == 1 else "entries"
    console.print(
        f"removed {removed} cache {noun} from {cache.cache_dir()}", markup=False, soft_wrap=True
    )


def _size(n_bytes: int) -> str:
    """Decimal units, as ``$LOSSLENS_CACHE_MAX_MB`` counts: ``812.4 kB``, ``1,530.2 MB``."""
    if n_bytes < 1_000_000:
        return f"{n_bytes / 1e3:,.1f} kB"
    return f"{n_bytes / 1e6:,.1f} MB"


def _when(stamp: datetime | None) -> str:
    """Local time to the second; ``-`` for an empty cache."""
    return "-" if stamp is None else f"{stamp:%Y-%m-%d %H:%M:%S}"
