"""Vectorised reading of fixed-shape ``key: value`` record lines straight from the raw bytes.

A training log repeats one line shape (the same head, the same keys in the same order) hundreds
of thousands of times. This module reads such lines without making a Python object per line or
per value: the file is a ``uint8`` array, lines are spans between newline positions, and every
field is located and converted with whole-array numpy operations. Floats go through one
``pyarrow`` string -> float64 cast (correctly rounded, like Python's ``float``; ``nan``/``inf``
accepted, anything else rejected).

Shape shorthand used below: ``L`` lines in a chunk, ``K`` keys in a shape, ``B`` bytes in a chunk.

Everything here is strict: a line is *read* only when every byte of its head, every key and every
separator is exactly where the shape says, and every value converts. Anything else is returned
as "not read" and goes to the format's per-line parser, so a line read here yields exactly the
values the per-line parser would give it (``tests/test_fast_path.py`` checks that on the corpus).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

NEWLINE, CR, TAB, SPACE = 10, 13, 9, 32
COLON, COMMA, DASH, DOT = 58, 44, 45, 46
#: Bytes per chunk of the file processed at once: keeps the byte-sized temporaries (masks,
#: comparisons) small next to the file itself.
CHUNK_BYTES = 1 << 23
#: Most digits an integer field (epoch, iteration, ETA hours) may have in the fast path.
MAX_INT_DIGITS = 12


def line_spans(buf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start (inclusive) and end (exclusive, before the newline) of every physical line.

    ``buf: uint8[B]``. A last line without a newline is included; an empty trailing piece after
    a final newline is not.
    """
    parts = []
    for lo in range(0, len(buf), CHUNK_BYTES):
        parts.append(np.flatnonzero(buf[lo : lo + CHUNK_BYTES] == NEWLINE) + lo)
    newlines = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    starts = np.concatenate([[0], newlines + 1]).astype(np.int64)
    ends = np.concatenate([newlines, [len(buf)]]).astype(np.int64)
    if len(buf) and buf[-1] == NEWLINE:
        starts, ends = starts[:-1], ends[:-1]
    return starts, ends


def chunks(starts: np.ndarray, ends: np.ndarray) -> Iterator[slice]:
    """Consecutive line ranges each spanning about :data:`CHUNK_BYTES` bytes."""
    n = len(starts)
    lo = 0
    while lo < n:
        hi = int(np.searchsorted(starts, starts[lo] + CHUNK_BYTES, side="left"))
        hi = max(hi, lo + 1)
        yield slice(lo, hi)
        lo = hi


#: Zero bytes after the end of a chunk (see :func:`padded`): reads a little past a line's end
#: (digit scans, literal checks) stay inside the array and see bytes that match nothing.
PAD = 64


