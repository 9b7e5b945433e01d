"""What every check shares: the :class:`Finding` record, the check context and evidence helpers."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from losslens.analysis import terms
from losslens.analysis.axes import (
    LrSchedule,
    column,
)
from losslens.analysis.numbers import number
from losslens.run import Run

SEVERITIES = ("info", "warning", "error")
SEVERITY_RANK = {s: k for k, s in enumerate(SEVERITIES)}
#: Main evaluation metric, in order of preference.
MAIN_METRICS = (
    "bbox_mAP",
    "coco/bbox_mAP",
    "bbox/AP",
    "mAP",
    "pascal_voc/mAP",
    "AP50",
    "bbox_mAP_50",
    "segm_mAP",
    "metrics/mAP50-95(B)",  # ultralytics results.csv (YOLOv8 and later)
    "metrics/mAP_0.5:0.95",  # YOLOv5 results.csv / results.txt
)


@dataclass
class Finding:
    """One thing worth knowing about a run."""

    code: str
    severity: str
    message: str
    run: str = ""
    steps: list[int] = field(default_factory=list)
    epoch: int | None = None
    iter: int | None = None
    evidence: list[str] = field(default_factory=list)
    advice: str = ""
    #: The log line of the record the finding is about (its first evidence), where known.
    line_no: int | None = None

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, got {self.severity!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Context:
    run: Run
    frame: pd.DataFrame
    lines: Sequence[str] | None
    schedule: LrSchedule


def where(frame: pd.DataFrame, pos: int) -> dict[str, Any]:
    """The :class:`Finding` fields that place it at record ``pos``: steps, epoch, iter, line_no."""
    row = frame.iloc[pos]
    out: dict[str, Any] = {"steps": [], "epoch": None, "iter": None, "line_no": None}
    if "step" in frame and pd.notna(row["step"]):
        out["steps"] = [int(row["step"])]
    for key in ("epoch", "iter", "line_no"):
        if key in frame and pd.notna(row[key]):
            out[key] = int(row[key])
    return out


def line_of(frame: pd.DataFrame, pos: int) -> int | None:
    """The log line record ``pos`` was read from (None where the parser does not say)."""
    return where(frame, pos)["line_no"]


def format_row(frame: pd.DataFrame, pos: int, columns: Sequence[str] | None = None) -> str:
    """One record as ``step 120 (epoch 1, iter 120, line 57): lr=0.02, loss=nan`` (evidence text)."""
    row = frame.iloc[pos]
    head = []
    for key in ("step", "epoch", "iter", "line_no"):
        if key in frame and pd.notna(row[key]):
            head.append(f"{'line' if key == 'line_no' else key} {int(row[key])}")
    cols = (
        columns
        if columns is not None
        else [c for c in frame.columns if c not in terms.INDEX_COLUMNS]
    )
    values = ", ".join(f"{logged_name(frame, c)}={fmt(row[c])}" for c in cols if c in frame)
    where = (
        head[0] + (f" ({', '.join(head[1:])})" if len(head) > 1 else "") if head else f"row {pos}"
    )
    return f"{where}: {values}"


def logged_name(frame: pd.DataFrame, col: str) -> str:
    """``col`` as the log wrote it, with the canonical name in brackets where they differ:
    ``loss_bbox (dense_bbox)`` for a RetinaNet; a column summed from several logged ones keeps
    its canonical name (``frame.attrs['original_names']`` of a canonical frame)."""
    sources = frame.attrs.get("original_names", {}).get(col, [col])
    return f"{sources[0]} ({col})" if len(sources) == 1 and sources[0] != col else col


def fmt(value: Any) -> str:
    """A logged value as evidence text (:func:`losslens.analysis.numbers.number`), ``nan`` for
    any missing value (NaN, None, or pandas' ``<NA>`` of a row that mixes nullable integer
    columns)."""
    return number(value, missing="nan")


def runs_of(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, length) of each run of True values."""
    out: list[tuple[int, int]] = []
    start = None
    for k, v in enumerate(mask):
        if v and start is None:
            start = k
        elif not v and start is not None:
            out.append((start, k - start))
            start = None
    if start is not None:
        out.append((start, len(mask) - start))
    return out


def nanmedian(values: np.ndarray) -> float:
    """Median of the finite values; NaN (and no warning) when there are none."""
    arr = np.asarray(values, dtype="float64")
    arr = arr[np.isfinite(arr)]
    return float(np.median(arr)) if len(arr) else math.nan


def rolling_median(values: np.ndarray, window: int, center: bool = False) -> np.ndarray:
    return pd.Series(values).rolling(window, min_periods=1, center=center).median().to_numpy()


def main_metric(run: Run) -> str | None:
    """The headline evaluation metric column of a run (COCO box AP, else VOC mAP ...)."""
    for name in MAIN_METRICS:
        if name in run.evals and run.evals[name].notna().any():
            return name
    return None


def metric_in_fraction(run: Run, name: str, values: np.ndarray) -> np.ndarray:
    percent = run.meta.get("eval_units") == "percent" or name.startswith(("bbox/", "segm/"))
    return values / 100.0 if percent else values


#: Logged mixed-precision loss scales (mmcv/mmengine fp16 ``loss_scale``, a GradScaler's scale
#: logged by a hook): named "loss" but no loss, so no loss check reads them.
LOSS_SCALE_COLUMNS = ("loss_scale", "grad_scale", "amp_loss_scale", "loss_scaler")


def log_loss(frame: pd.DataFrame) -> tuple[str, np.ndarray] | None:
    col = terms.total_loss_column(frame)
    if col is None:
        return None
    y = column(frame, col)
    with np.errstate(divide="ignore", invalid="ignore"):
        return col, np.where(np.isfinite(y) & (y > 0), np.log(np.where(y > 0, y, 1.0)), np.nan)
