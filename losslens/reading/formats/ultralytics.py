"""Ultralytics YOLO ``results.csv`` (YOLOv5, YOLOv8/v10/11/12) and YOLOv5/YOLOv7 ``results.txt``.

Sources: ``ultralytics/ultralytics``: ``ultralytics/engine/trainer.py`` (``save_metrics``: one
row per epoch, keys from ``label_loss_items`` + ``metrics`` + ``lr``; 8.0 wrote the header with
``'%23s,' % k`` padding and the 0-based epoch, 8.1+ writes plain names, ``epoch + 1`` and, since
8.3, a cumulative ``time`` column). ``ultralytics/yolov5``: ``utils/loggers/__init__.py``
(``on_fit_epoch_end``: ``'%20s,'`` padded header, 0-based epoch, ``x/lr0..2``) and, before the
CSV logger, ``train.py`` appending ``'%10s' * 2 + '%10.4g' * 13`` to a headerless ``results.txt``
(YOLOv7 kept that file)::

                  epoch,         train/box_loss,         train/cls_loss, ...
                      0,                 1.4449,                 2.6958, ...
    epoch,time,train/box_loss,train/seg_loss,...,metrics/mAP50(M),...,val/box_loss,lr/pg0
         0/299     1.85G    0.1259   0.06233   0.03069    0.2189        25       416 ...

Every row is one epoch: the training losses (``train/*``, the running mean over the epoch's
batches), the validation losses (``val/*``, over the whole validation set) and learning rates go
to ``train`` under their header names, with ``lr`` a copy of ``lr/pg1`` (``x/lr1``: see
:data:`LR_ALIAS_OF`); the ``metrics/*`` columns make one ``evals`` row. A
resumed run appends rows whose epoch goes back: a new ``segment``. Our ``epoch`` is 1-based;
the printed base is in ``meta["printed_epoch_base"]``.
"""

from __future__ import annotations

import re
from typing import Any

from losslens.reading.formats._common import Parsed, SkippedLine, to_float
from losslens.reading.formats._contract import Family, LogFormat
from losslens.reading.formats._speed.jsonlines import fix_counters
from losslens.reading.frame import Columns, build_frames
from losslens.reading.text import LogText

NAME = "ultralytics"
FRAMEWORK = "ultralytics"
FAMILY = "ultralytics"
TITLE = "Ultralytics YOLO (YOLOv5/v7 results.txt, YOLOv5/v8/v10/11/12 results.csv)"
LOG_FILE_PATTERNS = ("results.csv", "results.txt")
#: Rows have no log-record prefix.
LINE_PREFIXES: tuple[str, ...] = ()
SMOOTHING = (
    "one row per epoch: train/* are the running mean over the epoch's batches, val/* and "
    "metrics/* are computed on the whole validation set after the epoch"
)
#: Names of the 15 ``results.txt`` columns (YOLOv5 ``train.py``; the file has no header).
RESULTS_TXT_COLUMNS = (
    "epoch",
    "gpu_mem",
    "train/box_loss",
    "train/obj_loss",
    "train/cls_loss",
    "train/total_loss",
    "labels",
    "img_size",
    "metrics/precision",
    "metrics/recall",
    "metrics/mAP_0.5",
    "metrics/mAP_0.5:0.95",
    "val/box_loss",
    "val/obj_loss",
    "val/cls_loss",
)
METRIC_PREFIX = "metrics/"
#: (training prefix, validation prefix): ``plot`` draws a validation loss beside its term.
VALIDATION_PREFIXES = ("train/", "val/")
#: The logged column ``lr`` copies (the logged ones stay), so that the lr-schedule checks see
#: the run's learning rate: param group 1, the conv weights with weight decay. Both YOLOv5
#: (``utils/torch_utils.py``, ``smart_optimizer``) and ultralytics (``engine/trainer.py``,
#: ``build_optimizer``) create the optimizer with the biases (group 0) and add the decayed
#: weights (1) and the norm weights (2) after them; during warmup group 0 falls from
#: ``warmup_bias_lr`` (0.1) while 1 and 2 rise from 0 (``x/lr0`` 0.070, ``x/lr1`` 0.0033 in the
#: first row of a YOLOv5 run), so only group 1 shows the schedule the run was configured with.
LR_ALIAS_OF = ("lr/pg1", "x/lr1")
#: Logged names with a unit -> our standard names (``time``: seconds since training started).
_RENAMES = {"time": "elapsed_s", "gpu_mem": "memory_mb"}
#: ``gpu_mem`` is ``torch.cuda.memory_reserved() / 1E9`` printed with a ``G``: to MB.
_MB_PER_GB = 1000.0
_HEADER_RE = re.compile(r"^\s*epoch\s*,\s*[^,\n]*(?:train|time)", re.MULTILINE)
_CSV_ROW_RE = re.compile(r"^\s*\d+(?:\.0*)?\s*,", re.MULTILINE)
_TXT_ROW_RE = re.compile(
    r"^\s*(?P<epoch>\d+)/(?P<last>\d+)\s+[\d.]+[GM]?(?:\s+[-+\w.]+){13}\s*$", re.MULTILINE
)


