"""YOLOX ``train_log.txt``: loguru lines written by ``yolox/core/trainer.py``.

Source: ``Megvii-BaseDetection/YOLOX``: ``yolox/core/trainer.py`` (``after_iter`` logs every
``exp.print_interval`` iterations; ``evaluate_and_save_model`` logs the evaluator's summary and
``after_train`` the best AP in percent), ``yolox/utils/logger.py`` (``setup_logger``: loguru's
default ``{time:YYYY-MM-DD HH:mm:ss.SSS} | {level: <8} | {name}:{function}:{line} - {message}``,
file opened in append mode, so every launch adds a session) and
``yolox/evaluators/coco_evaluator.py`` (the pycocotools summary after an ``Average forward time``
line; the VOC evaluator prints no COCO summary)::

    2023-01-13 19:36:11.931 | INFO     | yolox.core.trainer:after_iter:253 - epoch: 1/20, iter: 10/112, mem: 4605Mb, iter_time: 0.671s, data_time: 0.001s, total_loss: 11.8, iou_loss: 2.0, l1_loss: 0.0, conf_loss: 6.7, cls_loss: 3.0, lr: 9.965e-08, size: 640, ETA: 0:24:55
     Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 0.929
    2023-01-13 19:49:26.500 | INFO     | yolox.core.trainer:after_train:195 - Training of experiment is done and the best AP is 92.91

Losses are the latest iteration's values with one decimal (``MeterBuffer.latest``);
``iter_time``/``data_time`` are means over the print interval. ``step = (epoch - 1) * N + iter``
with each line's own N (a relaunch with another batch size changes it); a step that goes back
starts a new ``segment``. A COCO summary becomes one ``evals`` row (``bbox/AP`` ..., fractions,
-1 as NaN) dated at the last training line; best-AP lines go to ``meta["best_ap_percent"]``.
Evaluation results a fork prints on the training line (``val_mAP``, ``val_AR_*``) are one
``evals`` row of that line, under their logged names.
Loguru tracebacks between records are not records and are passed over.
"""

from __future__ import annotations

import re
from typing import Any

from losslens.reading.formats._coco import COCO_STATS_NAMES, SUMMARY_LINE_RE, stats_row
from losslens.reading.formats._common import MAX_COUNTER, Parsed, SkippedLine, parse_eta, to_float
from losslens.reading.formats._contract import Family, LogFormat, Resume
from losslens.reading.formats._speed.jsonlines import CUT_OFF, fix_counters
from losslens.reading.formats._speed.resume import APPEND, LAST, last_line_start
from losslens.reading.frame import Columns, build_frames
from losslens.reading.text import LogText

