"""mmdetection 1.x / 2.x text logs, written by mmcv's ``TextLoggerHook``.

Source: ``open-mmlab/mmcv:mmcv/runner/hooks/logger/text.py`` (v0.2.10 for mmdet 1.x, v1.7.0 for
2.x) and ``mmcv/utils/logging.py``. Training lines are ``Epoch [e][i/N]<TAB>`` (or
``Iter [i/N]<TAB>`` for iteration-based runners) followed by ``key: value`` items joined by
``, ``; values are means over the log interval; validation results follow ``Epoch(val) [e][N]``::

    2019-04-03 20:21:39,389 - INFO - Epoch [12][7000/7330]	lr: 0.00020, eta: 0:03:53, time: 0.709, data_time: 0.012, acc: 93.4033, loss_rpn_reg: 0.0282, loss: 0.3420
    2020-10-13 20:19:44,317 - mmdet - INFO - Epoch [1][3000/4015]	lr: 2.000e-02, eta: 1 day, 5:45:02, time: 0.562, data_time: 0.007, memory: 3862, s0.loss_cls: 0.1784, s0.acc: 92.7441, loss: 0.7442
    2020-10-26 10:30:49,834 - mmdet - INFO - Epoch(val) [1][11860]	bbox_mAP: 0.4120, bbox_mAP_50: 0.6690, bbox_mAP_copypaste: 0.412 0.669 -1.000 0.185 0.409 0.618

mmdet 1.x (mmcv 0.2) has no logger name in the prefix and prints ``lr`` with ``.5f``; mmcv 1.x
prints ``.3e``. The VOC AsciiTable and the pycocotools summary printed before ``Epoch(val)``
belong to the same evaluation row.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

import numpy as np

from losslens.reading.formats._common import (
    Parsed,
    parse_eta,
    parse_timestamps,
    standard_name,
    to_float,
)
from losslens.reading.formats._contract import LogFormat, Resume
from losslens.reading.formats._evalblocks import EvalCollector
from losslens.reading.formats._families import MMDET2
from losslens.reading.formats._speed import bytelines as bl
from losslens.reading.formats._speed.bulk import parse_shapes
from losslens.reading.formats._speed.fasttext import FastRead, fast_path, fill_line_no
from losslens.reading.formats._speed.resume import FIRST, Join, last_line_start, most_common, tally
from losslens.reading.formats._speed.shapes import (
    LineShape,
    LineSpec,
    ShapeRows,
    StampedLineReader,
)
from losslens.reading.formats._textlog import (
    ASCTIME_MARKER,
    RecordError,
    counter,
    drop_truncated_tail,
    log_interval,
    split_items,
    walk,
)
from losslens.reading.frame import Columns, build_frames
from losslens.reading.text import GluePrefix, LogText

NAME = "mmdet_text"
FRAMEWORK = "mmdetection"

PREFIX_RE = re.compile(r"^(?P<ts>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) - (?:[\w.]+ - )?[A-Z]+ - ")
TRAIN_RE = re.compile(
    r"^\s*(?:Epoch \[(?P<epoch>\d+)\]\[(?P<iter>\d+)/(?P<n>\d+)\]|Iter \[(?P<iter2>\d+)/(?P<n2>\d+)\])\s+(?P<body>\w.*)$"
)
VAL_RE = re.compile(
    r"^\s*(?:Epoch\((?P<mode>val|test)\) \[(?P<epoch>\d+)\]\[(?P<iter>\d+)\]"
    r"|Iter\((?P<mode2>val|test)\) \[(?P<iter2>\d+)\])\s*(?P<body>.*)$"
)
#: Training lines, and the evaluation lines of mmcv (``Epoch(val) [12][25]``: no ``/N``, unlike
#: mmengine's ``Epoch(val) [1][25/25]``): a log whose epochs are shorter than the log interval
#: holds evaluations only.
_SNIFF_RE = re.compile(
    r"(?:Epoch \[\d+\]\[\d+/\d+\]|Iter \[\d+/\d+\])\s+lr[\w]*: "
    r"|(?:Epoch\((?:val|test)\) \[\d+\]|Iter\((?:val|test)\) )\[\d+\]\s+\w+: "
)
_VERSION_RE = re.compile(r"MMDetection: ?([\w.+-]+)")
_MMCV_RE = re.compile(r"MMCV: ?([\w.+-]+)")
_TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S,%f"
_NOT_NUMERIC_SUFFIX = "_copypaste"
SMOOTHING = "mean over the log interval (mmcv LogBuffer.average(interval))"
_SMOOTHING_OVERRIDES = {
    "lr": "current value at the logged iteration",
    "eta_s": "remaining iterations x mean iteration time since start",
    "memory_mb": "torch.cuda.max_memory_allocated since start, max over ranks",
}


def sniff(sample: str) -> int:
    """Number of mmcv training and evaluation lines in ``sample``."""
    return len(_SNIFF_RE.findall(sample))


def _items(body: str) -> dict[str, float]:
    values: dict[str, float] = {}
    for key, text in split_items(body):
        if key.endswith(_NOT_NUMERIC_SUFFIX):
            continue
        try:
            values[standard_name(key)] = parse_eta(text) if key == "eta" else to_float(text)
        except ValueError as err:
            raise RecordError(f"{key}: {err}") from err
    return values


#: Everything before the first key of a training line, for the bulk path. Groups: timestamp,
#: epoch, iter, N (epoch-based runners), iter, N (iteration-based runners).
_BULK_HEAD = (
    r"(?:\(\w+ pid=\d+(?:, ip=[\d.]+)?\) )?"
    r"(?:(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) - (?:[\w.]+ - )?[A-Z]+ - )?"
    r"\s*(?:Epoch \[(\d+)\]\[(\d+)/(\d+)\]|Iter \[(\d+)/(\d+)\])\s+"
)


def _keys_of(body: str) -> list[str] | None:
    return [key for key, _ in split_items(body)] or None


def _is_text_value(key: str) -> bool:
    return key.endswith(_NOT_NUMERIC_SUFFIX)


def _read_bulk(log: LogText) -> dict[str, np.ndarray] | None:
    """Read the training lines of common shapes at once (see ``_bulk``); None if there are none.

    Columns come back sorted by ``_line`` (the logical line of each record); lines of no common
    shape are left to the per-line path.
    """
    lines = log.lines
    candidates = [i for i, line in enumerate(lines) if "Epoch [" in line or "Iter [" in line]
    if not candidates:
        return None
    shapes, _ = parse_shapes(
        [lines[i] for i in candidates], _BULK_HEAD, _keys_of, ", ", _is_text_value
    )
    if not shapes:
        return None
    cand = np.asarray(candidates, dtype=np.int64)
    parts = []
    for positions, heads, values in shapes:
        ts, epoch, it, n, it2, n2 = heads
        part: dict[str, Any] = {"_line": cand[positions], "timestamp": np.asarray(ts, dtype=object)}
        if epoch and epoch[0]:
            part["epoch"] = np.asarray(epoch).astype(np.float64)
            part["iter"] = np.asarray(it).astype(np.float64)
            part["_iters_per_epoch"] = np.asarray(n).astype(np.float64)
        else:
            part["iter"] = part["step"] = np.asarray(it2).astype(np.float64)
            part["_iters_per_epoch"] = np.asarray(n2).astype(np.float64)
        part.update(values)
        parts.append(part)
    return concat_sorted(parts)


def concat_sorted(parts: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """Concatenate column dicts (union of keys, NaN/None padded) and sort rows by ``_line``."""
    if len(parts) == 1:
        return parts[0]
    keys = list(dict.fromkeys(k for p in parts for k in p))
    out: dict[str, np.ndarray] = {}
    for key in keys:
        kind: Any = object if key == "timestamp" else np.float64
        pad: Any = None if key == "timestamp" else np.nan
        if any(key in p and np.asarray(p[key]).dtype.kind == "M" for p in parts):
            kind, pad = "datetime64[us]", np.datetime64("NaT")
        out[key] = np.concatenate(
            [
                np.asarray(p[key], dtype=kind)
                if key in p
                else np.full(len(p["_line"]), pad, dtype=kind)
                for p in parts
            ]
        )
    order = np.argsort(out["_line"], kind="stable")
    return {k: v[order] for k, v in out.items()}


def _where(row: dict[str, Any]) -> dict[str, Any]:
    """Where an evaluation closed right after training ``row`` stands (``_per``: iters/epoch)."""
    per = row.get("_iters_per_epoch") or 0
    epoch = row.get("epoch")
    if epoch is not None and not (isinstance(epoch, float) and np.isnan(epoch)):
        step = (int(epoch) - 1) * int(per) + int(row["iter"])
        epoch = int(epoch)
    else:
        step, epoch = int(row["iter"]), None
    return {
        "epoch": epoch,
        "iter": None,
        "step": step,
        "timestamp": _stamp_text(row["timestamp"]),
        "_line": int(row["_line"]),
        "_per": per,
        # a row read by the fast path knows its own physical line (its _line is a placeholder's)
        **({"line_no": int(row["line_no"])} if "line_no" in row else {}),
    }


def _stamp_text(stamp: Any) -> str | None:
    """A fast-path timestamp (datetime64) back in the log's own text form, as per-line rows keep it."""
    if not isinstance(stamp, np.datetime64):
        return stamp
    if np.isnat(stamp):
        return None
    text = str(stamp.astype("datetime64[ms]"))  # 2020-10-13T20:19:44.317
    return text[:10] + " " + text[11:19] + "," + text[20:23]


