"""torchvision ``references/detection`` logs: the stdout of ``train.py``.

Source: ``pytorch/vision``: ``references/detection/engine.py`` (``train_one_epoch``,
``evaluate``), ``references/detection/utils.py`` (``SmoothedValue``, ``MetricLogger.log_every``),
``references/detection/coco_eval.py`` (``CocoEvaluator.summarize``) and ``train.py``. Lines
are plain ``print`` output (no timestamp, no logger name). ``log_every`` prints every
``print_freq`` iterations and at the last one: the header, ``[i/N]`` (``i`` 0-based within the
epoch, right-aligned), ``eta`` (of this epoch), the meters (``lr`` with ``window_size=1``, the
losses as ``median (global_avg)``), ``time`` and ``data`` (means over the last 20 iterations)
and ``max mem`` (MB, absent on CPU); the delimiter is two spaces (``engine.py``) or a tab
(``MetricLogger``'s default)::

    Epoch: [0]  [  0/231]  eta: 0:10:13  lr: 0.000021  loss: 7.4132 (7.4132)  loss_classifier: 2.0382 (2.0382)  time: 2.6561  data: 1.6422  max mem: 4248
    Epoch: [0] Total time: 0:04:07 (1.0700 s / it)
    Test:  [ 0/50]  eta: 0:00:44  model_time: 0.4000 (0.4000)  evaluator_time: 0.0300 (0.0300)  time: 0.8800  data: 0.4000  max mem: 4248

The printed epoch is 0-based (``range(args.start_epoch, args.epochs)``): our ``epoch`` is the
printed one + 1, and ``step = epoch0 * N + i + 1``. An evaluation is the ``Test:`` progress,
``Averaged stats: ...`` and, per IoU type, ``IoU metric: bbox`` followed by the pycocotools
12-line summary (fractions): one ``evals`` row with ``bbox/AP``, ``segm/AP50``..., dated at the
end of the epoch it follows. A non-finite loss prints ``Loss is nan, stopping training`` and the
loss dict, then exits: both are kept in ``meta["errors"]``.
"""

from __future__ import annotations

import re
from typing import Any

from losslens.reading.formats._common import Parsed
from losslens.reading.formats._contract import Family, LogFormat
from losslens.reading.formats._evalblocks import EvalCollector
from losslens.reading.formats._metriclogger import GLOBAL_AVG_SUFFIX, meter_values
from losslens.reading.formats._textlog import (
    RecordError,
    counter,
    drop_truncated_tail,
    log_interval,
    most_common,
    strip_rank_tags,
    walk,
)
from losslens.reading.frame import Columns, build_frames
from losslens.reading.text import GluePrefix, LogText

NAME = "torchvision"
FRAMEWORK = "torchvision"

