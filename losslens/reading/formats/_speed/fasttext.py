"""The fast path of the text formats: read record lines from the raw bytes, the rest per line.

A format supplies a :class:`LineReader` (how to find and read its training lines of one shape in
a chunk of the file, see :mod:`losslens.reading.formats._speed.bytelines`). :func:`read_fast` runs it over the
file chunk by chunk and returns the columns it read plus a *rest log*: a :class:`LogText` of
every line it did not read, with one placeholder line standing for each run of consecutive read
lines of one shape. The format's per-line walk then goes over that small rest log exactly as it
would over the whole file: a placeholder is a record the walk passes over (it closes pending
evaluations and ends config blocks), and the read rows carry the placeholder's logical index as
``_line``, so that evaluations, segments and file order come out as in the per-line path.
"""

from __future__ import annotations

import functools
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import numpy as np

from losslens.reading._parallel import threads
from losslens.reading.formats._speed import bytelines as bl
from losslens.reading.text import GluePrefix, LogText, normalise, to_text

if TYPE_CHECKING:
    from losslens.reading.formats._common import Parsed
    from losslens.reading.formats._contract import FastPath


class LineReader(Protocol):
    """Reads one chunk of lines; remembers the shapes it has seen across chunks."""

    def read_chunk(
        self, buf: np.ndarray, starts: np.ndarray, ends: np.ndarray, candidates: np.ndarray
    ) -> list[bl.ShapeRead]:
        """-> [(shape id, line positions within the chunk, columns)] for the lines it read."""
        ...


@dataclass
class FastRead:
    """What :func:`read_fast` returns."""

    columns: dict[str, np.ndarray]  # read rows, file order, with ``_line`` (rest-log index)
    log: LogText  # the rest log, physical line numbers; placeholders flagged in ``placeholders``
    placeholders: list[bool] = field(default_factory=list)
    n_read: int = 0


R = TypeVar("R", bound=LineReader)


def fast_path(
    make_reader: Callable[[Sequence[GluePrefix]], R], finish: Callable[[FastRead, R], Parsed]
) -> FastPath:
    """A format's fast path (:attr:`LogFormat.fast <losslens.reading.formats._contract.LogFormat>`):
    ``make_reader(glue)`` reads its record lines from the raw bytes (:func:`read_fast`) and
    ``finish(fast, reader)`` parses the rest log with the rows read. The path returns that parse
    and the rest log, or None when no line could be read this way (the caller parses the text).
    """

    def parse_bytes(
        raw: bytes, name: str, mtime: float | None, sample: str | None, glue: Sequence[GluePrefix]
    ) -> tuple[Parsed, LogText] | None:
        reader = make_reader(glue)
        fast = read_fast(raw, name, mtime, reader, sample, glue)
        return None if fast is None else (finish(fast, reader), fast.log)

    return parse_bytes


