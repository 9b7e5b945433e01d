"""losslens diagnostics: ``diagnostics.jsonl`` written by ``losslens train-reference``.

Source: ``reference_model/engine/writers.py`` (``DiagnosticsLog``) and ``trainer.py`` in this
repository. One JSON object a line, each carrying the marker ``"losslens": "diagnostics"``;
``kind`` is ``meta`` (once per run), ``train`` (one per logged iteration: the loss terms and
the per-term side metrics, means over the log interval) or ``val`` (one per evaluation, with
``per_class`` rows). Non-finite numbers are written as ``null`` and named under
``non_finite``::

    {"losslens": "diagnostics", "version": 1, "kind": "meta", "exp_name": "faster_rcnn_cpu_small_synthetic", "iters_per_epoch": 80, "log_interval": 10}
    {"losslens": "diagnostics", "version": 1, "kind": "train", "epoch": 1, "iter": 10, "step": 10, "lr": 0.0036, "loss_rpn_cls": 0.688, "loss": 1.77, "rpn.num_pos": 21.5, "rpn.loss_cls.p2": 0.31, "grad_norm.backbone": 2.4}
    {"losslens": "diagnostics", "version": 1, "kind": "val", "epoch": 12, "iter": 40, "step": 960, "AP50": 0.91, "mAP": 0.9104, "per_class": [{"class": "Car", "gts": 33, "dets": 60, "recall": 0.97, "ap": 0.95}]}

Columns keep their logged names (``rpn.num_pos``, ``grad_norm.roi_head``), so
``losslens plot --terms rpn.num_pos loss_rpn_cls`` finds them.
"""

from __future__ import annotations

import json
from typing import Any

from losslens.reading.formats._common import Parsed, skipped_line, to_float
from losslens.reading.formats._contract import Family, LogFormat
from losslens.reading.formats._speed.jsonlines import fix_counters, read_records, wrapped_meta
from losslens.reading.frame import Columns, build_frames
from losslens.reading.text import LogText

NAME = "losslens_diagnostics"
FRAMEWORK = "losslens reference_model"
MARKER = '"losslens": "diagnostics"'
_BOOKKEEPING = ("losslens", "version", "kind", "non_finite", "per_class")
_ROW_KEYS = ("epoch", "iter", "step")
#: Integers of the meta record that the run's axes are computed from.
_META_COUNTERS = ("iters_per_epoch", "log_interval")
SMOOTHING = "mean over the log interval (mmcv LogBuffer.average(interval))"
_SIDE_SMOOTHING = "mean over the log interval of the per-iteration values, NaN skipped"
_SMOOTHING_OVERRIDES = {"lr": "current value at the logged iteration"}


def sniff(sample: str) -> int:
    """Number of lines carrying the diagnostics marker."""
    return sum(1 for line in sample.splitlines() if MARKER in line)


def _restore(record: dict[str, Any]) -> str:
    """Put back the non-finite numbers the writer stored as null; the reason when ``non_finite``
    is not what the writer writes (an object of texts such as ``"nan"``)."""
    non_finite = record.get("non_finite") or {}
    if not isinstance(non_finite, dict):
        return f"non_finite is {json.dumps(non_finite)[:40]}, expected an object"
    for key, text in non_finite.items():
        if key not in record or record[key] is not None:
            continue  # only the nulls the writer wrote are put back, nothing is made up
        try:
            record[key] = to_float(str(text))
        except ValueError:
            return f"non_finite[{json.dumps(key)}] is {json.dumps(text)[:40]}, expected a number"
    return ""


def _numbers(record: dict[str, Any]) -> dict[str, float]:
    values = {}
    for key, value in record.items():
        if key in _BOOKKEEPING or key in _ROW_KEYS:
            continue
        if isinstance(value, bool) or (not isinstance(value, (int, float)) and value is not None):
            continue
        values[key] = float("nan") if value is None else float(value)
    return values


class _State:
    def __init__(self) -> None:
        self.train = Columns()
        self.evals = Columns()
        self.per_class = Columns()
        self.meta: dict[str, Any] = {}

    def add(self, record: dict[str, Any], index: int) -> str:
        """Take one record; the reason when it is not one the writer writes ("" when taken)."""
        if record.get("losslens") != "diagnostics":
            return 'not a diagnostics record (no "losslens": "diagnostics")'
        kind = record.get("kind")
        if kind not in ("meta", "train", "val"):
            return f"unknown kind {json.dumps(kind)[:40]}; expected meta, train or val"
        per_class = record.get("per_class") or []
        if not isinstance(per_class, list) or not all(isinstance(r, dict) for r in per_class):
            return f"per_class is {json.dumps(per_class)[:40]}, expected a list of objects"
        reason = _restore(record) or fix_counters(record, _META_COUNTERS)
        if reason:
            return reason
        where = {k: record.get(k) for k in _ROW_KEYS}
        if kind == "meta":
            self.meta.setdefault("runs", []).append(
                {k: v for k, v in record.items() if k not in _BOOKKEEPING}
            )
        elif kind == "train":
            self.train.append({**where, "_line": index, **_numbers(record)})
        elif kind == "val":
            eval_index = self.evals.n
            self.evals.append({**where, "_line": index, **_numbers(record)})
            for row in per_class:
                self.per_class.append(
                    {
                        "eval_index": eval_index,
                        "epoch": where["epoch"],
                        "step": where["step"],
                        "task": "bbox",
                        "iou_thr": 0.5,
                        "class": str(row.get("class")),
                        "gts": row.get("gts"),
                        "dets": row.get("dets"),
                        "recall": row.get("recall"),
                        "ap": row.get("ap"),
                    }
                )
        return ""


def parse(log: LogText) -> Parsed:
    """Every record of the file; damaged lines (cut, glued, wrapped, counters that are no
    integers) are read or skipped by the JSON-lines layer shared with the other JSON formats."""
    state = _State()
    decoded = read_records(log, counters=_ROW_KEYS)
    skipped = list(decoded.skipped)
    for record, index in zip(decoded.records, decoded.lines, strict=True):
        reason = state.add(record, index)
        if reason:
            skipped.append(skipped_line(log, index, reason))
    train, evals, per_class = build_frames(state.train, state.evals, state.per_class)
    runs = state.meta.get("runs", [])
    first = runs[0] if runs else {}
    columns = [
        c for c in train.columns if c not in ("epoch", "iter", "step", "segment", "timestamp")
    ]
    meta = {
        "framework": FRAMEWORK,
        "version_guess": f"{FRAMEWORK} diagnostics v{first.get('version', 1)}",
        "smoothing": {c: _smoothing(c) for c in columns},
        "log_interval": first.get("log_interval"),
        "iters_per_epoch": first.get("iters_per_epoch"),
        "eval_units": "fraction",
        "runs": runs,
    }
    if decoded.wrapped:
        meta["wrapped_records"] = wrapped_meta(decoded, log)
    return Parsed(train, evals, per_class, sorted(skipped), meta)


def _smoothing(column: str) -> str:
    if column in _SMOOTHING_OVERRIDES:
        return _SMOOTHING_OVERRIDES[column]
    return (
        SMOOTHING
        if column.startswith("loss") or column in ("acc", "grad_norm")
        else _SIDE_SMOOTHING
    )


FORMAT = LogFormat(
    NAME,
    FRAMEWORK,
    Family("losslens", "losslens reference model", "raw value of the logged iteration"),
    sniff,
    parse,
    log_names=("diagnostics.jsonl",),
)
