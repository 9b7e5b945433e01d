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
from typing import Any

from losslens._text import LogText
from losslens.formats._common import Parsed, SkippedLine, parse_eta, standard_name, to_float
from losslens.formats._evalblocks import EvalCollector
from losslens.formats._textlog import RecordError, log_interval, most_common, split_items, walk
from losslens.frame import Columns, build_frames

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
_SNIFF_RE = re.compile(r"(?:Epoch \[\d+\]\[\d+/\d+\]|Iter \[\d+/\d+\])\s+lr[\w]*: ", re.MULTILINE)
_MMENGINE_RE = re.compile(r"(?:Epoch|Iter)\(train\)")
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
    """Number of mmcv training lines in ``sample`` (0 when mmengine headers are present)."""
    if _MMENGINE_RE.search(sample):
        return 0
    return len(_SNIFF_RE.findall(sample))


def _items(body: str, line: str) -> dict[str, float]:
    values: dict[str, float] = {}
    for key, text in split_items(body):
        if key.endswith(_NOT_NUMERIC_SUFFIX):
            continue
        try:
            values[standard_name(key)] = parse_eta(text) if key == "eta" else to_float(text)
        except ValueError as err:
            raise RecordError(f"{key}: {err}") from err
    return values


class _State:
    def __init__(self) -> None:
        self.train = Columns()
        self.collector = EvalCollector(naming="mmdet")
        self.iters_per_epoch: int | None = None
        self.last_where: dict[str, Any] = {}

    def on_record(self, message: str, index: int, stamp: str | None) -> bool:
        match = TRAIN_RE.match(message)
        if match is not None:
            return self._train(match, index, stamp, message)
        match = VAL_RE.match(message)
        if match is not None:
            self._val(match, index, stamp, message)
            return True
        return False

    def _train(self, match: re.Match[str], index: int, stamp: str | None, message: str) -> bool:
        body = match["body"]
        values = _items(body, message)
        if not values:
            raise RecordError("a training line without values")
        row: dict[str, Any] = {}
        if match["epoch"] is not None:
            row["epoch"] = int(match["epoch"])
            row["iter"] = int(match["iter"])
            row["_iters_per_epoch"] = self.iters_per_epoch = int(match["n"])
        else:
            row["iter"] = int(match["iter2"])
            row["step"] = int(match["iter2"])
        row["timestamp"] = stamp
        row["_line"] = index
        row.update(values)
        self.collector.close_pending(self.last_where)
        self.train.append(row)
        self.last_where = self._where_after_train(row, stamp)
        return True

    def _where_after_train(self, row: dict[str, Any], stamp: str | None) -> dict[str, Any]:
        if "epoch" in row:
            step = (row["epoch"] - 1) * row["_iters_per_epoch"] + row["iter"]
            return {
                "epoch": row["epoch"],
                "iter": None,
                "step": step,
                "timestamp": stamp,
                "_line": row["_line"],
            }
        return {
            "epoch": None,
            "iter": None,
            "step": row["step"],
            "timestamp": stamp,
            "_line": row["_line"],
        }

    def _val(self, match: re.Match[str], index: int, stamp: str | None, message: str) -> None:
        metrics = _items(match["body"], message)
        where: dict[str, Any] = {"timestamp": stamp, "_line": index}
        if match["epoch"] is not None:
            epoch = int(match["epoch"])
            where["epoch"] = epoch
            where["iter"] = int(match["iter"])
            per = self.iters_per_epoch
            where["step"] = epoch * per if per else None
        else:
            where["epoch"] = None
            where["iter"] = int(match["iter2"])
            where["step"] = int(match["iter2"])
        self.collector.close(where, metrics)


def parse(log: LogText) -> Parsed:
    state = _State()
    walked = walk(log, PREFIX_RE, state.on_record, state.collector)
    state.collector.close_pending(state.last_where)
    skipped = list(walked.skipped)
    _drop_truncated_tail(log, state.train, skipped)
    train, evals, per_class = build_frames(
        state.train,
        state.collector.evals,
        state.collector.per_class,
        timestamp_format=_TIMESTAMP_FORMAT,
    )
    meta = _meta(log, state, walked.blocks, train)
    return Parsed(train, evals, per_class, sorted(skipped), meta)


def _drop_truncated_tail(log: LogText, train: Columns, skipped: list[SkippedLine]) -> None:
    """A last line cut off mid-write has fewer keys than the line before it: report, not keep."""
    lines = train.column("_line")
    if log.ends_with_newline or train.n < 2 or lines is None or lines[-1] != len(log.lines) - 1:
        return
    cols = train.to_dict()
    have_last = {k for k, col in cols.items() if col[-1] is not None}
    have_prev = {k for k, col in cols.items() if col[-2] is not None}
    if have_last < have_prev:
        for col in cols.values():
            col.pop()
        train.n -= 1
        index = len(log.lines) - 1
        skipped.append(SkippedLine(log.line_no(index), log.lines[index]))


def _meta(log: LogText, state: _State, blocks: dict[str, str], train: Any) -> dict[str, Any]:
    env = blocks.get("env", "")
    version = _VERSION_RE.search(env)
    mmcv = _MMCV_RE.search(env)
    columns = [
        c for c in train.columns if c not in ("epoch", "iter", "step", "segment", "timestamp")
    ]
    if version:
        guess = f"mmdetection {version.group(1)}" + (f" (mmcv {mmcv.group(1)})" if mmcv else "")
    elif any(c in columns for c in ("loss_rpn_reg", "loss_reg")):
        guess = "mmdetection 1.x (pre-1.0 key names)"
    else:
        guess = _guess_from_lr_format(log)
    return {
        "framework": FRAMEWORK,
        "version_guess": guess,
        "smoothing": {c: _SMOOTHING_OVERRIDES.get(c, SMOOTHING) for c in columns},
        "log_interval": log_interval(state.train.column("iter") or []),
        "iters_per_epoch": most_common(state.train.column("_iters_per_epoch") or []),
        "eval_units": "fraction",
        "config": blocks.get("config"),
        "env": blocks.get("env"),
    }


def _guess_from_lr_format(log: LogText) -> str:
    sample = log.text[:200_000]
    if re.search(r"\d - [A-Z]+ - Epoch \[", sample):
        return "mmdetection 1.x (mmcv 0.2.x: no logger name)"
    if re.search(r"\]\s+lr: \d\.\d{5},", sample):
        return "mmdetection 2.0-2.2 (mmcv < 1.0: lr printed with .5f)"
    return "mmdetection 2.x (mmcv >= 1.0)"