def read_fast(
    raw: bytes,
    name: str,
    mtime: float | None,
    reader: LineReader,
    glue_sample: str | None,
    glue: Sequence[GluePrefix],
) -> FastRead | None:
    """Read what ``reader`` can from ``raw``; None when it reads no line (use the slow path).

    The first chunk is read alone (it teaches the reader the file's shapes), the others on
    :func:`threads` threads: the byte work is numpy, which releases the GIL. Shape ids index the
    reader's one shared list and rows are put in file order, so thread timing changes nothing.
    """
    buf = np.frombuffer(raw, dtype=np.uint8)
    starts, ends = bl.line_spans(buf)
    if len(starts) == 0:
        return None
    clean_ends = ends - ((ends > starts) & (buf[np.maximum(ends - 1, 0)] == bl.CR))
    ranges = list(bl.chunks(starts, ends))

    def read(chunk: slice) -> list[bl.ShapeRead]:
        candidates = np.ones(chunk.stop - chunk.start, dtype=bool)
        if chunk.stop == len(starts) and not raw.endswith(b"\n"):
            candidates[-1] = False  # maybe cut off mid-write: the per-line path judges it
        lo, hi = int(starts[chunk.start]), int(ends[chunk.stop - 1])
        found = reader.read_chunk(
            bl.padded(buf, lo, hi), starts[chunk] - lo, clean_ends[chunk] - lo, candidates
        )
        return [(shape_id, positions + chunk.start, cols) for shape_id, positions, cols in found]

    reads = read(ranges[0])
    rest = iter(ranges[1:])
    take = threading.Lock()

    def drain() -> list[bl.ShapeRead]:
        found: list[bl.ShapeRead] = []
        while True:
            with take:
                chunk = next(rest, None)
            if chunk is None:
                return found
            found.extend(read(chunk))

    # this thread drains the queue too: one thread (and malloc arena) fewer
    helpers = min(threads(), len(ranges) - 1) - 1
    if helpers < 1:
        reads.extend(drain())
    else:
        with ThreadPoolExecutor(helpers) as pool:
            futures = [pool.submit(drain) for _ in range(helpers)]
            reads.extend(drain())
            for future in futures:
                reads.extend(future.result())
    if not reads:
        return None
    shape_of_line = np.full(len(starts), -1, dtype=np.int64)
    parts: list[tuple[np.ndarray, dict[str, np.ndarray]]] = []
    for shape_id, lines, cols in reads:
        shape_of_line[lines] = shape_id
        parts.append((lines, cols))
    fast = _assemble(raw, name, mtime, starts, clean_ends, shape_of_line, parts, glue_sample, glue)
    fast.log.sample = glue_sample  # the whole file's head, for sniffing and meta guesses
    if len(ranges) > 1:
        _return_freed_memory()
    return fast


def _return_freed_memory() -> None:
    """Hand the chunks' freed memory back to the OS before the frames are built (glibc only).

    The per-chunk columns were freed as they were concatenated, but glibc keeps freed memory
    in each thread's malloc arena; without a trim the 1M-record ``.log.json`` peaked ~90 MB
    (0.4x its size) higher on 2 threads and ~50 MB higher on one.
    """
    libc = _libc()
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


@functools.cache
def _libc() -> Any:
    """The process's own C library symbols on Linux (glibc has ``malloc_trim``, musl has not)."""
    import ctypes

    return ctypes.CDLL(None) if sys.platform.startswith("linux") else None


def _assemble(
    raw: bytes,
    name: str,
    mtime: float | None,
    starts: np.ndarray,
    clean_ends: np.ndarray,
    shape_of_line: np.ndarray,
    parts: list[tuple[np.ndarray, dict[str, np.ndarray]]],
    glue_sample: str | None,
    glue: Sequence[GluePrefix],
) -> FastRead:
    read = shape_of_line >= 0
    previous = np.concatenate([[-1], shape_of_line[:-1]])
    run_starts = np.flatnonzero(read & (previous != shape_of_line))
    # a run ends at the first line that is not read or has another shape
    stop = np.flatnonzero(~read | (shape_of_line != np.concatenate([shape_of_line[1:], [-1]])))
    run_ends = stop[np.searchsorted(stop, run_starts)]
    pieces = np.sort(np.concatenate([np.flatnonzero(~read), run_starts]))
    is_placeholder = read[pieces]
    # physical (1-based) line number of each piece: a placeholder counts as its run's last line
    physical = pieces + 1
    physical[is_placeholder] = run_ends + 1
    text_ends = np.where(is_placeholder, clean_ends[pieces], _raw_ends(raw, starts, pieces))
    rest = b"\n".join(
        raw[s:e] for s, e in zip(starts[pieces].tolist(), text_ends.tolist(), strict=True)
    )
    text, n_bad = to_text(rest + b"\n")
    log = normalise(text, name, mtime, glue=glue, glue_sample=glue_sample)
    log.decode_errors = n_bad
    log.ends_with_newline = raw.endswith(b"\n")
    relative = (
        np.arange(1, len(log.lines) + 1) if log.line_nos is None else np.asarray(log.line_nos)
    )
    log.line_nos = physical[relative - 1].tolist()
    # logical index of each placeholder (never split: a read line has no break in it)
    logical = np.searchsorted(relative, np.flatnonzero(is_placeholder) + 1)
    flags = [False] * len(log.lines)
    for index in logical.tolist():
        flags[index] = True
    parts.sort(key=lambda part: int(part[0][0]))  # column order: first appearance in the file
    lines = np.concatenate([p[0] for p in parts])
    run_of_line = np.searchsorted(run_starts, lines, side="right") - 1
    columns = concat_columns([cols for _, cols in parts])
    if len(lines) > 1 and not (np.diff(lines) > 0).all():  # shapes interleaved in a chunk
        order = np.argsort(lines, kind="stable")
        columns = {k: v[order] for k, v in columns.items()}
        lines, run_of_line = lines[order], run_of_line[order]
    columns["_line"] = logical[run_of_line]
    # ``_line`` of a read row is its placeholder's; ``line_no`` keeps its own physical line
    columns["line_no"] = (lines + 1).astype(np.float64)
    return FastRead(columns, log, flags, len(lines))