#: Lines have no log-record prefix: nothing is a prefixed message, every line is routed by content.
_NO_PREFIX_RE = re.compile(r"(?!)")
TRAIN_RE = re.compile(
    r"^Epoch: \[(?P<epoch>\d+)\]\s+\[\s*(?P<i>\d+)/(?P<n>\d+)\]\s+(?P<body>eta: .*)$"
)
TEST_RE = re.compile(r"^Test:(?: \w+)?\s+\[\s*\d+/\d+\]\s+eta: ")
TOTAL_RE = re.compile(r"^(?:Epoch: \[(?P<epoch>\d+)\]|Test:(?: \w+)?) Total time: ")
AVERAGED_RE = re.compile(r"^Averaged stats: (?P<body>.*)$")
NAN_RE = re.compile(r"^Loss is (?P<value>\S+), stopping training\s*$")
#: Training lines, and evaluation progress lines (a ``--test-only`` run has only those).
_SNIFF_RE = re.compile(
    r"^(?:\[\w+\]:\s?)?(?:Epoch: \[\d+\]|Test:(?: \w+)?)\s+\[\s*\d+/\d+\]\s+eta: ", re.MULTILINE
)
#: Other prints of ``train.py``, ``utils.py``, ``group_by_aspect_ratio.py`` and pycocotools.
_KNOWN_MESSAGE_RE = re.compile(
    r"^(?:Not using distributed mode|\| distributed init \(rank|Loading data|Creating data loaders"
    r"|Creating model|Start training|Training time \d|Using \[.*\] as bins"
    r"|Count of instances per bin:|loading annotations into memory\.\.\.|Done \(t=|DONE \(t="
    r"|creating index\.\.\.|index created!|Loading and preparing results\.\.\."
    r"|Accumulating evaluation results\.\.\.|Running per image evaluation\.\.\."
    r"|Evaluate annotation type|useSegm \(deprecated\)|Test:(?: \w+)?\s*$)"
)
#: ``print(args)`` of ``train.py``: kept as the run's config.
_ARGS_RE = re.compile(r"^Namespace\(.*\)\s*$")
#: Continuation lines of a numpy array print (``Count of instances per bin: [ 104  982 ...``).
_ARRAY_CONTINUATION_RE = re.compile(r"^\s*[\d\s.eE+\-]+\]?\s*$")
_WARNING_RE = re.compile(r"^\S.*:\d+: \w*Warning: ")
_TRACEBACK_START = "Traceback (most recent call last):"
#: Columns of the ``Averaged stats`` line kept in the evaluation row (global averages, seconds).
_AVERAGED_COLUMNS = {"model_time": "model_time_s", "evaluator_time": "evaluator_time_s"}
PRINTED_EPOCH_BASE = 0
MEDIAN = "median of the last 20 iterations (SmoothedValue window_size=20)"
GLOBAL_AVG = (
    "mean over every iteration of this epoch (SmoothedValue.global_avg; meters restart each epoch)"
)
_SMOOTHING_OVERRIDES = {
    "lr": "current value at the logged iteration (SmoothedValue window_size=1)",
    "eta_s": "remaining iterations of this epoch x mean iteration time of this epoch",
    "time_s": "mean of the last 20 iteration times (SmoothedValue avg)",
    "data_time_s": "mean of the last 20 data-loading times (SmoothedValue avg)",
    "memory_mb": "torch.cuda.max_memory_allocated since the start (MB)",
}


def sniff(sample: str) -> int:
    """Number of ``Epoch: [e]  [i/N]  eta: ...`` and ``Test:  [i/N]  eta: ...`` lines in ``sample``."""
    return len(_SNIFF_RE.findall(sample))


class _State:
    def __init__(self) -> None:
        self.train = Columns()
        self.collector = EvalCollector(naming="slash")
        self.iters_per_epoch: int | None = None
        self.last_where: dict[str, Any] = {"epoch": None, "iter": None, "step": None}
        self.errors: list[dict[str, Any]] = []
        self.config: str | None = None
        self._eval_metrics: dict[str, float] = {}
        self._in_eval = False
        self._after: str | None = (
            None  # what the previous line opened: "nan", "array", "traceback", "warning"
        )

    def on_record(self, line: str, index: int, stamp: str | None) -> bool:
        if self._continues(line):
            return True
        match = TRAIN_RE.match(line)
        if match is not None:
            self._train(match, index)
            return True
        if TEST_RE.match(line):
            if not self._in_eval:
                self.close_pending()
                self._in_eval = True
            return True
        return self._message(line, index)

    def _continues(self, line: str) -> bool:
        """A line that belongs to the previous one (loss dict, array, traceback, warning source)."""
        after, self._after = self._after, None
        if after == "nan" and line.startswith("{"):
            self.errors[-1]["loss_dict"] = line.strip()
            return True
        if after == "array" and _ARRAY_CONTINUATION_RE.match(line):
            self._after = "array"
            return True
        if after == "traceback":
            self.errors[-1]["text"] += "\n" + line
            if line.startswith((" ", "\t")):
                self._after = "traceback"
            return True
        return after == "warning" and line.startswith((" ", "\t"))

    def _message(self, line: str, index: int) -> bool:
        match = TOTAL_RE.match(line)
        if match is not None:
            if match["epoch"] is not None and self.iters_per_epoch:
                epoch0 = counter(match["epoch"])
                self.last_where["epoch"] = epoch0 + 1
                self.last_where["step"] = (epoch0 + 1) * self.iters_per_epoch
            return True
        match = AVERAGED_RE.match(line)
        if match is not None:
            self._averaged(match["body"])
            return True
        match = NAN_RE.match(line)
        if match is not None:
            self.errors.append({"line_no": index, "message": line.strip(), "loss": match["value"]})
            self._after = "nan"
            return True
        if line.startswith(_TRACEBACK_START):
            self.errors.append({"line_no": index, "message": _TRACEBACK_START, "text": line})
            self._after = "traceback"
            return True
        if _ARGS_RE.match(line):
            self.config = self.config or line.strip()
            return True
        if _WARNING_RE.match(line):
            self._after = "warning"
            return True
        if _KNOWN_MESSAGE_RE.match(line):
            if line.startswith("Count of instances per bin:") and "]" not in line:
                self._after = "array"
            return True
        return False

    def _train(self, match: re.Match[str], index: int) -> None:
        _, values = meter_values(match["body"])
        if not values:
            raise RecordError("a training line without values")
        epoch0, i, n = counter(match["epoch"]), counter(match["i"]), counter(match["n"])
        self.close_pending()
        self.iters_per_epoch = n
        step = epoch0 * n + i + 1
        row: dict[str, Any] = {
            "epoch": epoch0 + 1,
            "iter": i,
            "step": step,
            "_iters_per_epoch": n,
            "_line": index,
        }
        row.update(values)
        self.train.append(row)
        self.last_where = {"epoch": epoch0 + 1, "iter": None, "step": step, "_line": index}

    def _averaged(self, body: str) -> None:
        if not self._in_eval:  # DETR-style copies also print the training epoch's averages
            return
        _, values = meter_values(body)
        for name, column in _AVERAGED_COLUMNS.items():
            if name + GLOBAL_AVG_SUFFIX in values:
                self._eval_metrics[column] = values[name + GLOBAL_AVG_SUFFIX]

    def close_pending(self) -> None:
        """Close the evaluation in progress, if any (its summary has no closing line)."""
        if self._in_eval or self.collector.pending:
            self.collector.close(dict(self.last_where), self._eval_metrics)
        self._in_eval = False
        self._eval_metrics = {}


