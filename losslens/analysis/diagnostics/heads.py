"""Checks on the detection heads: no positive samples reach a head, background-only accuracy."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from losslens.analysis.axes import (
    column,
)
from losslens.analysis.diagnostics._base import (
    Context,
    Finding,
    fmt,
    format_row,
    line_of,
    logged_name,
    main_metric,
    metric_in_fraction,
    nanmedian,
    runs_of,
    where,
)

#: A zero regression loss this many logs in a row is not chance (each log averages 20-50 iters).
NO_POSITIVES_MIN_RUN = 3
#: Background-only accuracy: acc above this (percent) with mAP at or below NEAR_ZERO_MAP.
BG_ACC_MIN = 70.0
NEAR_ZERO_MAP = 0.01
#: A healthy RoI head's loss_bbox rises by more than this over its first logs (see _check_bg_only).
REG_RAMP_RATIO = 1.5


def _reg_cls_pairs(frame: pd.DataFrame) -> list[tuple[str, str]]:
    pairs = []
    for col in frame.columns:
        base = col.split(".", 1)[1] if re.match(r"^s\d+\.", col) else col
        prefix = col[: len(col) - len(base)]
        partner = {
            "loss_rpn_bbox": "loss_rpn_cls",
            "loss_bbox": "loss_cls",
            "dense_bbox": "dense_cls",
        }.get(base)
        if partner and prefix + partner in frame:
            pairs.append((col, prefix + partner))
    return pairs


def check_no_positives(ctx: Context) -> list[Finding]:
    frame = ctx.frame
    out = []
    for reg, cls in _reg_cls_pairs(frame):
        zero = (column(frame, reg) == 0) & (column(frame, cls) > 0)
        runs = [r for r in runs_of(zero) if r[1] >= NO_POSITIVES_MIN_RUN]
        if not runs and zero.sum() <= 0.5 * len(frame):
            continue
        if not zero.any():
            continue
        pos = runs[0][0] if runs else int(np.flatnonzero(zero)[0])
        extra = [c for c in ("acc", "s0.acc") if c in frame][:1]
        stage = "RPN" if "rpn" in reg else "RoI head" if "dense" not in reg else "dense head"
        out.append(
            Finding(
                "no-positives",
                "error",
                f"{logged_name(frame, reg)} is exactly 0 in {int(zero.sum())} of {len(frame)} logs while {logged_name(frame, cls)} is not: the "
                f"{stage} sees no positive samples (no ground truth reaches it).",
                **where(frame, pos),
                evidence=[format_row(frame, pos, [reg, cls, *extra])],
                advice="Check that the dataset's class names match the annotations (mmdet: metainfo/"
                "classes), num_classes in the heads, the box format (xywh vs xyxy, absolute pixels), "
                "and that images have annotations after filtering (filter_empty_gt).",
            )
        )
    return out


def check_bg_only(ctx: Context) -> list[Finding]:
    frame = ctx.frame
    if "acc" not in frame or frame["acc"].notna().sum() < 3:
        return []
    acc = column(frame, "acc")
    tail = acc[-max(3, len(acc) // 4) :]
    acc_end = float(nanmedian(tail))
    if acc_end < BG_ACC_MIN:
        return []
    if "loss_bbox" in frame and np.nanmax(np.abs(column(frame, "loss_bbox"))) == 0:
        return []  # no-positives explains it
    metric = main_metric(ctx.run)
    if metric is not None:
        values = metric_in_fraction(ctx.run, metric, column(ctx.run.evals, metric))
        final = values[np.isfinite(values)]
        if len(final) and final[-1] <= NEAR_ZERO_MAP:
            return [_bg_finding(ctx, acc_end, f"final {metric} is {final[-1]:.3g}", "error")]
        return []
    if "fg_acc" in frame and nanmedian(column(frame, "fg_acc")[-len(tail) :]) < 5:
        return [_bg_finding(ctx, acc_end, "foreground accuracy stays under 5%", "error")]
    if "loss_bbox" in frame:
        reg = column(frame, "loss_bbox")
        k = max(3, len(reg) // 5)
        head, end = nanmedian(reg[:k]), nanmedian(reg[-k:])
        # loss_bbox is averaged over all sampled RoIs (mmdet avg_factor, detectron2 divides by
        # the sampled count): while the RPN learns to propose objects more positives are
        # sampled, so a healthy run's loss_bbox first *rises* (x4 over the first logs of the
        # corpus VOC runs), then stays flat for epochs. Flat after such a ramp is healthy;
        # only a regression loss that never ramped up and never falls says the head is idle.
        ramped = np.nanmax(reg) > REG_RAMP_RATIO * reg[np.isfinite(reg)][0]
        if np.isfinite(head) and head > 0 and end >= 0.9 * head and not ramped:
            return [
                _bg_finding(
                    ctx, acc_end, f"loss_bbox barely moves ({fmt(head)} -> {fmt(end)})", "warning"
                )
            ]
    return []


def _bg_finding(ctx: Context, acc_end: float, why: str, severity: str) -> Finding:
    return Finding(
        "bg-only-accuracy",
        severity,
        f"acc ends at {acc_end:.1f}% but {why}: the accuracy counts background RoIs (at least 75% "
        "of the sampled RoIs), so the box head may only be predicting background.",
        steps=[int(ctx.frame["step"].iloc[-1])] if "step" in ctx.frame and len(ctx.frame) else [],
        line_no=line_of(ctx.frame, len(ctx.frame) - 1) if len(ctx.frame) else None,
        evidence=[
            format_row(
                ctx.frame,
                len(ctx.frame) - 1,
                [c for c in ("acc", "loss_cls", "loss_bbox") if c in ctx.frame],
            )
        ],
        advice="Look at foreground recall, not acc: check labels and num_classes, the box format, and "
        "that positives exist (detectron2 logs roi_head/num_fg_samples).",
    )
