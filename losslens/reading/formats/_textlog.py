"""The line walk shared by the text formats.

Every text log is a stream of *log records* (``<prefix> message``), multi-line messages whose
continuation lines carry no prefix (config dumps, environment tables, model reprs), and bare
prints (pycocotools). :func:`walk` routes each logical line:

1. the format's record handler (training / validation lines) -> placed, or skipped when the
   handler raises :class:`RecordError` (a line that looks like a record but cannot be read;
   the reason goes with the skipped line, ``SkippedLine.reason``);
2. the :class:`~losslens.reading.formats._evalblocks.EvalCollector` (tables, summaries) -> placed, or
   skipped with the reason when a row cannot be read;
3. a config or environment block start -> its text is kept in ``meta``;
4. any other prefixed message, or a continuation line of one (a multi-line message: a model
   repr, a hook table, a config dump) -> placed;
5. anything else -> skipped: text before the first log record, and text right after a record
   (a record is one line, so nothing after it can be its continuation).
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from losslens.reading.formats._common import SkippedLine, skipped_line, to_counter
from losslens.reading.formats._evalblocks import EvalCollector
from losslens.reading.frame import Columns
from losslens.reading.text import LogText

#: The head of a python logging ``%(asctime)s`` record (mmcv, maskrcnn_benchmark): where a
#: format looks for glued records (``LogFormat.glue``).
ASCTIME_MARKER = re.compile(r"(?:19|20)\d\d-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ")

#: A Ray actor prefix, ``(MMCVRayEpochRunner pid=188889) ``, seen before mmcv records.
RAY_PREFIX_RE = re.compile(r"^\(\w+ pid=\d+(?:, ip=[\d.]+)?\) ")
_BLOCK_STARTS = (
    ("env", re.compile(r"^(?:Environment info:|System environment:|\s*-{20,}\s*$)")),
    (
        "config",
        re.compile(
            r"^(?:Config:|Running with full config|Contents of args\.config_file|Full config)"
        ),
    ),
)
#: detectron2 prints the user's config file before the full config: the full one replaces it.
_PARTIAL_CONFIG_RE = re.compile(r"^Contents of args\.config_file")
#: ``key: value`` items as mmcv/mmengine/detectron2/maskrcnn_benchmark print them.
KEY_RE = re.compile(r"(?:(?<=^)|(?<=[\s,]))([A-Za-z_][\w.@/\-]*(?: mem)?): ")


class RecordError(ValueError):
    """A line that looks like a training/validation record but cannot be read."""


def counter(text: str) -> int:
    """A printed epoch/iteration counter; :class:`RecordError` when it is out of range."""
    try:
        return to_counter(text)
    except ValueError as err:
        raise RecordError(str(err)) from err


def split_items(body: str) -> list[tuple[str, str]]:
    """``'lr: 1e-2, eta: 1 day, 0:03:53, loss: 0.5'`` -> ``[('lr', '1e-2'), ('eta', ...), ...]``.

    Values run to the next key; separators (``, `` or runs of spaces) are stripped.
    """
    found = list(KEY_RE.finditer(body))
    items = []
    for k, match in enumerate(found):
        end = found[k + 1].start() if k + 1 < len(found) else len(body)
        value = body[match.end() : end].strip().rstrip(",").strip()
        items.append((match.group(1), value))
    return items


@dataclass
class WalkResult:
    skipped: list[SkippedLine] = field(default_factory=list)
    blocks: dict[str, str] = field(default_factory=dict)
    n_messages: int = 0
    #: Whether any line carried the format's record prefix (or was read by a bulk parser).
    seen_record: bool = False


#: The reason of a line the walk could not place (step 5 of the module docstring).
UNPLACED = "not a log record, an evaluation table or a known multi-line block"

RecordHandler = Callable[[str, int, str | None], bool]


def walk(
    log: LogText,
    prefix_re: re.Pattern[str],
    on_record: RecordHandler,
    collector: EvalCollector,
    bulk: list[bool] | None = None,
    on_bulk: Callable[[int], None] | None = None,
    on_every_bulk: Callable[[int], None] | None = None,
) -> WalkResult:
    """Route every logical line (see the module docstring). ``prefix_re`` may name a ``ts`` group.

    ``bulk[i]`` marks lines already read as records by a bulk parser: they are passed over,
    except that ``on_bulk(i)`` is called when an evaluation is pending (a record closes it), and
    ``on_every_bulk(i)`` (when given) on each of them.
    """
    result = WalkResult()
    block: str | None = None
    block_lines: list[str] = []
    seen_record = False
    message_open = False  # the last placed line is a log message (or one of its lines)

    def end_block() -> None:
        nonlocal block
        if block is not None and (
            block not in result.blocks or _PARTIAL_CONFIG_RE.match(result.blocks[block])
        ):
            result.blocks[block] = "\n".join(block_lines).strip("\n")
        block = None

    for index, raw in enumerate(log.lines):
        if bulk is not None and bulk[index]:
            seen_record, message_open = True, False
            if block is not None:
                end_block()
            if on_bulk is not None and collector.pending:
                on_bulk(index)
            if on_every_bulk is not None:
                on_every_bulk(index)
            continue
        line = RAY_PREFIX_RE.sub("", raw, count=1) if raw.startswith("(") else raw
        match = prefix_re.match(line)
        if match is not None:
            message = line[match.end() :]
            stamp = match.groupdict().get("ts")
            seen_record = True
            end_block()
        else:
            message, stamp = line, None
        try:
            if on_record(message, index, stamp):
                message_open = match is None and message_open
                continue
        except RecordError as err:
            result.skipped.append(SkippedLine(log.line_no(index), raw, str(err)))
            message_open = False
            continue
        try:
            fed = collector.feed(message)
        except ValueError as err:  # a table row that cannot be read (a count out of range)
            _skip(log, index, str(err), result.skipped)
            continue
        if fed:
            message_open = match is not None or message_open
            continue
        if match is not None:
            result.n_messages += 1
            message_open = True
            for name, pattern in _BLOCK_STARTS:
                if pattern.match(message):
                    block, block_lines = name, [message]
                    break
            continue
        if block is not None:
            block_lines.append(line)
            continue
        if not line.strip() or (seen_record and message_open):
            continue
        result.skipped.append(SkippedLine(log.line_no(index), raw, UNPLACED))
    end_block()
    result.seen_record = seen_record
    return result


def most_common(values: Sequence[int | None]) -> int | None:
    counted = Counter(v for v in values if v is not None)
    return counted.most_common(1)[0][0] if counted else None


def is_record_line(
    line: bytes,
    marker: bytes,
    prefix_re: re.Pattern[str],
    record_re: re.Pattern[str],
    items: Callable[[str], object],
) -> bool:
    """Is a raw line one of the format's records: ``marker`` in it, its log prefix, then its
    ``record_re`` whose ``body`` ``items`` reads something from (a :class:`RecordError`: no)?
    The resume points of the text formats look for these."""
    if marker not in line:
        return False
    prefix = prefix_re.match(line.decode("utf-8", "replace"))
    match = record_re.match(prefix.string[prefix.end() :]) if prefix else None
    if match is None:
        return False
    try:
        return bool(items(match["body"]))
    except RecordError:
        return False


def log_interval(iters: Sequence[int | None]) -> int | None:
    """The usual gap between consecutive logged iterations (within an epoch)."""
    gaps = [
        b - a for a, b in itertools.pairwise(iters) if a is not None and b is not None and b > a
    ]
    return most_common(gaps)


def drop_truncated_tail(
    log: LogText,
    train: Columns,
    skipped: list[SkippedLine],
    previous_line: int | None = None,
) -> None:
    """Report records cut off mid-write as skipped (with the reason) instead of keeping them.

    A record is cut off when it printed fewer of the ``key: value`` items than the record
    before it (a set comparison: dict order varies in Python 3.5 logs) and either it is the last
    line of a file that does not end with a line break, or another line was glued onto it (a
    crash, then a resumed run writing on: :func:`losslens.reading.text.normalise` split them). Comparing
    the lines' own keys, not the table, tells a logged ``nan`` from a missing key. ``train``
    rows carry ``_line``; ``previous_line`` is the logical line of the record before the last
    when a fast path read it (it is then not in ``train``). Kept, such a record would show NaN
    for the keys it lost: a non-finite loss that was never logged.
    """
    _drop_glued_cuts(log, train, skipped)
    lines = train.column("_line")
    if (
        log.ends_with_newline
        or not train.n
        or lines is None
        or int(lines[-1]) != len(log.lines) - 1
    ):
        return
    if train.n >= 2:
        previous_line = max(int(lines[-2]), -1 if previous_line is None else previous_line)
    if previous_line is None:
        return
    last, previous = (_item_keys(log.lines[i]) for i in (int(lines[-1]), previous_line))
    if last < previous:
        train.drop_last()
        index = len(log.lines) - 1
        _skip(log, index, "the last record is cut off (no line break after it)", skipped)


def _drop_glued_cuts(
    log: LogText,
    train: Columns,
    skipped: list[SkippedLine],
) -> None:
    """Drop the records with another line glued onto them that lack keys of the record before."""
    nos = log.line_nos
    lines = train.column("_line")
    if nos is None or lines is None or train.n < 2:
        return
    glued = np.flatnonzero(np.diff(np.asarray(nos, dtype=np.int64)) == 0)  # i: i+1 on its line
    if len(glued) == 0:
        return
    at = np.asarray(lines, dtype=np.float64)
    drop = []
    for row in np.flatnonzero(np.isin(at, glued)).tolist():
        index, before = int(at[row]), int(at[row - 1]) if row else -1
        if row and index != before and _item_keys(log.lines[index]) < _item_keys(log.lines[before]):
            drop.append(row)
            reason = "the record is cut off: another line was written onto it"
            _skip(log, index, reason, skipped)
    train.drop_rows(drop)


def _skip(log: LogText, index: int, reason: str, skipped: list[SkippedLine]) -> None:
    skipped.append(skipped_line(log, index, reason))


def _item_keys(line: str) -> set[str]:
    return {key for key, _ in split_items(line)}


#: A launcher's per-rank tag before each line: torchrun ``--tee`` (``[default0]:``, ``[rank0]:``).
RANK_TAG_RE = re.compile(r"^\[(?:default|rank)\d+\]:[ \t]?", re.MULTILINE)


def strip_rank_tags(log: LogText) -> LogText:
    """The same log without launcher rank tags at line starts (line numbers unchanged)."""
    if not RANK_TAG_RE.search(log.text):
        return log
    lines = [RANK_TAG_RE.sub("", line, count=1) for line in log.lines]
    return replace(log, text="\n".join(lines), lines=lines)


def _as_floats(values: Sequence[float | None] | np.ndarray) -> np.ndarray:
    if isinstance(values, np.ndarray):
        return values.astype(np.float64, copy=False)
    return np.asarray([np.nan if v is None else v for v in values], dtype=np.float64)


def most_common_of(values: Sequence[float | None] | np.ndarray) -> int | None:
    """:func:`most_common` for large columns (None/NaN ignored; ties go to the first seen)."""
    arr = _as_floats(values)
    arr = arr[~np.isnan(arr)]
    if len(arr) == 0:
        return None
    unique, first, counts = np.unique(arr, return_index=True, return_counts=True)
    best = counts == counts.max()
    return int(unique[best][np.argmin(first[best])])


def log_interval_of(iters: Sequence[float | None] | np.ndarray) -> int | None:
    """:func:`log_interval` for large columns."""
    arr = _as_floats(iters)
    a, b = arr[:-1], arr[1:]
    valid = ~np.isnan(a) & ~np.isnan(b) & (b > a)
    return most_common_of((b - a)[valid])
