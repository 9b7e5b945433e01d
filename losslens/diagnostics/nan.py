"""Non-finite losses: where the first NaN/inf appears and what it most likely comes from."""

from __future__ import annotations

import numpy as np
import pandas as pd

from losslens import terms
from losslens.axes import (
    column,
    segment_rows,
)
from losslens.diagnostics._base import (
    Context,
    Finding,
    fmt,
    format_row,
    logged_name,
    where,
)


def _logged_nonfinite(frame: pd.DataFrame, col: str) -> np.ndarray:
    """Rows where ``col`` was logged as nan/inf (not merely absent from that record).

    The train table stores both as NaN, so a NaN counts only where the column has finite values
    elsewhere in the same resumed segment and the record carries other values (lr, time ...).
    """
    values = column(frame, col)
    bad = ~np.isfinite(values)
    present = np.zeros(len(frame), dtype=bool)
    for rows in segment_rows(frame):
        present[rows] = np.isfinite(values[rows]).any() or np.isinf(values[rows]).any()
    others = [
        c
        for c in frame.columns
        if c not in terms.INDEX_COLUMNS and c != col and frame[c].dtype.kind == "f"
    ]
    has_other = (
        np.isfinite(frame[others].to_numpy(dtype="float64", na_value=np.nan)).any(axis=1)
        if others
        else np.ones(len(frame), bool)
    )
    return bad & (np.isinf(values) | (present & has_other))


def check_nonfinite(ctx: Context) -> list[Finding]:
    frame = ctx.frame
    first: tuple[int, str] | None = None
    bad_any = np.zeros(len(frame), dtype=bool)
    for col in terms.loss_columns(frame):
        bad = _logged_nonfinite(frame, col)
        bad_any |= bad
        if bad.any():
            pos = int(np.flatnonzero(bad)[0])
            if first is None or pos < first[0] or (pos == first[0] and first[1] == "loss"):
                first = (pos, col)
    if first is None:
        return []
    n_bad = int(bad_any.sum())
    pos, col = first
    value = frame[col].iloc[pos]
    evidence = [format_row(frame, pos)] + (
        [f"the log before, {format_row(frame, pos - 1)}"] if pos else []
    )
    before = frame.iloc[max(0, pos - 5) : pos]
    for trend_col in ("lr", "grad_norm"):
        if trend_col in before and len(before):
            values = ", ".join(fmt(v) for v in before[trend_col])
            evidence.append(f"{trend_col} over the {len(before)} logs before: {values}")
    lr_note = ""
    if "lr" in frame and len(before) >= 2 and before["lr"].iloc[-1] > before["lr"].iloc[0] * 1.05:
        still = frame["lr"].iloc[pos] > before["lr"].iloc[-1] * 1.001
        lr_note = (
            " The lr was still rising (warmup)."
            if still
            else " It came just after the lr warmup reached its peak."
        )
    return [
        Finding(
            "nonfinite-loss",
            "error",
            f"{logged_name(frame, col)} became {fmt(value)} first at {evidence[0].split(':')[0]}; {n_bad} of {len(frame)} "
            f"training records have a non-finite loss.{lr_note}",
            **where(frame, pos),
            evidence=evidence,
            advice="Lower the lr (linear scaling: lr proportional to the total batch), lengthen the warmup, "
            "add gradient clipping (mmdet: optimizer_config = dict(grad_clip=dict(max_norm=35, "
            "norm_type=2))), and check the annotations for degenerate boxes (x2 <= x1, zero area).",
        )
    ]
