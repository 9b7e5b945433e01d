"""What every command shares: consoles, the one error path, number formatting, progress."""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.text import Text

from losslens.errors import LossLensError, LossLensWarning

P = ParamSpec("P")
R = TypeVar("R")

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def cli_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn a :class:`LossLensError` into one red line on stderr and exit code 2, and each
    :class:`LossLensWarning` the library gives into one yellow line on stderr."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            with warnings.catch_warnings():
                warnings.showwarning = _one_line_warnings(warnings.showwarning)
                return func(*args, **kwargs)
        except LossLensError as err:
            err_console.print(f"[red]losslens: error:[/red] {err}", markup=True, soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper


def _one_line_warnings(others: Callable[..., None]) -> Callable[..., None]:
    """A ``warnings.showwarning`` that shows a :class:`LossLensWarning` as one line (its text
    literally: paths are not markup) and hands other warnings to ``others``."""

    def show(message: Warning | str, category: type[Warning], *rest: Any, **kw: Any) -> None:
        if issubclass(category, LossLensWarning):
            text = Text.assemble(("losslens: warning: ", "yellow"), str(message))
            err_console.print(text, soft_wrap=True)
        else:
            others(message, category, *rest, **kw)

    return show


def fmt(value: Any, digits: int = 4) -> str:
    """A number as a person reads it: 4 significant digits, nan/inf spelled out."""
    if value is None:
        return "-"
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if v == int(v) and abs(v) < 1e9:
        return str(int(v))
    return f"{v:.{digits}g}"


@contextmanager
def progress(total: int, description: str, quiet: bool = False) -> Iterator[Callable[[], None]]:
    """A rich progress bar (silent under ``quiet`` or for a single item); yields ``advance()``."""
    if quiet or total <= 1:
        yield lambda: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=total)
        yield lambda: bar.advance(task)
