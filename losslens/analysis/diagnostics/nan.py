"""Non-finite losses: where the first NaN/inf appears and what it most likely comes from."""

from __future__ import annotations

import re

import numpy as np

from losslens.analysis import terms
from losslens.analysis.axes import (
    column,
    segment_rows,
)
from losslens.analysis.diagnostics import triage
from losslens.analysis.diagnostics._base import (
    Context,
    Finding,
    fmt,
    format_row,
    line_of,
    logged_name,
    where,
)


def _logged_nonfinite(ctx: Context, col: str) -> np.ndarray:
    """Rows where ``col`` was logged as nan/inf (not merely absent from that record).

    The train table stores both as NaN, so a NaN counts only where the column has finite values
    elsewhere in the same resumed segment and the record carries other values (lr, time ...),
    and not where the log wrote a string that is no number there (:func:`_unreadable`).
    """
    frame = ctx.frame
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
    return bad & (np.isinf(values) | (present & has_other)) & ~_unreadable(ctx, col, bad)


#: A JSON record's ``"key": "text"``: a string where a number belongs (``{key}`` is filled in).
_JSON_STRING_VALUE = r'"{key}"\s*:\s*"([^"]*)"'


def _unreadable(ctx: Context, col: str, rows: np.ndarray) -> np.ndarray:
    """Among ``rows``, those whose log line holds a string that is no number for ``col``
    (``"loss": "n/a"`` in a JSON record).

    The JSON parsers keep such a record with NaN and do not say which values were unreadable,
    so the raw line of the record (``line_no`` into ``ctx.lines``) is read here; a string that
    is a number (``"nan"``, ``"inf"``) counts as logged. Without lines nothing is excluded.
    """
    out = np.zeros(len(ctx.frame), dtype=bool)
    if ctx.lines is None or "line_no" not in ctx.frame:
        return out
    names = ctx.frame.attrs.get("original_names", {}).get(col, [col])
    patterns = [re.compile(_JSON_STRING_VALUE.format(key=re.escape(n))) for n in names]
    for pos in np.flatnonzero(rows):
        line = line_of(ctx.frame, int(pos))
        if line is None or not 0 < line <= len(ctx.lines):
            continue
        texts = [m.group(1) for p in patterns if (m := p.search(ctx.lines[line - 1]))]
        out[pos] = any(not _is_number(t) for t in texts)
    return out


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def check_nonfinite(ctx: Context) -> list[Finding]:
    frame = ctx.frame
    first: tuple[int, str] | None = None
    bad_any = np.zeros(len(frame), dtype=bool)
    for col in terms.loss_columns(frame):
        bad = _logged_nonfinite(ctx, col)
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
    cause, cause_evidence = _likely_cause(ctx, pos)
    evidence.extend(cause_evidence)
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
            f"training records have a non-finite loss.{lr_note}{cause}",
            **where(frame, pos),
            evidence=evidence,
            advice="Lower the lr (linear scaling: lr proportional to the total batch), lengthen the warmup, "
            "add gradient clipping (mmdet: optimizer_config = dict(grad_clip=dict(max_norm=35, "
            "norm_type=2))), and check the annotations for degenerate boxes (x2 <= x1, zero area).",
        )
    ]


#: A loss term whose first logged value is above this is absurd for any detector head (an
#: initial CE is about ln(K+1) < 7, focal and IoU losses start near 1-5; corpus terms start <= 12).
ABSURD_FIRST_LOSS = 50.0
#: Occasional non-finite grad_norm under fp16 is the loss scaler skipping a step; above this
#: share of the records the scale keeps collapsing.
FP16_SKIP_SHARE = 0.05
#: Column prefixes of losses measured on validation data (RT-DETR ``val_loss``, DETR ``test_``).
_EVAL_PREFIXES = ("val", "test")