def parse(log: LogText) -> Parsed:
    log = strip_rank_tags(log)
    state = _State()
    walked = walk(log, _NO_PREFIX_RE, state.on_record, state.collector)
    state.close_pending()
    skipped = list(walked.skipped)
    drop_truncated_tail(log, state.train, skipped)
    train, evals, per_class = build_frames(
        state.train, state.collector.evals, state.collector.per_class
    )
    for error in state.errors:
        error["line_no"] = log.line_no(error["line_no"])
    return Parsed(
        train,
        evals,
        per_class,
        sorted(skipped),
        {**_meta(state, train)},
        recognised=walked.seen_record,
    )


def _smoothing(column: str) -> str:
    if column in _SMOOTHING_OVERRIDES:
        return _SMOOTHING_OVERRIDES[column]
    return GLOBAL_AVG if column.endswith(GLOBAL_AVG_SUFFIX) else MEDIAN


def _meta(state: _State, train: Any) -> dict[str, Any]:
    columns = [
        c for c in train.columns if c not in ("epoch", "iter", "step", "segment", "timestamp")
    ]
    has_mem = "memory_mb" in columns
    return {
        "framework": FRAMEWORK,
        "version_guess": "torchvision references/detection"
        + ("" if has_mem else " (CPU run: no max mem)"),
        "smoothing": {c: _smoothing(c) for c in columns},
        "log_interval": log_interval(state.train.column("iter") or []),
        "iters_per_epoch": most_common(state.train.column("_iters_per_epoch") or []),
        "epoch_printed_base": PRINTED_EPOCH_BASE,
        "eval_units": "fraction",
        "errors": state.errors,
        "config": state.config,
        "env": None,
    }


#: MetricLogger lines past a line start (not after a launcher's ``[default0]:`` tag): a record
#: glued onto another line.
_GLUE = (
    GluePrefix(
        re.compile(r"Epoch: \[\d+\]"),
        re.compile(
            r"Epoch: \[(?<=[^\n\x00:]Epoch: \[)(?<!: Epoch: \[)\d+\]\s+\[\s*\d+/\d+\]\s+eta: "
        ),
    ),
    GluePrefix(
        re.compile(r"Test:\s+\["),
        re.compile(r"Test:(?<=[^\n\x00:]Test:)(?<!: Test:)\s+\[\s*\d+/\d+\]\s+eta: "),
    ),
)

FORMAT = LogFormat(
    NAME,
    FRAMEWORK,
    Family(
        "torchvision",
        "torchvision references",
        "median of the last 20 iterations (global average in parentheses)",
    ),
    sniff,
    parse,
    glue=_GLUE,
)
