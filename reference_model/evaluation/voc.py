"""VOC mAP exactly as mmdetection 2.x's ``mmdet/core/evaluation/mean_ap.py`` computes it.

``eval_map`` for one IoU threshold, no scale ranges: per class, every image's detections are
matched greedily by decreasing score to that image's ground truth (a detection whose best IoU
is >= ``iou_thr`` takes its best-overlapping box if still free: TP; if already taken: FP; if
that box is an ignore region of the class: neither); precision/recall over the class's
detections sorted by score across images; AP by the *area* method (VOC2010+: the area under
the precision envelope) or ``11points`` (VOC2007). mAP is the mean AP over classes that have
ground truth. Ignore regions count per class (``labels_ignore == class``), so regions labelled
-1 (the kitti tutorial's) never change the result, as in mmdet.

Shape shorthand: D detections, G ground-truth boxes, K classes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

AP_MODES = ("area", "11points")
#: mmdet's guard against empty denominators (``np.finfo(np.float32).eps``).
_EPS = float(np.finfo(np.float32).eps)
#: ``bbox_overlaps``'s guard against zero-area unions.
_UNION_EPS = 1e-6


@dataclass(frozen=True)
class ClassResult:
    """One class's evaluation: counts, the curves and AP."""

    num_gts: int
    num_dets: int
    recall: np.ndarray  # [D] cumulative, by decreasing score
    precision: np.ndarray  # [D]
    ap: float


def bbox_overlaps(boxes1: np.ndarray, boxes2: np.ndarray) -> np.ndarray:
    """IoU ``[N, M]`` of xyxy boxes in float32 (mmdet's numpy ``bbox_overlaps``, mode iou)."""
    b1 = boxes1.astype(np.float32)[:, None, :4]
    b2 = boxes2.astype(np.float32)[None, :, :4]
    area1 = (b1[..., 2] - b1[..., 0]) * (b1[..., 3] - b1[..., 1])
    area2 = (b2[..., 2] - b2[..., 0]) * (b2[..., 3] - b2[..., 1])
    width = np.maximum(np.minimum(b1[..., 2], b2[..., 2]) - np.maximum(b1[..., 0], b2[..., 0]), 0)
    height = np.maximum(np.minimum(b1[..., 3], b2[..., 3]) - np.maximum(b1[..., 1], b2[..., 1]), 0)
    overlap = width * height
    union = np.maximum(area1 + area2 - overlap, np.float32(_UNION_EPS))
    return (overlap / union).astype(np.float32)


def average_precision(recalls: np.ndarray, precisions: np.ndarray, mode: str = "area") -> float:
    """AP from a recall/precision curve ordered by decreasing score."""
    if mode not in AP_MODES:
        raise ValueError(f"mode must be one of {AP_MODES}, got {mode!r}")
    if mode == "11points":
        total = 0.0
        for thr in np.arange(0, 1 + 1e-3, 0.1):
            precs = precisions[recalls >= thr]
            total += float(precs.max()) if precs.size > 0 else 0.0
        return float(np.float32(total / 11))
    mrec = np.concatenate([[0.0], recalls, [1.0]]).astype(recalls.dtype)
    mpre = np.concatenate([[0.0], precisions, [0.0]]).astype(precisions.dtype)
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]  # the precision envelope
    changes = np.where(mrec[1:] != mrec[:-1])[0]
    return float(np.float32(np.sum((mrec[changes + 1] - mrec[changes]) * mpre[changes + 1])))


def tpfp(
    dets: np.ndarray, gts: np.ndarray, gts_ignore: np.ndarray, iou_thr: float
) -> tuple[np.ndarray, np.ndarray]:
    """TP and FP flags ``[D]`` of one image's detections ``[D, 5]`` (xyxy, score) of a class."""
    num_dets = dets.shape[0]
    tp = np.zeros(num_dets, dtype=np.float32)
    fp = np.zeros(num_dets, dtype=np.float32)
    all_gts = np.vstack([gts.reshape(-1, 4), gts_ignore.reshape(-1, 4)])
    is_ignore = np.arange(all_gts.shape[0]) >= gts.shape[0]
    if all_gts.shape[0] == 0:
        fp[:] = 1
        return tp, fp
    ious = bbox_overlaps(dets, all_gts)
    ious_max, ious_argmax = ious.max(axis=1), ious.argmax(axis=1)
    covered = np.zeros(all_gts.shape[0], dtype=bool)
    for i in np.argsort(-dets[:, -1]):
        if ious_max[i] >= iou_thr:
            matched = ious_argmax[i]
            if is_ignore[matched]:
                continue  # neither TP nor FP
            if not covered[matched]:
                covered[matched] = True
                tp[i] = 1
            else:
                fp[i] = 1
        else:
            fp[i] = 1
    return tp, fp