class _State:
    """Per-line handling of what the bulk path left, and evaluation bookkeeping."""

    def __init__(self, bulk: dict[str, np.ndarray] | None) -> None:
        self.train = Columns()
        self.collector = EvalCollector(naming="mmdet")
        self.bulk = bulk
        self.bulk_lines = bulk["_line"] if bulk is not None else np.zeros(0, dtype=np.int64)

    def last_train_before(self, index: int) -> dict[str, Any] | None:
        """The training record closest before logical line ``index`` (bulk or per-line)."""
        best = None
        if self.train.n:
            best = _where({k: v[-1] for k, v in self.train.to_dict().items()})
        pos = int(np.searchsorted(self.bulk_lines, index)) - 1
        if (
            self.bulk is not None
            and pos >= 0
            and (best is None or self.bulk_lines[pos] > best["_line"])
        ):
            best = _where({k: v[pos] for k, v in self.bulk.items()})
        return best

    def close_pending(self, index: int) -> None:
        """A training record (or the end of the file) closes an evaluation still open."""
        if self.collector.pending:
            where = self.last_train_before(index) or {}
            where.pop("_per", None)
            self.collector.close(where)

    def on_record(self, message: str, index: int, stamp: str | None) -> bool:
        match = TRAIN_RE.match(message)
        if match is not None:
            self._train(match, index, stamp)
            return True
        match = VAL_RE.match(message)
        if match is not None:
            self._val(match, index, stamp)
            return True
        return False

    def _train(self, match: re.Match[str], index: int, stamp: str | None) -> None:
        values = _items(match["body"])
        if not values:
            raise RecordError("a training line without values")
        row: dict[str, Any] = {"timestamp": stamp, "_line": index}
        if match["epoch"] is not None:
            row.update(
                epoch=counter(match["epoch"]),
                iter=counter(match["iter"]),
                _iters_per_epoch=counter(match["n"]),
            )
        else:
            row.update(
                iter=counter(match["iter2"]),
                step=counter(match["iter2"]),
                _iters_per_epoch=counter(match["n2"]),
            )
        row.update(values)
        self.close_pending(index)
        self.train.append(row)

    def _val(self, match: re.Match[str], index: int, stamp: str | None) -> None:
        metrics = _items(match["body"])
        where: dict[str, Any] = {"timestamp": stamp, "_line": index}
        if match["epoch"] is not None:
            epoch = counter(match["epoch"])
            last = self.last_train_before(index)
            per = last["_per"] if last else None
            where.update(
                epoch=epoch, iter=counter(match["iter"]), step=epoch * int(per) if per else None
            )
        else:
            where.update(epoch=None, iter=counter(match["iter2"]), step=counter(match["iter2"]))
        self.collector.close(where, metrics)


