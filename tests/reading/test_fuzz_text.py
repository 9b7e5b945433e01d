"""Property-based fuzzing of the text formats over windows of the real corpus logs (issue #10).

Each example takes a window of a real log, mutates it the ways real logs break (truncation,
lost, repeated and swapped lines, stray bytes and NULs, lines split or glued, wrapped long
lines, huge counters, ``\\r`` progress bars, junk lines) and reads it back through the fast
path (:func:`losslens.load`) and the line-by-line path (:func:`losslens.read.parse_text`).

Properties:

* nothing but a :class:`~losslens.LossLensError` escapes;
* every training record line the mutation left alone is kept, with the same logged values;
* the two paths agree on the records and the skipped lines;
* every injected junk line right after an untouched record is among the skipped lines (a record
  is one line: nothing may absorb what follows it), and every skipped line exists.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import losslens
from losslens.reading.formats import GLUE_PATTERNS
from losslens.reading.read import parse_text
from losslens.reading.text import read_log
from tests.conftest import CORPUS, SHARED

_FAMILIES = ("mmdet2_text", "mmdet3_text", "detectron2_text", "maskrcnn_benchmark")
_LOGS = sorted(p for family in _FAMILIES for p in (CORPUS / family).glob("*") if p.is_file())
_SEED = SHARED / "seeds" / "000_c9436e3fcff4b54e.txt"
if _SEED.is_file():
    _LOGS.append(_SEED)
if not _LOGS:
    pytestmark = pytest.mark.skip(reason=f"../shared/corpus is absent (looked in {CORPUS})")

#: Lines per window: enough for records, evaluations and blocks, small enough to parse fast.
_WINDOW = 120
#: Columns a record's neighbours decide (step, segment, a year-less timestamp's year), not its line.
_CONTEXT_COLUMNS = {"step", "segment", "timestamp", "line_no"}
_JUNK = b"\x07junk line that no log writes"


@dataclass(frozen=True)
class _Window:
    path: Path
    start: int

    def __repr__(self) -> str:
        return f"{self.path.name}@{self.start}"


def _windows() -> list[_Window]:
    out = []
    for path in _LOGS:
        n = path.read_bytes().count(b"\n")
        starts = {0, max(0, n // 2 - _WINDOW // 2), max(0, n - _WINDOW)}
        out.extend(_Window(path, start) for start in sorted(starts))
    return out


@functools.cache
def _lines(window: _Window) -> tuple[bytes, ...]:
    lines = window.path.read_bytes().split(b"\n")
    return tuple(lines[window.start : window.start + _WINDOW])


def _records(run: losslens.Run) -> dict[int, list[dict[str, float]]]:
    """Physical line -> the logged values of the training records read from it."""
    out: dict[int, list[dict[str, float]]] = {}
    if run.train.empty:
        return out
    columns = [c for c in run.train.columns if c not in _CONTEXT_COLUMNS]
    for row in run.train[[*columns, "line_no"]].itertuples(index=False):
        values = dict(zip(columns, row[:-1], strict=True))
        out.setdefault(int(row[-1]), []).append(
            {k: float(v) for k, v in values.items() if not _missing(v)}
        )
    return out


def _missing(value: object) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


@functools.cache
def _baseline(window: _Window, tmp: Path) -> losslens.Run | None:
    path = tmp / f"base_{window.path.name}_{window.start}.log"
    path.write_bytes(b"\n".join(_lines(window)))
    try:
        return losslens.load(path, cache=False)
    except losslens.LossLensError:
        return None


# -- mutations: each takes the lines (with their original index, None once touched) -----------

Lines = list[tuple[bytes, int | None]]


def _touch(line: bytes) -> tuple[bytes, None]:
    return line, None


@st.composite
def _mutation(draw: st.DrawFn, lines: Lines) -> Lines:
    if not lines:
        return lines
    i = draw(st.integers(0, len(lines) - 1))
    line = lines[i][0]
    at = draw(st.integers(0, len(line)))
    kind = draw(
        st.sampled_from(
            [
                "truncate",
                "delete",
                "duplicate",
                "swap",
                "bytes",
                "nul_run",
                "split",
                "glue",
                "wrap",
                "counter",
                "progress",
                "ansi",
                "junk",
                "long_junk",
            ]
        )
    )
    out = list(lines)
    if kind == "truncate":
        return [*out[:i], _touch(line[:at])]
    if kind == "delete":
        del out[i]
    elif kind == "duplicate":
        out.insert(i + 1, _touch(line))
    elif kind == "swap":
        j = draw(st.integers(0, len(lines) - 1))
        if i != j:
            out[i], out[j] = _touch(out[j][0]), _touch(line)
    elif kind == "bytes":
        junk = draw(st.binary(min_size=1, max_size=8))
        out[i] = _touch(line[:at] + junk + line[at:])
    elif kind == "nul_run":
        out[i] = _touch(line[:at] + b"\x00" * draw(st.integers(1, 5000)) + line[at:])
    elif kind == "split":
        out[i : i + 1] = [_touch(line[:at]), _touch(line[at:])]
    elif kind == "glue" and i + 1 < len(out):
        out[i : i + 2] = [_touch(line + out[i + 1][0])]
    elif kind == "wrap":
        width = draw(st.integers(20, 200))
        out[i : i + 1] = [_touch(line[k : k + width]) for k in range(0, max(len(line), 1), width)]
    elif kind == "counter":
        digits = next((k for k in range(len(line)) if line[k : k + 1].isdigit()), None)
        if digits is not None:
            out[i] = _touch(line[:digits] + b"%d" % 10**20 + line[digits:])
    elif kind == "progress":
        out[i] = _touch(b"[>>>>>>     ] 12/25, 3.1 task/s\r" + line)
    elif kind == "ansi":
        out[i] = _touch(b"\x1b[1;31m" + line[:at] + b"\x1b[0m" + line[at:])
    elif kind == "junk":
        out.insert(i + 1, (_JUNK, -1))
    elif kind == "long_junk":
        out.insert(i + 1, _touch(b"x" * 200_000))
    return out


@st.composite
def _case(draw: st.DrawFn, windows: list[_Window], max_mutations: int) -> tuple[_Window, Lines]:
    window = draw(st.sampled_from(windows))
    lines: Lines = [(line, k) for k, line in enumerate(_lines(window))]
    for _ in range(draw(st.integers(1, max_mutations))):
        lines = draw(_mutation(lines))
    return window, lines


def _physical(lines: Lines) -> Lines:
    """One entry per physical line: a mutation may have put a line feed inside a line."""
    out: Lines = []
    for line, origin in lines:
        pieces = line.split(b"\n")
        out.extend([(line, origin)] if len(pieces) == 1 else [_touch(p) for p in pieces])
    return out


def _check(window: _Window, lines: Lines, tmp: Path) -> None:
    lines = _physical(lines)
    path = tmp / f"mutated_{window.path.name}.log"
    path.write_bytes(b"\n".join(line for line, _ in lines))
    try:
        run = losslens.load(path, cache=False)
    except losslens.LossLensError:
        run = None
    try:
        slow = parse_text(read_log(path, GLUE_PATTERNS), fast=False)
    except losslens.LossLensError:
        slow = None
    assert (run is None) == (slow is None)
    base = _baseline(window, tmp)
    if run is None or slow is None:
        return
    records = _records(run)
    assert records == _records(slow), "the fast and line-by-line paths disagree on the records"
    assert run.skipped == slow.skipped
    n_lines = run.meta["lines"]
    assert all(1 <= s.line_no <= n_lines for s in run.skipped)
    if base is None:
        return
    base_records = _records(base)
    skipped_at = {s.line_no for s in run.skipped}
    for new_no, (_, origin) in enumerate(lines, start=1):
        if origin is None:
            continue
        if origin == -1:  # injected junk: skipped when right after an untouched record line
            before = lines[new_no - 2][1] if new_no >= 2 else None
            if before is not None and before >= 0 and before + 1 in base_records:
                assert new_no in skipped_at, f"junk line {new_no} after a record was absorbed"
            continue
        if origin + 1 in base_records:
            assert records.get(new_no) == base_records[origin + 1], (
                f"record line {origin + 1} (now {new_no}) was not kept with its values"
            )


_WINDOWS = _windows() if _LOGS else []


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=_case(_WINDOWS, max_mutations=3))
def test_mutated_corpus_logs_never_crash_or_lose_records(
    case: tuple[_Window, Lines], tmp_path: Path
) -> None:
    _check(*case, tmp_path)


@pytest.mark.slow
@settings(
    max_examples=1500,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=_case(_WINDOWS, max_mutations=8))
def test_mutated_corpus_logs_long_run(case: tuple[_Window, Lines], tmp_path: Path) -> None:
    _check(*case, tmp_path)
