"""Reading a log's content into a :class:`~losslens.run.Run`: bytes -> sniff -> parse -> frames.

Pure: no files, no cache, no processes (those are :mod:`losslens.sources` and
:mod:`losslens.reading.cache`).
"""

from __future__ import annotations

import pandas as pd

from losslens.errors import ParseError
from losslens.reading import formats
from losslens.reading.formats._common import Parsed, Tallies
from losslens.reading.formats._contract import LogFormat
from losslens.reading.text import LogText, is_utf16, log_from_bytes, normalise, sample_text
from losslens.run import Run


def parse_text(log: LogText, format: str | None = None, *, fast: bool = True) -> Run:
    """Parse an already-read :class:`LogText` (``format`` forces a parser).

    ``fast=False`` makes the parser read every line on its own (the reference the fast paths
    are tested against).
    """
    return _parse_log(log, format or formats.sniff(log), format, fast)[0]


def _parse_log(log: LogText, name: str, format: str | None, fast: bool) -> tuple[Run, Tallies]:
    log_format = formats.get(name)
    parse = log_format.parse_each if not fast and log_format.parse_each else log_format.parse
    parsed = parse(log)
    return _run(log, log_format, parsed, format), parsed.tallies


def _run(
    log: LogText,
    log_format: LogFormat,
    parsed: Parsed,
    format: str | None,
    *,
    map_line_no: bool = True,
) -> Run:
    name = log_format.name
    if parsed.train.empty and parsed.evals.empty:
        if format is not None:
            raise ParseError(
                f"no {name} records found; is this really a {name} log?", path=log.path
            )
        if not parsed.recognised:
            # the sniffer saw something like a record (a README quoting log lines) but the
            # parser found no log record of the format: that is not a log
            raise formats.unknown_format(log.path)
    for frame in (parsed.train, parsed.evals):
        if map_line_no and "line_no" in frame.columns:
            frame["line_no"] = _physical_line_numbers(log, frame["line_no"])
    meta = dict(parsed.meta)
    meta.setdefault("framework", log_format.framework)
    meta["lines"] = log.n_physical_lines
    meta["n_skipped"] = len(parsed.skipped)
    if log.decode_errors:
        meta["decode_errors"] = log.decode_errors
    meta.update({f"n_{k}": v for k, v in log.notes.items()})
    return Run(
        log.path,
        name,
        parsed.train,
        parsed.evals,
        parsed.per_class,
        parsed.skipped,
        meta,
    )


def _physical_line_numbers(log: LogText, logical: pd.Series) -> pd.Series:
    """Logical line indices (0-based) -> the 1-based line numbers an editor shows."""
    if log.line_nos is None:
        return logical + 1
    mapping = pd.array(log.line_nos, dtype="Int64")
    index = logical.to_numpy(dtype="int64", na_value=0)
    out = pd.Series(mapping[index], index=logical.index, dtype="Int64")
    return out.where(logical.notna())


def parse_bytes(
    raw: bytes,
    path: str,
    mtime: float | None = None,
    format: str | None = None,
    *,
    fast: bool = True,
    sample: str | None = None,
) -> Run:
    """The run of :func:`parse_bytes_tallied` (which see)."""
    return parse_bytes_tallied(raw, path, mtime, format, fast=fast, sample=sample)[0]


def parse_bytes_tallied(
    raw: bytes,
    path: str,
    mtime: float | None = None,
    format: str | None = None,
    *,
    fast: bool = True,
    sample: str | None = None,
) -> tuple[Run, Tallies]:
    """Parse a log's unwrapped bytes (see :func:`losslens.reading.text.unwrap`).

    The format is sniffed on the cleaned head of the file, then on the whole text if the head
    shows none. Formats with a byte-level fast path (:attr:`LogFormat.fast`) read
    their record lines straight from ``raw``; ``fast=False`` reads every line on its own.
    ``sample`` (default: :func:`~losslens.reading.text.sample_text` of ``raw``) is the cleaned head of
    the whole file when ``raw`` is a part of it: what glued records are looked for is decided
    on it, as for the whole file. Returns the run and the parser's tallies (which the parse
    cache keeps beside the run, see :attr:`Parsed.tallies`).
    """
    sample = sample_text(raw) if sample is None else sample
    name = format or formats.quick_sniff(
        normalise(sample, glue=formats.GLUE_PATTERNS, glue_sample=sample).text
    )
    log = None
    if name is None:
        log = log_from_bytes(raw, path, mtime, sample, glue=formats.GLUE_PATTERNS)
        name = formats.sniff(log)
    log_format = formats.get(name)
    if fast and not is_utf16(raw) and log_format.fast is not None:
        got = log_format.fast(raw, path, mtime, sample, formats.GLUE_PATTERNS)
        if got is not None:
            parsed, rest = got  # line_no is physical already: the rest log lacks the read lines
            return _run(rest, log_format, parsed, format, map_line_no=False), parsed.tallies
    if log is None:
        log = log_from_bytes(raw, path, mtime, sample, glue=formats.GLUE_PATTERNS)
    return _parse_log(log, name, format, fast)