def parse(log: LogText, *, bulk: bool = True) -> Parsed:
    """Parse a normalised log; ``bulk=False`` reads every line on its own (the reference path)."""
    cols = _read_bulk(log) if bulk else None
    mask = None
    if cols is not None:
        mask = [False] * len(log.lines)
        for i in cols["_line"].tolist():
            mask[int(i)] = True
    return _parse_rest(log, cols, mask)


def _parse_fast(fast: FastRead, reader: StampedLineReader) -> Parsed:
    """The parse of a file whose training lines were read from its raw bytes (``_fasttext``):
    those rows and the rest log read per line."""
    return _parse_rest(fast.log, fast.columns, fast.placeholders)


def resume_point(raw: bytes) -> int | None:
    """Start of the last complete training line: where a grown file can be re-parsed from (a
    training record closes any pending evaluation and config block); see ``_resume``."""
    return last_line_start(raw, _is_train_line)


def _is_train_line(line: bytes) -> bool:
    return b"[" in line and bool(_line_keys(line.decode("utf-8", "replace")))


#: Meta of a resumed parse (see ``_resume``): the first config/env block in the file counts.
RESUME_META = {"config": FIRST, "env": FIRST}


def finish_resume(join: Join) -> Parsed | None:
    """The whole-file meta of a joined parse, recomputed from the joined tables and tallies."""
    run = join.run
    meta = dict(run.meta)
    iters = run.train["iter"].to_numpy("float64", na_value=np.nan)
    meta.update(_table_meta(run.train, iters, run.tallies.get(_PER, {})))
    # else the guess from the lr format at the head of the file: the cached one, if the tail's
    # agrees (the file's first 200 kB may reach into the tail)
    guess = _env_or_column_guess(meta["env"], _terms(run.train))
    if guess is not None:
        meta["version_guess"] = guess
    return replace(run, meta=meta)


