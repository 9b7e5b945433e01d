"""Checks on evaluation results: few ground truths, overfitting, undefined (-1) metrics."""

from __future__ import annotations

import numpy as np
import pandas as pd

from losslens.analysis import terms
from losslens.analysis.axes import (
    column,
)
from losslens.analysis.diagnostics._base import (
    Context,
    Finding,
    fmt,
    line_of,
    logged_name,
    main_metric,
    metric_in_fraction,
    nanmedian,
)

#: "Few ground truths": fewer than this many, or under a tenth of the median class.
FEW_GTS = 20


def check_few_gts(ctx: Context) -> list[Finding]:
    pc = ctx.run.per_class
    if pc.empty or "gts" not in pc or pc["gts"].isna().all():
        return []
    last = pc[pc["eval_index"] == pc["eval_index"].max()]
    last = last[last["gts"].notna() & last["ap"].notna()]
    if last.empty:
        return []
    mean_ap = float(last.loc[last["gts"] > 0, "ap"].mean())
    median_gts = float(last["gts"].median())
    few = last[
        (last["gts"] > 0)
        & ((last["gts"] < FEW_GTS) | (last["gts"] < 0.1 * median_gts))
        & (last["ap"] < 0.5 * mean_ap)
    ]
    if few.empty:
        return []
    evidence = [
        f"{row['class']}: gts={int(row['gts'])}, dets={fmt(row['dets'])}, recall={fmt(row['recall'])}, ap={fmt(row['ap'])}"
        for _, row in few.iterrows()
    ]
    names = ", ".join(
        f"{row['class']} ({int(row['gts'])} gts, AP {row['ap']:.3f})" for _, row in few.iterrows()
    )
    step = last["step"].iloc[0]
    epoch = last["epoch"].iloc[0]
    return [
        Finding(
            "few-gts-low-ap",
            "warning",
            f"{names}: too few ground truths to learn the class well or to measure it (mean AP over "
            f"classes {mean_ap:.3f}); with so few boxes one detection moves the AP a lot.",
            steps=[int(step)] if pd.notna(step) else [],
            epoch=int(epoch) if pd.notna(epoch) else None,
            line_no=line_of(few, 0),
            evidence=evidence,
            advice="Collect or label more examples of the class, oversample images that contain it "
            "(class-balanced sampling), and read its AP as noisy; mAP over few classes moves with it.",
        )
    ]


def check_overfitting(ctx: Context) -> list[Finding]:
    run, frame = ctx.run, ctx.frame
    metric = main_metric(run)
    if metric is None or "step" not in run.evals:
        return []
    ev = run.evals[run.evals[metric].notna()]
    values = metric_in_fraction(run, metric, column(ev, metric))
    if len(values) < 3:
        return []
    best = int(np.argmax(values))
    drop = values[best] - values[-1]
    if (
        best >= len(values) - 1
        or drop < max(0.01, 0.05 * values[best])
        or not values[-1] < values[-2] <= values[best]
    ):
        return []
    loss_col = terms.total_loss_column(frame)
    if loss_col is None:
        return []
    steps = column(frame, "step")
    y = column(frame, loss_col)
    at_best = y[(steps <= ev["step"].iloc[best])][-5:]
    at_end = y[-5:]
    if not (nanmedian(at_end) < nanmedian(at_best)):
        return []
    return [
        Finding(
            "overfitting",
            "warning",
            f"{metric} peaked at {values[best]:.3f} (evaluation {best + 1}, step {int(ev['step'].iloc[best])}) "
            f"and fell to {values[-1]:.3f} while {logged_name(frame, loss_col)} kept falling "
            f"({fmt(nanmedian(at_best))} -> {fmt(nanmedian(at_end))}).",
            steps=[int(ev["step"].iloc[best]), int(ev["step"].iloc[-1])],
            epoch=int(ev["epoch"].iloc[best])
            if "epoch" in ev and pd.notna(ev["epoch"].iloc[best])
            else None,
            line_no=line_of(ev, best),
            evidence=[
                f"evaluation at step {int(s)}"
                + (f" (line {line_of(ev, k)})" if line_of(ev, k) is not None else "")
                + f": {metric}={v:.4f}"
                for k, (s, v) in enumerate(zip(ev["step"], values, strict=False))
            ][-6:],
            advice="Keep the best checkpoint (mmdet: save_best), train shorter or decay earlier, add "
            "augmentation or regularisation, or get more data.",
        )
    ]


def check_eval_minus_one(ctx: Context) -> list[Finding]:
    ev = ctx.run.evals
    cols = [
        c
        for c in ev.columns
        if c not in terms.INDEX_COLUMNS and ev[c].dtype.kind == "f" and (ev[c] == -1).any()
    ]
    if not cols:
        return []
    return [
        Finding(
            "eval-minus-one",
            "info",
            f"{', '.join(cols)} = -1: the validation set has no objects of that size (COCO small < 32x32, "
            "large > 96x96 pixels), so the metric is undefined, not zero.",
            evidence=[
                f"{c}: -1 in {int((ev[c] == -1).sum())} of {len(ev)} evaluations" for c in cols
            ],
            line_no=line_of(ev, int(np.flatnonzero((ev[cols] == -1).any(axis=1).to_numpy())[0])),
            advice="Nothing to fix; ignore these columns (they do not enter bbox_mAP).",
        )
    ]


def check_empty_train(ctx: Context) -> list[Finding]:
    run = ctx.run
    if len(run.train) or run.evals.empty:
        return []
    return [
        Finding(
            "no-train-records",
            "warning",
            "the log has evaluations but no training records.",
            advice="The log interval is probably larger than the iterations per epoch, so the logger "
            "never printed a training line (mmdet issue 7040): lower log_config.interval / "
            "default_hooks.logger.interval.",
        )
    ]
