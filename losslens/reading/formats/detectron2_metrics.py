"""detectron2 ``metrics.json``, written by ``JSONWriter``.

Source: ``facebookresearch/detectron2:detectron2/utils/events.py`` (``JSONWriter``,
``EventStorage.latest_with_smoothing_hint``), ``engine/hooks.py`` (``EvalHook``) and
``evaluation/testing.py:flatten_results_dict``. One JSON object per line, ``sort_keys=True``,
``iteration`` 0-based (step = iteration + 1); values put with ``smoothing_hint=True`` (losses,
``time``, ``data_time``, ``rpn/num_pos_anchors``, ``fast_rcnn/cls_accuracy`` ...) are the median
of the last 20 iterations, the others (``lr``, ``eta_seconds``, evaluation results) are raw::

    {"data_time": 0.0013, "eta_seconds": 0.0, "fast_rcnn/cls_accuracy": 0.625, "iteration": 9, "loss_box_reg": 0.393, "lr": 0.000225, "rpn/num_pos_anchors": 26.0, "time": 0.2966, "total_loss": 2.132}
    {"bbox/AP": 11.63, "bbox/AP-airplane": 20.69, "bbox/AP50": 23.1, "data_time": 0.068, "iteration": 19999, "loss_cls": 0.11, "total_loss": 0.19}
    {"eta_seconds": 8584.15, "iteration": 5878, "rpn/num_neg_anchors": 248.95, "rpn/num_pos_anchors": 7.05}

Which objects are what:

* a **training record** has at least one loss key (a key containing ``loss``, as
  ``CommonMetricPrinter`` decides what a loss is);
* **evaluation results** are keys under an evaluation task (``bbox/AP``, ``segm/AP50``,
  ``keypoints/AP``, ``sem_seg/mIoU``, ``box_proposals/AR@100``; with several test sets
  ``<dataset>/bbox/AP``). ``EvalHook`` puts them at the iteration it ran after, so they are
  merged into that iteration's training record, or (the final evaluation in ``after_train``, an
  evaluation off the logging period) stand alone. They become one ``evals`` row at step
  iteration + 1, except a stand-alone evaluation one past the last training iteration, which is
  the final evaluation after ``max_iter`` steps (step = iteration). ``<task>/AP-<class>`` keys go
  to ``per_class`` (AP in percent);
* an object with neither (``{"eta_seconds": ..., "iteration": 5878, "rpn/num_pos_anchors": ...}``)
  is what ``JSONWriter`` flushes when training stops between two periodic writes (an exception,
  a kill): the scalars of an unfinished iteration. It is not a training record; it is listed in
  ``meta["partial_records"]`` (line number, iteration, values).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from losslens.reading.formats._common import Parsed, iteration_interval, skipped_line, standard_name
from losslens.reading.formats._contract import LogFormat, Resume
from losslens.reading.formats._families import DETECTRON2
from losslens.reading.formats._speed.fastjson import JsonLineReader, JsonShape, json_reader
from losslens.reading.formats._speed.fasttext import FastRead, fast_path
from losslens.reading.formats._speed.jsonlines import (
    JsonRecords,
    JsonTable,
    table_from_fast,
    table_from_records,
    wrapped_meta,
)
from losslens.reading.formats._speed.jsonlines import read_records as read_json_records
from losslens.reading.formats._speed.resume import LINES, Join, last_line_start
from losslens.reading.frame import (
    EVAL_LEAD,
    Columns,
    make_frame,
    per_class_frame,
    segments_from_steps,
    train_frame,
)
from losslens.reading.text import LogText

NAME = "detectron2_metrics"
FRAMEWORK = "detectron2"

#: Evaluation task names of detectron2's evaluators (``evaluation/*_evaluation.py``).
EVAL_TASKS = ("bbox", "segm", "keypoints", "sem_seg", "panoptic_seg", "box_proposals")
_EVAL_KEY_RE = re.compile(r"(?:^|/)(?:" + "|".join(EVAL_TASKS) + r")/")
_PER_CLASS_RE = re.compile(r"^(?P<task>.+)/AP-(?P<cls>.+)$")
#: A metrics.json line: a JSON object with an ``iteration``, not mmcv's (``mode``).
_SNIFF_RE = re.compile(
    r'^(?![^\n]*"mode": ?"(?:train|val)")\s*\{[^\n]*"iteration": \d+', re.MULTILINE
)
LOSS_SMOOTHING = "median of the last 20 iterations (JSONWriter window_size=20, smoothing_hint=True)"
_SMOOTHING = {
    "lr": "current value at the logged iteration (smoothing_hint=False)",
    "eta_s": "median of the last 1000 iteration times x remaining iterations (smoothing_hint=False)",
    "data_time_s": "median of the last 20 iterations of the max over ranks",
    "rank_data_time": "median of the last 20 iterations of this rank's data time",
}


def sniff(sample: str) -> int:
    """Number of JSON lines with an ``iteration`` key and no mmcv ``mode``: a stray mmcv line
    among them counts for mmdet_json, which then scores 1 against their many."""
    return len(_SNIFF_RE.findall(sample))


def is_eval_key(key: str) -> bool:
    return bool(_EVAL_KEY_RE.search(key))


_COUNTERS = ("iteration",)
_NO_ITERATION = "a JSON object without detectron2's iteration"


def read_records(log: LogText, skip: list[bool] | None = None) -> JsonRecords:
    """Every JSON object of the file with an ``iteration``, the logical line each came from,
    and the lines skipped (see :func:`losslens.reading.formats._speed.jsonlines.read_records`); ``skip``
    flags lines not to read (the placeholders of lines the fast path read)."""
    decoded = read_json_records(log, skip, _COUNTERS)
    if all("iteration" in record for record in decoded.records):
        return decoded
    out = JsonRecords(skipped=decoded.skipped, wrapped=decoded.wrapped)
    for record, index in zip(decoded.records, decoded.lines, strict=True):
        if "iteration" in record:
            out.records.append(record)
            out.lines.append(index)
        else:
            out.skipped.append(skipped_line(log, index, _NO_ITERATION))
    return out


def parse(log: LogText) -> Parsed:
    table = table_from_records(read_records(log), log.text)
    return _parse_table(table, log)


def _accept(shape: JsonShape) -> tuple[str, ...] | None:
    """Training records (a loss, no evaluation results, numbers only) go to the fast path;
    a line is read when one of its losses is a number (else it is not a training record)."""
    if "iteration" not in shape.keys or any(s is not None for s in shape.strings):
        return None
    if any(is_eval_key(k) for k in shape.keys):
        return None
    losses = tuple(k for k in shape.keys if "loss" in k)
    return losses or None


def _parse_fast(fast: FastRead, reader: JsonLineReader) -> Parsed:
    """The parse of a file whose record lines of a fixed shape were read from its raw bytes
    (``_fastjson``): those rows and the rest log read per line."""
    decoded = read_records(fast.log, fast.placeholders)
    table = table_from_fast(fast, reader.shapes, decoded, line_no=False)
    return _parse_table(table, fast.log)


def resume_point(raw: bytes) -> int | None:
    """Start of the last complete training record line: where a grown file can be re-parsed
    from (evaluations after it take their step from it or from later records); see
    ``_resume``."""
    return last_line_start(raw, _is_train_line)


def _is_train_line(line: bytes) -> bool:
    if b'"iteration"' not in line or b"loss" not in line:
        return False
    try:
        record = json.loads(line)
    except (ValueError, RecursionError):
        return False
    return isinstance(record, dict) and any(
        "loss" in key
        and not is_eval_key(key)
        and isinstance(value, (int, float))
        and not math.isnan(value)
        for key, value in record.items()
    )


#: Meta of a resumed parse (see ``_resume``).
RESUME_META = {"partial_records": LINES, "wrapped_records": LINES}


def finish_resume(join: Join) -> Parsed | None:
    """The whole-file meta of a joined parse, recomputed from the joined train table."""
    run = join.run
    meta = {**run.meta, **_meta(run.train, run.meta["partial_records"])}
    return replace(run, meta=meta)


def _parse_table(table: JsonTable, log: LogText) -> Parsed:
    skipped = table.skipped
    frame = table.frame if len(table.frame) else pd.DataFrame({"iteration": [], "_line": []})
    if "iteration" not in frame:
        frame["iteration"] = np.nan
    columns = [c for c in frame.columns if c not in ("iteration", "_line")]
    eval_cols = [c for c in columns if is_eval_key(c)]
    loss_cols = [c for c in columns if "loss" in c and c not in eval_cols]
    is_train = (
        frame[loss_cols].notna().any(axis=1).to_numpy() if loss_cols else np.zeros(len(frame), bool)
    )
    has_eval = (
        frame[eval_cols].notna().any(axis=1).to_numpy() if eval_cols else np.zeros(len(frame), bool)
    )

    train_rows = frame[is_train]
    iteration = pd.to_numeric(train_rows["iteration"], errors="coerce").to_numpy(dtype="float64")
    step = iteration + 1
    data: dict[str, Any] = {"iter": iteration, "step": step, "segment": segments_from_steps(step)}
    for col in columns:
        if col not in eval_cols:
            data[standard_name(col)] = pd.to_numeric(train_rows[col], errors="coerce").to_numpy(
                dtype="float64"
            )
    train = train_frame(data)

    evals, per_class = _evaluations(frame, table, has_eval, is_train, eval_cols, data)
    line_of = frame["_line"].to_numpy(dtype="int64")
    partial = []
    for i in np.flatnonzero(~is_train & ~has_eval):
        record = table.record(int(i)) or {}  # the fast path reads training records only
        partial.append(
            {
                "line_no": log.line_no(int(line_of[i])),
                "iteration": record.get("iteration"),
                "values": record,
            }
        )
    meta = _meta(train, partial)
    if table.wrapped:
        meta["wrapped_records"] = wrapped_meta(table, log)
    return Parsed(train, evals, per_class, sorted(skipped), meta)


def _evaluations(
    frame: pd.DataFrame,
    table: JsonTable,
    has_eval: np.ndarray,
    is_train: np.ndarray,
    eval_cols: list[str],
    train_data: dict[str, Any],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One ``evals`` row per object with evaluation keys; ``<task>/AP-<class>`` to ``per_class``."""
    summary_cols = [c for c in eval_cols if not _PER_CLASS_RE.match(c)]
    positions = np.flatnonzero(has_eval)
    # The training row each evaluation belongs to: its own, or the last one before it.
    train_pos = np.flatnonzero(is_train)
    before = np.searchsorted(train_pos, positions, side="right") - 1
    iteration = pd.to_numeric(frame["iteration"], errors="coerce").to_numpy(dtype="float64")
    train_iter = np.asarray(train_data["iter"], dtype="float64")
    train_segment = np.asarray(train_data["segment"], dtype="int64")
    steps: list[int | None] = []
    segments: list[int] = []
    for pos, row in zip(positions, before, strict=True):
        it = iteration[pos]
        merged = is_train[pos]
        final = (
            not merged
            and row >= 0
            and it == train_iter[row] + 1
            and _no_train_after(train_iter, row, it)
        )
        steps.append(None if math.isnan(it) else int(it if final else it + 1))
        segments.append(int(train_segment[row]) if row >= 0 else 0)
    printed = [None if math.isnan(iteration[pos]) else int(iteration[pos]) for pos in positions]
    ev: dict[str, Any] = {
        "epoch": [None] * len(positions),
        "iter": printed,
        "step": steps,
        "segment": segments,
    }
    for col in summary_cols:
        ev[col] = pd.to_numeric(frame[col].iloc[positions], errors="coerce").to_numpy(
            dtype="float64"
        )
    evals = make_frame(ev, EVAL_LEAD, len(positions))

    per_class = Columns()
    for eval_index, pos in enumerate(positions):
        for key, value in (table.record(int(pos)) or {}).items():
            match = _PER_CLASS_RE.match(key)
            if match is not None and is_eval_key(key):
                per_class.append(
                    {
                        "eval_index": eval_index,
                        "epoch": None,
                        "step": steps[eval_index],
                        "task": match["task"],
                        "iou_thr": None,
                        "class": match["cls"],
                        "ap": _float(value),
                    }
                )
    return evals, per_class_frame(per_class)