def _parse_rest(
    log: LogText, bulk: dict[str, np.ndarray] | None, mask: list[bool] | None
) -> Parsed:
    state = _State(bulk)
    walked = walk(log, PREFIX_RE, state.on_record, state.collector, mask, state.close_pending)
    state.close_pending(len(log.lines))
    skipped = list(walked.skipped)
    train_cols = _merge_train(bulk, state.train)
    if bulk is not None and "line_no" in bulk:
        fill_line_no(log, train_cols.to_dict())
        fill_line_no(log, state.collector.evals.to_dict(), state.collector.evals.n)
    drop_truncated_tail(log, train_cols, skipped)
    train, evals, per_class = build_frames(
        train_cols,
        state.collector.evals,
        state.collector.per_class,
        timestamp_format=_TIMESTAMP_FORMAT,
    )
    per = tally(_column(train_cols, "_iters_per_epoch"))
    meta = {**_meta(log, train_cols, walked.blocks, train, per)}
    return Parsed(
        train,
        evals,
        per_class,
        sorted(skipped),
        meta,
        tallies={_PER: per},
        recognised=walked.seen_record,
    )


#: Length of the python-logging timestamp ``2020-10-13 20:19:44,317`` that opens every record.
_TS_LEN = 23
#: New line shapes tried per chunk before the remaining candidate lines go to the per-line path.
_MAX_NEW_SHAPES_PER_CHUNK = 64


#: mmcv's training lines: the timestamp, ``[epoch][iter/per]``, then ``key: value, ...``.
_LINE_SPEC = LineSpec(_TS_LEN)


def _shape_of(line: bytes) -> LineShape | None:
    """The shape of one training line, from the per-line regexes; None if it is not one."""
    try:
        text = line.decode("ascii")
    except UnicodeDecodeError:
        return None
    prefix = PREFIX_RE.match(text)
    match = TRAIN_RE.match(text[prefix.end() :]) if prefix else None
    if prefix is None or match is None:
        return None
    message = text[prefix.end() :]
    body_at = match.start("body")
    epoch_based = match["epoch"] is not None
    opening = "Epoch [" if epoch_based else "Iter ["
    if not message.startswith(opening) or message[body_at - 2 : body_at] != "]\t":
        return None
    items = split_items(match["body"])
    keys = tuple(key for key, _ in items)
    if not keys or not match["body"].startswith(keys[0] + ": "):
        return None
    columns = tuple(None if _is_text_value(k) else standard_name(k) for k in keys)
    named = [c for c in columns if c is not None]
    if len(set(named)) != len(named):
        return None
    head = (text[_TS_LEN : prefix.end()] + opening[:-1]).encode()  # up to the "["
    return LineShape(head, epoch_based, b"\t", tuple(k.encode() for k in keys), b", ", columns)


def _counter_columns(rows: ShapeRows, shape: LineShape) -> dict[str, np.ndarray]:
    """The counter columns of the training lines read (before their ``key: value`` columns)."""
    counters = rows.counters
    cols = {"epoch": counters["epoch"]} if shape.epoch_based else {}
    cols.update(iter=counters["iter"], _iters_per_epoch=counters["per"])
    if not shape.epoch_based:
        cols["step"] = counters["iter"].copy()
    return cols


def _merge_train(bulk: dict[str, np.ndarray] | None, rows: Columns) -> Columns:
    """Bulk-read and line-by-line rows as one table in file order."""
    if bulk is None:
        return rows
    merged = bulk
    if rows.n:
        per_line = {
            k: np.asarray(v, dtype=object if k == "timestamp" else np.float64)
            for k, v in rows.to_dict().items()
        }
        if "timestamp" in per_line and bulk["timestamp"].dtype.kind == "M":
            stamps = parse_timestamps(list(per_line["timestamp"]), _TIMESTAMP_FORMAT)
            per_line["timestamp"] = np.asarray(stamps).astype("datetime64[us]")
        merged = concat_sorted([bulk, per_line])
    return Columns.from_arrays(merged)


_BULK_HEAD_RE = re.compile(_BULK_HEAD)


