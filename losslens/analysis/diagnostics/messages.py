"""Checks on raw log messages the train table does not hold (checkpoint size mismatches)."""

from __future__ import annotations

import re

from losslens.analysis.diagnostics._base import (
    Context,
    Finding,
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


def check_checkpoint(ctx: Context) -> list[Finding]:
    if not ctx.lines:
        return []
    mismatches: list[tuple[str, str, str]] = []
    evidence: list[str] = []
    first_line: int | None = None
    for line_no, line in enumerate(ctx.lines, 1):
        found = _SIZE_MISMATCH_RE.findall(line)
        if found:
            mismatches.extend(found)
            evidence.append(f"line {line_no}: {line.strip()[:400]}")
            first_line = first_line or line_no
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
                line_no=first_line,
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
            line_no=first_line,
            advice="Nothing to fix if you meant to fine-tune; otherwise check num_classes.",
        )
    ]


def _class_change(mismatches: list[tuple[str, str, str]]) -> str:
    for name, old, new in mismatches:
        if re.search(r"(fc_cls|cls_score)\.weight", name):
            a, b = int(old.split(",")[0]), int(new.split(",")[0])
            return f"; {a} -> {b} outputs = {a - 1} -> {b - 1} classes plus background"
    return ""


#: Framework messages that mean trouble: (pattern, code, severity, what it means, advice).
_TROUBLE_MESSAGES = (
    (
        re.compile(r"The testing results of the whole dataset is empty", re.I),
        "empty-test-results",
        "error",
        "the model detected nothing on the whole validation set (mmdet), so the metric is 0",
        "Check num_classes and the class names against the annotations, the score threshold, and "
        "that training did not diverge (a NaN loss gives empty results).",
    ),
    (
        re.compile(r"FloatingPointError: Loss became infinite or NaN", re.I),
        "loss-became-infinite",
        "error",
        "detectron2 stopped training because the loss became infinite or NaN",
        "Lower SOLVER.BASE_LR or lengthen SOLVER.WARMUP_ITERS, enable SOLVER.CLIP_GRADIENTS, and "
        "check the annotations for zero-area or out-of-image boxes.",
    ),
    (
        re.compile(r"no valid (?:ground[ _-]?truth|gt)", re.I),
        "no-valid-ground-truth",
        "warning",
        "images without a usable ground-truth box reached the loss",
        "Filter images without annotations (mmdet filter_empty_gt, detectron2 "
        "DATALOADER.FILTER_EMPTY_ANNOTATIONS) and drop zero-size boxes (x2 <= x1).",
    ),
)
#: Trouble-message codes (every code a finding of :func:`check_messages` can carry).
MESSAGE_CODES = tuple(code for _, code, *_ in _TROUBLE_MESSAGES)


def _numbered_lines(ctx: Context) -> list[tuple[int, str]]:
    """(1-based line number, text) of the log text, else of the lines no parser placed."""
    if ctx.lines:
        return [(k + 1, line) for k, line in enumerate(ctx.lines)]
    return [(s.line_no, s.text) for s in ctx.run.skipped]


def check_messages(ctx: Context) -> list[Finding]:
    """One finding per kind of trouble message, naming the line of its first occurrence."""
    hits: dict[str, list[tuple[int, str]]] = {}
    for line_no, text in _numbered_lines(ctx):
        for pattern, code, *_ in _TROUBLE_MESSAGES:
            if pattern.search(text):
                hits.setdefault(code, []).append((line_no, text.strip()[:400]))
    out = []
    for _, code, severity, meaning, advice in _TROUBLE_MESSAGES:
        found = hits.get(code)
        if not found:
            continue
        first_no = found[0][0]
        out.append(
            Finding(
                code,
                severity,
                f"line {first_no}: {meaning} ({len(found)} such line(s)).",
                evidence=[f"line {n}: {text}" for n, text in found[:3]],
                line_no=first_no,
                advice=advice,
            )
        )
    return out
