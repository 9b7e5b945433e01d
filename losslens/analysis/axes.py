"""Where each record sits: x-axis values (step, epoch, time, images) and the logged lr schedule.

Both the checks (:mod:`losslens.analysis.diagnostics`) and the plots (:mod:`losslens.showing.plotting`) need them,
so they live here, below both. Batch size and GPU count come from the config dump
(:mod:`losslens.reading.config_dump`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from losslens.analysis.numbers import number
from losslens.errors import FormatOptionError
from losslens.reading import config_dump as config

if TYPE_CHECKING:
    from losslens.run import Run

X_AXES = ("step", "epoch", "time", "images")
X_LABELS = {
    "step": "training step (global iteration)",
    "epoch": "epoch",
    "time": "wall time (hours since the first record)",
    "images": "images seen",
}
#: A discrete lr change: consecutive logged lrs differ by more than this factor.
LR_CHANGE_FACTOR = 1.3


def column(frame: pd.DataFrame, name: str) -> np.ndarray:
    """``frame[name]`` as float64 with missing values as NaN."""
    return frame[name].to_numpy(dtype="float64", na_value=np.nan)


def segment_rows(frame: pd.DataFrame) -> list[np.ndarray]:
    """Row positions of each resumed segment (a run appended to the same file), in order; all
    rows as one when the frame holds at most one segment (rows without one included)."""
    if "segment" not in frame or frame["segment"].nunique(dropna=True) <= 1:
        return [np.arange(len(frame))]
    seg = frame["segment"].to_numpy(dtype="float64", na_value=-1)
    return [np.flatnonzero(seg == s) for s in np.unique(seg)]


@dataclass(frozen=True)
class LrChange:
    step: int
    before: float
    after: float
    timestamp: Any = None

    @property
    def factor(self) -> float:
        return self.after / self.before if self.before else math.inf


@dataclass(frozen=True)
class LrSchedule:
    """What the logged lr shows: warmup, the peak, discrete changes (steps) and the shape after."""

    peak: float | None = None
    warmup_steps: int | None = None
    warmup_kind: str | None = None
    changes: tuple[LrChange, ...] = ()
    decay: str = "none"  # none | step | smooth (cosine/poly) | unknown

    def describe(self) -> str:
        if self.peak is None:
            return "no lr logged"
        parts = [f"peak lr {number(self.peak)}"]
        if self.warmup_steps:
            kind = f"{self.warmup_kind} " if self.warmup_kind else ""
            parts.append(f"{kind}warmup over the first {self.warmup_steps} steps")
        if self.changes:
            steps = ", ".join(f"x{c.factor:.3g} at step {c.step}" for c in self.changes)
            parts.append(f"lr changes {steps}")
        elif self.decay == "smooth":
            parts.append("smooth decay (cosine/poly-like)")
        return "; ".join(parts)


# --------------------------------------------------------------------------- lr schedule
def lr_schedule(run: Run) -> LrSchedule:
    """Reconstruct the lr schedule from the logged lr: warmup, peak and discrete changes."""
    return schedule_of(run.train)


def schedule_of(train: pd.DataFrame) -> LrSchedule:
    """:func:`lr_schedule` of a train table (or one segment of it)."""
    if "lr" not in train or train["lr"].notna().sum() < 2:
        return LrSchedule()
    changes: list[LrChange] = []
    warmup_steps: int | None = None
    warmup_kind: str | None = None
    peak = float(np.nanmax(column(train, "lr")))
    for k, rows in enumerate(segment_rows(train)):
        sub = train.iloc[rows]
        lr = column(sub, "lr")
        steps = column(sub, "step") if "step" in sub else np.arange(1.0, len(sub) + 1)
        start = warmup_end(lr)
        if k == 0 and start > 0:
            warmup_steps = int(steps[start])
            # the last rise is clipped at the peak; with fewer than two left the shape is unknown
            diffs = np.diff(lr[: start + 1])[:-1]
            if len(diffs) >= 2:
                linear = np.nanstd(diffs) <= 0.25 * abs(np.nanmean(diffs))
                warmup_kind = "linear" if linear else "non-linear"
        changes.extend(_discrete_changes(sub, lr, steps, start))
    decay = _decay_kind(train, changes)
    return LrSchedule(peak, warmup_steps, warmup_kind, tuple(changes), decay)


def warmup_end(lr: np.ndarray) -> int:
    """Index where the initial rising ramp ends (0 when the lr does not rise first).

    A warmup is a run of increases from the first log; it ends at the last of them, whether a
    constant stretch (step schedules) or a decay (cosine) follows. A single increase counts
    when it is a large one (a linear warmup seen through few logged points: its first log is
    on the ramp, nothing before it shows a steady lr, so it is no lr step).
    """
    if len(lr) < 2 or not np.isfinite(lr[:2]).all():
        return 0
    k = 0
    while k + 1 < len(lr) and np.isfinite(lr[k + 1]) and lr[k + 1] > lr[k] * (1 + 1e-9):
        k += 1
    if k == 1:
        return 1 if lr[1] >= LR_CHANGE_FACTOR * lr[0] else 0
    return k


def _discrete_changes(
    sub: pd.DataFrame, lr: np.ndarray, steps: np.ndarray, start: int
) -> list[LrChange]:
    out = []
    stamps = sub["timestamp"].to_numpy() if "timestamp" in sub else [None] * len(sub)
    for i in range(max(start + 1, 1), len(lr)):
        a, b = lr[i - 1], lr[i]
        if not (np.isfinite(a) and np.isfinite(b)) or a <= 0 or b <= 0:
            continue
        ratio = b / a
        if 1 / LR_CHANGE_FACTOR < ratio < LR_CHANGE_FACTOR:
            continue
        steady_before = i < 2 or abs(lr[i - 2] - a) <= 1e-6 * a
        steady_after = i + 1 >= len(lr) or abs(lr[i + 1] - b) <= 1e-6 * b
        if steady_before and steady_after:
            out.append(LrChange(int(steps[i]), float(a), float(b), stamps[i]))
    return out


def _decay_kind(train: pd.DataFrame, changes: list[LrChange]) -> str:
    if changes:
        return "step"
    lr = column(train, "lr")
    lr = lr[np.isfinite(lr)]
    if len(lr) < 3:
        return "none"
    return "none" if lr[-1] >= 0.95 * lr.max() else "smooth"


# --------------------------------------------------------------------------- x axes
def images_per_step(run: Run, batch_size: int | None = None) -> int:
    """Images per training step (all GPUs), from ``batch_size`` or the run's config dump."""
    if batch_size is not None:
        if batch_size < 1:
            raise FormatOptionError(f"batch size must be a positive integer, got {batch_size}")
        return batch_size
    text = "\n".join(str(run.meta.get(k) or "") for k in ("config", "env"))
    size = config.images_per_step(text)
    if size is None:
        raise FormatOptionError(
            f"cannot tell the batch size of {run.name} from its log (no config dump); pass --batch-size",
            path=run.path,
        )
    return size


