"""COCO-style box AP@[.5:.95] (pycocotools ``COCOeval`` semantics, area "all", maxDets 100).

Per image and class, detections (the ``max_dets`` highest-scoring) are matched greedily by
decreasing score, each to the unmatched ground-truth box of highest IoU at or above the
threshold; a detection matched to an ignore region is dropped (neither TP nor FP). Per class
and IoU threshold, precision is made monotone and read at 101 recall points (0, 0.01, ... 1;
0 where the recall is never reached); AP is the mean over those points, IoU thresholds
0.50:0.05:0.95, and classes that have ground truth.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .voc import bbox_overlaps

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
RECALL_POINTS = np.linspace(0.0, 1.0, 101)
MAX_DETS = 100


def _match(
    dets: np.ndarray, gts: np.ndarray, ignore: np.ndarray, iou_thr: float
) -> tuple[np.ndarray, np.ndarray]:
    """``(is_tp [D], keep [D])`` for one image's detections sorted by decreasing score."""
    num_dets = dets.shape[0]
    is_tp = np.zeros(num_dets, dtype=bool)
    keep = np.ones(num_dets, dtype=bool)
    if num_dets == 0:
        return is_tp, keep
    if gts.shape[0]:
        ious = bbox_overlaps(dets, gts)
        taken = np.zeros(gts.shape[0], dtype=bool)
        for i in range(num_dets):
            candidates = np.where(~taken & (ious[i] >= iou_thr))[0]
            if candidates.size:
                best = candidates[np.argmax(ious[i, candidates])]
                taken[best] = True
                is_tp[i] = True
    if ignore.shape[0]:
        hits_ignore = bbox_overlaps(dets, ignore).max(axis=1) >= iou_thr
        keep &= is_tp | ~hits_ignore
    return is_tp, keep


def _class_ap(
    dets: Sequence[np.ndarray],
    gts: Sequence[np.ndarray],
    ignore: Sequence[np.ndarray],
    iou_thr: float,
) -> float | None:
    num_gts = sum(g.shape[0] for g in gts)
    if num_gts == 0:
        return None
    scores, flags = [], []
    for d, g, ig in zip(dets, gts, ignore, strict=True):
        d = d[np.argsort(-d[:, 4], kind="mergesort")][:MAX_DETS]
        is_tp, keep = _match(d, g, ig, iou_thr)
        scores.append(d[keep, 4])
        flags.append(is_tp[keep])
    all_scores = np.concatenate(scores) if scores else np.zeros(0)
    order = np.argsort(-all_scores, kind="mergesort")
    tp_flags = np.concatenate(flags)[order] if flags else np.zeros(0, dtype=bool)
    tp = np.cumsum(tp_flags)
    fp = np.cumsum(~tp_flags)
    recall = tp / num_gts
    precision = tp / np.maximum(tp + fp, np.spacing(1))
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    idx = np.searchsorted(recall, RECALL_POINTS, side="left")
    sampled = np.array([precision[i] if i < len(precision) else 0.0 for i in idx])
    return float(sampled.mean())


def coco_ap(
    det_results: Sequence[Sequence[np.ndarray]],
    annotations: Sequence[dict[str, np.ndarray]],
    iou_thresholds: Sequence[float] = tuple(IOU_THRESHOLDS),
) -> float:
    """Mean AP over ``iou_thresholds`` and classes with ground truth (same inputs as
    :func:`~reference_model.evaluation.voc.eval_map`); -1 when no class has ground truth,
    as pycocotools reports undefined AP."""
    per_class = coco_ap_per_class(det_results, annotations, iou_thresholds)
    aps = [ap for class_aps in per_class for ap in class_aps]
    return float(np.mean(aps)) if aps else -1.0


def coco_ap_per_class(
    det_results: Sequence[Sequence[np.ndarray]],
    annotations: Sequence[dict[str, np.ndarray]],
    iou_thresholds: Sequence[float],
) -> list[list[float]]:
    """Per class, the AP at each of ``iou_thresholds`` (empty for a class without ground
    truth)."""
    num_classes = len(det_results[0]) if det_results else 0
    per_class = []
    for k in range(num_classes):
        aps: list[float] = []
        dets = [np.asarray(img[k], dtype=np.float32).reshape(-1, 5) for img in det_results]
        gts = [ann["bboxes"][ann["labels"] == k] for ann in annotations]
        ignore = [
            ann["bboxes_ignore"][ann["labels_ignore"] == k]
            if ann.get("labels_ignore") is not None
            else np.zeros((0, 4), np.float32)
            for ann in annotations
        ]
        for thr in iou_thresholds:
            ap = _class_ap(dets, gts, ignore, float(thr))
            if ap is not None:
                aps.append(ap)
        per_class.append(aps)
    return per_class
