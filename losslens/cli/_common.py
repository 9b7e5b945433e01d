"""What every command shares: consoles, the one error path, progress."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import typer
from rich.console import Console, ConsoleDimensions
from rich.markup import escape
from rich.text import Text

from losslens.errors import LossLensError, LossLensWarning, OutputError

if TYPE_CHECKING:
    from rich.progress import Progress, ProgressColumn

P = ParamSpec("P")
R = TypeVar("R")

#: The width piped output is laid out in: wide enough that no table column or path is cut.
PIPED_WIDTH = 1000


class _Console(Console):
    """A console that lays out piped output wide (rich would cut it at 80 columns).

    A terminal keeps its own width; ``$COLUMNS`` (or an explicit ``width``) still rules.
    Rules (``console.rule``) under a pipe are a short title line, not 1000 dashes.
    """

    @property
    def size(self) -> ConsoleDimensions:
        got = Console.size.fget(self)  # type: ignore[attr-defined]
        if self._width is None and not self.is_terminal and not self.is_jupyter:
            return ConsoleDimensions(PIPED_WIDTH, got.height)
        return got  # type: ignore[no-any-return]

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        Console.size.fset(self, new_size)  # type: ignore[attr-defined]

    def rule(self, title: Any = "", *args: Any, **kwargs: Any) -> None:
        if self.is_terminal:
            super().rule(title, *args, **kwargs)
        else:
            shown = Text.from_markup(title) if isinstance(title, str) else title
            self.print(Text.assemble("── ", shown, " ──"))


console = _Console(highlight=False)
err_console = _Console(stderr=True, highlight=False)


def lit(value: object) -> str:
    """``value`` as rich markup that shows it literally: for every string from a log or a path.

    ``[/data/coco/x.json]`` would close a tag that was never opened (a MarkupError) and
    ``exp[lr=0.02].log`` would lose its brackets; escaped, both print as they are.
    """
    return escape(str(value))


def error_line(message: object) -> None:
    """One red ``losslens: error:`` line on stderr; ``message`` is shown literally."""
    err_console.print(Text.assemble(("losslens: error:", "red"), " ", str(message)), soft_wrap=True)


def cli_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn a :class:`LossLensError` (or an OS error on a path) into one red line on stderr and
    exit code 2, and each :class:`LossLensWarning` the library gives into one yellow line."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            with warnings.catch_warnings():
                warnings.showwarning = _one_line_warnings(warnings.showwarning)
                return func(*args, **kwargs)
        except LossLensError as err:
            error_line(err)
        except OSError as err:  # a path the library did not check (an output, a race)
            where = f"{err.filename}: " if err.filename is not None else ""
            error_line(f"{where}{err.strerror or err}")
        raise typer.Exit(2)

    return wrapper


def output_path(path: Path, suffixes: Sequence[str], what: str) -> Path:
    """Check an output path before any work is done: its suffix, its folder, not a directory."""
    suffix = path.suffix.lower()
    if suffix not in suffixes:
        raise OutputError(
            f"cannot write {what} as {suffix or 'a file without suffix'}; "
            f"expected one of: {', '.join(suffixes)}",
            path=str(path),
        )
    if path.is_dir():
        raise OutputError("is a directory; name the file to write", path=str(path))
    folder = path.parent
    if not folder.is_dir():
        raise OutputError(f"cannot write here: the folder {folder} does not exist", path=str(path))
    return path


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


def progress_bar(*more: ProgressColumn | str, quiet: bool = False) -> Progress:
    """The commands' progress bar on stderr (gone when done, disabled under ``quiet``): what,
    a bar, done of total, time taken, then the ``more`` columns."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        *more,
        console=err_console,
        transient=True,
        disable=quiet,
    )


@contextmanager
def progress(total: int, description: str, quiet: bool = False) -> Iterator[Callable[[], None]]:
    """A rich progress bar (silent under ``quiet`` or for a single item); yields ``advance()``."""
    if quiet or total <= 1:
        yield lambda: None
        return
    with progress_bar() as bar:
        task = bar.add_task(description, total=total)
        yield lambda: bar.advance(task)
