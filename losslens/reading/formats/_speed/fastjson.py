"""The fast path of the JSON-lines formats: fixed-shape record lines read from the raw bytes.

The frameworks write their JSON logs with Python's ``json.dumps`` (``", "`` and ``": "``
separators), one dict per line, the same keys in the same order line after line. A *shape* is
that sequence of keys plus, for string values, the string itself (``"mode": "train"``): every
other value must be a JSON number or one of the bare ``NaN`` / ``Infinity`` / ``-Infinity``
literals. A line of a known shape is checked byte for byte (the ``{``, every key, every
separator and string literal where the shape puts them, the ``}`` at the end) and its numbers
are converted column-wise (:func:`losslens.reading.formats._speed.bytelines.json_floats`), so that a line read
here holds exactly what :func:`json.loads` would make of it. Lines of no known shape, lines
that fail a check and values that are not plain JSON numbers are left to the per-line path
(:mod:`losslens.reading.formats._speed.jsonlines`), which reports the bad ones with their line numbers.

Each format decides which shapes it lets through (``accept``), e.g. detectron2 training
records only, so that records whose handling needs the whole dict stay on the per-line path.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from losslens.reading.formats._common import MAX_COUNTER
from losslens.reading.formats._speed import bytelines as bl
from losslens.reading.formats._speed.shapes import LineShape, LineSpec, read_shape
from losslens.reading.text import GluePrefix, normalise

#: JSON lines: no timestamp, no counters, JSON numbers.
_LINE_SPEC = LineSpec(stamp_len=0, counters=False, json=True)
#: New shapes tried per chunk before the remaining lines go to the per-line path.
_MAX_NEW_SHAPES_PER_CHUNK = 32


@dataclass(frozen=True)
class JsonShape:
    """The keys of a record line in order; for string values, the string (None: a number)."""

    keys: tuple[str, ...]
    strings: tuple[str | None, ...]

    @property
    def numeric(self) -> list[int]:
        return [k for k, s in enumerate(self.strings) if s is None]


#: ``accept(shape)`` -> the keys of which at least one must hold a number (not ``NaN``) for a
#: line to be read (``()``: no condition), or None when the format reads this shape per line.
Accept = Callable[[JsonShape], tuple[str, ...] | None]


def shape_of(line: bytes, glue: Sequence[GluePrefix] = ()) -> JsonShape | None:
    """The shape of one line (see the module docstring); None if it cannot have one."""
    if not line.startswith(b'{"') or not line.endswith(b"}"):
        return None
    try:
        text = line.decode("ascii")
        record = json.loads(text)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(record, dict) or not record:
        return None
    # a line the text normalisation would change (ANSI codes, a glued record prefix ...) is
    # left to the per-line path, which sees it as normalised
    log = normalise(text, glue=glue)
    if log.lines != [text] or log.notes:
        return None
    strings: list[str | None] = []
    for value in record.values():
        if isinstance(value, str):
            strings.append(value)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            strings.append(None)
        else:  # null, true/false, nested objects and lists
            return None
    return JsonShape(tuple(record), tuple(strings))


def _literal(value: str) -> bytes:
    return json.dumps(value).encode("ascii")


class JsonLineReader:
    """Reads JSON record lines of known shapes from a chunk of raw bytes (``_fasttext``)."""

    def __init__(
        self, accept: Accept, counters: tuple[str, ...] = (), glue: Sequence[GluePrefix] = ()
    ) -> None:
        self.accept = accept
        self.counters = counters
        self.glue = glue
        self.shapes: list[JsonShape] = []
        self._rejected: set[JsonShape] = set()
        self._layouts: dict[JsonShape, LineShape] = {}

    def _layout(self, shape: JsonShape) -> LineShape:
        """``shape``'s byte layout, made once per shape."""
        if shape not in self._layouts:
            self._layouts[shape] = _line_shape(shape)
        return self._layouts[shape]

    def _text_counter(self, shape: JsonShape) -> bool:
        """Does ``shape`` hold a counter as a string (``"iter": "100"``)? The per-line path
        reads those."""
        return any(
            s is not None
            for k, s in zip(shape.keys, shape.strings, strict=True)
            if k in self.counters
        )

    def read_chunk(
        self, buf: np.ndarray, starts: np.ndarray, ends: np.ndarray, candidates: np.ndarray
    ) -> list[tuple[int, np.ndarray, dict[str, np.ndarray]]]:
        colons = bl.colon_positions(buf, int(starts[0]), int(ends[-1]))
        first = np.searchsorted(colons, starts)
        count = np.searchsorted(colons, ends) - first
        opens = bl.literal_at(buf, starts, b'{"')
        closes = bl.at(buf, np.maximum(ends - 1, 0)) == ord("}")
        todo = np.flatnonzero(candidates & opens & closes & (count > 0))

        def new_shape(line: int) -> JsonShape | None:
            shape = shape_of(bytes(buf[starts[line] : ends[line]]), self.glue)
            if shape is None or shape in self._rejected:
                return None
            if shape not in self.shapes and (
                self.accept(shape) is None or self._text_counter(shape)
            ):
                self._rejected.add(shape)
                return None
            return shape

        def read(lines: np.ndarray, shape: JsonShape) -> tuple[np.ndarray, dict[str, np.ndarray]]:
            rows = read_shape(
                buf, starts, ends, colons, first, lines, self._layout(shape), _LINE_SPEC
            )
            positions, cols = rows.positions, rows.values
            required = self.accept(shape) or ()
            keep = np.ones(len(positions), dtype=bool)
            if len(positions) and required:
                keep[:] = False
                for key in required:
                    keep |= ~np.isnan(cols[key])
            for key in self.counters:
                if key in cols:  # a counter that is no integer: the per-line path says why
                    keep &= _is_counter(cols[key])
            if not keep.all():
                positions = positions[keep]
                cols = {k: v[keep] for k, v in cols.items()}
            cols["_shape"] = np.full(len(positions), float(self.shapes.index(shape)))
            return positions, cols

        return bl.read_by_shape(
            todo, count, self.shapes, new_shape, read, _MAX_NEW_SHAPES_PER_CHUNK
        )


