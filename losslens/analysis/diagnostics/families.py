"""Checks that only make sense for one log family: validation losses logged beside training
losses (ultralytics ``val/*``, DETR ``test_*``), YOLOX's L1 box loss, DETR's ``class_error``."""

from __future__ import annotations

import numpy as np
import pandas as pd

from losslens.analysis import terms
from losslens.analysis.axes import column
from losslens.analysis.diagnostics._base import (
    Context,
    Finding,
    fmt,
    line_of,
    logged_name,
    main_metric,
    nanmedian,
)

#: Validation loss rising: its last value this much above its best, best at least 3 evals back.
VAL_RISE_RATIO = 1.10
VAL_RISE_MIN_AFTER = 3
#: The metric "holds" when its last value is at least this share of its best.
METRIC_HOLD = 0.95
#: DETR ``class_error`` (100 - top-1 accuracy of matched queries, percent) still this high at
#: the end: the classifier has not learned (the corpus DETR runs end at 12-22).
CLASS_ERROR_STUCK = 90.0


def _metric_holds(ctx: Context) -> bool:
    """The main evaluation metric ends within METRIC_HOLD of its best (or there is none)."""
    metric = main_metric(ctx.run)
    if metric is None:
        return False
    values = column(ctx.run.evals, metric)
    values = values[np.isfinite(values)]
    return bool(len(values)) and values[-1] >= METRIC_HOLD * values.max()


def _rising_partner(frame: pd.DataFrame, col: str) -> tuple[str, int] | None:
    """Evidence text, and the row of the validation best, when ``col``'s validation partner
    rose from its best while ``col`` fell."""
    partner = terms.validation_partner(frame, col)
    if partner is None:
        return None
    val, train = column(frame, partner), column(frame, col)
    rows = np.flatnonzero(np.isfinite(val) & np.isfinite(train))
    if len(rows) < VAL_RISE_MIN_AFTER + 2:
        return None
    best = int(np.argmin(val[rows]))
    low, last = rows[best], rows[-1]
    if len(rows) - 1 - best < VAL_RISE_MIN_AFTER or not val[last] > VAL_RISE_RATIO * val[low]:
        return None
    if not train[last] < train[low]:
        return None
    return (
        f"{partner} {fmt(val[low])} -> {fmt(val[last])} while {logged_name(frame, col)} "
        f"{fmt(train[low])} -> {fmt(train[last])} (from step {int(frame['step'].iloc[low])})",
        int(low),
    )


def check_val_loss_rising(ctx: Context) -> list[Finding]:
    """Training loss falls while the validation loss of the same term rises: overfitting, unless
    the evaluation metric still holds (a classifier growing confident raises its validation CE
    while AP still climbs: the official DETR R50 log does this over its last 200 epochs)."""
    frame = ctx.frame
    main_terms = [c for c in terms.loss_columns(frame) if terms.TERMS.get(c) is not None]
    rising = [e for c in main_terms if (e := _rising_partner(frame, c)) is not None]
    if not rising or _metric_holds(ctx):
        return []
    return [
        Finding(
            "val-loss-rising",
            "warning",
            f"{len(rising)} validation loss(es) rose by over {VAL_RISE_RATIO - 1:.0%} from their "
            "best while the training losses kept falling, and the evaluation metric did not "
            "hold: the model is overfitting.",
            evidence=[text for text, _ in rising[:5]],
            line_no=line_of(frame, rising[0][1]),
            advice="Keep the best checkpoint (ultralytics best.pt), stop earlier (patience), "
            "add augmentation or data.",
        )
    ]


def check_yolox_l1(ctx: Context) -> list[Finding]:
    """YOLOX adds its L1 box loss only for the last ``no_aug_epochs`` (mosaic off): expected."""
    frame = ctx.frame
    if terms.family(ctx.run) != "yolox" or "loss_l1_box" not in frame:
        return []
    l1 = column(frame, "loss_l1_box")
    on = np.flatnonzero(np.isfinite(l1) & (l1 > 0))
    if not len(on) or on[0] == 0:
        return []
    where = (
        f"epoch {int(frame['epoch'].iloc[on[0]])}"
        if "epoch" in frame
        else f"step {int(frame['step'].iloc[on[0]])}"
    )
    return [
        Finding(
            "yolox-l1-switched-on",
            "info",
            f"{logged_name(frame, 'loss_l1_box')} is 0 until {where}, then "
            f"{fmt(l1[on[0]])}: YOLOX turns mosaic/mixup off and adds the L1 box loss for its "
            "last no_aug_epochs. Expected; the total loss jumps there by design.",
            steps=[int(frame["step"].iloc[on[0]])] if "step" in frame else [],
            line_no=line_of(frame, int(on[0])),
            advice="Nothing to fix.",
        )
    ]


def check_class_error(ctx: Context) -> list[Finding]:
    """DETR's ``class_error`` that stays near 100%: matched queries are never classified right."""
    frame = ctx.frame
    if "class_error" not in frame or frame["class_error"].notna().sum() < 3:
        return []
    values = column(frame, "class_error")
    tail = nanmedian(values[-max(3, len(values) // 4) :])
    if not tail >= CLASS_ERROR_STUCK:
        return []
    return [
        Finding(
            "class-error-stuck",
            "warning",
            f"class_error stays at {tail:.1f}% (median of the last quarter): the matched queries "
            "are almost never classified right, so the decoder is not learning the classes.",
            evidence=[f"class_error first {fmt(values[0])}, last {fmt(values[-1])}"],
            line_no=line_of(frame, len(frame) - 1),
            advice="Check num_classes (DETR: max class id + 1), the category ids of the "
            "annotations, and the lr of the transformer (1e-4) versus the backbone (1e-5); "
            "DETR needs many epochs, so also train longer before judging.",
        )
    ]
