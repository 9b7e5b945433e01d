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

from losslens.reading.formats._common import Parsed, SkippedLine, to_float
from losslens.reading.formats._contract import Family, LogFormat
from losslens.reading.frame import Columns, build_frames
from losslens.reading.text import LogText

NAME = "losslens_diagnostics"
FRAMEWORK = "losslens reference_model"
MARKER = '"losslens": "diagnostics"'
_BOOKKEEPING = ("losslens", "version", "kind", "non_finite", "per_class")
_ROW_KEYS = ("epoch", "iter", "step")
SMOOTHING = "mean over the log interval (mmcv LogBuffer.average(interval))"
_SIDE_SMOOTHING = "mean over the log interval of the per-iteration values, NaN skipped"
_SMOOTHING_OVERRIDES = {"lr": "current value at the logged iteration"}


def sniff(sample: str) -> int:
    """Number of lines carrying the diagnostics marker."""
    return sum(1 for line in sample.splitlines() if MARKER in line)


def _restore(record: dict[str, Any]) -> dict[str, Any]:
    """Put back the non-finite numbers the writer stored as null."""
    for key, text in (record.get("non_finite") or {}).items():
        record[key] = to_float(str(text))
    return record


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

    def add(self, record: dict[str, Any], index: int) -> None:
        kind = record.get("kind")
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
            for row in record.get("per_class") or []:
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
        else:
            raise ValueError(f"unknown kind {kind!r}; expected meta, train or val")


def parse(log: LogText) -> Parsed:
    state = _State()
    skipped: list[SkippedLine] = []
    for index, line in enumerate(log.lines):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict) or record.get("losslens") != "diagnostics":
                raise ValueError("not a diagnostics record")
            state.add(_restore(record), index)
        except RecursionError:
            skipped.append(SkippedLine(log.line_no(index), line, "JSON nested too deeply to read"))
        except ValueError as error:
            skipped.append(SkippedLine(log.line_no(index), line, str(error)))
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
    return Parsed(train, evals, per_class, skipped, meta)


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
