"""Records -> DataFrames with a fixed schema and dtypes.

Parsers accumulate column-wise (:class:`Columns`) and hand the result to the ``*_frame``
functions here, which own the schema every format shares:

``train``
    ``epoch`` (Int64, NA for iteration-based training, 1-based), ``iter`` (Int64, as printed),
    ``step`` (Int64, global 1-based training iteration), ``segment`` (Int64, 0 for the first run
    in the file, +1 each time the step goes backwards: a resumed run appended to the file),
    ``timestamp`` (datetime64, where the lines carry one), then ``lr``, ``eta_s``, ``time_s``,
    ``data_time_s``, ``memory_mb`` where present, then every other numeric key under its logged
    name (float64; ``nan``/``inf`` kept).
``evals``
    one row per evaluation: ``epoch``, ``iter`` (as printed on the eval line), ``step``,
    ``segment``, ``timestamp``, then one float64 column per metric.
``per_class``
    long: ``eval_index`` (row of ``evals``), ``epoch``, ``step``, ``task``, ``iou_thr``,
    ``class``, ``gts``, ``dets``, ``recall``, ``ap``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from contextvars import ContextVar
from typing import Any

import numpy as np
import pandas as pd

#: Columns with integer meaning (nullable Int64).
INT_COLUMNS = ("epoch", "iter", "step", "segment", "eval_index", "gts", "dets", "line_no")
#: Bookkeeping columns of the train/evals tables: where a record stands, not what it measured.
INDEX_COLUMNS = ("epoch", "iter", "step", "segment", "timestamp", "line_no")
#: Leading columns of the train table, in order, where present.
TRAIN_LEAD = (
    "epoch",
    "iter",
    "step",
    "segment",
    "timestamp",
    "lr",
    "eta_s",
    "time_s",
    "data_time_s",
    "memory_mb",
)
EVAL_LEAD = ("epoch", "iter", "step", "segment", "timestamp")
PER_CLASS_COLUMNS = (
    "eval_index",
    "epoch",
    "step",
    "task",
    "iou_thr",
    "class",
    "gts",
    "dets",
    "recall",
    "ap",
)
_STRING_COLUMNS = ("task", "class")
#: Private helper columns a parser may add; dropped from the final frames. ``_line`` (the
#: logical line index a row came from) places evaluations in their segment.
PRIVATE_PREFIX = "_"
_TIMESTAMP_FORMAT: ContextVar[str | None] = ContextVar("timestamp_format", default=None)


class Columns:
    """Column-wise row accumulator. Keys may appear late (earlier rows padded with None)."""

    def __init__(self) -> None:
        self._cols: dict[str, list[Any]] = {}
        self.n = 0

    def append(self, row: Mapping[str, Any]) -> None:
        n = self.n
        cols = self._cols
        grew = False
        for key, value in row.items():
            col = cols.get(key)
            if col is None:
                col = cols[key] = [None] * n
                grew = True
            col.append(value)
        self.n = n + 1
        if grew or len(row) != len(cols):
            for col in cols.values():
                if len(col) < self.n:
                    col.append(None)

    @classmethod
    def from_arrays(cls, data: Mapping[str, Any]) -> Columns:
        """Wrap equal-length columns (lists or arrays) without copying."""
        out = cls()
        out._cols = dict(data)  # type: ignore[arg-type]
        out.n = len(next(iter(data.values()))) if data else 0
        return out

    def drop_rows(self, rows: Sequence[int]) -> None:
        """Remove the rows at the given positions."""
        if not rows:
            return
        gone = set(rows)
        self._cols = {
            k: np.delete(v, list(gone))
            if isinstance(v, np.ndarray)
            else [x for i, x in enumerate(v) if i not in gone]
            for k, v in self._cols.items()
        }
        self.n -= len(gone)

    def drop_last(self) -> None:
        """Remove the most recent row."""
        self._cols = {k: v[:-1] for k, v in self._cols.items()}
        self.n -= 1

    def set_last(self, key: str, value: Any) -> None:
        """Set ``key`` on the most recent row."""
        if self.n == 0:
            raise IndexError("no row to update")
        col = self._cols.get(key)
        if col is None:
            col = self._cols[key] = [None] * self.n
        col[-1] = value

    def get_last(self, key: str) -> Any:
        col = self._cols.get(key)
        return None if col is None or self.n == 0 else col[-1]

    def column(self, key: str) -> list[Any] | None:
        return self._cols.get(key)

    def keys(self) -> list[str]:
        return list(self._cols)

    def to_dict(self) -> dict[str, list[Any]]:
        return self._cols


def _typed(name: str, values: Any) -> Any:
    if name in INT_COLUMNS:
        return (
            pd.array(values, dtype="Int64")
            if not isinstance(values, pd.api.extensions.ExtensionArray)
            else values.astype("Int64")
        )
    if name == "timestamp":
        if isinstance(values, np.ndarray) and values.dtype.kind == "M":
            return values
        return pd.to_datetime(
            pd.Series(values, dtype="object"), format=_TIMESTAMP_FORMAT.get(), errors="coerce"
        ).to_numpy()
    if name in _STRING_COLUMNS:
        return pd.array(values, dtype="string")
    arr = np.asarray(values, dtype=object) if isinstance(values, list) else values
    try:
        return np.asarray(arr, dtype="float64")
    except (TypeError, ValueError):
        return pd.array(list(arr), dtype="string")


def _ordered(columns: Iterable[str], lead: Iterable[str]) -> list[str]:
    cols = [c for c in columns if not c.startswith(PRIVATE_PREFIX)]
    head = [c for c in lead if c in cols]
    return head + [c for c in cols if c not in head]


def make_frame(data: Mapping[str, Any], lead: Iterable[str], n: int | None = None) -> pd.DataFrame:
    """Build a DataFrame with the shared dtypes and column order from column data.

    A private ``_line`` column (logical line index) becomes the last column, ``line_no``; the
    loader maps it to physical line numbers (:func:`losslens.read.parse_text`).
    """
    if "_line" in data and "line_no" not in data:
        data = {**data, "line_no": data["_line"]}
    order = _ordered(data.keys(), lead)
    if "line_no" in order:
        order.remove("line_no")
        order.append("line_no")
    # copy=False: the columns are fresh arrays; consolidating them would double peak memory
    frame = pd.DataFrame({name: _typed(name, data[name]) for name in order}, copy=False)
    if n is not None and not order:
        frame = pd.DataFrame(index=pd.RangeIndex(n))
    return frame


def segments_from_steps(step: np.ndarray) -> np.ndarray:
    """Segment id per row: +1 every time the step does not increase (a resumed run appended)."""
    if len(step) == 0:
        return np.zeros(0, dtype="int64")
    s = np.asarray(step, dtype="float64")
    back = np.zeros(len(s), dtype="int64")
    back[1:] = (np.diff(s) <= 0) & ~np.isnan(s[1:]) & ~np.isnan(s[:-1])
    return np.cumsum(back)


#: The largest step kept: float64 holds every integer up to here exactly.
_MAX_EXACT_STEP = 2.0**53


def train_frame(
    cols: Columns | Mapping[str, Any], *, zero_based_iter: bool = False
) -> pd.DataFrame:
    """Finish a train table: derive ``step`` and ``segment`` when the parser did not give them.

    ``step`` comes, in order of preference, from a ``step`` column the parser filled, from
    ``(epoch - 1) * _iters_per_epoch + iter`` for epoch-based logs, or from ``iter`` (plus one
    when the framework prints 0-based iterations).
    """
    data = dict(cols.to_dict() if isinstance(cols, Columns) else cols)
    n = cols.n if isinstance(cols, Columns) else len(next(iter(data.values()), []))
    if "step" not in data and "iter" in data:
        it = np.asarray(
            pd.array(data["iter"], dtype="Int64").to_numpy(dtype="float64", na_value=np.nan)
        )
        if "epoch" in data and "_iters_per_epoch" in data:
            ep = pd.array(data["epoch"], dtype="Int64").to_numpy(dtype="float64", na_value=np.nan)
            per = pd.array(data["_iters_per_epoch"], dtype="Int64").to_numpy(
                dtype="float64", na_value=np.nan
            )
            step = np.where(np.isnan(ep), it, (ep - 1) * per + it)
        else:
            step = it + (1 if zero_based_iter else 0)
        # a product of large (but readable) counters may pass what Int64 holds exactly: NA
        step = np.where(np.abs(step) <= _MAX_EXACT_STEP, step, np.nan)
        data["step"] = pd.array(step, dtype="Float64").astype("Int64") if n else []
    if "step" in data and "segment" not in data:
        step_f = pd.array(data["step"], dtype="Int64").to_numpy(dtype="float64", na_value=np.nan)
        data["segment"] = segments_from_steps(step_f)
    return make_frame(data, TRAIN_LEAD, n)


def evals_frame(cols: Columns) -> pd.DataFrame:
    return make_frame(cols.to_dict(), EVAL_LEAD, cols.n)


def per_class_frame(cols: Columns) -> pd.DataFrame:
    """The per-class table always has every column of ``PER_CLASS_COLUMNS`` (NA where a
    format's table does not print it, e.g. ``gts`` in detectron2's category/AP tables)."""
    data = dict(cols.to_dict())
    if cols.n == 0:
        return pd.DataFrame({c: _typed(c, []) for c in PER_CLASS_COLUMNS})
    for name in PER_CLASS_COLUMNS:
        data.setdefault(name, [None] * cols.n)
    return make_frame(data, PER_CLASS_COLUMNS, cols.n)


def _eval_segments(train: Columns, train_segments: np.ndarray, evals: Columns) -> list[int]:
    """Segment of each evaluation: that of the last training row before it in the file."""
    train_lines = train.column("_line")
    eval_lines = evals.column("_line")
    if (
        train_lines is None
        or eval_lines is None
        or len(train_lines) == 0
        or len(train_segments) == 0
    ):
        return [0] * evals.n
    # side="right": an evaluation dated by a training row's own line follows that row
    pos = np.searchsorted(
        np.asarray(train_lines, dtype="int64"),
        np.asarray(eval_lines, dtype="float64"),
        side="right",
    )
    return [int(train_segments[max(p - 1, 0)]) for p in pos]


def build_frames(
    train: Columns,
    evals: Columns,
    per_class: Columns,
    *,
    timestamp_format: str | None = None,
    zero_based_iter: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The three tables of a run from a parser's accumulated columns.

    ``timestamp_format`` is the ``strftime`` format of the ``timestamp`` strings (parsed in
    one vectorised call). Rows may carry ``_line`` so that evaluations get their segment.
    """
    token = _TIMESTAMP_FORMAT.set(timestamp_format)
    try:
        train_df = train_frame(train, zero_based_iter=zero_based_iter)
        if evals.n and "segment" not in evals.keys():
            segments = (
                train_df["segment"].to_numpy(dtype="int64")
                if "segment" in train_df
                else np.zeros(0, "int64")
            )
            evals.to_dict()["segment"] = _eval_segments(train, segments, evals)
        evals_df = evals_frame(evals)
        per_class_df = per_class_frame(per_class)
    finally:
        _TIMESTAMP_FORMAT.reset(token)
    return train_df, evals_df, per_class_df