def _raw_ends(raw: bytes, starts: np.ndarray, pieces: np.ndarray) -> np.ndarray:
    """End of each piece's line in the raw bytes, keeping a ``\\r`` (normalise handles it)."""
    nxt = np.concatenate([starts[1:] - 1, [len(raw) - (1 if raw.endswith(b"\n") else 0)]])
    return nxt[pieces]


def concat_columns(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Row-wise concatenation of column dicts: the union of keys, NaN (or NaT) where absent.

    Each part's column is released as soon as it is copied, so that the peak memory is the
    result plus one column, not twice the columns (the parts are emptied).
    """
    if len(parts) == 1:
        return dict(parts[0])
    keys = list(dict.fromkeys(k for part in parts for k in part))
    sizes = [len(next(iter(part.values()))) for part in parts]
    out = {}
    for key in keys:
        like = next(part[key] for part in parts if key in part)
        pad = np.datetime64("NaT") if like.dtype.kind == "M" else np.nan
        out[key] = np.concatenate(
            [
                part.pop(key) if key in part else np.full(size, pad, like.dtype)
                for part, size in zip(parts, sizes, strict=True)
            ]
        )
    return out


def physical_lines(log: LogText, logical: np.ndarray) -> np.ndarray:
    """Logical line indices of the rest log (float, NaN allowed) -> physical 1-based numbers."""
    mapping = np.asarray(
        log.line_nos if log.line_nos is not None else np.arange(1, len(log.lines) + 1),
        dtype=np.float64,
    )
    out = np.full(len(logical), np.nan)
    present = ~np.isnan(logical)
    out[present] = mapping[logical[present].astype(np.int64)]
    return out


def fill_line_no(log: LogText, columns: dict[str, Any], n: int | None = None) -> None:
    """Give every row a physical ``line_no``: rows from the rest log get theirs from ``_line``.

    Rows read by the fast path (or evaluations placed at one) carry it already; the others have
    none (NaN/None) and a ``_line`` that indexes the rest log. ``n``: rows when the columns
    may all be missing (an empty table).
    """
    n = len(columns["_line"]) if "_line" in columns else (n or 0)
    if not n or "_line" not in columns:
        return
    given = columns.get("line_no")
    if given is None:
        line_no = np.full(n, np.nan)
    elif isinstance(given, np.ndarray) and given.dtype == np.float64:
        line_no = given.copy()  # fast-path rows: already float, NaN where missing
    else:
        line_no = np.array([np.nan if v is None else v for v in given], dtype=np.float64)
    missing = np.isnan(line_no)
    if missing.any():
        logical = np.asarray(columns["_line"], dtype=np.float64)[missing]
        line_no[missing] = physical_lines(log, logical)
    columns["line_no"] = line_no
