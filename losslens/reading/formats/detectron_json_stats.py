"""Detectron (Caffe2) training logs: ``json_stats:`` lines and ``copypaste:`` evaluation results.

Source: ``facebookresearch/Detectron:detectron/utils/logging.py`` (``log_json_stats`` prints
``json_stats: `` + ``json.dumps(stats, sort_keys=True)`` with floats pre-formatted ``'{:.6f}'``,
so current code quotes them; older forks printed bare floats; ``setup_logging`` formats other
lines ``%(levelname)s %(filename)s:%(lineno)4d: %(message)s``), ``detectron/utils/training_stats.py``
(what is logged every 20 iterations, ``iter`` 0-based so step = iter + 1) and
``detectron/datasets/task_evaluation.py`` (``copypaste:`` lines, AP as fractions, tasks
``box``/``mask`` -> ``bbox``/``segm``)::

    json_stats: {"accuracy_cls": 1.000000, "eta": "0:21:51", "iter": 55080, "loss": 0.024404, "loss_bbox": 0.000645, "loss_rpn_cls_fpn2": 0.000000, "lr": 0.000025, "mb_qsize": 64, "mem": 3084, "time": 0.266505}
    json_stats: {"accuracy_cls": "1.000000", "eta": "0:00:00", "iter": 89999, "loss": "0.017020", "loss_bbox": "0.000918", "lr": "0.000025", "mb_qsize": 64, "mem": 3084, "time": "0.266505"}
    INFO task_evaluation.py: 187: copypaste: 0.2202,0.4126,0.2117,0.0907,0.2280,0.3021

Values: every loss and metric is the median of its last 20 iterations, each on its own (so the
terms do not add up to ``loss``, the median of the summed loss); ``time`` is the mean iteration
time since the timer was reset (after the first 10 iterations); ``mem`` the max over GPUs (MB);
``eta`` = mean time x remaining iterations. Evaluation (``test_net`` after training) belongs to
the last training step before it.
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np
import pandas as pd

from losslens.reading.formats._common import (
    Parsed,
    SkippedLine,
    iteration_interval,
    parse_eta,
    skipped_line,
    standard_name,
)
from losslens.reading.formats._contract import Family, LogFormat
from losslens.reading.formats._evalblocks import EvalCollector
from losslens.reading.formats._speed.jsonlines import DECODE_ERRORS, NOT_AN_OBJECT, fix_counters
from losslens.reading.formats._textlog import RecordError, walk
from losslens.reading.frame import (
    Columns,
    evals_frame,
    per_class_frame,
    segments_from_steps,
    train_frame,
)
from losslens.reading.text import GluePrefix, LogText

NAME = "detectron_json_stats"
FRAMEWORK = "Detectron (Caffe2)"

#: ``INFO net.py:  59: `` (``%(levelname)s %(filename)s:%(lineno)4d: ``).
PREFIX_RE = re.compile(r"^(?:DEBUG|INFO|WARNING|ERROR|CRITICAL) [\w.\-]+:\s*\d+: ")
_STATS_RE = re.compile(r"json_stats: (\{.*\})\s*$")
_SNIFF_RE = re.compile(r"json_stats: \{[^\n]*\"iter\": \d+")
_COUNTERS = ("iter",)
_SMOOTHING = {
    "lr": "current value at the logged iteration",
    "eta_s": "mean iteration time x remaining iterations",
    "time_s": "mean iteration time since the timer reset (after the first 10 iterations)",
    "memory_mb": "max GPU memory over the GPUs (Caffe2 GetGPUMemoryUsageStats), since start",
    "mb_qsize": "median of the last 20 minibatch queue sizes, rounded",
}
MEDIAN_SMOOTHING = "median of the last 20 iterations, each key on its own (sum of terms != loss)"


def sniff(sample: str) -> int:
    return len(_SNIFF_RE.findall(sample))


class _State:
    def __init__(self) -> None:
        self.payloads: list[str] = []
        self.lines: list[int] = []
        self.collector = EvalCollector(naming="slash")
        #: Per evaluation: how many json_stats lines came before it.
        self.eval_after: list[int] = []

    def on_record(self, message: str, index: int, stamp: str | None) -> bool:
        if "json_stats: {" not in message:
            return False
        match = _STATS_RE.search(message)
        if match is None:
            raise RecordError("a json_stats line without its closing brace (cut off?)")
        self.close_pending()
        self.payloads.append(match.group(1))
        self.lines.append(index)
        return True

    def close_pending(self) -> None:
        if self.collector.pending:
            self.collector.close({"epoch": None, "iter": None, "step": None})
            self.eval_after.append(len(self.payloads))


def parse(log: LogText) -> Parsed:
    state = _State()
    walked = walk(log, PREFIX_RE, state.on_record, state.collector)
    state.close_pending()
    records, kept, skipped = _records(log, state)
    train = _train(records)
    evals, per_class = _evals(state, kept, train)
    meta = _meta(train, walked.blocks)
    return Parsed(train, evals, per_class, sorted(list(walked.skipped) + skipped), meta)


def _records(
    log: LogText, state: _State
) -> tuple[list[dict[str, Any]], list[int], list[SkippedLine]]:
    """All json_stats objects in one ``json.loads``; per line only when that fails.

    Returns the objects, for each json_stats line whether it was kept (1) or not (0), and the
    bad lines (a truncated last line among them).
    """
    try:
        records = json.loads("[" + ",".join(state.payloads) + "]")
    except DECODE_ERRORS:
        records = None
    if (
        records is not None
        and len(records) == len(state.payloads)
        and all(isinstance(r, dict) and not fix_counters(r, _COUNTERS) for r in records)
    ):
        return records, [1] * len(records), []
    records, kept, skipped = [], [], []
    for payload, index in zip(state.payloads, state.lines, strict=True):
        obj, reason = _decode(payload)
        if obj is not None:
            records.append(obj)
            kept.append(1)
        else:
            kept.append(0)
            skipped.append(skipped_line(log, index, reason))
    return records, kept, skipped


def _decode(payload: str) -> tuple[dict[str, Any] | None, str]:
    """One json_stats object, or None and why it is not one."""
    try:
        obj = json.loads(payload)
    except RecursionError:
        return None, "JSON nested too deeply to read"
    except ValueError as error:
        return None, f"not JSON ({error})"
    if not isinstance(obj, dict):
        return None, NOT_AN_OBJECT
    reason = fix_counters(obj, _COUNTERS)
    return (None, reason) if reason else (obj, "")


def _train(records: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(records) if records else pd.DataFrame({"iter": []})
    if "iter" not in frame:
        frame["iter"] = np.nan
    iteration = pd.to_numeric(frame["iter"], errors="coerce").to_numpy(dtype="float64")
    step = iteration + 1
    data: dict[str, Any] = {"iter": iteration, "step": step, "segment": segments_from_steps(step)}
    for col in frame.columns:
        if col == "iter":
            continue
        values = frame[col]
        if col == "eta":
            data["eta_s"] = values.map(_eta).to_numpy(dtype="float64")
        else:  # quoted "0.024404" and bare 0.024404 alike
            data[standard_name(col)] = pd.to_numeric(values, errors="coerce").to_numpy(
                dtype="float64"
            )
    return train_frame(data)


def _eta(value: Any) -> float:
    try:
        return parse_eta(str(value))
    except ValueError:
        return float("nan")


def _evals(
    state: _State, kept: list[int], train: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each evaluation takes the step and segment of the last kept json_stats row before it."""
    evals, per_class = state.collector.evals, state.collector.per_class
    if evals.n:
        kept_before = np.concatenate([[0], np.cumsum(kept)]).astype("int64")
        steps = (
            train["step"].to_numpy(dtype="float64", na_value=np.nan)
            if "step" in train
            else np.zeros(0)
        )
        segments = (
            train["segment"].to_numpy(dtype="int64") if "segment" in train else np.zeros(0, "int64")
        )
        data = evals.to_dict()
        data["step"], data["segment"] = [], []
        for n_stats in state.eval_after:
            row = int(kept_before[n_stats]) - 1
            data["step"].append(None if row < 0 or np.isnan(steps[row]) else int(steps[row]))
            data["segment"].append(int(segments[row]) if row >= 0 else 0)
        if per_class.n:
            per_class.to_dict()["step"] = [
                data["step"][i] for i in per_class.column("eval_index") or []
            ]
    return evals_frame(evals), per_class_frame(per_class if per_class.n else Columns())