def padded(buf: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """A copy of ``buf[lo:hi]`` followed by :data:`PAD` zero bytes: the chunk the readers use."""
    out = np.zeros(hi - lo + PAD, dtype=np.uint8)
    out[: hi - lo] = buf[lo:hi]
    return out


def at(buf: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """``buf[pos]``; ``buf`` is padded (see :func:`padded`) so reads past a line's end are safe."""
    return buf[pos]


def literal_at(buf: np.ndarray, pos: np.ndarray, literal: bytes) -> np.ndarray:
    """Mask: ``buf[pos : pos + len(literal)] == literal`` for every position (8 bytes a step)."""
    ok = np.ones(len(pos), dtype=bool)
    words = np.ndarray((len(buf) - 7,), dtype="<u8", buffer=buf, strides=(1,))
    for j in range(0, len(literal), 8):
        block = literal[j : j + 8]
        expected = int.from_bytes(block, "little")
        got = words[pos + j]
        if len(block) < 8:
            got = got & np.uint64((1 << (8 * len(block))) - 1)
        ok &= got == np.uint64(expected)
    return ok


def literal_before(buf: np.ndarray, end: np.ndarray, literal: bytes) -> np.ndarray:
    """Mask: ``buf[end - len(literal) : end] == literal`` (``end`` exclusive)."""
    return (end >= len(literal)) & literal_at(buf, np.maximum(end - len(literal), 0), literal)


def scan_uint(buf: np.ndarray, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Read the decimal digits starting at ``pos``: (value as int64, end position).

    ``end == pos`` where there is no digit; more than :data:`MAX_INT_DIGITS` digits stop there
    (the caller's next literal check then fails).
    """
    value = np.zeros(len(pos), dtype=np.int64)
    end = pos.copy()
    active = np.ones(len(pos), dtype=bool)
    for j in range(MAX_INT_DIGITS):
        digit = at(buf, pos + j).astype(np.int64) - 48
        active &= (digit >= 0) & (digit <= 9)
        if not active.any():
            break
        value = np.where(active, value * 10 + digit, value)
        end += active
    return value, end


def fixed_digits(buf: np.ndarray, pos: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Exactly ``width`` digits at ``pos``: (value, mask of positions where they are digits)."""
    value = np.zeros(len(pos), dtype=np.int64)
    ok = np.ones(len(pos), dtype=bool)
    for j in range(width):
        digit = at(buf, pos + j).astype(np.int64) - 48
        ok &= (digit >= 0) & (digit <= 9)
        value = value * 10 + digit
    return value, ok


def floats(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Parse the byte spans ``[starts, ends)`` as numbers: (float64 values, mask of valid ones).

    The spans' bytes are gathered back to back and converted with one pyarrow cast; when some
    span is not a number, the valid ones are found and cast alone.
    """
    n = len(starts)
    if n == 0:
        return np.zeros(0), np.zeros(0, dtype=bool)
    lengths = ends - starts
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    # gather the spans' bytes back to back: index = span start + position within the span
    data = buf[np.repeat(starts - offsets[:-1], lengths) + np.arange(offsets[-1])]
    text = pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data))
    ok = lengths > 0
    try:
        if not ok.all() or (data == ord("(")).any():  # pyarrow reads 'nan(1)', Python does not
            raise pa.ArrowInvalid("not a plain number")
        return pc.cast(text, pa.float64()).to_numpy(zero_copy_only=False), ok
    except pa.ArrowInvalid:
        ok &= np.asarray(pc.match_substring_regex(text, _NUMBER_RE).to_numpy(zero_copy_only=False))
        out = np.full(n, np.nan)
        out[ok] = pc.cast(text.filter(pa.array(ok)), pa.float64()).to_numpy(zero_copy_only=False)
        return out, ok


#: What both Python's ``float`` and pyarrow's cast read, and read alike.
_NUMBER_RE = r"^[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|(?i:nan|inf|infinity))$"


def timestamps_ymd_hms_ms(
    buf: np.ndarray, pos: np.ndarray, date_sep: int, ms_sep: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """``YYYY?MM?DD HH:MM:SS`` (+ ``<ms_sep>mmm``) at ``pos``: (datetime64[us], valid mask).

    ``date_sep`` is ``-`` (python logging) or ``/`` (mmengine). Impossible dates (month 13,
    February 30) are invalid here, as ``pandas.to_datetime(errors='coerce')`` makes them NaT.
    The stamps' bytes are gathered as one ``[L, 24]`` block (three 8-byte gathers), the fields
    come out of whole-column arithmetic and the day number from integer arithmetic (numpy's
    calendar conversions cost more than the rest of the stamp put together).
    """
    width = 19 if ms_sep is None else 23
    if len(pos) == 0:
        return np.zeros(0, dtype="datetime64[us]"), np.zeros(0, dtype=bool)
    block = byte_rows(buf, pos, width)  # uint8[L, 24]; buf is padded
    cols = _STAMP_DIGITS if ms_sep is None else _STAMP_DIGITS_MS
    digits = block[:, cols] - np.uint8(48)  # uint8 wraps below '0'
    ok = (digits < 10).all(axis=1)
    ok &= (block[:, 4] == date_sep) & (block[:, 7] == date_sep) & (block[:, 10] == SPACE)
    ok &= (block[:, 13] == COLON) & (block[:, 16] == COLON)
    if ms_sep is not None:
        ok &= block[:, 19] == ms_sep
    # the 14 date-time digits are 7 two-digit numbers: century, year, month, ..., second
    pairs = digits[:, 0:14:2].astype(np.int64) * 10 + digits[:, 1:14:2]
    year = pairs[:, 0] * 100 + pairs[:, 1]
    month, day, hour, minute, second = (pairs[:, k] for k in range(2, 7))
    millis: np.ndarray | int = 0
    if ms_sep is not None:
        ms = digits[:, 14:17].astype(np.int64)
        millis = ms[:, 0] * 100 + ms[:, 1] * 10 + ms[:, 2]
    ok &= (month >= 1) & (month <= 12) & (day >= 1) & (hour < 24) & (minute < 60) & (second < 60)
    year, month = np.clip(year, 1, 9999), np.clip(month, 1, 12)
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    ok &= day <= _MONTH_DAYS[month - 1] + (leap & (month == 2))
    micros = (_days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second) * (
        1_000_000
    ) + millis * 1000
    out = micros.astype("datetime64[us]")
    out[~ok] = np.datetime64("NaT")
    return out, ok


def _round8(width: int) -> int:
    return (width + 7) // 8 * 8


def byte_rows(buf: np.ndarray, pos: np.ndarray, width: int) -> np.ndarray:
    """``uint8[L, width rounded up to 8]``: row ``i`` is ``buf[pos[i] :]``'s first bytes.

    Gathered 8 bytes at a time (one ``uint64`` gather per 8 columns); ``buf`` must hold the
    rounded width after every position (a padded chunk does, see :func:`padded`).
    """
    n_words = _round8(width) // 8
    words = np.ndarray((len(buf) - 7,), dtype="<u8", buffer=buf, strides=(1,))
    out = np.empty((len(pos), n_words), dtype="<u8")
    for j in range(n_words):
        out[:, j] = words[pos + 8 * j]
    return out.view(np.uint8)


_STAMP_DIGITS = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18]
_STAMP_DIGITS_MS = [*_STAMP_DIGITS, 20, 21, 22]


_MONTH_DAYS = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])


def _days_from_civil(year: np.ndarray, month: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 of proleptic Gregorian dates (years 1-9999), in integer arithmetic.

    March-based years put the leap day last: a year's days before each month are then
    ``(153 * m + 2) // 5`` for ``m`` months since March.
    """
    y = year - (month <= 2)
    from_march = np.where(month > 2, month - 3, month + 9)
    day_of_year = (153 * from_march + 2) // 5 + day - 1
    return y * 365 + y // 4 - y // 100 + y // 400 + day_of_year - 719_468


@dataclass
class KeySpans:
    """Where the ``K`` keys of a shape sit in each of ``L`` lines, and their value spans."""

    ok: np.ndarray  # bool[L]: every key and separator where the shape says
    value_starts: np.ndarray  # int64[L, K]
    value_ends: np.ndarray  # int64[L, K]


def key_spans(
    buf: np.ndarray,
    colons: np.ndarray,
    line_end: np.ndarray,
    keys: list[bytes],
    item_sep: bytes | list[bytes],
    first_key_start: np.ndarray,
) -> KeySpans:
    """Check the keys of lines whose ``": "`` positions are ``colons: int64[L, K]``.

    Key ``k`` must end at ``colons[:, k]``; key 0 must start at ``first_key_start``; key ``k > 0``
    must be preceded by ``item_sep`` (or ``item_sep[k - 1]`` when it is a list), which ends
    value ``k - 1``; the last value ends at ``line_end``.
    """
    n_keys = colons.shape[1]
    value_starts = colons + 2
    value_ends = np.empty_like(colons)
    # the bytes that must be there, as (colon k, offset from it, expected 8-byte word, mask)
    checks: list[tuple[int, int, bytes]] = []
    for k, key in enumerate(keys):
        sep = b"" if k == 0 else item_sep if isinstance(item_sep, bytes) else item_sep[k - 1]
        literal = sep + key
        checks.extend((k, -len(literal) + j, literal[j : j + 8]) for j in range(0, len(literal), 8))
        if k:
            value_ends[:, k - 1] = colons[:, k] - len(literal)
    ok = colons[:, 0] - len(keys[0]) == first_key_start
    ok &= _words_match(buf, colons, checks)
    value_ends[:, n_keys - 1] = line_end
    ok &= (value_ends >= value_starts).all(axis=1)
    return KeySpans(ok, value_starts, value_ends)


def _words_match(
    buf: np.ndarray, colons: np.ndarray, checks: list[tuple[int, int, bytes]]
) -> np.ndarray:
    """Mask of rows where every ``(colon k, offset, bytes)`` check holds: one gather for all."""
    words = np.ndarray((len(buf) - 7,), dtype="<u8", buffer=buf, strides=(1,))
    cols = np.array([k for k, _, _ in checks])
    offsets = np.array([off for _, off, _ in checks])
    expected = np.array([int.from_bytes(b, "little") for _, _, b in checks], dtype=np.uint64)
    masks = np.array([(1 << (8 * len(b))) - 1 for _, _, b in checks], dtype=np.uint64)
    got = words[colons[:, cols] + offsets] & masks  # [L, checks]
    return (got == expected).all(axis=1)


def colon_positions(buf: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Positions of ``": "`` in ``buf[lo:hi]`` (absolute)."""
    colons = np.flatnonzero(buf[lo:hi] == COLON) + lo
    return colons[buf[colons + 1] == SPACE]  # buf is padded: colons + 1 is in range


def eta_seconds(
    buf: np.ndarray, starts: np.ndarray, ends: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``str(timedelta)`` spans (``0:03:53``, ``1 day, 5:45:02``, ``3 days, 4:37:24``) -> seconds.

    Negative and fractional-second renderings are left invalid (the per-line parser reads them).
    """
    first, after_first = scan_uint(buf, starts)
    ok = after_first > starts
    has_days = literal_at(buf, after_first, b" day")
    plural = has_days & (at(buf, after_first + 4) == ord("s"))
    clock_start = np.where(has_days, after_first + 4 + plural + 2, starts)
    ok &= ~has_days | literal_at(buf, after_first + 4 + plural, b", ")
    hours, after_hours = scan_uint(buf, clock_start)
    ok &= (after_hours > clock_start) & (at(buf, after_hours) == COLON)
    minutes, ok_m = fixed_digits(buf, after_hours + 1, 2)
    seconds, ok_s = fixed_digits(buf, after_hours + 4, 2)
    ok &= ok_m & ok_s & (at(buf, after_hours + 3) == COLON) & (after_hours + 6 == ends)
    days = np.where(has_days, first, 0)
    total = days * 86400 + hours * 3600 + minutes * 60 + seconds
    return total.astype(np.float64), ok


#: Longest integer value read by :func:`json_floats` (beyond, a JSON integer literal may be
#: one that float64 does not hold exactly; those values go to the per-line path).
_JSON_EXACT_INT = 1e15
_DOT_E, _DOT_E_MASK = 0x652E, 0x2000  # b".e" as a little-endian uint16; 0x2000 makes "E" "e"


def _is_digit(values: np.ndarray) -> np.ndarray:
    return (values - np.uint8(48)) < 10  # uint8 wraps below '0'


def json_floats(
    buf: np.ndarray, starts: np.ndarray, ends: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The spans ``[starts, ends)`` as JSON number values: (float64 values, valid mask).

    Valid: what :func:`json.loads` reads as a number, ``-?(0|[1-9]\\d*)(\\.\\d+)?([eE][+-]?\\d+)?``,
    and the bare ``NaN``, ``Infinity``, ``-Infinity`` Python's ``json`` writes. pyarrow's cast
    (see :func:`floats`) also takes ``+1``, ``.5``, ``1.``, ``1.e5``, ``01``, ``nan``, ``inf``:
    those spans are invalid here, so that their lines go to the per-line path, which decides
    about them. So are, to stay exact without reading every byte, ``-0`` and ``-0.0`` (Python's
    ``json`` makes the int 0 of the first) and magnitudes from 1e15 (an integer literal there
    may not be exact in float64).
    """
    values, ok = floats(buf, starts, ends)
    if len(starts) == 0:
        return values, ok
    first = at(buf, starts)
    minus = first == DASH
    lead = at(buf, starts + minus)
    number = (_is_digit(first) | minus) & _is_digit(lead)
    # no leading zero ("01"), no point at the end ("1.")
    number &= ~(
        (lead == ord("0")) & (starts + minus + 1 < ends) & _is_digit(at(buf, starts + minus + 1))
    )
    number &= at(buf, np.maximum(ends - 1, 0)) != DOT
    number &= ~((values == 0) & np.signbit(values))
    number &= ~(np.abs(values) >= _JSON_EXACT_INT)
    ok &= number | _json_special(buf, starts, ends, ok & ~number)
    dot_e = _dot_e_spans(buf, starts, ends, ok)
    if dot_e is not None:
        ok &= ~dot_e
    if not ok.all():
        values = np.where(ok, values, np.nan)
    return values, ok


def _json_special(
    buf: np.ndarray, starts: np.ndarray, ends: np.ndarray, where: np.ndarray
) -> np.ndarray:
    """Mask: the span is exactly ``NaN``, ``Infinity`` or ``-Infinity`` (checked at ``where``)."""
    out = np.zeros(len(starts), dtype=bool)
    idx = np.flatnonzero(where)
    if len(idx):
        s, length = starts[idx], ends[idx] - starts[idx]
        out[idx] = (
            ((length == 3) & literal_at(buf, s, b"NaN"))
            | ((length == 8) & literal_at(buf, s, b"Infinity"))
            | ((length == 9) & literal_at(buf, s, b"-Infinity"))
        )
    return out


def _dot_e_spans(
    buf: np.ndarray, starts: np.ndarray, ends: np.ndarray, ok: np.ndarray
) -> np.ndarray | None:
    """Mask of the spans holding ``.e`` or ``.E`` (``1.e5``); None when no span does.

    The spans are in file order; the chunk between the first and the last is scanned as
    ``uint16`` words (one comparison a byte), positions are looked up only when there is a hit.
    """
    lo, hi = int(starts[0]), int(ends.max())
    if hi - lo < 2:
        return None
    words = np.ndarray((hi - lo - 1,), dtype="<u2", buffer=buf, offset=lo, strides=(1,))
    hits = (words | np.uint16(_DOT_E_MASK)) == np.uint16(_DOT_E)
    if not hits.any():
        return None
    found = np.flatnonzero(hits) + lo
    order = np.argsort(starts, kind="stable")
    span = np.searchsorted(starts[order], found, side="right") - 1
    inside = (span >= 0) & (found + 1 < ends[order][np.maximum(span, 0)])
    out = np.zeros(len(starts), dtype=bool)
    out[order[span[inside]]] = True
    return out & ok


S = TypeVar("S")
_SHAPES_LOCK = threading.Lock()
#: What one shape read from a chunk gives: (shape index, chunk positions read, columns).
ShapeRead = tuple[int, np.ndarray, dict[str, np.ndarray]]


def read_by_shape(
    todo: np.ndarray,
    n_keys: np.ndarray,
    shapes: list[S],
    shape_of_line: Callable[[int], S | None],
    read: Callable[[np.ndarray, S], tuple[np.ndarray, dict[str, np.ndarray]]],
    max_new: int,
) -> list[ShapeRead]:
    """Read the candidate lines ``todo`` of a chunk shape by shape.

    Known ``shapes`` (kept across chunks) are tried first, each on the lines with its number of
    keys (``n_keys``: ``key: value`` colons per line); then the first unread line's shape is
    derived (``shape_of_line``; None = not readable here) and tried, at most ``max_new`` new
    shapes per chunk. Lines no shape reads are left for the per-line path.
    """
    found: list[ShapeRead] = []
    tried = shape_id = 0
    while len(todo):
        if shape_id == len(shapes):
            if tried == max_new:
                break
            tried += 1
            shape = shape_of_line(int(todo[0]))
            with _SHAPES_LOCK:  # chunks may be read on several threads (``_fasttext``)
                known = shape is not None and shape in shapes
                if shape is None or (known and shapes.index(shape) < shape_id):
                    todo = todo[1:]  # not readable here, or tried on this line already
                    continue
                if not known:  # else another thread just added it: tried in turn below
                    shapes.append(shape)
        shape = shapes[shape_id]
        keys: Sequence[Any] = shape.keys  # type: ignore[attr-defined]
        fits = todo[n_keys[todo] == len(keys)]
        if len(fits):
            positions, cols = read(fits, shape)
            if len(positions):
                found.append((shape_id, positions, cols))
                todo = np.setdiff1d(todo, positions, assume_unique=True)
        shape_id += 1
    return found


def key_values(
    buf: np.ndarray,
    spans: KeySpans,
    keep: np.ndarray,
    keys: Sequence[bytes],
    columns: Sequence[str | None],
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The values of the ``keep`` lines' ``key: value`` items, one column per item.

    ``columns[k]`` names item ``k``'s column (None: a text value, not read); the ``eta`` item
    becomes ``eta_s`` seconds. Returns the columns and a mask of the rows whose values all read.
    """
    numeric = [k for k, c in enumerate(columns) if c is not None and keys[k] != b"eta"]
    values, good = floats(
        buf,
        spans.value_starts[keep][:, numeric].ravel(),
        spans.value_ends[keep][:, numeric].ravel(),
    )
    values = values.reshape(len(keep), len(numeric))
    row_ok: np.ndarray = np.asarray(good.reshape(len(keep), len(numeric)).all(axis=1))
    out = {str(columns[k]): values[:, j] for j, k in enumerate(numeric)}
    for k, key in enumerate(keys):
        if key == b"eta":
            out["eta_s"], eta_ok = eta_seconds(
                buf, spans.value_starts[keep, k], spans.value_ends[keep, k]
            )
            row_ok &= eta_ok
    return out, row_ok