NAME = "yolox"
FRAMEWORK = "YOLOX"
FAMILY = "yolox"
TITLE = "YOLOX (Megvii)"
LOG_FILE_PATTERNS = ("train_log.txt",)
#: loguru's default record prefix (a timestamp with milliseconds).
LINE_PREFIXES = ("YYYY-MM-DD HH:mm:ss.SSS | LEVEL | module:function:line - ",)
SMOOTHING = (
    "losses: the logged iteration's value, rounded to 1 decimal (MeterBuffer.latest); "
    "iter_time/data_time: mean over the print interval"
)
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S.%f"
_RECORD_RE = re.compile(
    r"^(?P<stamp>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+) \| (?P<level>\w+)\s*\| "
    r"(?P<where>\S+?):(?P<function>[\w<>]+):(?P<line>\d+) - (?P<message>.*)$"
)
_TRAIN_RE = re.compile(
    r"^epoch: (?P<epoch>\d+)/(?P<max_epoch>\d+), iter: (?P<iter>\d+)/(?P<n>\d+), "
    r"(?P<body>.*?)(?:, ETA: (?P<eta>.+?))?\s*$"
)
_BEST_AP_RE = re.compile(r"best AP is (?P<ap>[-\d.]+)")
_EVAL_START = "Average forward time:"
#: A line that starts as a summary line or holds a training message is a damaged one when it
#: does not read as such: it is skipped, not passed over with the loguru messages.
_SUMMARY_START_RE = re.compile(r"^\s*Average (?:Precision|Recall)\b")
_SUMMARY_SAMPLE = " Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 0.929"
_TRAIN_MESSAGE = " - epoch: "
#: The start of a loguru record in the middle of a line: a record glued onto the one before.
_GLUED_RE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ \| ")
_GLUED_BYTES_RE = re.compile(_GLUED_RE.pattern.encode())
#: A whole training line, as bytes (where a grown file may be re-parsed from).
_RESUME_LINE_RE = re.compile(
    rb"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ \| \w+\s*\| yolox\.core\.trainer:\w+:\d+ - "
    rb"epoch: \d+/\d+, iter: \d+/\d+, "
)
_SNIFF_RE = re.compile(
    r"\| yolox\.core\.trainer:\w+:\d+ - epoch: \d+/\d+, iter: \d+/\d+", re.MULTILINE
)
_TRAINER_RE = re.compile(r"\| yolox\.core\.trainer:\w+:\d+ - ")
#: Logged key -> (our column, unit suffix removed from the value).
_KEYS = {
    "mem": ("memory_mb", "Mb"),
    "gpu mem": ("memory_mb", "Mb"),
    "iter_time": ("time_s", "s"),
    "data_time": ("data_time_s", "s"),
}
#: Evaluation results some forks add to the training line (``val_mAP: 0.52, val_AR_100: 0.61``):
#: they go to ``evals`` under their logged names, dated at that line, not to ``train``.
_EVAL_KEY_RE = re.compile(r"^val_(?:mAP|AP|AR)", re.IGNORECASE)
#: YOLOX >= 0.3 logs the host memory after the GPU memory: ``gpu mem: 4605Mb, mem: 10.2Gb``.
_HOST_MEMORY = ("host_memory_gb", "Gb")


def sniff(sample: str) -> int:
    """``yolox.core.trainer`` iteration lines (1 for a log of launches that never trained)."""
    found = len(_SNIFF_RE.findall(sample))
    return found or (1 if _TRAINER_RE.search(sample) else 0)


def _train_values(body: str) -> dict[str, float]:
    values: dict[str, float] = {}
    for item in body.split(", "):
        key, sep, text = item.partition(": ")
        if not sep:
            raise ValueError(f"expected 'key: value', got {item!r}")
        column, unit = _KEYS.get(key, (key, ""))
        if key == "mem" and text.endswith("Gb"):
            column, unit = _HOST_MEMORY
        values[column] = to_float(text[: -len(unit)] if unit and text.endswith(unit) else text)
    return values


