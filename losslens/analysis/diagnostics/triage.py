"""What a NaN or a divergence most likely comes from: the loss scale, the lr, the batch size.

Each helper looks at the records up to one position of the train table and returns a
:class:`Cause` (a sentence and its evidence) or None; :func:`causes_before` gathers them for the
non-finite and divergence checks. :func:`check_loss_scale` is the check of a logged fp16 loss
scale on its own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from losslens.analysis.axes import LR_CHANGE_FACTOR, column, segment_rows, warmup_end
from losslens.analysis.diagnostics._base import (
    LOSS_SCALE_COLUMNS,
    Context,
    Finding,
    fmt,
    format_row,
    line_of,
    where,
)
from losslens.reading import config_dump as config

#: A dynamic loss scale halves on each overflowing step and grows back (x2) after a long
#: overflow-free stretch (PyTorch GradScaler: every 2000 steps). This many halvings from its
#: peak within the logs before a NaN is the overflow signature (one or two are routine).
LOSS_SCALE_HALVINGS_BEFORE_NAN = 4
#: A scale at or below this has collapsed: gradients overflow fp16 even unscaled (a
#: GradScaler starts at 2**16, mmcv's dynamic scaler at 2**32, a static one is 512).
LOSS_SCALE_TINY = 1.0


@dataclass
class Cause:
    """One likely cause: a sentence for the finding's message and its evidence lines."""

    sentence: str
    evidence: list[str] = field(default_factory=list)


def loss_scale_column(frame: pd.DataFrame) -> str | None:
    """The logged loss-scale column with at least one finite value, if any."""
    return next(
        (c for c in LOSS_SCALE_COLUMNS if c in frame and np.isfinite(column(frame, c)).any()),
        None,
    )


def _halvings(peak: float, low: float) -> float:
    return math.log2(peak / low) if peak > 0 and low > 0 else math.inf


def scale_drop_before(frame: pd.DataFrame, pos: int) -> Cause | None:
    """The loss scale fell by LOSS_SCALE_HALVINGS_BEFORE_NAN or more halvings up to ``pos``."""
    col = loss_scale_column(frame)
    if col is None:
        return None
    scale = column(frame, col)[: pos + 1]
    ok = np.flatnonzero(np.isfinite(scale))
    if len(ok) < 2:
        return None
    peak = int(ok[np.argmax(scale[ok])])
    after = ok[ok > peak]
    if not len(after):
        return None
    low = int(after[np.argmin(scale[after])])
    halvings = _halvings(scale[peak], scale[low])
    if halvings < LOSS_SCALE_HALVINGS_BEFORE_NAN:
        return None
    return Cause(
        f" The fp16 loss scale fell from {fmt(scale[peak])} to {fmt(scale[low])} "
        f"({halvings:.0f} halvings) before it: gradients kept overflowing in fp16.",
        [format_row(frame, peak, [col]), format_row(frame, low, [col])],
    )


def lr_raise_before(frame: pd.DataFrame, pos: int) -> Cause | None:
    """The lr was raised above the lr the run had trained at, and is still raised at ``pos``.

    The initial warmup is no raise; a resumed segment that restarts higher, an lr step up, or
    an lr scaled up for more GPUs is (LR_CHANGE_FACTOR, as for lr steps).
    """
    if "lr" not in frame:
        return None
    lr = column(frame, "lr")[: pos + 1]
    start = warmup_end(lr)
    settled = lr[start] if np.isfinite(lr[start]) else math.nan
    finite = lr[np.isfinite(lr)]
    still = finite[-1] if len(finite) else math.nan  # the lr when the NaN came
    for k in range(start + 1, len(lr)):
        if not np.isfinite(lr[k]):
            continue
        if np.isfinite(settled) and lr[k] > LR_CHANGE_FACTOR * settled:
            if still > LR_CHANGE_FACTOR * settled:
                return _raise_cause(frame, k, settled, float(np.nanmax(lr[k:])))
        settled = lr[k] if not np.isfinite(settled) else max(settled, lr[k])
    return None