def _meta(train: pd.DataFrame, blocks: dict[str, str]) -> dict[str, Any]:
    terms = [c for c in train.columns if c not in ("epoch", "iter", "step", "segment", "timestamp")]
    fpn = any(re.search(r"_fpn\d$", c) for c in terms)
    return {
        "framework": FRAMEWORK,
        "version_guess": "Detectron (Caffe2)"
        + (", FPN model (per-level RPN losses)" if fpn else ""),
        "smoothing": {c: _SMOOTHING.get(c, MEDIAN_SMOOTHING) for c in terms},
        "log_interval": iteration_interval(train),
        "iters_per_epoch": None,
        "eval_units": "fraction",
        "config": blocks.get("config"),
        "env": blocks.get("env"),
    }


#: A ``json_stats: {`` record past a line start: glued onto another line.
_GLUE = (
    GluePrefix(
        re.compile(r"json_stats: \{"),
        re.compile(r"json_stats: \{(?<=[^\n\x00]json_stats: \{)"),
    ),
)

FORMAT = LogFormat(
    NAME,
    FRAMEWORK,
    Family(
        "detectron",
        "Detectron (Caffe2)",
        "median of the last 20 iterations, per key (so the terms do not sum to the total)",
    ),
    sniff,
    parse,
    glue=_GLUE,
)
