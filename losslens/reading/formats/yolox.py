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
Loguru tracebacks between records are not records and are passed over.
"""

from __future__ import annotations

import re
from typing import Any

from losslens.reading.formats._coco import COCO_STATS_NAMES, SUMMARY_LINE_RE, stats_row
from losslens.reading.formats._common import Parsed, SkippedLine, parse_eta, to_float
from losslens.reading.formats._contract import Family, LogFormat
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
        summary = SUMMARY_LINE_RE.match(line)
        if summary is not None:
            self.summary.append((index, line, float(summary["value"])))
            return
        self.close_summary()
        record = _RECORD_RE.match(line)
        if record is None:
            if line.startswith(_EVAL_START):
                self.meta["n_eval_blocks"] += 1
            return
        message = record["message"]
        if message.startswith("epoch: "):
            self._train(index, line, record["stamp"], message)
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
        self.meta["max_epoch"] = int(match["max_epoch"])
        self.meta["iters_per_epoch"] = int(match["n"])
        where = {"epoch": int(match["epoch"]), "iter": int(match["iter"])}
        self.train.append(
            {**where, "timestamp": stamp, "_iters_per_epoch": int(match["n"]), "_line": index}
            | values
        )

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
)