def _raise_cause(frame: pd.DataFrame, k: int, before: float, after: float) -> Cause:
    where_ = format_row(frame, k, ["lr"]).split(":")[0]
    return Cause(
        f" The lr was raised {after / before:.3g}x ({fmt(before)} -> {fmt(after)}, from {where_}) "
        "above the lr the run had trained at: a resume with a fresh schedule, or an lr scaled "
        "for more GPUs (linear scaling applied to the wrong batch) overshoots.",
        [f"lr raised at {format_row(frame, k, ['lr'])}"],
    )


def segment_batches(ctx: Context) -> list[tuple[int, int | None, int | None]]:
    """(first row, images per step, line of its first record) of each resumed segment.

    A segment's batch is read from the config dump the relaunch printed before its first record
    (the log lines since the previous segment's last record); the first segment falls back to the
    run's config. None where neither says.
    """
    frame = ctx.frame
    out: list[tuple[int, int | None, int | None]] = []
    previous_end = 0
    for n, rows in enumerate(segment_rows(frame)):
        first, last = int(rows[0]), int(rows[-1])
        line = line_of(frame, first)
        size = None
        if ctx.lines is not None and line is not None:
            size = config.images_per_step("\n".join(ctx.lines[previous_end : line - 1]))
        if size is None and n == 0:
            size = config.images_per_step(str(ctx.run.meta.get("config") or ""))
        out.append((first, size, line))
        previous_end = line_of(frame, last) or previous_end
    return out


def batch_change_before(ctx: Context, pos: int) -> Cause | None:
    """Images per step differ between the segment holding ``pos`` and an earlier one."""
    known = [(first, size, line) for first, size, line in segment_batches(ctx) if first <= pos]
    if len(known) < 2 or known[-1][1] is None:
        return None
    first, size, line = known[-1]
    earlier = [s for _, s, _ in known[:-1] if s is not None]
    if not earlier or earlier[-1] == size:
        return None
    at = f"line {line}" if line else format_row(ctx.frame, first, []).split(":")[0]
    lr_note = ""
    if "lr" in ctx.frame:
        lr = column(ctx.frame, "lr")
        lr_note = f" with lr {fmt(lr[first - 1])} -> {fmt(lr[first])}"
    return Cause(
        f" The batch changed at the resume ({at}): {earlier[-1]} -> {size} images per step"
        f"{lr_note}; the lr must follow the batch (linear scaling: lr proportional to it).",
        [f"images per step {earlier[-1]} before the resume, {size} from {at}"],
    )


def causes_before(ctx: Context, pos: int) -> list[Cause]:
    """Every cause found for a NaN or divergence at record ``pos``, most telling first."""
    found = [
        scale_drop_before(ctx.frame, pos),
        batch_change_before(ctx, pos),
        lr_raise_before(ctx.frame, pos),
    ]
    return [c for c in found if c is not None]


def check_loss_scale(ctx: Context) -> list[Finding]:
    """A logged fp16 loss scale that collapsed to LOSS_SCALE_TINY or below after being higher."""
    frame = ctx.frame
    col = loss_scale_column(frame)
    if col is None:
        return []
    scale = column(frame, col)
    ok = np.flatnonzero(np.isfinite(scale))
    tiny = ok[scale[ok] <= LOSS_SCALE_TINY]
    if not len(tiny):
        return []
    low = int(tiny[0])
    before = ok[ok < low]
    if not len(before) or scale[before].max() <= LOSS_SCALE_TINY:
        return []  # a scale that was always this small is a static choice, not a collapse
    peak = int(before[np.argmax(scale[before])])
    halvings = _halvings(scale[peak], scale[low])
    return [
        Finding(
            "loss-scale-collapse",
            "warning",
            f"{col} collapsed from {fmt(scale[peak])} to {fmt(scale[low])} ({halvings:.0f} "
            f"halvings) by {format_row(frame, low, []).split(':')[0]}: gradients overflow fp16 "
            "even unscaled, the fp16 overflow signature of a diverging run.",
            **where(frame, low),
            evidence=[format_row(frame, peak, [col]), format_row(frame, low, [col])],
            advice="Lower the lr or add gradient clipping; keep the loss and softmax in fp32, or "
            "train in bf16/fp32 to tell overflow from real divergence.",
        )
    ]
