"""Checks on the shape of the total loss curve: spikes, divergence, plateaus, the lr schedule.

Curves are compared on the log of the loss, with medians and the median absolute deviation
(MAD), so that one bad interval does not decide anything.
"""

from __future__ import annotations

import itertools
import math
import re

import numpy as np
import pandas as pd

from losslens.analysis import terms
from losslens.analysis.axes import (
    LrSchedule,
    column,
    schedule_of,
    segment_rows,
    warmup_end,
)
from losslens.analysis.diagnostics import triage
from losslens.analysis.diagnostics._base import (
    Context,
    Finding,
    fmt,
    format_row,
    line_of,
    log_loss,
    logged_name,
    nanmedian,
    rolling_median,
    where,
)
from losslens.reading.config_dump import total_batch_from_config

#: A spike: log-loss above its running median by this many robust sigmas, and at least x1.5.
SPIKE_SIGMAS = 8.0
SPIKE_MIN_RATIO = 1.5
SPIKE_WINDOW = 11
#: Divergence: the smoothed loss ends this many times above its best value.
DIVERGENCE_RATIO = 2.0
#: Plateau: a constant-lr stretch over this share of the run where the loss falls by < 1%.
PLATEAU_MIN_SHARE = 0.3
PLATEAU_MIN_ROWS = 20
PLATEAU_MAX_GAIN = 0.01
#: ... and it stayed flat for at least this many times as long (in steps) as the loss took to
#: fall to that level since the stretch began. A healthy loss falls roughly like a power law of
#: the step, so on a linear step axis it looks flat over any window shorter than the time it has
#: already trained at that lr (the corpus mmdet2 VOC run, watched in its first epoch, is flat
#: within 1% from step 2800 to 4450 and then keeps falling); a real plateau stays flat for longer
#: than it took to get there (the maskrcnn_benchmark run stuck at 5.2: 6600 steps after 2000).
PLATEAU_FLAT_OVER_FALL = 1.0
#: Loss jump at an lr change: median loss after vs before, over this many logs each side.
LR_JUMP_WINDOW = 3
LR_JUMP_RATIO = 1.25
#: Linear scaling rule reference: Faster R-CNN lr 0.02 at 16 images per step (SGD).
SGD_LR_PER_IMAGE = 0.02 / 16
LR_PER_IMAGE_FACTOR = 4.0