def _line_keys(line: str) -> list[str]:
    """The keys of a training line (empty when it is not one)."""
    match = _BULK_HEAD_RE.match(line)
    return (_keys_of(line[match.end() :]) or []) if match else []


#: The tally of epoch lengths (N of ``Epoch [e][i/N]``), one count per training record.
_PER = "iters_per_epoch"


def _meta(
    log: LogText, train_cols: Columns, blocks: dict[str, str], train: Any, per: dict[int, int]
) -> dict[str, Any]:
    env = blocks.get("env")
    guess = _env_or_column_guess(env or "", _terms(train)) or _guess_from_lr_format(log)
    return {
        "framework": FRAMEWORK,
        "version_guess": guess,
        **_table_meta(train, _column(train_cols, "iter"), per),
        "eval_units": "fraction",
        "config": blocks.get("config"),
        "env": env,
    }


def _terms(train: Any) -> list[str]:
    return [c for c in train.columns if c not in ("epoch", "iter", "step", "segment", "timestamp")]


def _table_meta(train: Any, iters: Any, per: dict[int, int]) -> dict[str, Any]:
    """The meta that comes from the whole train table: smoothing, log interval, epoch length."""
    last = np.asarray(iters, dtype=np.float64)
    last = last[~np.isnan(last)][-10_000:]
    return {
        "smoothing": {c: _SMOOTHING_OVERRIDES.get(c, SMOOTHING) for c in _terms(train)},
        "log_interval": log_interval([int(v) for v in last]),
        "iters_per_epoch": most_common(per) if "epoch" in train.columns else None,
    }


def _env_or_column_guess(env: str | None, columns: list[str]) -> str | None:
    """The version from the environment block, or from pre-1.0 key names; None if neither tells."""
    version = _VERSION_RE.search(env or "")
    mmcv = _MMCV_RE.search(env or "")
    if version:
        return f"mmdetection {version.group(1)}" + (f" (mmcv {mmcv.group(1)})" if mmcv else "")
    if any(c in columns for c in ("loss_rpn_reg", "loss_reg")):
        return "mmdetection 1.x (pre-1.0 key names)"
    return None


def _column(cols: Columns, key: str) -> np.ndarray:
    """The present (not None, not NaN) values of a numeric column, as float64."""
    col = cols.column(key)
    if col is None:
        return np.zeros(0)
    values = (
        np.asarray(col, dtype=np.float64)
        if isinstance(col, np.ndarray)
        else np.asarray([np.nan if v is None else v for v in col], dtype=np.float64)
    )
    return values[~np.isnan(values)]


def _guess_from_lr_format(log: LogText) -> str:
    """Judged on the first training line: every line of one mmcv version has the same form."""
    sample = log.head(200_000)
    start = sample.find("Epoch [")
    if start < 0:
        return "mmdetection 2.x (mmcv >= 1.0)"
    end = sample.find("\n", start)
    line = sample[sample.rfind("\n", 0, start) + 1 : end if end >= 0 else len(sample)]
    if re.search(r"\d - [A-Z]+ - Epoch \[", line):
        return "mmdetection 1.x (mmcv 0.2.x: no logger name)"
    if re.search(r"\]\s+lr: \d\.\d{5},", line):
        return "mmdetection 2.0-2.2 (mmcv < 1.0: lr printed with .5f)"
    return "mmdetection 2.x (mmcv >= 1.0)"


def _byte_reader() -> StampedLineReader:
    """The fast-path reader of this format's training lines (see ``_bytelines``)."""
    return StampedLineReader(
        bl.DASH,
        bl.COMMA,
        _shape_of,
        _LINE_SPEC,
        _counter_columns,
        tag_shape=False,
        max_new_shapes=_MAX_NEW_SHAPES_PER_CHUNK,
    )


def _parse_each(log: LogText) -> Parsed:
    """Every line read on its own: the reference the bulk path is tested against."""
    return parse(log, bulk=False)


#: mmcv's python logging prefix (``%(asctime)s - %(name)s - %(levelname)s - ``, the name absent
#: in mmdetection 1.x) past a line start: a record glued onto another line.
_GLUE = (
    GluePrefix(
        ASCTIME_MARKER,
        re.compile(
            r"20(?<=[^\n\x00]20)\d\d-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (?:- [\w.]+ - [A-Z]+ - |- [A-Z]+ - )"
        ),
    ),
)

FORMAT = LogFormat(
    NAME,
    FRAMEWORK,
    MMDET2,
    sniff,
    parse,
    parse_each=_parse_each,
    fast=fast_path(lambda glue: _byte_reader(), _parse_fast),
    resume=Resume(resume_point, RESUME_META, finish_resume),
    glue=_GLUE,
)
