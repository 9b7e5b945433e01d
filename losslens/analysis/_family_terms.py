"""Term data of the YOLO (ultralytics, YOLOX) and DETR families, kept apart from
:mod:`losslens.analysis.terms` (which builds :class:`~losslens.analysis.terms.Term` values from it).

Weights and normalisers are those of the public sources: ultralytics
``ultralytics/utils/loss.py`` (``v8DetectionLoss``: box 7.5, cls 0.5, dfl 1.5, each x batch size;
YOLOv5 ``utils/loss.py``: box 0.05, obj 1.0, cls 0.5), YOLOX ``yolox/models/yolo_head.py``
(``get_losses``: ``5 * iou + obj + cls + l1``, each / number of foreground anchors), DETR
``models/detr.py`` (``SetCriterion``: ce 1 with no-object weight 0.1, bbox L1 5, GIoU 2, box
losses / number of boxes; ``class_error`` = 100 - top-1 accuracy of matched queries) and
RT-DETR ``src/zoo/rtdetr/rtdetr_criterion.py`` (varifocal loss 1, L1 5, GIoU 2).
"""

from __future__ import annotations

from typing import Any

#: Logged name -> (canonical name, scale), per family (main head only; DETR aux layers
#: ``_0``..``_N``, ``_aux_N``, ``_dn_N``, ``_enc`` and ``*_unscaled`` keep their logged names).
ALIASES: dict[str, dict[str, tuple[str, float]]] = {
    "ultralytics": {
        "train/box_loss": ("loss_iou", 1.0),
        "train/cls_loss": ("dense_cls", 1.0),
        "train/dfl_loss": ("loss_dfl", 1.0),
        "train/obj_loss": ("loss_obj", 1.0),
        "train/seg_loss": ("loss_mask", 1.0),
        "train/total_loss": ("loss", 1.0),
    },
    "yolox": {
        "iou_loss": ("loss_iou", 1.0),
        "cls_loss": ("dense_cls", 1.0),
        "conf_loss": ("loss_obj", 1.0),
        "l1_loss": ("loss_l1_box", 1.0),
        "total_loss": ("loss", 1.0),
    },
    "detr": {
        "train_loss": ("loss", 1.0),
        "train_loss_giou": ("loss_iou", 1.0),
        "train_loss_bbox": ("loss_l1_box", 1.0),
        "train_loss_ce": ("dense_cls", 1.0),
        "train_loss_vfl": ("dense_cls", 1.0),
        "train_loss_mask": ("loss_mask", 1.0),
        "train_class_error": ("class_error", 1.0),
    },
}
#: Names and normalisation of existing terms in the new families.
EXTRA_NAMES: dict[str, dict[str, tuple[str, ...]]] = {
    "dense_cls": {
        "ultralytics": ("train/cls_loss",),
        "yolox": ("cls_loss",),
        "detr": ("train_loss_ce", "train_loss_vfl (RT-DETR)"),
    },
    "loss_mask": {"ultralytics": ("train/seg_loss",), "detr": ("train_loss_mask",)},
    "loss": {
        "ultralytics": ("train/total_loss (results.txt)",),
        "yolox": ("total_loss",),
        "detr": ("train_loss",),
    },
}
EXTRA_NORMALISATION: dict[str, dict[str, str]] = {
    "dense_cls": {
        "ultralytics": "BCE over all anchors x classes, / sum of target scores (TAL); x0.5 "
        "(YOLOv5: BCE over positives, x0.5 x classes/80)",
        "yolox": "BCE with IoU-aware targets over foreground anchors, / num foreground",
        "detr": "softmax CE over queries, no-object class weight 0.1 (RT-DETR: varifocal loss)",
    },
    "loss_mask": {
        "ultralytics": "BCE on prototype masks of positives, / mask area, x7.5",
        "detr": "sigmoid focal + dice on matched masks, / num boxes",
    },
    "loss": {
        "ultralytics": "sum of box, cls, dfl (and seg/obj) terms, x batch size in the backward",
        "yolox": "5 x iou + obj + cls + l1",
        "detr": "weighted sum of every term of every decoder layer (aux included)",
    },
}
_ONE_STAGE_MEANINGS = {
    "0": "No positive (foreground) anchors or queries: labels never reach the model.",
    "nan": "Exploding gradients or degenerate boxes (zero width), often lr too high or AMP.",
    "flat": "The head does not learn: frozen layers, lr 0 or wrong label format.",
    "rising": "Divergence, or the augmentation schedule changed (mosaic switched off).",
}
#: Keyword arguments of each new :class:`~losslens.analysis.terms.Term`.
TERM_SPECS: tuple[dict[str, Any], ...] = (
    {
        "name": "loss_iou",
        "short": "iou",
        "title": "IoU-family box loss (CIoU, GIoU, IoU)",
        "kind": "loss",
        "stage": "dense",
        "measures": "1 - (an IoU variant) between predicted and matched ground-truth boxes.",
        "where": "Positives only: assigned anchors (YOLO, YOLOX SimOTA) or Hungarian-matched "
        "queries (DETR).",
        "healthy": "Falls from about 1 towards 0.2-0.5 (weighted ultralytics values ~1-2).",
        "meanings": _ONE_STAGE_MEANINGS,
        "names": {
            "ultralytics": ("train/box_loss",),
            "yolox": ("iou_loss",),
            "detr": ("train_loss_giou",),
        },
        "normalisation": {
            "ultralytics": "CIoU weighted by target score, / sum of target scores; x7.5 "
            "(YOLOv5: mean CIoU over positives, x0.05)",
            "yolox": "1 - IoU^2 over foreground anchors, / num foreground; x5 in total_loss",
            "detr": "GIoU over matched boxes, / num boxes; x2 in train_loss",
        },
    },
    {
        "name": "loss_dfl",
        "short": "dfl",
        "title": "Distribution Focal Loss (box edge distributions)",
        "kind": "loss",
        "stage": "dense",
        "measures": "Cross entropy of the predicted distribution of each box edge offset "
        "(reg_max bins) against the two bins around the true offset.",
        "where": "YOLOv8 and later heads, positives only.",
        "healthy": "Starts near 1.5-2, ends near 0.8-1.0; follows the box loss.",
        "meanings": _ONE_STAGE_MEANINGS,
        "names": {"ultralytics": ("train/dfl_loss",)},
        "normalisation": {"ultralytics": "weighted by target score, / sum of target scores; x1.5"},
    },
    {
        "name": "loss_obj",
        "short": "obj",
        "title": "Objectness (conf) loss",
        "kind": "loss",
        "stage": "dense",
        "measures": "BCE of each anchor's object score against its IoU (YOLOv5) or 0/1 "
        "foreground label (YOLOX).",
        "where": "Every anchor of every level, positives and negatives.",
        "healthy": "Falls quickly, then slowly; rises briefly when mosaic is switched off.",
        "meanings": _ONE_STAGE_MEANINGS,
        "names": {"ultralytics": ("train/obj_loss",), "yolox": ("conf_loss",)},
        "normalisation": {
            "ultralytics": "BCE mean over anchors, level weights (4, 1, 0.4); x1.0 (YOLOv5)",
            "yolox": "BCE summed over all anchors, / num foreground",
        },
    },
    {
        "name": "loss_l1_box",
        "short": "l1",
        "title": "L1 box loss",
        "kind": "loss",
        "stage": "dense",
        "measures": "L1 distance between predicted and matched boxes.",
        "where": "DETR: normalised cxcywh of matched queries; YOLOX: raw offsets, only in the "
        "last 15 epochs (use_l1), 0 before.",
        "healthy": "DETR: falls to ~0.03-0.1. YOLOX: 0 until the no-augmentation epochs.",
        "meanings": {**_ONE_STAGE_MEANINGS, "0": "YOLOX: normal before the last 15 epochs."},
        "names": {"yolox": ("l1_loss",), "detr": ("train_loss_bbox",)},
        "normalisation": {
            "yolox": "L1 over foreground anchors, / num foreground",
            "detr": "L1 over matched boxes, / num boxes; x5 in train_loss",
        },
    },
    {
        "name": "class_error",
        "short": "cls.err",
        "title": "DETR class error (percent)",
        "kind": "accuracy",
        "stage": "dense",
        "measures": "100 - top-1 accuracy of the matched queries' class predictions.",
        "where": "Last decoder layer, matched queries only; logged, not back-propagated.",
        "healthy": "Falls from near 100 towards 0-20 within the first epochs.",
        "meanings": {
            "0": "Every matched query is right: few classes, or a memorised small dataset.",
            "nan": "No ground truth in the batch.",
            "flat": "Stuck near 100: classes never learnt (num_classes or label ids wrong).",
            "rising": "Divergence.",
        },
        "names": {"detr": ("train_class_error",)},
        "normalisation": {"detr": "percent of matched queries"},
        "unit": "%",
    },
)