def sniff(sample: str) -> int:
    """Rows under a ``results.csv`` header, or headerless ``E/T  1.85G ...`` rows."""
    if _HEADER_RE.search(sample):
        return len(_CSV_ROW_RE.findall(sample)) or 1
    return len(_TXT_ROW_RE.findall(sample))


class _State:
    def __init__(self, log: LogText) -> None:
        self.log = log
        self.train = Columns()
        self.evals = Columns()
        self.skipped: list[SkippedLine] = []
        self.header: list[str] | None = None
        self.header_line = 0
        self.meta: dict[str, Any] = {}

    def skip(self, index: int, line: str, why: str) -> None:
        self.skipped.append(SkippedLine(self.log.line_no(index), line, why))

    def on_line(self, index: int, line: str) -> None:
        cells = [c.strip() for c in line.split(",")]
        if cells[0] == "epoch":
            self.header, self.header_line = cells, self.log.line_no(index)
            self.meta.setdefault("variant", "results.csv")
            self.meta.setdefault("header_style", "padded" if line[:1] == " " else "plain")
            return
        if self.header is not None:
            self._csv_row(index, line, cells)
            return
        match = _TXT_ROW_RE.match(line)
        if match is None:
            self.skip(index, line, "expected a results.csv header 'epoch,...' or a results.txt row")
            return
        self.meta.setdefault("variant", "results.txt")
        self.meta["max_epochs"] = int(match["last"]) + 1
        words = line.split()
        words[0] = match["epoch"]
        self._record(index, line, list(RESULTS_TXT_COLUMNS), words, base=0)

    def _csv_row(self, index: int, line: str, cells: list[str]) -> None:
        assert self.header is not None
        if len(cells) != len(self.header):
            why = (
                f"expected {len(self.header)} cells as in the header on line "
                f"{self.header_line}, got {len(cells)}"
            )
            self.skip(index, line, why)
            return
        self._record(index, line, self.header, cells, base=None)

    def _record(
        self, index: int, line: str, names: list[str], cells: list[str], base: int | None
    ) -> None:
        values: dict[str, float | None] = {}
        for name, cell in zip(names, cells, strict=True):
            try:
                values[name] = _value(name, cell)
            except ValueError:
                self.skip(index, line, f"expected a number in column {name!r}, got {cell!r}")
                return
        counter: dict[str, Any] = {"epoch": values.pop("epoch")}
        reason = fix_counters(counter, ("epoch",))
        if counter["epoch"] is None:
            reason = "the epoch cell is empty, expected an integer epoch"
        if reason:  # fix_counters keeps epochs within MAX_COUNTER: they fit the Int64 columns
            self.skip(index, line, reason)
            return
        printed: int = counter["epoch"]
        if "printed_epoch_base" not in self.meta:
            self.meta["printed_epoch_base"] = 0 if base == 0 or printed == 0 else 1
        epoch = printed + 1 - self.meta["printed_epoch_base"]
        where = {"epoch": epoch, "step": epoch, "_line": index}
        metrics = {k: v for k, v in values.items() if k.startswith(METRIC_PREFIX)}
        row = {**where, **{_RENAMES.get(k, k): v for k, v in values.items() if k not in metrics}}
        source = next((name for name in LR_ALIAS_OF if name in values), None)
        if source is not None:
            row["lr"] = values[source]
        self.train.append(row)
        if metrics and all(v is not None for v in metrics.values()):
            self.evals.append({**where, **metrics})


def _value(name: str, cell: str) -> float | None:
    if cell == "":
        return None
    if name == "gpu_mem" and cell[-1:] in ("G", "M"):
        return float(cell[:-1]) * (_MB_PER_GB if cell[-1] == "G" else 1.0)
    return to_float(cell)


def parse(log: LogText) -> Parsed:
    state = _State(log)
    for index, line in enumerate(log.lines):
        if line.strip():
            state.on_line(index, line)
    train, evals, per_class = build_frames(state.train, state.evals, Columns())
    return Parsed(train, evals, per_class, state.skipped, state.meta)


FORMAT = LogFormat(
    NAME,
    FRAMEWORK,
    Family(FAMILY, TITLE, SMOOTHING),
    sniff,
    parse,
    log_names=LOG_FILE_PATTERNS,
    validation_prefixes=VALIDATION_PREFIXES,
)
