"""Evaluate a detector on a split: predictions back in original pixels, then mmdet's VOC
``eval_map`` at IoU 0.5 (area method) with its table, and COCO-style AP@[.5:.95]."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ..data.kitti import Sample
from ..data.transforms import boxes_to_original
from ..evaluation import classwise_table, eval_map, map_summary_table
from ..evaluation.coco import IOU_THRESHOLDS, coco_ap_per_class
from .loader import Loader

VOC_IOU_THR = 0.5


@dataclass
class EvalResult:
    """``metrics`` in the order mmdet's ``CustomDataset.evaluate`` returns them (``AP50``
    rounded to 3 decimals, ``mAP`` unrounded), then ``bbox_mAP`` (COCO AP@[.5:.95]);
    ``detections`` are what was evaluated: per image, per class ``[D, 5]`` (xyxy original
    pixels, score), as mmdet's ``tools/test.py --out`` dumps them."""

    metrics: dict[str, float]
    table: str
    per_class: list[dict[str, float | int | str]] = field(default_factory=list)
    num_batches: int = 0
    detections: list[list[np.ndarray]] = field(default_factory=list)
    #: COCO AP@[.5:.95] per class, as mmdet's ``classwise=True`` table.
    classwise: str = ""


def annotations_of(samples: list[Sample]) -> list[dict[str, np.ndarray]]:
    return [
        {
            "bboxes": s.annotation.boxes,
            "labels": s.annotation.labels,
            "bboxes_ignore": s.annotation.boxes_ignore,
            "labels_ignore": s.annotation.labels_ignore,
        }
        for s in samples
    ]


@torch.no_grad()
def predict_split(
    model: nn.Module,
    loader: Loader,
    num_classes: int,
    device: torch.device,
    on_batch: Callable[[], None] | None = None,
) -> list[list[np.ndarray]]:
    """Per image, per class ``[D, 5]`` detections (xyxy original pixels, score)."""
    results: list[list[np.ndarray]] = []
    was_training = model.training
    model.eval()
    try:
        for batch in loader:
            detections = model.predict(batch.images.to(device), batch.image_sizes)  # type: ignore[operator]
            for det, prep in zip(detections, batch.prepared, strict=True):
                boxes = boxes_to_original(det["boxes"].float().cpu(), prep.scale_factor)
                scored = torch.cat([boxes, det["scores"].float().cpu()[:, None]], dim=1).numpy()
                labels = det["labels"].cpu().numpy()
                results.append([scored[labels == k] for k in range(num_classes)])
            if on_batch is not None:
                on_batch()
    finally:
        model.train(was_training)
    return results


def evaluate_detections(
    results: list[list[np.ndarray]], samples: list[Sample], class_names: tuple[str, ...]
) -> EvalResult:
    annotations = annotations_of(samples)
    mean_ap, per_class = eval_map(results, annotations, iou_thr=VOC_IOU_THR)
    per_threshold = coco_ap_per_class(results, annotations, tuple(IOU_THRESHOLDS))
    flat = [ap for aps in per_threshold for ap in aps]
    class_aps = [float(np.mean(aps)) if aps else math.nan for aps in per_threshold]
    metrics = {
        "AP50": round(mean_ap, 3),  # mmdet: eval_results['AP50'] = round(mean_ap, 3)
        "mAP": mean_ap,  # the mean over IoU thresholds, here the single 0.5
        "bbox_mAP": float(np.mean(flat)) if flat else -1.0,  # as coco_ap: -1 without gts
    }
    rows: list[dict[str, float | int | str]] = [
        {
            "class": name,
            "gts": r.num_gts,
            "dets": r.num_dets,
            "recall": float(r.recall[-1]) if r.recall.size else 0.0,
            "ap": r.ap,
            "bbox_ap": coco,
        }
        for name, r, coco in zip(class_names, per_class, class_aps, strict=True)
    ]
    table = map_summary_table(mean_ap, per_class, class_names)
    classwise = classwise_table(class_aps, class_names)
    return EvalResult(metrics, table, rows, detections=results, classwise=classwise)