def _summary_value(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:  # ``0.5.1``: the line is damaged
        return None


class _State:
    def __init__(self, log: LogText) -> None:
        self.log = log
        self.train = Columns()
        self.evals = Columns()
        self.skipped: list[SkippedLine] = []
        self.meta: dict[str, Any] = {"best_ap_percent": [], "n_eval_blocks": 0}
        self.summary: list[tuple[int, str, float]] = []

    def skip(self, index: int, line: str, why: str) -> None:
        self.skipped.append(SkippedLine(self.log.line_no(index), line, why))

    def on_line(self, index: int, line: str) -> None:
        glued = _GLUED_RE.search(line, 1)
        if glued is not None:  # a record cut off by a crash, the next launch's line after it
            head = line[: glued.start()]
            if _TRAIN_MESSAGE in head:
                self.close_summary()
                self.skip(index, head, CUT_OFF)
            else:
                self.on_line(index, head)
            self.on_line(index, line[glued.start() :])
            return
        summary = SUMMARY_LINE_RE.match(line)
        value = _summary_value(summary["value"]) if summary is not None else None
        if value is not None:
            self.summary.append((index, line, value))
            return
        self.close_summary()
        record = _RECORD_RE.match(line)
        if record is None:
            if line.startswith(_EVAL_START):
                self.meta["n_eval_blocks"] += 1
            elif _SUMMARY_START_RE.match(line):
                self.skip(index, line, f"expected a COCO summary line '{_SUMMARY_SAMPLE}'")
            elif _TRAIN_MESSAGE in line:
                self.skip(index, line, f"expected loguru's prefix '{LINE_PREFIXES[0]}'")
            return
        message = record["message"]
        if message.startswith("epoch: "):
            self._train(index, line, record["stamp"], message)
        elif _TRAIN_MESSAGE in message:  # glued after a message, its own prefix damaged
            self.skip(index, line, f"expected loguru's prefix '{LINE_PREFIXES[0]}'")
        elif record["function"] == "after_train":
            best = _BEST_AP_RE.search(message)
            if best is not None:
                self.meta["best_ap_percent"].append(float(best["ap"]))

    def _train(self, index: int, line: str, stamp: str, message: str) -> None:
        match = _TRAIN_RE.match(message)
        try:
            if match is None:
                raise ValueError("expected 'epoch: E/T, iter: I/N, key: value, ...'")
            values = _train_values(match["body"])
            if match["eta"] is not None:
                values["eta_s"] = parse_eta(match["eta"])
        except ValueError as exc:
            self.skip(index, line, str(exc))
            return
        counters: dict[str, Any] = {k: match[k] for k in ("epoch", "max_epoch", "iter", "n")}
        reason = fix_counters(counters, tuple(counters))
        if not reason and counters["epoch"] * counters["n"] + counters["iter"] > MAX_COUNTER:
            reason = f"step of epoch {counters['epoch']}, iter {counters['iter']} is too large"
        if reason:
            self.skip(index, line, reason)
            return
        self.meta["max_epoch"] = counters["max_epoch"]
        self.meta["iters_per_epoch"] = counters["n"]
        where = {"epoch": counters["epoch"], "iter": counters["iter"]}
        results = {k: values.pop(k) for k in list(values) if _EVAL_KEY_RE.match(k)}
        self.train.append(
            {**where, "timestamp": stamp, "_iters_per_epoch": counters["n"], "_line": index}
            | values
        )
        if results:
            self.evals.append({**where, "_line": index, **results})

    def close_summary(self) -> None:
        """A complete 12-line summary is one ``evals`` row; a cut one is reported as skipped."""
        lines, self.summary = self.summary, []
        if not lines:
            return
        if len(lines) != len(COCO_STATS_NAMES) or self.train.n == 0:
            why = f"expected the {len(COCO_STATS_NAMES)} COCO summary lines after training lines"
            for index, text, _ in lines:
                self.skip(index, text, why)
            return
        where = {"epoch": self.train.get_last("epoch"), "iter": self.train.get_last("iter")}
        row = stats_row("bbox", [value for _, _, value in lines])
        self.evals.append({**where, "_line": lines[-1][0], **row})


def resume_point(raw: bytes) -> int | None:
    """Start of the last complete training line: every line carries its own epoch, iteration
    and epoch length, and an evaluation after it takes its step; a grown file is re-parsed from
    there (see ``_resume``)."""
    return last_line_start(raw, _is_train_line)


def _is_train_line(line: bytes) -> bool:
    match = _RESUME_LINE_RE.match(line)
    return match is not None and _GLUED_BYTES_RE.search(line, 1) is None


#: Meta of a resumed parse (see ``_resume``): each training line restates the epoch count and
#: length (the last one counts); best-AP lines and evaluation blocks add up.
RESUME_META = {"max_epoch": LAST, "iters_per_epoch": LAST, "best_ap_percent": APPEND}


def parse(log: LogText) -> Parsed:
    state = _State(log)
    for index, line in enumerate(log.lines):
        state.on_line(index, line)
    state.close_summary()
    train, evals, per_class = build_frames(
        state.train, state.evals, Columns(), timestamp_format=TIMESTAMP_FORMAT
    )
    if not evals.empty:
        evals = _eval_steps(train, evals)
    return Parsed(train, evals, per_class, state.skipped, state.meta)


def _eval_steps(train: Any, evals: Any) -> Any:
    """An evaluation's step is that of the training line it follows."""
    lines = train["line_no"].to_numpy(dtype="int64")
    pos = lines.searchsorted(evals["line_no"].to_numpy(dtype="int64"), side="right") - 1
    steps = train["step"].to_numpy()[pos.clip(0)]
    evals.insert(2, "step", steps)
    evals["step"] = evals["step"].astype("Int64")
    return evals


FORMAT = LogFormat(
    NAME,
    FRAMEWORK,
    Family(FAMILY, TITLE, SMOOTHING),
    sniff,
    parse,
    log_names=LOG_FILE_PATTERNS,
    resume=Resume(resume_point, RESUME_META),
)