def _is_counter(values: np.ndarray) -> np.ndarray:
    """Which values are counters: integral and within :data:`MAX_COUNTER` (exact in float64;
    :func:`losslens.reading.formats._speed.jsonlines.check_counters` says why the others are skipped)."""
    with np.errstate(invalid="ignore"):
        return (np.floor(values) == values) & (np.abs(values) <= MAX_COUNTER)


def _line_shape(shape: JsonShape) -> LineShape:
    """The byte layout of a JSON shape: keys, and string values, as ``json.dumps`` writes them."""
    keys = [_literal(k) for k in shape.keys]
    keys[0] = b"{" + keys[0]
    # what separates value k - 1 from key k: ", ", after the string itself for string values
    seps = tuple(b", " if s is None else _literal(s) + b", " for s in shape.strings[:-1])
    last = shape.strings[-1]
    tail = b"}" if last is None else _literal(last) + b"}"
    columns = tuple(
        k if s is None else None for k, s in zip(shape.keys, shape.strings, strict=True)
    )
    return LineShape(b"", False, b"", tuple(keys), seps, columns, tail)


def json_reader(
    accept: Accept, counters: tuple[str, ...] = ()
) -> Callable[[Sequence[GluePrefix]], JsonLineReader]:
    """``make_reader`` of :func:`~losslens.reading.formats._speed.fasttext.fast_path` for a JSON
    format: the record lines of accepted shapes; a line whose ``counters`` are not integers is
    left to the per-line path, which skips it saying why. The rows read hold the numeric values
    (float64), ``_shape`` (index into the reader's ``shapes``), ``_line`` (the placeholder's
    index in the rest log) and ``line_no`` (physical)."""
    return lambda glue: JsonLineReader(accept, counters, glue)
