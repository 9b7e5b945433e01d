"""Pure checks on a parsed run: a :class:`~losslens.Run` in, :class:`Finding` objects out.

Every check is a small function ``_check_*(ctx) -> list[Finding]``; :func:`diagnose` runs them
all. A finding has a stable ``code`` (scripts and CI key on it), a ``severity`` (``info``,
``warning``, ``error``), the ``steps`` it concerns, ``evidence`` (values, or raw log lines for
messages such as checkpoint warnings) and ``advice``. Thresholds are named constants below, each
with the reason for its value.

Statistics use every record; curves are compared on the log of the loss, with medians and the
median absolute deviation (MAD), so that one bad interval does not decide anything.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from losslens import terms
from losslens.run import Run

SEVERITIES = ("info", "warning", "error")
_SEVERITY_RANK = {s: k for k, s in enumerate(SEVERITIES)}

#: A zero regression loss this many logs in a row is not chance (each log averages 20-50 iters).
NO_POSITIVES_MIN_RUN = 3
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
#: Data loading dominates when it takes this share of each iteration (issue brief: 0.3).
DATA_BOUND_SHARE = 0.3
#: Background-only accuracy: acc above this (percent) with mAP at or below NEAR_ZERO_MAP.
BG_ACC_MIN = 70.0
NEAR_ZERO_MAP = 0.01
#: "Few ground truths": fewer than this many, or under a tenth of the median class.
FEW_GTS = 20
#: Loss jump at an lr change: median loss after vs before, over this many logs each side.
LR_JUMP_WINDOW = 3
LR_JUMP_RATIO = 1.25
#: A discrete lr change: consecutive logged lrs differ by more than this factor.
LR_CHANGE_FACTOR = 1.3
#: Memory creep: chunk peaks rising through this many consecutive chunks, by this much overall.
MEMORY_CHUNKS = 5
MEMORY_CREEP_RATIO = 1.10
#: Linear scaling rule reference: Faster R-CNN lr 0.02 at 16 images per step (SGD).
SGD_LR_PER_IMAGE = 0.02 / 16
LR_PER_IMAGE_FACTOR = 4.0
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
#: Parameter names of class-specific heads (re-initialised when fine-tuning to new classes).
_HEAD_PARAM_RE = re.compile(
    r"(fc_cls|fc_reg|cls_score|bbox_pred|conv_cls|conv_reg|retina_cls|retina_reg|atss_cls|rtm_cls|"
    r"cls_logits|conv_logits|mask_predictor|mask_fcn_logits|box_predictor|vfnet_cls|gfl_cls|fcos_cls|"
    r"cls_convs?\.\d+\.out|heatmap|class_embed)"
)
_SIZE_MISMATCH_RE = re.compile(
    r"size mismatch for ([\w.]+): copying a param with shape torch\.Size\(\[([\d, ]*)\]\) from "
    r"checkpoint, the shape in current model is torch\.Size\(\[([\d, ]*)\]\)"
)
_MISSING_KEYS_RE = re.compile(
    r"(missing keys in source state_dict|unexpected key in source state_dict)[:]?\s*(.*)", re.I
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

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, got {self.severity!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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
        parts = [f"peak lr {self.peak:.4g}"]
        if self.warmup_steps:
            kind = f"{self.warmup_kind} " if self.warmup_kind else ""
            parts.append(f"{kind}warmup over the first {self.warmup_steps} steps")
        if self.changes:
            steps = ", ".join(f"x{c.factor:.3g} at step {c.step}" for c in self.changes)
            parts.append(f"lr changes {steps}")
        elif self.decay == "smooth":
            parts.append("smooth decay (cosine/poly-like)")
        return "; ".join(parts)


@dataclass
class _Context:
    run: Run
    frame: pd.DataFrame
    lines: Sequence[str] | None
    schedule: LrSchedule


# --------------------------------------------------------------------------- helpers
def _col(frame: pd.DataFrame, name: str) -> np.ndarray:
    return frame[name].to_numpy(dtype="float64", na_value=np.nan)


def _where(frame: pd.DataFrame, pos: int) -> dict[str, Any]:
    row = frame.iloc[pos]
    out: dict[str, Any] = {"steps": [], "epoch": None, "iter": None}
    if "step" in frame and pd.notna(row["step"]):
        out["steps"] = [int(row["step"])]
    if "epoch" in frame and pd.notna(row["epoch"]):
        out["epoch"] = int(row["epoch"])
    if "iter" in frame and pd.notna(row["iter"]):
        out["iter"] = int(row["iter"])
    return out


def format_row(frame: pd.DataFrame, pos: int, columns: Sequence[str] | None = None) -> str:
    """One record as ``step 120 (epoch 1, iter 120): lr=0.02, loss=nan`` (evidence text)."""
    row = frame.iloc[pos]
    head = []
    for key in ("step", "epoch", "iter"):
        if key in frame and pd.notna(row[key]):
            head.append(f"{key} {int(row[key])}")
    cols = (
        columns
        if columns is not None
        else [c for c in frame.columns if c not in terms.INDEX_COLUMNS]
    )
    values = ", ".join(f"{c}={_fmt(row[c])}" for c in cols if c in frame)
    where = (
        head[0] + (f" ({', '.join(head[1:])})" if len(head) > 1 else "") if head else f"row {pos}"
    )
    return f"{where}: {values}"


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "nan"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _runs_of(mask: np.ndarray) -> list[tuple[int, int]]:
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


def _segment_rows(frame: pd.DataFrame) -> list[np.ndarray]:
    if "segment" not in frame or len(frame) == 0:
        return [np.arange(len(frame))]
    seg = frame["segment"].to_numpy(dtype="float64", na_value=-1)
    return [np.flatnonzero(seg == s) for s in np.unique(seg)]


def _nanmedian(values: np.ndarray) -> float:
    """Median of the finite values; NaN (and no warning) when there are none."""
    arr = np.asarray(values, dtype="float64")
    arr = arr[np.isfinite(arr)]
    return float(np.median(arr)) if len(arr) else math.nan


def _rolling_median(values: np.ndarray, window: int, center: bool = False) -> np.ndarray:
    return pd.Series(values).rolling(window, min_periods=1, center=center).median().to_numpy()


def main_metric(run: Run) -> str | None:
    """The headline evaluation metric column of a run (COCO box AP, else VOC mAP ...)."""
    for name in MAIN_METRICS:
        if name in run.evals and run.evals[name].notna().any():
            return name
    return None


def _metric_in_fraction(run: Run, name: str, values: np.ndarray) -> np.ndarray:
    percent = run.meta.get("eval_units") == "percent" or name.startswith(("bbox/", "segm/"))
    return values / 100.0 if percent else values


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
    peak = float(np.nanmax(_col(train, "lr")))
    for k, rows in enumerate(_segment_rows(train)):
        sub = train.iloc[rows]
        lr = _col(sub, "lr")
        steps = _col(sub, "step") if "step" in sub else np.arange(1.0, len(sub) + 1)
        start = _warmup_end(lr)
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


def _warmup_end(lr: np.ndarray) -> int:
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
    lr = _col(train, "lr")
    lr = lr[np.isfinite(lr)]
    if len(lr) < 3:
        return "none"
    return "none" if lr[-1] >= 0.95 * lr.max() else "smooth"


# --------------------------------------------------------------------------- checks
def _logged_nonfinite(frame: pd.DataFrame, col: str) -> np.ndarray:
    """Rows where ``col`` was logged as nan/inf (not merely absent from that record).

    The train table stores both as NaN, so a NaN counts only where the column has finite values
    elsewhere in the same resumed segment and the record carries other values (lr, time ...).
    """
    values = _col(frame, col)
    bad = ~np.isfinite(values)
    present = np.zeros(len(frame), dtype=bool)
    for rows in _segment_rows(frame):
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


def _check_nonfinite(ctx: _Context) -> list[Finding]:
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
            values = ", ".join(_fmt(v) for v in before[trend_col])
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
            f"{col} became {_fmt(value)} first at {evidence[0].split(':')[0]}; {n_bad} of {len(frame)} "
            f"training records have a non-finite loss.{lr_note}",
            **_where(frame, pos),
            evidence=evidence,
            advice="Lower the lr (linear scaling: lr proportional to the total batch), lengthen the warmup, "
            "add gradient clipping (mmdet: optimizer_config = dict(grad_clip=dict(max_norm=35, "
            "norm_type=2))), and check the annotations for degenerate boxes (x2 <= x1, zero area).",
        )
    ]


def _log_loss(frame: pd.DataFrame) -> tuple[str, np.ndarray] | None:
    col = terms.total_loss_column(frame)
    if col is None:
        return None
    y = _col(frame, col)
    with np.errstate(divide="ignore", invalid="ignore"):
        return col, np.where(np.isfinite(y) & (y > 0), np.log(np.where(y > 0, y, 1.0)), np.nan)


def _check_spikes(ctx: _Context) -> list[Finding]:
    got = _log_loss(ctx.frame)
    if got is None:
        return []
    col, logy = got
    spikes: list[int] = []
    for rows in _segment_rows(ctx.frame):
        y = logy[rows]
        if np.isfinite(y).sum() < 2 * SPIKE_WINDOW:
            continue
        resid = y - _rolling_median(y, SPIKE_WINDOW, center=True)
        mad = _nanmedian(np.abs(resid)) * 1.4826
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
            f"{col} spiked {len(spikes)} time(s) well above its running median (largest at "
            f"{format_row(frame, shown[0], [col]).split(':')[0]}).",
            steps=[
                int(frame["step"].iloc[p])
                for p in sorted(spikes)
                if "step" in frame and pd.notna(frame["step"].iloc[p])
            ],
            epoch=_where(frame, shown[0])["epoch"],
            iter=_where(frame, shown[0])["iter"],
            evidence=[
                format_row(frame, p, [col, "lr"] + (["grad_norm"] if "grad_norm" in frame else []))
                for p in shown
            ],
            advice="Isolated spikes usually come from a few hard or broken images (huge boxes, wrong "
            "labels); repeated ones from an lr at the edge of stability: add gradient clipping or "
            "lower the lr.",
        )
    ]


def _check_divergence(ctx: _Context) -> list[Finding]:
    got = _log_loss(ctx.frame)
    if got is None:
        return []
    col, logy = got
    out = []
    # The loss of the first iterations (lr still warming up, few positives assigned) is no
    # baseline: a detector's loss often *rises* then. Look for the best value after the warmup.
    warmup_end = ctx.schedule.warmup_steps or 0
    steps = (
        _col(ctx.frame, "step") if "step" in ctx.frame else np.arange(len(ctx.frame), dtype=float)
    )
    for rows in _segment_rows(ctx.frame):
        rows = rows[steps[rows] > warmup_end] if warmup_end else rows
        y = logy[rows]
        ok = np.isfinite(y)
        if ok.sum() < 20:
            continue
        yf = y[ok]
        smoothed = _rolling_median(yf, max(5, len(yf) // 20))
        best = int(np.argmin(smoothed))
        rise = smoothed[-1] - smoothed[best]
        if rise < math.log(DIVERGENCE_RATIO) or best > 0.9 * len(yf):
            continue
        pos = int(rows[np.flatnonzero(ok)[best]])
        last = int(rows[np.flatnonzero(ok)[-1]])
        worse_than_start = smoothed[-1] > smoothed[min(len(smoothed) - 1, 4)]
        out.append(
            Finding(
                "divergence",
                "error" if worse_than_start else "warning",
                f"{col} rose {math.exp(rise):.1f}x from its best (smoothed) value and ends "
                + ("above where it started." if worse_than_start else "well above its best."),
                steps=[int(ctx.frame["step"].iloc[p]) for p in (pos, last)]
                if "step" in ctx.frame
                else [],
                epoch=_where(ctx.frame, pos)["epoch"],
                iter=_where(ctx.frame, pos)["iter"],
                evidence=[
                    format_row(ctx.frame, pos, [col, "lr"]),
                    format_row(ctx.frame, last, [col, "lr"]),
                ],
                advice="Lower the lr or add warmup/gradient clipping; if the rise starts at an lr change "
                "or a resume, check the schedule and the checkpoint that was loaded.",
            )
        )
    return out


def _check_plateau(ctx: _Context) -> list[Finding]:
    """Each segment (a resumed run appended to the file) has its own schedule: check each."""
    for rows in _segment_rows(ctx.frame):
        segment = ctx.frame.iloc[rows].reset_index(drop=True)
        found = _plateau_in(segment, schedule_of(segment), len(ctx.frame))
        if found:
            return found
    return []


def _plateau_in(frame: pd.DataFrame, schedule: LrSchedule, run_rows: int) -> list[Finding]:
    """A flat stretch at constant lr; its share is of the whole run (``run_rows`` records)."""
    got = _log_loss(frame)
    if (
        got is None
        or "lr" not in frame
        or len(frame) < PLATEAU_MIN_ROWS
        or schedule.decay == "smooth"
    ):
        return []
    col, logy = got
    lr = _col(frame, "lr")
    steps = _col(frame, "step")
    cuts = [int(np.searchsorted(steps, c.step)) for c in schedule.changes]
    bounds = [_warmup_end(lr), *cuts, len(frame)]
    stretches = list(itertools.pairwise(bounds))
    if cuts:
        stretches = stretches[:-1]  # after the last decay a run is meant to flatten out
    for a, b in stretches:
        y = logy[a:b]
        if np.isfinite(y).sum() < PLATEAU_MIN_ROWS:
            continue
        smoothed = _rolling_median(y, max(5, (b - a) // 10))
        final = _nanmedian(y[-max(5, (b - a) // 10) :])
        reached = np.flatnonzero(smoothed <= final + PLATEAU_MAX_GAIN)
        if not len(reached):
            continue
        j = a + int(reached[0])
        n_flat = b - j
        if n_flat < PLATEAU_MIN_ROWS or n_flat < PLATEAU_MIN_SHARE * run_rows:
            continue
        return [
            Finding(
                "plateau",
                "warning",
                f"{col} stopped improving for {n_flat} logs ({n_flat / run_rows:.0%} of the run) at "
                f"constant lr {lr[j]:.4g}: it was already within 1% of {math.exp(final):.4g} at step "
                f"{int(steps[j])} and stayed there until step {int(steps[b - 1])}.",
                steps=[int(steps[j]), int(steps[b - 1])],
                epoch=_where(frame, j)["epoch"],
                iter=_where(frame, j)["iter"],
                evidence=[format_row(frame, j, [col, "lr"]), format_row(frame, b - 1, [col, "lr"])],
                advice="Decay the lr earlier (the loss only drops at the next lr step), or check that the "
                "weights are actually updated (frozen layers, lr too small).",
            )
        ]
    return []


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


def _check_no_positives(ctx: _Context) -> list[Finding]:
    frame = ctx.frame
    out = []
    for reg, cls in _reg_cls_pairs(frame):
        zero = (_col(frame, reg) == 0) & (_col(frame, cls) > 0)
        runs = [r for r in _runs_of(zero) if r[1] >= NO_POSITIVES_MIN_RUN]
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
                f"{reg} is exactly 0 in {int(zero.sum())} of {len(frame)} logs while {cls} is not: the "
                f"{stage} sees no positive samples (no ground truth reaches it).",
                **_where(frame, pos),
                evidence=[format_row(frame, pos, [reg, cls, *extra])],
                advice="Check that the dataset's class names match the annotations (mmdet: metainfo/"
                "classes), num_classes in the heads, the box format (xywh vs xyxy, absolute pixels), "
                "and that images have annotations after filtering (filter_empty_gt).",
            )
        )
    return out


def _check_bg_only(ctx: _Context) -> list[Finding]:
    frame = ctx.frame
    if "acc" not in frame or frame["acc"].notna().sum() < 3:
        return []
    acc = _col(frame, "acc")
    tail = acc[-max(3, len(acc) // 4) :]
    acc_end = float(_nanmedian(tail))
    if acc_end < BG_ACC_MIN:
        return []
    if "loss_bbox" in frame and np.nanmax(np.abs(_col(frame, "loss_bbox"))) == 0:
        return []  # no-positives explains it
    metric = main_metric(ctx.run)
    if metric is not None:
        values = _metric_in_fraction(ctx.run, metric, _col(ctx.run.evals, metric))
        final = values[np.isfinite(values)]
        if len(final) and final[-1] <= NEAR_ZERO_MAP:
            return [_bg_finding(ctx, acc_end, f"final {metric} is {final[-1]:.3g}", "error")]
        return []
    if "fg_acc" in frame and _nanmedian(_col(frame, "fg_acc")[-len(tail) :]) < 5:
        return [_bg_finding(ctx, acc_end, "foreground accuracy stays under 5%", "error")]
    if "loss_bbox" in frame:
        reg = _col(frame, "loss_bbox")
        k = max(3, len(reg) // 5)
        head, end = _nanmedian(reg[:k]), _nanmedian(reg[-k:])
        if np.isfinite(head) and head > 0 and end >= 0.9 * head:
            return [
                _bg_finding(
                    ctx, acc_end, f"loss_bbox barely moves ({head:.4g} -> {end:.4g})", "warning"
                )
            ]
    return []


def _bg_finding(ctx: _Context, acc_end: float, why: str, severity: str) -> Finding:
    return Finding(
        "bg-only-accuracy",
        severity,
        f"acc ends at {acc_end:.1f}% but {why}: the accuracy counts background RoIs (at least 75% "
        "of the sampled RoIs), so the box head may only be predicting background.",
        steps=[int(ctx.frame["step"].iloc[-1])] if "step" in ctx.frame and len(ctx.frame) else [],
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


def _check_few_gts(ctx: _Context) -> list[Finding]:
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
        f"{row['class']}: gts={int(row['gts'])}, dets={_fmt(row['dets'])}, recall={_fmt(row['recall'])}, ap={_fmt(row['ap'])}"
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
            evidence=evidence,
            advice="Collect or label more examples of the class, oversample images that contain it "
            "(class-balanced sampling), and read its AP as noisy; mAP over few classes moves with it.",
        )
    ]


def _check_lr_jumps(ctx: _Context) -> list[Finding]:
    frame = ctx.frame
    got = _log_loss(frame)
    if got is None or not ctx.schedule.changes:
        return []
    col, logy = got
    steps = _col(frame, "step")
    out = []
    for change in ctx.schedule.changes:
        pos = int(np.searchsorted(steps, change.step))
        before = logy[max(0, pos - LR_JUMP_WINDOW) : pos]
        after = logy[pos : pos + LR_JUMP_WINDOW]
        if np.isfinite(before).sum() < 2 or np.isfinite(after).sum() < 2:
            continue
        jump = _nanmedian(after) - _nanmedian(before)
        if jump < math.log(LR_JUMP_RATIO):
            continue
        out.append(
            Finding(
                "loss-jump-at-lr-change",
                "warning",
                f"{col} jumped {math.exp(jump):.2f}x right when the lr changed {change.before:.4g} -> "
                f"{change.after:.4g} at step {change.step}.",
                **_where(frame, min(pos, len(frame) - 1)),
                evidence=[
                    format_row(frame, p, [col, "lr"])
                    for p in range(max(0, pos - 1), min(len(frame), pos + 2))
                ],
                advice="An lr increase (restart, warmup ending too high, a resumed run with a fresh "
                "schedule) destabilised training: check the schedule and the resume.",
            )
        )
    return out


def _check_schedule(ctx: _Context) -> list[Finding]:
    sched = ctx.schedule
    if sched.peak is None:
        return []
    findings = [
        Finding(
            "lr-schedule",
            "info",
            "lr schedule: " + sched.describe() + ".",
            steps=[c.step for c in sched.changes],
            evidence=[f"step {c.step}: lr {c.before:.4g} -> {c.after:.4g}" for c in sched.changes],
        )
    ]
    config = str(ctx.run.meta.get("config") or "")
    if re.search(
        r"type\s*=\s*['\"]SGD['\"]|OPTIMIZER:\s*SGD|optimizer\s*=\s*['\"]?sgd", config, re.I
    ):
        from losslens.plotting import total_batch_from_config

        ips = total_batch_from_config(ctx.run)
        if ips is None:
            return findings  # per-GPU sizes x a guessed GPU count are too unreliable to judge
        per_image = sched.peak / ips
        if per_image > LR_PER_IMAGE_FACTOR * SGD_LR_PER_IMAGE:
            findings.append(
                Finding(
                    "lr-too-high-for-batch",
                    "warning",
                    f"peak lr {sched.peak:.4g} for {ips} images per step is {per_image / SGD_LR_PER_IMAGE:.1f}x "
                    "the linear scaling rule (SGD lr 0.02 for 16 images).",
                    evidence=[f"peak lr {sched.peak:.4g}", f"images per step {ips}"],
                    advice=f"Use about {SGD_LR_PER_IMAGE * ips:.4g} (0.02 x batch / 16), or a longer warmup.",
                )
            )
    return findings


def _check_data_bound(ctx: _Context) -> list[Finding]:
    frame = ctx.frame
    if "data_time_s" not in frame or "time_s" not in frame:
        return []
    keep = np.ones(len(frame), dtype=bool)
    if "epoch" in frame and frame["epoch"].notna().any():
        # the first log of an epoch includes starting the data-loader workers
        epoch = frame["epoch"].to_numpy(dtype="float64", na_value=np.nan)
        first = np.r_[True, epoch[1:] != epoch[:-1]]
        sizes = (
            pd.Series(epoch)
            .map(pd.Series(epoch).value_counts())
            .to_numpy(dtype="float64", na_value=0)
        )
        keep = ~(first & (sizes > 1))
    data, total = _col(frame, "data_time_s")[keep], _col(frame, "time_s")[keep]
    ok = np.isfinite(data) & np.isfinite(total) & (total > 0)
    if ok.sum() < 2:
        return []
    share = float(np.median(data[ok] / total[ok]))
    if share <= DATA_BOUND_SHARE:
        return []
    return [
        Finding(
            "dataloader-bound",
            "warning",
            f"data loading takes {share:.0%} of each iteration (median data_time/time): the GPU waits for data.",
            evidence=[
                f"median data_time {np.median(data[ok]):.3f} s of {np.median(total[ok]):.3f} s per iteration"
            ],
            advice="Raise workers_per_gpu / num_workers, use faster storage or cached decoding, move "
            "heavy augmentation off the main process, enable persistent_workers and pin_memory.",
        )
    ]


def _check_memory(ctx: _Context) -> list[Finding]:
    frame = ctx.frame
    if "memory_mb" not in frame:
        return []
    rows = _segment_rows(frame)[-1]
    mem = _col(frame, "memory_mb")[rows]
    mem = mem[int(len(mem) * 0.1) :]
    if np.isfinite(mem).sum() < 4 * MEMORY_CHUNKS:
        return []
    peaks = np.array([np.nanmax(c) for c in np.array_split(mem, MEMORY_CHUNKS)])
    rising = bool(np.all(np.diff(peaks) > 0))
    if not rising or peaks[-1] < MEMORY_CREEP_RATIO * peaks[0]:
        return []
    return [
        Finding(
            "memory-creep",
            "warning",
            f"peak GPU memory keeps growing through the run: {peaks[0]:.0f} MB -> {peaks[-1]:.0f} MB "
            f"({peaks[-1] / peaks[0]:.2f}x) over the last 90% of training.",
            steps=[int(frame["step"].iloc[rows[-1]])] if "step" in frame else [],
            evidence=[
                f"peak memory per fifth of the run (MB): {', '.join(f'{p:.0f}' for p in peaks)}"
            ],
            advice="Something accumulates on the GPU: tensors kept across iterations (losses appended "
            "without .item()/.detach()), growing caches, or ever larger images; watch for an OOM.",
        )
    ]


def _check_overfitting(ctx: _Context) -> list[Finding]:
    run, frame = ctx.run, ctx.frame
    metric = main_metric(run)
    if metric is None or "step" not in run.evals:
        return []
    ev = run.evals[run.evals[metric].notna()]
    values = _metric_in_fraction(run, metric, _col(ev, metric))
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
    steps = _col(frame, "step")
    y = _col(frame, loss_col)
    at_best = y[(steps <= ev["step"].iloc[best])][-5:]
    at_end = y[-5:]
    if not (_nanmedian(at_end) < _nanmedian(at_best)):
        return []
    return [
        Finding(
            "overfitting",
            "warning",
            f"{metric} peaked at {values[best]:.3f} (evaluation {best + 1}, step {int(ev['step'].iloc[best])}) "
            f"and fell to {values[-1]:.3f} while {loss_col} kept falling "
            f"({_nanmedian(at_best):.4g} -> {_nanmedian(at_end):.4g}).",
            steps=[int(ev["step"].iloc[best]), int(ev["step"].iloc[-1])],
            epoch=int(ev["epoch"].iloc[best])
            if "epoch" in ev and pd.notna(ev["epoch"].iloc[best])
            else None,
            evidence=[
                f"evaluation at step {int(s)}: {metric}={v:.4f}"
                for s, v in zip(ev["step"], values, strict=False)
            ][-6:],
            advice="Keep the best checkpoint (mmdet: save_best), train shorter or decay earlier, add "
            "augmentation or regularisation, or get more data.",
        )
    ]


def _check_eval_minus_one(ctx: _Context) -> list[Finding]:
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
            advice="Nothing to fix; ignore these columns (they do not enter bbox_mAP).",
        )
    ]


def _check_empty_train(ctx: _Context) -> list[Finding]:
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


def _check_checkpoint(ctx: _Context) -> list[Finding]:
    if not ctx.lines:
        return []
    mismatches: list[tuple[str, str, str]] = []
    evidence: list[str] = []
    for line in ctx.lines:
        found = _SIZE_MISMATCH_RE.findall(line)
        if found:
            mismatches.extend(found)
            evidence.append(line.strip()[:400])
    if not mismatches:
        return []
    heads = [m for m in mismatches if _HEAD_PARAM_RE.search(m[0])]
    others = [m for m in mismatches if not _HEAD_PARAM_RE.search(m[0])]
    classes = _class_change(mismatches)
    if others:
        message = (
            f"{len(others)} checkpoint parameter(s) outside the class heads do not match "
            f"({', '.join(m[0] for m in others[:3])}): those layers start from random weights."
        )
        return [
            Finding(
                "checkpoint-mismatch",
                "warning",
                message,
                evidence=evidence[:5],
                advice="Load a checkpoint of the same architecture (depth, FPN channels, "
                "anchors per location); fine-tuning only re-initialises the class heads.",
            )
        ]
    message = (
        f"the checkpoint's class heads do not fit this model ({', '.join(m[0] for m in heads[:4])}){classes}: "
        "expected when fine-tuning to new classes; those heads are re-initialised and everything else is loaded."
    )
    return [
        Finding(
            "checkpoint-mismatch",
            "info",
            message,
            evidence=evidence[:5],
            advice="Nothing to fix if you meant to fine-tune; otherwise check num_classes.",
        )
    ]


def _class_change(mismatches: list[tuple[str, str, str]]) -> str:
    for name, old, new in mismatches:
        if re.search(r"(fc_cls|cls_score)\.weight", name):
            a, b = int(old.split(",")[0]), int(new.split(",")[0])
            return f"; {a} -> {b} outputs = {a - 1} -> {b - 1} classes plus background"
    return ""


CHECKS: dict[str, Callable[[_Context], list[Finding]]] = {
    "nonfinite-loss": _check_nonfinite,
    "no-positives": _check_no_positives,
    "divergence": _check_divergence,
    "loss-spike": _check_spikes,
    "plateau": _check_plateau,
    "bg-only-accuracy": _check_bg_only,
    "few-gts-low-ap": _check_few_gts,
    "lr-schedule": _check_schedule,
    "loss-jump-at-lr-change": _check_lr_jumps,
    "dataloader-bound": _check_data_bound,
    "memory-creep": _check_memory,
    "overfitting": _check_overfitting,
    "checkpoint-mismatch": _check_checkpoint,
    "eval-minus-one": _check_eval_minus_one,
    "no-train-records": _check_empty_train,
}
#: Every code a finding can carry (some checks emit more than one code).
CODES = (*CHECKS, "lr-too-high-for-batch")


def diagnose(run: Run, lines: Sequence[str] | None = None) -> list[Finding]:
    """All findings for ``run``, most severe first.

    ``lines`` (the log's text lines, optional) lets message-level checks read what the train
    table does not hold, such as checkpoint size-mismatch warnings.
    """
    ctx = _Context(run, run.canonical(), lines, lr_schedule(run))
    findings: list[Finding] = []
    for check in CHECKS.values():
        for finding in check(ctx):
            finding.run = run.name
            findings.append(finding)
    findings.sort(key=lambda f: (-_SEVERITY_RANK[f.severity], f.steps[0] if f.steps else -1))
    return findings


def worst_severity(findings: Sequence[Finding]) -> str | None:
    return max((f.severity for f in findings), key=_SEVERITY_RANK.__getitem__, default=None)