def x_values(run: Run, frame: pd.DataFrame, x: str, batch_size: int | None = None) -> np.ndarray:
    """The x coordinate of each row of ``frame`` (a train or eval table of ``run``)."""
    step = (
        frame["step"].to_numpy(dtype="float64", na_value=np.nan)
        if "step" in frame
        else np.arange(1.0, len(frame) + 1)
    )
    if x == "step":
        return step
    if x == "images":
        return step * images_per_step(run, batch_size)
    if x == "epoch":
        return _epoch_x(run, frame, step)
    if x == "time":
        return _time_x(run, frame)
    raise FormatOptionError(f"unknown x axis {x!r}; expected one of: {', '.join(X_AXES)}")


def _epoch_x(run: Run, frame: pd.DataFrame, step: np.ndarray) -> np.ndarray:
    per = run.meta.get("iters_per_epoch")
    if per:
        return step / float(per)
    if "epoch" in frame and frame["epoch"].notna().any():
        return frame["epoch"].to_numpy(dtype="float64", na_value=np.nan)
    raise FormatOptionError(
        f"{run.name} has no epochs (iteration-based training); use --x step", path=run.path
    )


def _time_x(run: Run, frame: pd.DataFrame) -> np.ndarray:
    if "timestamp" in frame and frame["timestamp"].notna().any() and "timestamp" in run.train:
        start = run.train["timestamp"].dropna().min()
        delta = pd.to_datetime(frame["timestamp"]) - start
        return (delta.dt.total_seconds() / 3600.0).to_numpy(dtype="float64", na_value=np.nan)
    if "time_s" in run.train and "step" in run.train:
        # no clock: integrate the logged seconds per iteration over the steps
        train = run.train
        steps = train["step"].to_numpy(dtype="float64", na_value=np.nan)
        gaps = np.diff(steps, prepend=0.0).clip(min=0)
        hours = (
            np.nancumsum(gaps * train["time_s"].to_numpy(dtype="float64", na_value=np.nan)) / 3600.0
        )
        target = frame["step"].to_numpy(dtype="float64", na_value=np.nan)
        return np.interp(target, steps[np.isfinite(steps)], hours[np.isfinite(steps)])
    raise FormatOptionError(
        f"{run.name} has neither timestamps nor iteration times; use --x step", path=run.path
    )
