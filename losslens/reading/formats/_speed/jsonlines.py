"""JSON-lines logs (one JSON object per line): whole-buffer decoding with a per-line fallback.

The JSON side files of the frameworks (mmcv ``*.log.json``, mmengine ``scalars.json``) are
written with Python's ``json`` module, so they may hold the bare ``NaN`` / ``Infinity`` literals
that strict parsers reject; :func:`json.loads` accepts them. The fast path decodes the whole
file in one call; only when that fails does each line get decoded on its own, so that every bad
line (a truncated last line, a pasted fragment) is reported with its physical line number and
records glued onto one line (``{...}{...}``) are still read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from losslens.reading.formats._common import MAX_COUNTER, SkippedLine, counter_value, skipped_line
from losslens.reading.formats._speed.fastjson import JsonShape
from losslens.reading.formats._speed.fasttext import FastRead
from losslens.reading.text import LogText

_DECODER = json.JSONDecoder()
#: Decoding a line raises these: bad JSON, or nesting deeper than Python's recursion limit.
DECODE_ERRORS = (ValueError, RecursionError)
#: A record wrapped over several lines (``fold -w 2000``) is re-joined from at most this many
#: consecutive lines of at most this many characters together; beyond that, each line is skipped.
MAX_WRAPPED_PIECES = 64
MAX_WRAPPED_CHARS = 1 << 22
#: A join failing this close to its end may have a token cut in two there (``3.``, ``Infini``).
_CUT_TOKEN = 16
#: Counters (``iter``, ``epoch`` ...) beyond this do not fit the Int64 columns of the frames.
CUT_OFF = "a record cut off before its end (the record after it on the line is kept)"
NOT_AN_OBJECT = "a JSON value that is not an object"


@dataclass
class JsonRecords:
    """The JSON objects of a log and the logical line index each one came from.

    ``wrapped`` holds, for each record re-joined from several lines, its first line's logical
    index and its number of lines.
    """

    records: list[dict[str, Any]] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    skipped: list[SkippedLine] = field(default_factory=list)
    wrapped: list[tuple[int, int]] = field(default_factory=list)


def read_records(
    log: LogText, skip: list[bool] | None = None, counters: tuple[str, ...] = ()
) -> JsonRecords:
    """Decode every line of ``log`` into a dict; lines that are not JSON objects are skipped.

    ``skip`` flags lines not to read (the placeholders of lines the fast path read). A record
    whose ``counters`` (``iter``, ``epoch`` ...) are not integers is skipped
    (:func:`check_counters`).
    """
    indices = [
        i for i, line in enumerate(log.lines) if line.strip() and (skip is None or not skip[i])
    ]
    try:
        decoded = json.loads("[" + ",".join(log.lines[i] for i in indices) + "]")
    except DECODE_ERRORS:
        decoded = None
    # a line wrapped inside a string joins with its rest through the comma: fewer items
    if (
        decoded is not None
        and len(decoded) == len(indices)
        and all(isinstance(item, dict) for item in decoded)
    ):
        out = JsonRecords(decoded, indices)
    else:
        out = _read_line_by_line(log, indices)
    return check_counters(out, log, counters) if counters else out


def _read_line_by_line(log: LogText, indices: list[int]) -> JsonRecords:
    """Each line on its own; a line that does not decode is re-joined with the lines after it
    when together they decode (a record wrapped over several lines), else skipped."""
    out = JsonRecords()
    alone = [_decode_glued(log.lines[i]) for i in indices]
    k = 0
    while k < len(indices):
        index = indices[k]
        objects, bad = alone[k]
        pieces = _wrapped_pieces(log, indices, alone, k) if bad else 0
        if pieces:
            text = "".join(log.lines[i] for i in indices[k : k + pieces])
            objects, bad = _decode_glued(text)
            out.wrapped.append((index, pieces))
        out.records.extend(objects)
        out.lines.extend([index] * len(objects))
        line_no = log.line_no(index)
        out.skipped.extend(SkippedLine(line_no, text, reason) for text, reason in bad)
        k += max(pieces, 1)
    return out


def _wrapped_pieces(
    log: LogText, indices: list[int], alone: list[tuple[list[Any], list[Any]]], k: int
) -> int:
    """How many lines from ``indices[k]`` on join into JSON objects (0: none do).

    Only a line that starts a record (``{``) and lines after it that do not decode alone and
    follow it directly are joined, and only while the join fails at its end (inside a string
    or a token cut in two: it goes on).
    """
    text = log.lines[indices[k]].strip()
    if not text.startswith("{"):
        return 0
    for pieces in range(2, MAX_WRAPPED_PIECES + 1):
        last = k + pieces - 1
        if last >= len(indices) or indices[last] != indices[last - 1] + 1 or not alone[last][1]:
            return 0
        text += log.lines[indices[last]]
        if len(text) > MAX_WRAPPED_CHARS:
            return 0
        try:
            _DECODER.raw_decode(text.strip())
        except json.JSONDecodeError as error:
            near_end = error.pos >= len(text.strip()) - _CUT_TOKEN
            if not near_end and not error.msg.startswith("Unterminated"):
                return 0
            continue
        except RecursionError:
            return 0
        if not _decode_glued(text)[1]:
            return pieces
        return 0
    return 0


def _decode_glued(line: str) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """One line -> its JSON objects (several when records were glued) and its unreadable parts
    with the reason each was not read.

    A record cut off mid-write and glued to the next one (a crash, then a resumed run writing
    on) is an unreadable part; the complete record after it is kept.
    """
    text = line.strip()
    objects: list[dict[str, Any]] = []
    pos = 0
    while pos < len(text):
        got = _decode_rest(text, pos)
        if got is not None:
            return objects + got, []
        item, end, reason = _decode_one(text, pos)
        if item is not None:
            objects.append(item)
            pos = _skip_separators(text, end)
            continue
        restart = _restart(text, pos)
        if restart is None:
            return objects, [(text[pos:], reason)]
        return objects + restart[1], [(text[pos : restart[0]], CUT_OFF)]
    return objects, []


def _decode_one(text: str, pos: int) -> tuple[dict[str, Any] | None, int, str]:
    try:
        item, end = _DECODER.raw_decode(text, pos)
    except json.JSONDecodeError as error:
        return None, pos, f"not JSON: {error.msg} (column {error.colno})"
    except RecursionError:
        return None, pos, "JSON nested too deeply to read"
    if not isinstance(item, dict):
        return None, pos, NOT_AN_OBJECT
    return item, end, ""


def _decode_rest(text: str, pos: int) -> list[dict[str, Any]] | None:
    """Every object from ``pos`` to the end of ``text``; None unless all of it decodes."""
    objects = []
    while pos < len(text):
        item, end, _ = _decode_one(text, pos)
        if item is None:
            return None
        objects.append(item)
        pos = _skip_separators(text, end)
    return objects


def _skip_separators(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t,":
        pos += 1
    return pos


#: At most this many later ``{`` of a bad line are tried as the start of a record glued on.
_MAX_RESTARTS = 64


def _restart(text: str, pos: int) -> tuple[int, list[dict[str, Any]]] | None:
    """The first ``{`` after ``pos`` from which the rest of the line decodes, and its objects."""
    at = pos
    for _ in range(_MAX_RESTARTS):
        at = text.find("{", at + 1)
        if at < 0:
            return None
        got = _decode_rest(text, at)
        if got:
            return at, got
    return None


def check_counters(decoded: JsonRecords, log: LogText, counters: tuple[str, ...]) -> JsonRecords:
    """Keep the records whose ``counters`` are integers (an integral float such as ``60.0``
    and a quoted integer such as ``"100"`` are read as the integer); skip the others, saying
    which counter was what."""
    out = JsonRecords(skipped=list(decoded.skipped), wrapped=decoded.wrapped)
    for record, index in zip(decoded.records, decoded.lines, strict=True):
        reason = fix_counters(record, counters)
        if reason:
            out.skipped.append(skipped_line(log, index, reason))
            continue
        out.records.append(record)
        out.lines.append(index)
    return out


def fix_counters(record: dict[str, Any], counters: tuple[str, ...]) -> str:
    """Turn ``record``'s counters into ints in place; the reason when one is not an integer
    (:func:`~losslens.reading.formats._common.counter_value`)."""
    for key in counters:
        if key not in record:
            continue
        number = counter_value(record[key])
        if number is None:
            shown = json.dumps(record[key])[:40]
            return f"{key} is {shown}, expected an integer of at most {MAX_COUNTER}"
        record[key] = number
    return ""


def records_frame(records: list[dict[str, Any]], lines: list[int]) -> pd.DataFrame:
    """Records -> one DataFrame (columns in first-seen order) with a private ``_line`` column."""
    frame = pd.DataFrame.from_records(records) if records else pd.DataFrame()
    frame["_line"] = np.asarray(lines, dtype="int64")
    return frame


@dataclass
class JsonTable:
    """Every record of a JSON-lines log as one frame in file order, and where each row came from.

    ``frame`` has a ``RangeIndex`` (row ``i`` is record ``i`` of the file) and a private ``_line``
    (file order; the logical line index of the log for rows read per line). A row was either
    decoded per line (``records[rec[i]]``) or read by the fast path as shape ``shape[i]`` (see
    :mod:`losslens.reading.formats._speed.fastjson`); ``rec`` / ``shape`` are -1 where not.
    """

    frame: pd.DataFrame
    records: list[dict[str, Any]]
    rec: np.ndarray
    shape: np.ndarray
    shape_keys: list[frozenset[str]]
    skipped: list[SkippedLine]
    #: Whether the text holds a bare ``NaN`` anywhere (see :func:`drop_empty_columns`).
    has_nan: bool
    #: Records re-joined from several lines: (first line's logical index, number of lines).
    wrapped: list[tuple[int, int]] = field(default_factory=list)

    def record(self, row: int) -> dict[str, Any] | None:
        """The decoded dict of a row read per line; None for a row the fast path read."""
        rec = int(self.rec[row])
        return self.records[rec] if rec >= 0 else None

    def has_key(self, rows: np.ndarray, key: str) -> bool:
        """Does any of ``rows`` (positions in ``frame``) hold ``key`` (whatever its value)?"""
        recs = self.rec[rows]
        if any(key in self.records[r] for r in recs[recs >= 0].tolist()):
            return True
        shapes = np.unique(self.shape[rows])
        return any(key in self.shape_keys[s] for s in shapes[shapes >= 0].tolist())


def table_from_records(decoded: JsonRecords, text: str) -> JsonTable:
    """The per-line path: every record decoded by :func:`read_records`."""
    frame = records_frame(decoded.records, decoded.lines)
    n = len(decoded.records)
    return JsonTable(
        frame,
        decoded.records,
        np.arange(n),
        np.full(n, -1),
        [],
        list(decoded.skipped),
        "NaN" in text,
        list(decoded.wrapped),
    )


def table_from_fast(
    fast: FastRead,
    shapes: list[JsonShape],
    decoded: JsonRecords,
    *,
    line_no: bool = True,
) -> JsonTable:
    """The fast path: the rows ``fast`` read and the records of the rest log, in file order.

    Columns come in the order of their first appearance in the file, as
    :func:`records_frame` has them; ``line_no`` (physical) is added when ``line_no`` is set
    (the rows the fast path read have no logical line of their own in the rest log).
    """
    log = fast.log
    cols = fast.columns
    fast_line = np.asarray(cols.pop("_line"), dtype=np.int64)
    fast_shape = np.asarray(cols.pop("_shape"), dtype=np.int64)
    fast_no = cols.pop("line_no")
    # a NaN the fast path read (not the padding of keys another shape lacks)
    fast_nan = any(
        np.isnan(cols[shapes[s].keys[k]][fast_shape == s]).any()
        for s in np.unique(fast_shape).tolist()
        for k in shapes[s].numeric
    )
    n_fast, n_slow = len(fast_line), len(decoded.records)
    slow_line = np.asarray(decoded.lines, dtype=np.int64)
    # the row of each fast and each per-line record in file order (no line holds both)
    order_key = np.concatenate([fast_line, slow_line])
    order = np.argsort(order_key, kind="stable")
    row_of = np.empty(n_fast + n_slow, dtype=np.int64)
    row_of[order] = np.arange(n_fast + n_slow)
    fast_rows, slow_rows = row_of[:n_fast], row_of[n_fast:]
    # first-seen column order: each shape at its first row, each record at its own
    first_row = {}
    for s in np.unique(fast_shape).tolist():
        first_row[s] = int(fast_rows[np.argmax(fast_shape == s)])
    appearances = [(row, shapes[s].keys) for s, row in first_row.items()]
    appearances += [
        (int(row), tuple(rec)) for row, rec in zip(slow_rows, decoded.records, strict=True)
    ]
    appearances.sort(key=lambda item: item[0])
    names = list(dict.fromkeys(k for _, keys in appearances for k in keys))
    slow = pd.DataFrame.from_records(decoded.records) if decoded.records else pd.DataFrame()
    n = n_fast + n_slow
    data: dict[str, np.ndarray] = {}
    for name in names:
        fixed = {
            s: text
            for s, shape in enumerate(shapes)
            if name in shape.keys and (text := shape.strings[shape.keys.index(name)]) is not None
        }
        slow_values = slow[name].to_numpy() if name in slow else np.full(n_slow, np.nan)
        # integers beyond 2**53 (a huge counter) would not survive a float64 column
        huge = slow_values.dtype.kind in "iu" and bool((np.abs(slow_values) > 2**53).any())
        if fixed or huge or slow_values.dtype.kind not in "iufb":
            out = np.full(n, np.nan, dtype=object)
            fast_values = cols.pop(name, None)
            if fast_values is not None:
                out[fast_rows] = fast_values
            for s, value in fixed.items():
                out[fast_rows[fast_shape == s]] = value
        else:
            out = np.full(n, np.nan)
            fast_values = cols.pop(name, None)
            if fast_values is not None:
                out[fast_rows] = fast_values
        out[slow_rows] = slow_values
        data[name] = out
    data["_line"] = order_key[order]
    if line_no:
        numbers = np.empty(n)
        numbers[fast_rows] = fast_no
        numbers[slow_rows] = [log.line_no(i) for i in decoded.lines]
        data["line_no"] = numbers
    frame = pd.DataFrame(data, copy=False)
    rec = np.full(n, -1)
    rec[slow_rows] = np.arange(n_slow)
    shape = np.full(n, -1)
    shape[fast_rows] = fast_shape
    has_nan = "NaN" in log.text or any(
        "NaN" in key or "NaN" in (text or "")
        for s in shapes
        for key, text in zip(s.keys, s.strings, strict=True)
    )
    has_nan = has_nan or fast_nan
    return JsonTable(
        frame,
        decoded.records,
        rec,
        shape,
        [frozenset(s.keys) for s in shapes],
        list(decoded.skipped),
        has_nan,
        list(decoded.wrapped),
    )


def wrapped_meta(table: JsonTable | JsonRecords, log: LogText) -> list[dict[str, int]]:
    """``meta["wrapped_records"]``: where each record re-joined from several lines starts
    (physical line number) and how many lines it took."""
    return [{"line_no": log.line_no(i), "lines": n} for i, n in table.wrapped]


def rows(frame: pd.DataFrame, mask: np.ndarray) -> pd.DataFrame:
    """``frame[mask]``, without the copy when every row is kept (a log of training records)."""
    return frame if mask.all() else frame[mask]


def drop_empty_columns(frame: pd.DataFrame, table: JsonTable) -> pd.DataFrame:
    """Drop the data columns no record of ``frame`` has (the other kind of record's keys).

    A column can also be empty because every value was a bare ``NaN`` (a run that diverged):
    that one is kept. Only when the text holds a ``NaN`` literal at all are the records looked at.
    """
    empty = [c for c in frame.columns if not str(c).startswith("_") and frame[c].isna().all()]
    if empty and table.has_nan:
        positions = frame.index.to_numpy()
        empty = [c for c in empty if not table.has_key(positions, c)]
    return frame.drop(columns=empty)


def flatten_dicts(frame: pd.DataFrame) -> pd.DataFrame:
    """Expand dict-valued columns (mmcv logs per-group learning rates as ``"lr": {"backbone": ...}``)
    into ``<column>_<key>`` columns, the names mmcv prints in its text log."""
    for name in list(frame.columns):
        column = frame[name]
        if column.dtype.kind != "O":
            continue
        is_dict = column.map(lambda v: isinstance(v, dict))
        if not is_dict.any():
            continue
        expanded = pd.DataFrame.from_records(
            [v if isinstance(v, dict) else {} for v in column], index=frame.index
        ).add_prefix(f"{name}_")
        rest = column.where(~is_dict)
        position = frame.columns.get_loc(name)
        frame = frame.drop(columns=[name])
        for offset, new in enumerate(expanded.columns):
            frame.insert(int(position) + offset, new, expanded[new])  # type: ignore[arg-type]
        if rest.notna().any():
            frame[name] = rest
    return frame


def numeric_columns(
    frame: pd.DataFrame, keep: tuple[str, ...] = ()
) -> tuple[pd.DataFrame, list[str]]:
    """Keep the numeric columns (bool and numbers; ``None`` -> NaN). Returns the frame and the names
    of the columns dropped because they hold text (mmcv's ``bbox_mAP_copypaste`` strings).

    A column is dropped only when none of its values is a number: a stray string, list or
    object among numbers (a damaged record) reads as NaN there, the other records keep theirs.
    """
    dropped: list[str] = []
    out: dict[str, Any] = {}
    for name in frame.columns:
        column = frame[name]
        if name in keep or name.startswith("_"):
            out[name] = column
            continue
        if column.dtype.kind not in "iufb":  # object or (pandas 3) str
            converted = pd.to_numeric(column.map(_scalar_or_none), errors="coerce")
            if converted.isna().all() and column.notna().any():
                dropped.append(str(name))
                continue
            column = converted
        if column.dtype == bool:
            column = column.astype("float64")
        out[name] = column.astype("float64") if column.dtype.kind in "iufb" else column
    return pd.DataFrame(out, index=frame.index, copy=False), dropped


def _scalar_or_none(value: Any) -> Any:
    """A value ``pd.to_numeric`` can judge: lists and objects (never numbers) become None."""
    return None if isinstance(value, (list, dict)) else value


def previous_rows(train: pd.DataFrame, evals: pd.DataFrame) -> np.ndarray:
    """For each evaluation row, the position of the last training row before it in the file
    (-1 where there is none); both frames carry ``_line``."""
    train_lines = (
        train["_line"].to_numpy(dtype="int64") if "_line" in train else np.zeros(0, "int64")
    )
    return np.searchsorted(train_lines, evals["_line"].to_numpy(dtype="int64")) - 1


def take_previous(values: np.ndarray, before: np.ndarray, fill: float = np.nan) -> np.ndarray:
    """``values[before]`` with ``fill`` where ``before`` is -1 (or there are no values)."""
    if len(values) == 0:
        return np.full(len(before), fill)
    return np.where(before >= 0, values[np.maximum(before, 0)], fill)
