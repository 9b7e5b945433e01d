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

_DECODER = json.JSONDecoder()


@dataclass
class JsonRecords:
    """The JSON objects of a log and the logical line index each one came from."""

    records: list[dict[str, Any]] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    skipped: list[SkippedLine] = field(default_factory=list)


def read_records(log: LogText) -> JsonRecords:
    """Decode every line of ``log`` into a dict; lines that are not JSON objects are skipped."""
    indices = [i for i, line in enumerate(log.lines) if line.strip()]
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


def drop_empty_columns(
    frame: pd.DataFrame, records: list[dict[str, Any]], text: str
) -> pd.DataFrame:
    """Drop the data columns no record of ``frame`` has (the other kind of record's keys).

    A column can also be empty because every value was a bare ``NaN`` (a run that diverged):
    that one is kept. Only when the text holds a ``NaN`` literal at all are the records looked at.
    """
    empty = [c for c in frame.columns if not str(c).startswith("_") and frame[c].isna().all()]
    if empty and "NaN" in text:
        positions = frame.index.to_numpy()
        empty = [c for c in empty if not any(c in records[i] for i in positions)]
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
    return pd.DataFrame(out, index=frame.index), dropped


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
