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

from losslens._text import LogText
from losslens.formats._common import SkippedLine
from losslens.formats._fastjson import JsonShape
from losslens.formats._fasttext import FastRead

_DECODER = json.JSONDecoder()


@dataclass
class JsonRecords:
    """The JSON objects of a log and the logical line index each one came from."""

    records: list[dict[str, Any]] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    skipped: list[SkippedLine] = field(default_factory=list)


def read_records(log: LogText, skip: list[bool] | None = None) -> JsonRecords:
    """Decode every line of ``log`` into a dict; lines that are not JSON objects are skipped.

    ``skip`` flags lines not to read (the placeholders of lines the fast path read).
    """
    indices = [
        i for i, line in enumerate(log.lines) if line.strip() and (skip is None or not skip[i])
    ]
    try:
        decoded = json.loads("[" + ",".join(log.lines[i] for i in indices) + "]")
    except ValueError:
        return _read_line_by_line(log, indices)
    if all(isinstance(item, dict) for item in decoded):
        return JsonRecords(decoded, indices, [])
    return _read_line_by_line(log, indices)


def _read_line_by_line(log: LogText, indices: list[int]) -> JsonRecords:
    out = JsonRecords()
    for index in indices:
        objects = _decode_glued(log.lines[index])
        if objects is None:
            out.skipped.append(SkippedLine(log.line_no(index), log.lines[index]))
            continue
        out.records.extend(objects)
        out.lines.extend([index] * len(objects))
    return out


def _decode_glued(line: str) -> list[dict[str, Any]] | None:
    """One line -> its JSON objects (several when records were glued), or None if it is not JSON."""
    text = line.strip()
    objects: list[dict[str, Any]] = []
    pos = 0
    while pos < len(text):
        try:
            item, end = _DECODER.raw_decode(text, pos)
        except ValueError:
            return None
        if not isinstance(item, dict):
            return None
        objects.append(item)
        pos = end
        while pos < len(text) and text[pos] in " \t,":
            pos += 1
    return objects or None


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
    :mod:`losslens.formats._fastjson`); ``rec`` / ``shape`` are -1 where not.
    """

    frame: pd.DataFrame
    records: list[dict[str, Any]]
    rec: np.ndarray
    shape: np.ndarray
    shape_keys: list[frozenset[str]]
    skipped: list[SkippedLine]
    #: Whether the text holds a bare ``NaN`` anywhere (see :func:`drop_empty_columns`).
    has_nan: bool

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
        if fixed or slow_values.dtype.kind not in "iufb":
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
    )


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
    of the columns dropped because they hold text (mmcv's ``bbox_mAP_copypaste`` strings)."""
    dropped: list[str] = []
    out: dict[str, Any] = {}
    for name in frame.columns:
        column = frame[name]
        if name in keep or name.startswith("_"):
            out[name] = column
            continue
        if column.dtype.kind not in "iufb":  # object or (pandas 3) str
            converted = pd.to_numeric(column, errors="coerce")
            if (converted.isna() & column.notna()).any():
                dropped.append(str(name))
                continue
            column = converted
        if column.dtype == bool:
            column = column.astype("float64")
        out[name] = column.astype("float64") if column.dtype.kind in "iufb" else column
    return pd.DataFrame(out, index=frame.index, copy=False), dropped


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
