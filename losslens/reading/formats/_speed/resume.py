"""Parsing a grown log from a point before its old end: what the format modules share.

A log that is still being written only grows. :mod:`losslens.reading.cache` then parses the file from a
*cut* before the old end, keeps the cached rows before the cut and joins the two. A format takes
part by declaring, next to ``parse``:

``resume_point(raw: bytes) -> int | None``
    The offset of a line start in ``raw`` from which the rest parses on its own as it does within
    the whole file: usually the start of the last complete training record, whose line closes
    any pending evaluation and any config or environment block. ``raw`` itself starts at a line
    the format accepted as a cut before (or at the start of the file); None: no cut here.
``RESUME_META`` (optional)
    How the meta of the cached run and of the tail join, key by key (:data:`FIRST`,
    :data:`UNION`, :data:`LINES`, :data:`SEEN`, :data:`EVAL_ROWS`,
    :data:`LAST`, :data:`COUNTS`, :data:`APPEND`); counts (``n_*``) add up; any
    other key must come out the same from both parts or the join is refused (:data:`CONFLICT`).
``finish_resume(join: Join) -> Parsed | None`` (optional)
    The run a full parse of the grown file gives, from the plain join: whole-file inferences
    (the epoch length, the log interval, whether training is iteration-based ...) recomputed
    from the joined tables, or None when the tail was read under a different inference than the
    whole file would be, so that only a full parse can tell.

The cache checks every join: the tail's rows that were already in the cached run must come out
the same, and a cut is only kept if joining the cached run with the parse from the cut gives
that run back exactly (:func:`losslens.reading.cache.load`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from losslens.reading.formats._common import Parsed

#: How far back from the end :func:`lines_back` looks for a cut: enough for two epochs of a
#: log written every iteration (2 x 7,330 records of ~250 bytes), bounded so that a log with no
#: record near its end costs a scan of this much, not of the whole file.
LOOKBACK_BYTES = 16 << 20

#: :data:`RESUME_META` rules. FIRST: the first part that has a value (a config or environment
#: block: the first one in the file counts). UNION: the sorted union of two lists. LINES: a list
#: of dicts with a ``line_no``: the cached ones before the cut, then the tail's, moved on.
#: SEEN: a list of distinct values in order of first appearance: the cached ones, then the
#: tail's new ones. EVAL_ROWS: a non-empty list of ``evals`` row indexes: the cached ones before
#: the cut, then the tail's, moved on.
FIRST = "first"
UNION = "union"
LINES = "lines"
SEEN = "seen"
EVAL_ROWS = "eval_rows"
#: LAST: the tail's value when it has one (a value every record restates, the last one
#: counts), else the cached one. COUNTS: a dict of counts (name -> n) that adds up over the
#: parts. APPEND: a list of values in file order: the cached ones before the cut (the cached
#: list less the old tail's), then the tail's.
LAST = "last"
COUNTS = "counts"
APPEND = "append"
_RULES = (FIRST, UNION, LINES, SEEN, EVAL_ROWS, LAST, COUNTS, APPEND)


class _Conflict:
    """A meta value the two parts disagree on and no rule joins: the join is refused."""

    def __repr__(self) -> str:
        return "CONFLICT"


CONFLICT: Any = _Conflict()


@dataclass
class Join:
    """A cached run, the parse of the grown file from a cut, and the plain join of the two, each
    as a :class:`Parsed` with its tallies (the meta is the run's, as ``read`` completed it).

    ``run`` holds the cached rows before the cut followed by the tail's rows (segments, line
    numbers and evaluation indexes moved on) and the meta joined by the format's
    :data:`RESUME_META` (:data:`CONFLICT` where the parts disagree).
    """

    head: Parsed
    tail: Parsed
    run: Parsed
    lines_before: int  # physical lines before the cut
    n_train: int  # training rows of ``head`` before the cut
    n_evals: int  # evaluation rows of ``head`` before the cut


def lines_back(raw: bytes, max_bytes: int | None = None) -> Iterator[tuple[int, bytes]]:
    """The complete (newline-ended) lines of ``raw``, last first: ``(start offset, line)``.

    Stops at the start of ``raw`` or after ``max_bytes`` (default :data:`LOOKBACK_BYTES`); the
    line keeps a ``\\r`` before its ``\\n``.
    """
    end = raw.rfind(b"\n")
    floor = max(0, end - (LOOKBACK_BYTES if max_bytes is None else max_bytes))
    while end >= 0:
        start = raw.rfind(b"\n", 0, end) + 1
        if start < floor:
            return
        yield start, raw[start:end]
        if start == 0:
            return
        end = start - 1


def last_line_start(raw: bytes, is_record: Callable[[bytes], bool]) -> int | None:
    """Start of the last complete line for which ``is_record`` holds; None if none is near."""
    for start, line in lines_back(raw):
        if is_record(line):
            return start
    return None


def epoch_group_start(raw: bytes, epoch_of: Callable[[bytes], int | None]) -> int | None:
    """Start of the first record of the second-last run of records of one epoch.

    ``epoch_of`` gives a training record line's epoch (None for other lines). A tail cut here
    holds a whole finished epoch (and its evaluation), enough for the formats that infer the
    epoch length from the records to infer it from the tail alone. When all of ``raw`` holds one
    epoch, the start of its last record (nothing finished yet to infer from). None when the
    second-last run does not start within reach.
    """
    runs, current, candidate, last = 0, None, None, None
    reached_start = False
    for start, line in lines_back(raw):
        reached_start = start == 0
        epoch = epoch_of(line)
        if epoch is None:
            continue
        last = start if last is None else last
        if epoch != current:
            runs += 1
            if runs == 3:
                return candidate
            current = epoch
        candidate = start
    if not reached_start:
        return None
    return candidate if runs == 2 else last


# -- tallies: value -> count in order of first appearance ---------------------------------------


def tally(values: np.ndarray) -> dict[int, int]:
    """Counts of the (non-NaN) values, keyed in order of first appearance."""
    values = np.asarray(values, dtype=np.float64)
    values = values[~np.isnan(values)]
    if len(values) == 0:
        return {}
    unique, first, counts = np.unique(values, return_index=True, return_counts=True)
    order = np.argsort(first, kind="stable")
    return {int(unique[i]): int(counts[i]) for i in order}


def most_common(counts: Mapping[int, int]) -> int | None:
    """The most frequent value of a tally; ties go to the one seen first."""
    best: int | None = None
    for value, count in counts.items():
        if best is None or count > counts[best]:
            best = value
    return best


def add_tallies(a: Mapping[int, int], b: Mapping[int, int]) -> dict[int, int]:
    out = dict(a)
    for value, count in b.items():
        out[value] = out.get(value, 0) + count
    return out


def sub_tallies(a: Mapping[int, int], b: Mapping[int, int]) -> dict[int, int]:
    """``a`` less ``b`` (a tally of a part of ``a``'s rows); values left at zero are dropped."""
    out = {value: count - b.get(value, 0) for value, count in a.items()}
    return {value: count for value, count in out.items() if count > 0}


# -- meta ---------------------------------------------------------------------------------------


def is_count(key: str) -> bool:
    """Meta keys that count something in the file (they add up over the parts)."""
    return key == "decode_errors" or key.startswith("n_")


def join_meta(
    head: Mapping[str, Any],
    old_tail: Mapping[str, Any],
    tail: Mapping[str, Any],
    lines_before: int,
    n_evals: int,
    rules: Mapping[str, str],
) -> dict[str, Any]:
    """The meta of a join (see :class:`Join`).

    ``old_tail`` is the meta of the parse of the cached content from the same cut: its counts
    are taken back out of the cached ones before the grown tail's are added.
    """
    for key, named in rules.items():
        if named not in _RULES:
            raise ValueError(f"unknown RESUME_META rule {named!r} for {key!r}; expected {_RULES}")
    meta: dict[str, Any] = {}
    for key in dict.fromkeys([*head, *tail]):
        old, new = head.get(key), tail.get(key)
        rule = rules.get(key)
        if key == "lines":
            meta[key] = lines_before + int(new or 0)
        elif is_count(key):
            total = int(old or 0) - int(old_tail.get(key) or 0) + int(new or 0)
            if total or key in head or key == "n_skipped":
                meta[key] = total
        elif rule == FIRST:
            meta[key] = old if old is not None else new
        elif rule == LAST:
            meta[key] = new if key in tail else old
        elif rule == COUNTS:
            counts = _add_counts(_add_counts(old or {}, old_tail.get(key) or {}, -1), new or {})
            if counts:  # (kept only when not empty, as the parsers do)
                meta[key] = counts
        elif rule == APPEND:
            before = list(old or [])[: len(old or []) - len(old_tail.get(key) or [])]
            meta[key] = before + list(new or [])
        elif rule == UNION:
            meta[key] = sorted(set(old or []) | set(new or []))
        elif rule == LINES:
            meta[key] = [r for r in old or [] if r["line_no"] <= lines_before] + [
                {**r, "line_no": r["line_no"] + lines_before} for r in new or []
            ]
        elif rule == SEEN:
            meta[key] = list(dict.fromkeys([*(old or []), *(new or [])]))
        elif rule == EVAL_ROWS:
            rows = [i for i in old or [] if i < n_evals] + [i + n_evals for i in new or []]
            if rows:  # (kept only when not empty, as the parsers do)
                meta[key] = rows
        elif (key in head) == (key in tail) and _same(old, new):
            meta[key] = old
        else:
            meta[key] = CONFLICT
    return meta


def _add_counts(a: Mapping[str, int], b: Mapping[str, int], sign: int = 1) -> dict[str, int]:
    out = dict(a)
    for name, count in b.items():
        out[name] = out.get(name, 0) + sign * count
    return {name: count for name, count in out.items() if count}


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except (TypeError, ValueError):  # arrays and frames do not compare to one bool
        return False


def has_conflict(meta: Mapping[str, Any]) -> bool:
    return any(value is CONFLICT for value in meta.values())


def grew_dict_columns(head: Any, joined: Any) -> bool:
    """Does ``joined`` (a table) have a column ``head`` lacks that may be a new key of a dict
    column (``lr_head`` where ``head`` had ``lr_backbone``)? The JSON parsers put a dict's keys
    where the dict first appeared (:func:`losslens.reading.formats._speed.jsonlines.flatten_dicts`), not last
    as a join does; a new column that shares a name up to an ``_`` with an old one may be one.
    """
    old = [str(c) for c in head.columns]
    for name in (str(c) for c in joined.columns if c not in head.columns):
        stems = [name[:i] for i, char in enumerate(name) if char == "_" and i]
        if any(column.startswith(stem + "_") for stem in stems for column in old):
            return True
    return False
