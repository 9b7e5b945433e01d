"""Typed errors. Every error names the file (and line, when there is one) and what was expected.

The CLI turns any :class:`LossLensError` into one red line on stderr and exit code 2.
"""

from __future__ import annotations


class LossLensError(Exception):
    """Base class: ``path``, optional ``line_no`` (1-based) and ``line`` (the offending text)."""

    def __init__(
        self,
        message: str,
        path: str | None = None,
        line_no: int | None = None,
        line: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.line_no = line_no
        self.line = line

    def __str__(self) -> str:
        where = ""
        if self.path is not None:
            where = (
                f"{self.path}:{self.line_no}: " if self.line_no is not None else f"{self.path}: "
            )
        text = f"{where}{self.message}"
        if self.line is not None:
            shown = self.line if len(self.line) <= 120 else self.line[:117] + "..."
            text += f" (line: {shown!r})"
        return text


class LogNotFoundError(LossLensError):
    """The path does not exist."""


class NoLogsFoundError(LossLensError):
    """A directory holds no file we could read as a training log."""


class EmptyLogError(LossLensError):
    """The file is empty (or only whitespace)."""


class BinaryLogError(LossLensError):
    """The file is not text (NUL bytes, an image, a checkpoint...)."""


class UnknownFormatError(LossLensError):
    """No known log format matched the content."""


class FormatOptionError(LossLensError):
    """An option value (format name, column, term...) is not one of the accepted choices."""


class ParseError(LossLensError):
    """A forced format could not read the content at all."""


class SettingError(LossLensError):
    """An environment setting (``LOSSLENS_*``) holds a value that cannot be used."""


class LogReadError(LossLensError):
    """The path exists but cannot be read as a file (permissions, a device, a FIFO...)."""


class OutputError(LossLensError):
    """An output path cannot be written (its folder is missing, it is a directory...)."""


class LossLensWarning(UserWarning):
    """Something the user should know that does not stop the work; the CLI shows one line."""


class UnsafeCacheWarning(LossLensWarning):
    """The parse cache folder is another user's or writable by others: it is not used."""
