"""Pure checks on a parsed run: a :class:`~losslens.Run` in, :class:`Finding` objects out.

Every check is a small function ``check_*(ctx) -> list[Finding]`` in the module of its topic
(curves, nan, triage, heads, evaluation, runtime, messages, families); :func:`diagnose` runs them all. A finding
has a stable ``code`` (scripts and CI key on it), a ``severity`` (``info``, ``warning``,
``error``), the ``steps`` it concerns, ``evidence`` (values, or raw log lines for messages such
as checkpoint warnings) and ``advice``. Thresholds are named constants in each module, each with
the reason for its value. Statistics use every record.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from losslens.analysis import terms
from losslens.analysis.axes import LrChange, LrSchedule, lr_schedule, schedule_of
from losslens.analysis.diagnostics import (
    curves,
    evaluation,
    families,
    heads,
    messages,
    nan,
    runtime,
    triage,
)
from losslens.analysis.diagnostics._base import (
    MAIN_METRICS,
    SEVERITIES,
    SEVERITY_RANK,
    Context,
    Finding,
    format_row,
    main_metric,
)
from losslens.run import Run

__all__ = [
    "CHECKS",
    "CODES",
    "MAIN_METRICS",
    "SEVERITIES",
    "Finding",
    "LrChange",
    "LrSchedule",
    "diagnose",
    "format_row",
    "lr_schedule",
    "main_metric",
    "schedule_of",
    "worst_severity",
]

CHECKS: dict[str, Callable[[Context], list[Finding]]] = {
    "nonfinite-loss": nan.check_nonfinite,
    "fp16-overflow": nan.check_fp16_overflow,
    "loss-scale-collapse": triage.check_loss_scale,
    "absurd-first-loss": nan.check_absurd_first,
    "stuck-term": curves.check_stuck_term,
    "no-positives": heads.check_no_positives,
    "divergence": curves.check_divergence,
    "loss-spike": curves.check_spikes,
    "plateau": curves.check_plateau,
    "bg-only-accuracy": heads.check_bg_only,
    "few-gts-low-ap": evaluation.check_few_gts,
    "lr-schedule": curves.check_schedule,
    "loss-jump-at-lr-change": curves.check_lr_jumps,
    "dataloader-bound": runtime.check_data_bound,
    "memory-creep": runtime.check_memory,
    "overfitting": evaluation.check_overfitting,
    "checkpoint-mismatch": messages.check_checkpoint,
    "eval-minus-one": evaluation.check_eval_minus_one,
    "no-train-records": evaluation.check_empty_train,
    "framework-messages": messages.check_messages,
    "val-loss-rising": families.check_val_loss_rising,
    "yolox-l1-switched-on": families.check_yolox_l1,
    "class-error-stuck": families.check_class_error,
}
#: Every code a finding can carry (some checks emit more than one code).
CODES = (
    *(c for c in CHECKS if c != "framework-messages"),
    "lr-too-high-for-batch",
    *messages.MESSAGE_CODES,
)


def diagnose(run: Run, lines: Sequence[str] | None = None) -> list[Finding]:
    """All findings for ``run``, most severe first.

    ``lines`` (the log's text lines, optional) lets message-level checks read what the train
    table does not hold, such as checkpoint size-mismatch warnings.
    """
    ctx = Context(run, terms.canonical_frame(run), lines, lr_schedule(run))
    findings: list[Finding] = []
    for check in CHECKS.values():
        for finding in check(ctx):
            finding.run = run.name
            findings.append(finding)
    findings.sort(key=lambda f: (-SEVERITY_RANK[f.severity], f.steps[0] if f.steps else -1))
    return findings


def worst_severity(findings: Sequence[Finding]) -> str | None:
    """The most severe level among ``findings`` (None when there are none)."""
    return max((f.severity for f in findings), key=SEVERITY_RANK.__getitem__, default=None)
