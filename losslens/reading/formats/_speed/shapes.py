"""One reader of fixed-shape record lines, driven by each format's line layout.

A *shape* is what every line of one kind shares byte for byte: the text between the timestamp
and the counters, the keys in order and what separates them. The fast paths learn a file's
shapes from its first lines (``shape_of`` in the format modules) and then check and read all
lines of one shape at once, as numpy arrays over the raw bytes (:mod:`.bytelines`). Which parts
a line has is the format's :class:`LineSpec`; the shape itself is a :class:`LineShape`:

* mmcv text: ``<stamp><head>[<epoch>][<iter>/<per>]<lead><key>: <value>, <key>: <value>``
  (``LineSpec(23, counters=True)``, separators ``", "``);
* mmengine text: the same with spaces allowed around the counters' numbers (``pad=True``) and
  the separators of each shape;
* JSON lines: ``{"key": value, "key": "string"}``, no stamp and no counters (``json=True``):
  string values are literals of the shape, the numbers are JSON numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from losslens.reading.formats._speed import bytelines as bl

#: Most spaces of bracket padding read around a counter (``[ 50/500]``) where the spec allows.
MAX_PAD = 16


@dataclass(frozen=True)
class LineSpec:
    """How a format's record lines are laid out around their ``key: value`` items."""

    stamp_len: int = 0  # bytes of the timestamp that opens every line (checked by the reader)
    counters: bool = True  # ``[epoch][iter/per]`` (``[iter/per]``) after the head
    pad: bool = False  # spaces allowed after the head and inside the counters' brackets
    json: bool = False  # JSON numbers; ``None`` columns are strings held in the separators


class LineShape(NamedTuple):
    """One line shape: the literal bytes around the values and the column of each value."""

    head: bytes  # after the stamp, before the counters (``" - mmdet - INFO - Epoch "``)
    epoch_based: bool  # counters ``[epoch][iter/per]`` rather than ``[iter/per]``
    lead: bytes  # between the counters' ``]`` and the first key
    keys: tuple[bytes, ...]  # as written (JSON: quoted, the first one after the ``{``)
    seps: bytes | tuple[bytes, ...]  # before each key after the first: one for all, or each's
    columns: tuple[str | None, ...]  # per key; None: not read (a text or string value)
    tail: bytes = b""  # what ends the line after the last value (JSON: ``}``)


class ShapeRows(NamedTuple):
    """What :func:`read_shape` read of the lines of one shape."""

    positions: np.ndarray  # the lines read (chunk positions)
    counters: dict[str, np.ndarray]  # ``epoch`` (epoch-based shapes), ``iter``, ``per``: float64
    values: dict[str, np.ndarray]  # column -> float64, in the shape's column order