def _likely_cause(ctx: Context, pos: int) -> tuple[str, list[str]]:
    """What the first non-finite record at ``pos`` most likely comes from: sentences and evidence.

    A collapsing fp16 loss scale, a batch change or an lr raise before it (:mod:`.triage`) come
    first; then a resume right before it, or a loss broken from the first log."""
    frame = ctx.frame
    causes = triage.causes_before(ctx, pos)
    text = "".join(c.sentence for c in causes)
    evidence = [e for c in causes for e in c.evidence]
    seg = column(frame, "segment") if "segment" in frame else np.zeros(len(frame))
    starts = [int(rows[0]) for rows in segment_rows(frame)[1:]]
    resumed = [s for s in starts if 0 <= pos - s <= 1 and seg[s] != seg[s - 1]]
    if resumed:
        line = line_of(frame, resumed[0])
        return text + (
            f" It starts right after a resume ({'line ' + str(line) if line else 'new segment'}):"
            " suspect the loaded checkpoint, the restored optimizer/loss-scaler state, or a "
            "schedule that restarted at a high lr."
        ), evidence
    total = terms.total_loss_column(frame)
    first = column(frame, total)[:1] if total else np.array([])
    if pos == 0 or (len(first) and np.isfinite(first[0]) and first[0] > ABSURD_FIRST_LOSS):
        return text + (
            " The loss is broken from the first log, before the lr could matter: suspect the "
            "data (zero-size or out-of-image boxes, xywh read as xyxy, wrong labels)."
        ), evidence
    return text, evidence


def check_fp16_overflow(ctx: Context) -> list[Finding]:
    """grad_norm non-finite while every loss is finite: fp16 gradients overflowed."""
    frame = ctx.frame
    if "grad_norm" not in frame or not np.isfinite(column(frame, "grad_norm")).any():
        return []
    losses = terms.loss_columns(frame)
    if not losses:
        return []
    finite_losses = np.isfinite(frame[losses].to_numpy(dtype="float64", na_value=np.nan)).all(1)
    bad = _logged_nonfinite(ctx, "grad_norm") & finite_losses
    if not bad.any():
        return []
    share = bad.sum() / len(frame)
    pos = int(np.flatnonzero(bad)[0])
    frequent = share > FP16_SKIP_SHARE
    return [
        Finding(
            "fp16-overflow",
            "warning" if frequent else "info",
            f"grad_norm is non-finite in {int(bad.sum())} of {len(frame)} logs while every loss "
            "is finite: mixed-precision gradients overflowed and the loss scaler skipped those "
            "steps"
            + (
                "; it happens so often that the loss scale keeps collapsing."
                if frequent
                else " (occasional skips are normal)."
            ),
            **where(frame, pos),
            evidence=[format_row(frame, pos, ["grad_norm", *losses[:3]])],
            advice="Clip gradients, lower the lr, keep the loss in fp32 (mmengine AmpOptimWrapper "
            "loss_scale='dynamic'), or train in bf16/fp32 to tell overflow from real divergence."
            if frequent
            else "Nothing to fix unless it becomes frequent.",
        )
    ]


def check_absurd_first(ctx: Context) -> list[Finding]:
    """A loss term whose first logged value is absurdly large: broken data, not the lr."""
    frame = ctx.frame
    total = terms.total_loss_column(frame)
    for col in terms.loss_columns(frame):
        if (col == total and len(terms.loss_columns(frame)) > 1) or col.startswith(_EVAL_PREFIXES):
            continue  # the total sums many terms (DETR: 6 decoder layers); eval losses are not trained
        values = column(frame, col)
        finite = np.flatnonzero(np.isfinite(values))
        if not len(finite) or values[finite[0]] <= ABSURD_FIRST_LOSS:
            continue
        pos = int(finite[0])
        later = values[finite[len(finite) // 2 :]]
        recovered = bool(len(later)) and float(np.median(later)) <= ABSURD_FIRST_LOSS
        return [
            Finding(
                "absurd-first-loss",
                "info" if recovered else "warning",
                f"{logged_name(frame, col)} starts at {fmt(values[pos])}, far above where any "
                f"detector loss starts (under {ABSURD_FIRST_LOSS:g}): the inputs are broken "
                "before the lr has any effect"
                + ("; it recovered (a broken first batch or bad init)." if recovered else "."),
                **where(frame, pos),
                evidence=[format_row(frame, pos)],
                advice="Check the annotations (box format xyxy vs xywh, boxes in pixels and "
                "inside the image, zero-size boxes, class ids < num_classes) and the input "
                "normalisation (mean/std, RGB vs BGR).",
            )
        ]
    return []