def check_spikes(ctx: Context) -> list[Finding]:
    got = log_loss(ctx.frame)
    if got is None:
        return []
    col, logy = got
    spikes: list[int] = []
    for rows in segment_rows(ctx.frame):
        y = logy[rows]
        if np.isfinite(y).sum() < 2 * SPIKE_WINDOW:
            continue
        resid = y - rolling_median(y, SPIKE_WINDOW, center=True)
        mad = nanmedian(np.abs(resid)) * 1.4826
        limit = max(SPIKE_SIGMAS * mad, math.log(SPIKE_MIN_RATIO))
        # the first logs of a segment are the initial high loss, not spikes
        spikes.extend(int(rows[k]) for k in np.flatnonzero(resid > limit) if k >= SPIKE_WINDOW // 2)
    if not spikes:
        return []
    frame = ctx.frame
    shown = sorted(spikes, key=lambda p: -logy[p])[:5]
    return [
        Finding(
            "loss-spike",
            "warning" if len(spikes) > 2 else "info",
            f"{logged_name(ctx.frame, col)} spiked {len(spikes)} time(s) well above its running median (largest at "
            f"{format_row(frame, shown[0], [col]).split(':')[0]}).",
            steps=[
                int(frame["step"].iloc[p])
                for p in sorted(spikes)
                if "step" in frame and pd.notna(frame["step"].iloc[p])
            ],
            epoch=where(frame, shown[0])["epoch"],
            iter=where(frame, shown[0])["iter"],
            line_no=line_of(frame, shown[0]),
            evidence=[
                format_row(frame, p, [col, "lr"] + (["grad_norm"] if "grad_norm" in frame else []))
                for p in shown
            ],
            advice="Isolated spikes usually come from a few hard or broken images (huge boxes, wrong "
            "labels); repeated ones from an lr at the edge of stability: add gradient clipping or "
            "lower the lr.",
        )
    ]


def check_divergence(ctx: Context) -> list[Finding]:
    got = log_loss(ctx.frame)
    if got is None:
        return []
    col, logy = got
    out = []
    # The loss of the first iterations (lr still warming up, few positives assigned) is no
    # baseline: a detector's loss often *rises* then. Look for the best value after the warmup.
    warmup_end = ctx.schedule.warmup_steps or 0
    steps = (
        column(ctx.frame, "step") if "step" in ctx.frame else np.arange(len(ctx.frame), dtype=float)
    )
    for rows in segment_rows(ctx.frame):
        rows = rows[steps[rows] > warmup_end] if warmup_end else rows
        y = logy[rows]
        ok = np.isfinite(y)
        if ok.sum() < 20:
            continue
        yf = y[ok]
        smoothed = rolling_median(yf, max(5, len(yf) // 20))
        best = int(np.argmin(smoothed))
        rise = smoothed[-1] - smoothed[best]
        if rise < math.log(DIVERGENCE_RATIO) or best > 0.9 * len(yf):
            continue
        pos = int(rows[np.flatnonzero(ok)[best]])
        last = int(rows[np.flatnonzero(ok)[-1]])
        worse_than_start = smoothed[-1] > smoothed[min(len(smoothed) - 1, 4)]
        causes = triage.causes_before(ctx, last)
        at_best = where(ctx.frame, pos)
        out.append(
            Finding(
                "divergence",
                "error" if worse_than_start else "warning",
                f"{logged_name(ctx.frame, col)} rose {math.exp(rise):.1f}x from its best (smoothed) value and ends "
                + ("above where it started." if worse_than_start else "well above its best.")
                + "".join(c.sentence for c in causes),
                steps=[int(ctx.frame["step"].iloc[p]) for p in (pos, last)]
                if "step" in ctx.frame
                else [],
                epoch=at_best["epoch"],
                iter=at_best["iter"],
                line_no=at_best["line_no"],
                evidence=[
                    format_row(ctx.frame, pos, [col, "lr"]),
                    format_row(ctx.frame, last, [col, "lr"]),
                    *(e for c in causes for e in c.evidence),
                ],
                advice="Lower the lr or add warmup/gradient clipping; if the rise starts at an lr change "
                "or a resume, check the schedule and the checkpoint that was loaded.",
            )
        )
    return out


def check_plateau(ctx: Context) -> list[Finding]:
    """Each segment (a resumed run appended to the file) has its own schedule: check each."""
    for rows in segment_rows(ctx.frame):
        segment = ctx.frame.iloc[rows].reset_index(drop=True)
        found = _plateau_in(segment, schedule_of(segment), len(ctx.frame))
        if found:
            return found
    return []


def _plateau_in(frame: pd.DataFrame, schedule: LrSchedule, run_rows: int) -> list[Finding]:
    """A flat stretch at constant lr; its share is of the whole run (``run_rows`` records)."""
    got = log_loss(frame)
    if (
        got is None
        or "lr" not in frame
        or len(frame) < PLATEAU_MIN_ROWS
        or schedule.decay == "smooth"
    ):
        return []
    col, logy = got
    lr = column(frame, "lr")
    steps = column(frame, "step")
    cuts = [int(np.searchsorted(steps, c.step)) for c in schedule.changes]
    bounds = [warmup_end(lr), *cuts, len(frame)]
    stretches = list(itertools.pairwise(bounds))
    if cuts:
        stretches = stretches[:-1]  # after the last decay a run is meant to flatten out
    for a, b in stretches:
        y = logy[a:b]
        if np.isfinite(y).sum() < PLATEAU_MIN_ROWS:
            continue
        smoothed = rolling_median(y, max(5, (b - a) // 10))
        final = nanmedian(y[-max(5, (b - a) // 10) :])
        reached = np.flatnonzero(smoothed <= final + PLATEAU_MAX_GAIN)
        if not len(reached):
            continue
        j = a + int(reached[0])
        n_flat = b - j
        if n_flat < PLATEAU_MIN_ROWS or n_flat < PLATEAU_MIN_SHARE * run_rows:
            continue
        if steps[b - 1] - steps[j] < PLATEAU_FLAT_OVER_FALL * (steps[j] - steps[a]):
            continue  # still falling like a healthy early curve, only slowly
        return [
            Finding(
                "plateau",
                "warning",
                f"{logged_name(frame, col)} stopped improving for {n_flat} logs ({n_flat / run_rows:.0%} of the run) at "
                f"constant lr {fmt(lr[j])}: it was already within 1% of {fmt(math.exp(final))} at step "
                f"{int(steps[j])} and stayed there until step {int(steps[b - 1])}.",
                steps=[int(steps[j]), int(steps[b - 1])],
                epoch=where(frame, j)["epoch"],
                iter=where(frame, j)["iter"],
                line_no=line_of(frame, j),
                evidence=[format_row(frame, j, [col, "lr"]), format_row(frame, b - 1, [col, "lr"])],
                advice="Decay the lr earlier (the loss only drops at the next lr step), or check that the "
                "weights are actually updated (frozen layers, lr too small).",
            )
        ]
    return []


def check_lr_jumps(ctx: Context) -> list[Finding]:
    frame = ctx.frame
    got = log_loss(frame)
    if got is None or not ctx.schedule.changes:
        return []
    col, logy = got
    steps = column(frame, "step")
    out = []
    for change in ctx.schedule.changes:
        pos = int(np.searchsorted(steps, change.step))
        before = logy[max(0, pos - LR_JUMP_WINDOW) : pos]
        after = logy[pos : pos + LR_JUMP_WINDOW]
        if np.isfinite(before).sum() < 2 or np.isfinite(after).sum() < 2:
            continue
        jump = nanmedian(after) - nanmedian(before)
        if jump < math.log(LR_JUMP_RATIO):
            continue
        out.append(
            Finding(
                "loss-jump-at-lr-change",
                "warning",
                f"{logged_name(ctx.frame, col)} jumped {math.exp(jump):.2f}x right when the lr changed {fmt(change.before)} -> "
                f"{fmt(change.after)} at step {change.step}.",
                **where(frame, min(pos, len(frame) - 1)),
                evidence=[
                    format_row(frame, p, [col, "lr"])
                    for p in range(max(0, pos - 1), min(len(frame), pos + 2))
                ],
                advice="An lr increase (restart, warmup ending too high, a resumed run with a fresh "
                "schedule) destabilised training: check the schedule and the resume.",
            )
        )
    return out


def _change_line(ctx: Context, step: int) -> int | None:
    """The log line of the first record at or after ``step`` (where an lr change shows)."""
    steps = column(ctx.frame, "step")
    pos = int(np.searchsorted(steps, step))
    return line_of(ctx.frame, pos) if pos < len(ctx.frame) else None


def check_schedule(ctx: Context) -> list[Finding]:
    sched = ctx.schedule
    if sched.peak is None:
        return []
    findings = [
        Finding(
            "lr-schedule",
            "info",
            "lr schedule: " + sched.describe() + ".",
            steps=[c.step for c in sched.changes],
            evidence=[
                f"step {c.step}: lr {fmt(c.before)} -> {fmt(c.after)}" for c in sched.changes
            ],
            line_no=_change_line(ctx, sched.changes[0].step) if sched.changes else None,
        )
    ]
    config = str(ctx.run.meta.get("config") or "")
    if re.search(
        r"type\s*=\s*['\"]SGD['\"]|OPTIMIZER:\s*SGD|optimizer\s*=\s*['\"]?sgd", config, re.I
    ):
        ips = total_batch_from_config(ctx.run)
        if ips is None:
            return findings  # per-GPU sizes x a guessed GPU count are too unreliable to judge
        per_image = sched.peak / ips
        if per_image > LR_PER_IMAGE_FACTOR * SGD_LR_PER_IMAGE:
            findings.append(
                Finding(
                    "lr-too-high-for-batch",
                    "warning",
                    f"peak lr {fmt(sched.peak)} for {ips} images per step is {per_image / SGD_LR_PER_IMAGE:.1f}x "
                    "the linear scaling rule (SGD lr 0.02 for 16 images).",
                    evidence=[f"peak lr {fmt(sched.peak)}", f"images per step {ips}"],
                    advice=f"Use about {fmt(SGD_LR_PER_IMAGE * ips)} (0.02 x batch / 16), or a longer warmup.",
                )
            )
    return findings


#: "Which term is stuck": a term within this share of its start while the total falls by at
#: least STUCK_TOTAL_DROP, over at least STUCK_MIN_ROWS logs (medians of the first/last fifth).
STUCK_MAX_CHANGE = 0.02
STUCK_TOTAL_DROP = 0.3
STUCK_MIN_ROWS = 20


def check_stuck_term(ctx: Context) -> list[Finding]:
    """A loss term that never moves while the others fall (its head gets no useful gradient)."""
    frame = ctx.frame
    total = terms.total_loss_column(frame)
    if total is None or total != "loss" or len(frame) < STUCK_MIN_ROWS:
        return []
    k = max(3, len(frame) // 5)
    loss = column(frame, total)
    start, end = nanmedian(loss[:k]), nanmedian(loss[-k:])
    if not end < (1 - STUCK_TOTAL_DROP) * start:
        return []
    out = []
    for col in terms.loss_columns(frame):
        term = terms.TERMS.get(col)
        if col == total or (
            term is not None and term.meanings.get("flat", "").startswith("Normal")
        ):
            continue
        values = column(frame, col)
        head, tail = nanmedian(values[:k]), nanmedian(values[-k:])
        if not (head > 0 and abs(tail / head - 1) < STUCK_MAX_CHANGE):
            continue
        out.append(
            Finding(
                "stuck-term",
                "warning",
                f"{logged_name(frame, col)} does not move ({fmt(head)} -> {fmt(tail)}) while "
                f"{logged_name(frame, total)} falls {fmt(start)} -> {fmt(end)}: that head is not "
                "learning.",
                line_no=line_of(frame, 0),
                evidence=[
                    format_row(frame, 0, [col, total]),
                    format_row(frame, len(frame) - 1, [col, total]),
                ],
                advice="Check that the head's parameters are trained (not frozen, lr multiplier not 0), "
                "that its targets exist (labels, masks, keypoints present in the annotations) and its "
                "loss weight is not 0.",
            )
        )
    return out