def skip_spaces(buf: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Each position moved past up to :data:`MAX_PAD` spaces."""
    out = pos.copy()
    for _ in range(MAX_PAD):
        more = bl.at(buf, out) == bl.SPACE
        if not more.any():
            break
        out += more
    return out


def read_shape(
    buf: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    colons: np.ndarray,
    first: np.ndarray,
    lines: np.ndarray,
    shape: LineShape,
    spec: LineSpec,
) -> ShapeRows:
    """Check ``lines`` (chunk positions) against ``shape`` and read the ones that match.

    ``colons`` are the chunk's ``": "`` positions and ``first`` each line's first index into
    them (:func:`.bytelines.colon_positions`). A line is read when every literal of the shape is
    where it belongs and every value converts.
    """
    at_colon = colons[first[lines][:, None] + np.arange(len(shape.keys))]  # [L, K]
    pos = starts[lines] + spec.stamp_len
    ok = bl.literal_at(buf, pos, shape.head)
    pos = pos + len(shape.head)
    counters: dict[str, np.ndarray] = {}
    if spec.counters:
        ok, pos, counters = _read_counters(buf, pos, ok, shape.epoch_based, spec.pad)
    ok &= bl.literal_at(buf, pos, shape.lead)
    line_end = ends[lines]
    if shape.tail:
        ok &= bl.literal_before(buf, line_end, shape.tail)
    seps = shape.seps if isinstance(shape.seps, bytes) else list(shape.seps)
    spans = bl.key_spans(
        buf, at_colon, line_end - len(shape.tail), list(shape.keys), seps, pos + len(shape.lead)
    )
    ok &= spans.ok
    if spec.json:
        strings = [k for k, c in enumerate(shape.columns) if c is None]
        if strings:  # a string value is all of its separator: nothing in between
            ok &= (spans.value_ends[:, strings] == spans.value_starts[:, strings]).all(axis=1)
    keep = np.flatnonzero(ok)
    read_values = _json_values if spec.json else bl.key_values
    values, row_ok = read_values(buf, spans, keep, shape.keys, shape.columns)
    return ShapeRows(
        lines[keep[row_ok]],
        {k: np.asarray(v[keep], dtype=np.float64)[row_ok] for k, v in counters.items()},
        {c: values[c][row_ok] for c in shape.columns if c is not None},
    )


#: ``columns(rows, shape)``: a format's columns of the lines read (counters turned into steps).
Columns = Callable[[ShapeRows, LineShape], dict[str, np.ndarray]]


class StampedLineReader:
    """Reads timestamped ``key: value`` training lines of known shapes from a chunk of raw bytes.

    The format gives the timestamp layout (``date_sep``, ``ms_sep``: python logging is
    ``2020-10-13 20:19:44,317``, mmengine ``2022/12/13 19:00:12``), ``shape_of(line bytes)`` (a
    line's :class:`LineShape`, or None), its :class:`LineSpec` and ``columns``. Shapes are kept
    across chunks; ``tag_shape`` adds a ``_shape`` column with each row's shape index.
    """

    def __init__(
        self,
        date_sep: int,
        ms_sep: int | None,
        shape_of: Callable[[bytes], LineShape | None],
        spec: LineSpec,
        columns: Columns,
        *,
        tag_shape: bool = False,
        max_new_shapes: int = 64,
    ) -> None:
        self.shapes: list[Any] = []
        self._stamp = (date_sep, ms_sep)
        self._shape_of = shape_of
        self._spec = spec
        self._columns = columns
        self._tag_shape = tag_shape
        self._max_new = max_new_shapes

    def read_chunk(
        self, buf: np.ndarray, starts: np.ndarray, ends: np.ndarray, candidates: np.ndarray
    ) -> list[bl.ShapeRead]:
        date_sep, ms_sep = self._stamp
        colons = bl.colon_positions(buf, int(starts[0]), int(ends[-1]))
        first = np.searchsorted(colons, starts)
        count = np.searchsorted(colons, ends) - first
        stamps, ok = bl.timestamps_ymd_hms_ms(buf, starts, date_sep, ms_sep)
        long_enough = ends - starts > self._spec.stamp_len + 8
        todo = np.flatnonzero(candidates & ok & (count > 0) & long_enough)

        def read(lines: np.ndarray, shape: LineShape) -> tuple[np.ndarray, dict[str, np.ndarray]]:
            rows = read_shape(buf, starts, ends, colons, first, lines, shape, self._spec)
            cols = self._columns(rows, shape) | rows.values
            cols["timestamp"] = stamps[rows.positions]
            if self._tag_shape:
                cols["_shape"] = np.full(len(rows.positions), float(self.shapes.index(shape)))
            return rows.positions, cols

        return bl.read_by_shape(
            todo,
            count,
            self.shapes,
            lambda line: self._shape_of(bytes(buf[starts[line] : ends[line]])),
            read,
            self._max_new,
        )


def _read_counters(
    buf: np.ndarray, pos: np.ndarray, ok: np.ndarray, epoch_based: bool, pad: bool
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """``[epoch][iter/per]`` (or ``[iter/per]``) at ``pos``: (ok, the position after the last
    ``]``, the counters as read)."""

    def skip(p: np.ndarray) -> np.ndarray:
        return skip_spaces(buf, p) if pad else p

    counters: dict[str, np.ndarray] = {}
    pos = skip(pos)
    ok = ok & (bl.at(buf, pos) == ord("["))
    if epoch_based:
        start = skip(pos + 1)
        counters["epoch"], end = bl.scan_uint(buf, start)
        ok &= (end > start) & (bl.at(buf, end) == ord("]"))
        pos = skip(end + 1)
        ok &= bl.at(buf, pos) == ord("[")
    start = skip(pos + 1)
    counters["iter"], end = bl.scan_uint(buf, start)
    ok &= (end > start) & (bl.at(buf, end) == ord("/"))
    counters["per"], per_end = bl.scan_uint(buf, end + 1)
    ok &= (per_end > end + 1) & (bl.at(buf, per_end) == ord("]"))
    return ok, per_end + 1, counters


def _json_values(
    buf: np.ndarray,
    spans: bl.KeySpans,
    keep: np.ndarray,
    keys: Sequence[bytes],
    columns: Sequence[str | None],
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The JSON numbers of the ``keep`` lines' numeric items and a mask of the rows whose
    values all read (see :func:`.bytelines.json_floats`)."""
    numeric = [k for k, c in enumerate(columns) if c is not None]
    values, good = bl.json_floats(
        buf,
        spans.value_starts[keep][:, numeric].ravel(),
        spans.value_ends[keep][:, numeric].ravel(),
    )
    values = values.reshape(len(keep), len(numeric))
    row_ok: np.ndarray = np.asarray(good.reshape(len(keep), len(numeric)).all(axis=1))
    return {str(columns[k]): values[:, j] for j, k in enumerate(numeric)}, row_ok
