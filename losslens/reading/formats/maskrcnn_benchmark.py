"""maskrcnn_benchmark logs (and its forks: FCOS ``fcos_core``, ATSS ``atss_core``, ...).

Source: ``facebookresearch/maskrcnn-benchmark``: ``maskrcnn_benchmark/engine/trainer.py``
(``do_train``), ``utils/metric_logger.py`` (``SmoothedValue(window_size=20)``, ``MetricLogger``),
``utils/logger.py`` (format ``%(asctime)s %(name)s %(levelname)s: %(message)s``) and
``data/datasets/evaluation/coco/coco_eval.py`` (``COCOResults``). Every 20 iterations the trainer
logs ``eta``, ``iter``, every meter as ``name: median (global_avg)`` joined by two spaces, then
``lr`` (``.6f``) and ``max mem`` (MB)::

    2019-05-27 10:48:54,461 maskrcnn_benchmark.trainer INFO: eta: 0:17:37  iter: 87940  loss: 0.6097 (0.9191)  loss_classifier: 0.1472 (0.3151)  time: 0.5063 (0.5132)  data: 0.0062 (0.0078)  lr: 0.000025  max mem: 4358
    2019-09-16 19:30:18,348 maskrcnn_benchmark.trainer INFO: eta: 1 day, 20:10:54 iter: 0 loss: 4.5967 (4.5967) loss_classifier: 2.3259 (2.3259) time: 2.2722 (2.2722) data: 0.8793 (0.8793) lr: 0.000335 max mem: 3751
    2020-03-20 05:16:31,143 atss_core.inference INFO: OrderedDict([('bbox', OrderedDict([('AP', 0.5223846572589802), ('AP50', 0.7894751472140626), ...]))])

Since early 2019 ``iter`` is 1-based (``iteration + 1``, logged when ``iter % 20 == 0`` or at
``max_iter``); the code before that (and forks made from it) logs the 0-based iteration
(``iter: 0`` first, ``max_iter - 1`` last): step = iter + 1 there. Under Python 3.5 the meters
come in arbitrary order. Evaluation results are a multi-line ``COCOResults`` repr (``Task: bbox``
/ ``AP, AP50, ...`` / ``0.3680, ...``; older versions print the ``OrderedDict``), fractions. The
periodic validation of later versions ends with a ``[Validation]:   eta: ...  iter: N  loss: ...``
line of validation losses, kept in the same ``evals`` row as ``val/loss``, ``val/loss_global_avg``...
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from losslens.reading.formats._common import MAX_COUNTER, Parsed
from losslens.reading.formats._contract import Family, LogFormat
from losslens.reading.formats._evalblocks import EvalCollector
from losslens.reading.formats._metriclogger import GLOBAL_AVG_SUFFIX, meter_values
from losslens.reading.formats._textlog import (
    ASCTIME_MARKER,
    RecordError,
    counter,
    drop_truncated_tail,
    log_interval,
    strip_rank_tags,
    walk,
)
from losslens.reading.frame import Columns, build_frames
from losslens.reading.text import GluePrefix, LogText

NAME = "maskrcnn_benchmark"
FRAMEWORK = "maskrcnn_benchmark"

#: ``utils/logger.py``: ``%(asctime)s %(name)s %(levelname)s: %(message)s``.
PREFIX_RE = re.compile(r"^(?P<ts>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) [\w.\-]+ [A-Z]+:(?: |$)")
TRAIN_RE = re.compile(r"^\s*(?P<val>\[Validation\]:\s*)?eta: ")
#: Training lines, and the ``engine/inference.py`` start line (a ``tools/test_net.py`` log has
#: only evaluations).
_SNIFF_RE = re.compile(
    r"(?:^|\d,\d{3} [\w.\-]+ [A-Z]+: (?:\[Validation\]:\s*)?)eta: [^\n]{4,40}?\s"
    r"iter: \d+\s+[\w.]+: \S+ \("
    r"|\d,\d{3} [\w.\-]+\.inference [A-Z]+: Start evaluation on .* dataset\(\d+ images\)",
    re.MULTILINE,
)
_ITER_SCAN_RE = re.compile(r"(?:^|:\s)\s*eta: [^\n]*?\siter: (\d+)\b", re.MULTILINE)
_LOGGER_RE = re.compile(r"\d,\d{3} ([\w\-]+)(?:\.[\w.]+)? [A-Z]+: (?:\[Validation\]:\s*)?eta: ")
_TORCH_RE = re.compile(r"^PyTorch version: (\S+)", re.MULTILINE)
_START_EVAL_RE = re.compile(r"^Start evaluation on ")
#: Messages of ``engine/inference.py`` and ``coco_eval.py`` that date an evaluation.
_EVAL_MESSAGE_RE = re.compile(
    r"^(?:Start evaluation on |Evaluating predictions|Evaluating bbox proposals|OrderedDict\(\[)"
)
_ENV_FIRST_LINE = "PyTorch version:"
_CONFIG_START = "Running with config:"
#: The trainer logs every 20 iterations (``trainer.py``: ``iteration % 20 == 0``).
DEFAULT_LOG_PERIOD = 20
_TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S,%f"
MEDIAN = "median of the last 20 iterations (SmoothedValue window_size=20)"
GLOBAL_AVG = "mean over every iteration since this launch started (SmoothedValue.global_avg)"
_SMOOTHING_OVERRIDES = {
    "lr": "current value at the logged iteration (optimizer.param_groups[0]['lr'])",
    "eta_s": "global-average iteration time x remaining iterations",
    "memory_mb": "torch.cuda.max_memory_allocated since the start, rank 0 only (MB)",
}


def sniff(sample: str) -> int:
    """Number of MetricLogger training lines (``eta: ...  iter: N  name: median (avg)``) and
    inference start lines in ``sample``."""
    return len(_SNIFF_RE.findall(sample))


def is_zero_based(iters: np.ndarray, period: int = DEFAULT_LOG_PERIOD) -> bool:
    """True when the log prints 0-based iterations (maskrcnn_benchmark before 2019-03).

    1-based code logs ``iter % 20 == 0`` and ``max_iter``; 0-based code logs ``0``, multiples
    of 20 and ``max_iter - 1``. So ``iter: 0`` or an off-period iteration one short of a
    period boundary (``89999``, ``119999``) gives 0-based away.
    """
    if len(iters) == 0:
        return False
    if (iters == 0).any():
        return True
    off_period = iters[iters % period != 0]
    return bool(len(off_period)) and bool(((off_period + 1) % period == 0).all())


def _meters(message: str) -> tuple[int, dict[str, float]]:
    """``eta: ...  iter: N  loss: 0.6 (0.9) ...`` -> (iter, column values)."""
    raw, values = meter_values(message, skip=("iter",))
    try:
        return counter(raw["iter"]), values
    except (KeyError, ValueError) as err:
        raise RecordError(f"a MetricLogger line without a readable 'iter: N' ({err})") from err


class _State:
    def __init__(self, step_offset: int) -> None:
        self.train = Columns()
        self.collector = EvalCollector(naming="slash")
        self.step_offset = step_offset
        self.last_where: dict[str, Any] = {"epoch": None, "iter": None, "step": None}
        self.blocks: dict[str, str] = {}
        self._block: str | None = None
        self._block_lines: list[str] = []
        self._after_empty_message = False
        #: Timestamp of the last evaluation message since the last training record.
        self._eval_stamp: str | None = None

    def on_record(self, message: str, index: int, stamp: str | None) -> bool:
        if stamp is not None:  # a new log record ends any multi-line message
            self._end_block()
            self._after_empty_message = not message.strip()
        elif self._feed_block(message):
            return True
        match = TRAIN_RE.match(message)
        if match is not None:
            if match["val"] is not None:
                self._validation(message, index, stamp)
            else:
                self._train(message, index, stamp)
            return True
        if stamp is not None:
            if _START_EVAL_RE.match(message):
                self.close_pending()
            if _EVAL_MESSAGE_RE.match(message):
                self._eval_stamp = stamp
            elif message.startswith(_CONFIG_START):
                self._block, self._block_lines = "config", []
                return True
        return False

    # -- multi-line messages: the env report and the config dump ----------------------------
    def _feed_block(self, line: str) -> bool:
        if self._after_empty_message and line.startswith(_ENV_FIRST_LINE):
            self._block, self._block_lines = "env", []
        self._after_empty_message = False
        if self._block is None:
            return False
        self._block_lines.append(line)
        return True

    def _end_block(self) -> None:
        if self._block is not None and self._block not in self.blocks:
            self.blocks[self._block] = "\n".join(self._block_lines).strip("\n")
        self._block = None

    # -- records -----------------------------------------------------------------------------
    def _train(self, message: str, index: int, stamp: str | None) -> None:
        iteration, values = _meters(message)
        row: dict[str, Any] = {"iter": iteration, "timestamp": stamp, "_line": index}
        row.update(values)
        self.close_pending()
        self.train.append(row)
        self.last_where = {
            "epoch": None,
            "iter": None,
            "step": iteration + self.step_offset,
            "timestamp": stamp,
            "_line": index,
        }

    def _validation(self, message: str, index: int, stamp: str | None) -> None:
        iteration, values = _meters(message)
        metrics = {
            f"val/{k}": v for k, v in values.items() if k not in ("eta_s", "lr", "memory_mb")
        }
        where = {
            "epoch": None,
            "iter": iteration,
            "step": iteration + self.step_offset,
            "timestamp": stamp,
            "_line": index,
        }
        self.collector.close(where, metrics)
        self._eval_stamp = None

    def close_pending(self) -> None:
        """Close an evaluation whose results were printed (no closing line follows them)."""
        if self.collector.pending:
            where = dict(self.last_where)
            if self._eval_stamp is not None:
                where["timestamp"] = self._eval_stamp
            self.collector.close(where)
        self._eval_stamp = None


def parse(log: LogText) -> Parsed:
    log = strip_rank_tags(log)
    found = (int(m) for m in _ITER_SCAN_RE.findall(log.text))
    iters = np.array([i for i in found if i <= MAX_COUNTER], dtype="int64")
    zero_based = is_zero_based(iters)
    state = _State(step_offset=1 if zero_based else 0)
    walked = walk(log, PREFIX_RE, state.on_record, state.collector)
    state._end_block()
    state.close_pending()
    skipped = list(walked.skipped)
    drop_truncated_tail(log, state.train, skipped)
    train, evals, per_class = build_frames(
        state.train,
        state.collector.evals,
        state.collector.per_class,
        timestamp_format=_TIMESTAMP_FORMAT,
        zero_based_iter=zero_based,
    )
    meta = {
        **_meta(log, state, {**walked.blocks, **state.blocks}, train, zero_based),
    }
    return Parsed(train, evals, per_class, sorted(skipped), meta, recognised=walked.seen_record)


def _smoothing(column: str) -> str:
    if column in _SMOOTHING_OVERRIDES:
        return _SMOOTHING_OVERRIDES[column]
    return GLOBAL_AVG if column.endswith(GLOBAL_AVG_SUFFIX) else MEDIAN


def _meta(
    log: LogText, state: _State, blocks: dict[str, str], train: Any, zero_based: bool
) -> dict[str, Any]:
    columns = [
        c for c in train.columns if c not in ("epoch", "iter", "step", "segment", "timestamp")
    ]
    logger = _LOGGER_RE.search(log.text)
    package = logger.group(1) if logger else "maskrcnn_benchmark"
    torch = _TORCH_RE.search(blocks.get("env", ""))
    guess = package if package == "maskrcnn_benchmark" else f"{package} (a maskrcnn_benchmark fork)"
    guess += " before 2019-03 (0-based iter)" if zero_based else ""
    if torch:
        guess += f", PyTorch {torch.group(1)}"
    return {
        "framework": FRAMEWORK,
        "version_guess": guess,
        "logger": package,
        "smoothing": {c: _smoothing(c) for c in columns},
        "log_interval": log_interval(state.train.column("iter") or []),
        "iters_per_epoch": None,
        "zero_based_iter": zero_based,
        "eval_units": "fraction",
        "config": blocks.get("config"),
        "env": blocks.get("env"),
    }


#: maskrcnn_benchmark's logging prefix (``%(asctime)s %(name)s %(levelname)s: ``) past a line
#: start: a record glued onto another line.
_GLUE = (
    GluePrefix(
        ASCTIME_MARKER,
        re.compile(r"20(?<=[^\n\x00]20)\d\d-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [\w.]+ [A-Z]+: "),
    ),
)

FORMAT = LogFormat(
    NAME,
    FRAMEWORK,
    Family(
        "maskrcnn_benchmark",
        "maskrcnn_benchmark",
        "median of the last 20 iterations (global average in parentheses)",
    ),
    sniff,
    parse,
    glue=_GLUE,
)