def _no_train_after(train_iter: np.ndarray, row: int, iteration: float) -> bool:
    """No later training record of the same run (the next one, if any, went back: a resume)."""
    return row + 1 >= len(train_iter) or train_iter[row + 1] <= iteration


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _meta(train: pd.DataFrame, partial: list[dict[str, Any]]) -> dict[str, Any]:
    terms = [c for c in train.columns if c not in ("epoch", "iter", "step", "segment", "timestamp")]
    interval = iteration_interval(train)
    if "rank_data_time" in terms:
        guess = "detectron2 >= 0.6 (rank_data_time logged)"
    else:
        guess = "detectron2 (version not recorded in metrics.json)"
    return {
        "framework": FRAMEWORK,
        "version_guess": guess,
        "smoothing": {c: _SMOOTHING.get(c, LOSS_SMOOTHING) for c in terms},
        "log_interval": interval,
        "iters_per_epoch": None,
        "eval_units": "percent",
        "config": None,
        "env": None,
        "partial_records": partial,
    }


FORMAT = LogFormat(
    NAME,
    FRAMEWORK,
    DETECTRON2,
    sniff,
    parse,
    fast=fast_path(json_reader(_accept, _COUNTERS), _parse_fast),
    resume=Resume(resume_point, RESUME_META, finish_resume),
    log_names=("metrics.json",),
)