def eval_class(
    dets: Sequence[np.ndarray],
    gts: Sequence[np.ndarray],
    gts_ignore: Sequence[np.ndarray],
    iou_thr: float,
    mode: str,
) -> ClassResult:
    """Evaluate one class over all images (lists indexed by image)."""
    flags = [tpfp(d, g, i, iou_thr) for d, g, i in zip(dets, gts, gts_ignore, strict=True)]
    num_gts = sum(g.shape[0] for g in gts)
    all_dets = np.vstack([d.reshape(-1, 5) for d in dets]) if dets else np.zeros((0, 5))
    order = np.argsort(-all_dets[:, -1])
    tp = np.cumsum(np.concatenate([f[0] for f in flags] or [np.zeros(0)])[order])
    fp = np.cumsum(np.concatenate([f[1] for f in flags] or [np.zeros(0)])[order])
    # float32 like mmdet's arrays under numpy 1.x casting
    recall = (tp / np.maximum(num_gts, _EPS)).astype(np.float32)
    precision = (tp / np.maximum(tp + fp, _EPS)).astype(np.float32)
    return ClassResult(
        num_gts, all_dets.shape[0], recall, precision, average_precision(recall, precision, mode)
    )


def eval_map(
    det_results: Sequence[Sequence[np.ndarray]],
    annotations: Sequence[dict[str, np.ndarray]],
    iou_thr: float = 0.5,
    mode: str = "area",
) -> tuple[float, list[ClassResult]]:
    """mmdet's ``eval_map`` without scale ranges.

    Args:
        det_results: per image, per class, ``[D, 5]`` (x1, y1, x2, y2, score).
        annotations: per image, ``bboxes [G, 4]``, ``labels [G]`` and optionally
            ``bboxes_ignore [I, 4]``, ``labels_ignore [I]``.
    Returns:
        (mAP over classes with ground truth, one :class:`ClassResult` per class).
    """
    if len(det_results) != len(annotations):
        raise ValueError(
            f"got detections for {len(det_results)} images and annotations for {len(annotations)}"
        )
    num_classes = len(det_results[0]) if det_results else 0
    results = []
    for k in range(num_classes):
        dets = [np.asarray(img[k], dtype=np.float32).reshape(-1, 5) for img in det_results]
        gts = [ann["bboxes"][ann["labels"] == k] for ann in annotations]
        ignore = [_ignore_of_class(ann, k) for ann in annotations]
        results.append(eval_class(dets, gts, ignore, iou_thr, mode))
    aps = [np.float32(r.ap) for r in results if r.num_gts > 0]
    mean_ap = float(np.array(aps).mean()) if aps else 0.0
    return mean_ap, results


def _ignore_of_class(ann: dict[str, np.ndarray], k: int) -> np.ndarray:
    if ann.get("labels_ignore") is None or ann.get("bboxes_ignore") is None:
        return np.zeros((0, 4), dtype=np.float32)
    return ann["bboxes_ignore"][ann["labels_ignore"] == k]


def ascii_table(rows: list[list[str]], footer_border: bool = True) -> str:
    """terminaltables ``AsciiTable`` output: ``+---+`` borders, cells left-aligned with one
    space of padding, a border under the header and (``inner_footing_row_border``) above the
    last row."""
    widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]))]
    border = "+" + "+".join("-" * (w + 2) for w in widths) + "+"

    def line(row: list[str]) -> str:
        return "|" + "|".join(f" {cell:<{w}} " for cell, w in zip(row, widths, strict=True)) + "|"

    out = [border, line(rows[0]), border]
    out += [line(r) for r in rows[1:-1]]
    if footer_border and len(rows) > 2:
        out.append(border)
    out += [line(rows[-1]), border]
    return "\n".join(out)


def map_summary_table(
    mean_ap: float, results: list[ClassResult], class_names: Sequence[str]
) -> str:
    """mmdet's ``print_map_summary`` table (class | gts | dets | recall | ap, footer mAP)."""
    rows = [["class", "gts", "dets", "recall", "ap"]]
    for name, r in zip(class_names, results, strict=True):
        recall = float(np.float32(r.recall[-1])) if r.recall.size > 0 else 0.0
        rows.append([name, str(r.num_gts), str(r.num_dets), f"{recall:.3f}", f"{r.ap:.3f}"])
    rows.append(["mAP", "", "", "", f"{mean_ap:.3f}"])
    return ascii_table(rows)


#: mmdet's ``classwise=True`` table holds at most this many columns (3 category/AP pairs).
_CLASSWISE_COLUMNS = 6


def classwise_table(class_aps: Sequence[float], class_names: Sequence[str]) -> str:
    """mmdet 2.x's ``CocoDataset.evaluate(classwise=True)`` table: ``category | AP`` pairs,
    three to a row, AP as ``0.3f`` (``nan`` for a class without ground truth)."""
    columns = min(_CLASSWISE_COLUMNS, len(class_names) * 2)
    flat = [
        c for name, ap in zip(class_names, class_aps, strict=True) for c in (name, f"{ap:0.3f}")
    ]
    flat += [""] * (-len(flat) % columns)
    rows = [["category", "AP"] * (columns // 2)]
    rows += [flat[i : i + columns] for i in range(0, len(flat), columns)]
    return ascii_table(rows, footer_border=False)
