"""Recorded healthy ranges: the 5th-95th percentile of each term's settled values (after the
first epoch; after the first 10% of the records in iteration-only logs), computed with
:func:`losslens.analysis.term_ranges.percentile_range` from

- healthy corpus runs (``shared/corpus``; ``losslens diagnose`` gives them no warning or error;
  detectron2's 6-GPU run is left out for its absurd first loss), recomputed by
  ``tests/understand/test_term_ranges.py``;
- the reference model's own run: ``losslens train-reference kitti_tiny --preset cpu_small
  --epochs 2 --log-interval 1`` (seed 0), epoch 2, one value per iteration. Two epochs are early
  training (final mAP 0.0003): read those figures as where a fresh run starts, not as targets.

Terms without an entry have no measured range; ``explain`` says so.
"""

from __future__ import annotations

from losslens.analysis._term_table import HealthyRange

_MMDET2_FILES = (
    "mmdet2_text/faster_rcnn_voc0712_12ep_voc_tables.log",
    "mmdet2_text/mask_rcnn_coco_segm_eval.log",
)
_MMDET3_FILES = ("mmdet3_text/faster_rcnn_voc_pascal_eval.log",)
_D2_FILES = (
    "detectron2_metrics/medical_waste_metrics.json",
    "detectron2_metrics/custom_dataset_metrics.json",
)
_YOLOV8_FILES = (
    "ultralytics_csv/alviento_rps_yolov8n_results.csv",
    "ultralytics_csv/27hrs_yolov8n_train_results.csv",
)
_DETR_FILES = ("detr_log/farjadahmed_detr_r50_official_log.txt",)

#: family -> (source sentence, corpus files); "losslens" is the reference's own run.
_SOURCES: dict[str, tuple[str, tuple[str, ...]]] = {
    "mmdet2": (
        "corpus: 2 mmdet2 runs (Faster R-CNN VOC, Mask R-CNN COCO), after epoch 1",
        _MMDET2_FILES,
    ),
    "mmdet3": ("corpus: 1 mmdet3 Faster R-CNN VOC run, after epoch 1", _MMDET3_FILES),
    "detectron2": (
        "corpus: 2 detectron2 metrics.json runs (Faster R-CNN, Mask R-CNN, small custom "
        "datasets), after the first 10% of the records",
        _D2_FILES,
    ),
    "ultralytics": ("corpus: 2 ultralytics YOLOv8n runs, after epoch 1", _YOLOV8_FILES),
    "detr": ("corpus: 1 official DETR-R50 500-epoch run, after epoch 1", _DETR_FILES),
    "losslens": (
        "reference kitti_tiny cpu_small, epoch 2 of 2 (early training), per iteration",
        (),
    ),
}

# (term, family, logged column, low, high)
_FIGURES: tuple[tuple[str, str, str, float, float], ...] = (
    ("loss_rpn_cls", "mmdet2", "loss_rpn_cls", 0.0014, 0.0598),
    ("loss_rpn_bbox", "mmdet2", "loss_rpn_bbox", 0.0076, 0.0629),
    ("loss_cls", "mmdet2", "loss_cls", 0.0343, 0.334),
    ("loss_bbox", "mmdet2", "loss_bbox", 0.0669, 0.275),
    ("acc", "mmdet2", "acc", 91.0, 98.6),
    ("loss_rpn_cls", "mmdet3", "loss_rpn_cls", 0.0015, 0.0137),
    ("loss_rpn_bbox", "mmdet3", "loss_rpn_bbox", 0.0061, 0.0159),
    ("loss_cls", "mmdet3", "loss_cls", 0.0262, 0.162),
    ("loss_bbox", "mmdet3", "loss_bbox", 0.0565, 0.186),
    ("acc", "mmdet3", "acc", 94.4, 99.2),
    ("loss", "mmdet3", "loss", 0.0901, 0.379),
    ("loss_rpn_cls", "detectron2", "loss_rpn_cls", 0.000361, 0.061),
    ("loss_rpn_bbox", "detectron2", "loss_rpn_loc", 0.0262, 0.0494),
    ("loss_cls", "detectron2", "loss_cls", 0.0239, 0.732),
    ("loss_bbox", "detectron2", "loss_box_reg", 0.0744, 0.807),
    ("acc", "detectron2", "fast_rcnn/cls_accuracy", 76.2, 99.2),
    ("fg_acc", "detectron2", "fast_rcnn/fg_cls_accuracy", 0.0, 97.8),
    ("fast_rcnn/false_negative", "detectron2", "fast_rcnn/false_negative", 0.022, 1.0),
    ("rpn.num_pos", "detectron2", "rpn/num_pos_anchors", 15.6, 26.9),
    ("rpn.num_neg", "detectron2", "rpn/num_neg_anchors", 229.0, 240.0),
    ("rcnn.num_pos", "detectron2", "roi_head/num_fg_samples", 10.2, 16.0),
    ("rcnn.num_neg", "detectron2", "roi_head/num_bg_samples", 48.0, 118.0),
    ("loss_iou", "ultralytics", "train/box_loss", 0.333, 1.06),
    ("dense_cls", "ultralytics", "train/cls_loss", 0.375, 1.5),
    ("loss_dfl", "ultralytics", "train/dfl_loss", 0.837, 1.23),
    ("dense_cls", "detr", "train_loss_ce", 0.237, 0.533),
    ("loss_l1_box", "detr", "train_loss_bbox", 0.195, 0.364),
    ("loss_iou", "detr", "train_loss_giou", 0.531, 0.825),
    ("class_error", "detr", "train_class_error", 12.6, 32.5),
    ("cardinality_error", "detr", "train_cardinality_error_unscaled", 5.14, 9.33),
    ("loss_rpn_cls", "losslens", "loss_rpn_cls", 0.377, 0.64),
    ("loss_rpn_bbox", "losslens", "loss_rpn_bbox", 0.000525, 0.0786),
    ("loss_cls", "losslens", "loss_cls", 0.0671, 0.467),
    ("acc", "losslens", "acc", 89.2, 99.2),
    ("loss_bbox", "losslens", "loss_bbox", 0.000464, 0.268),
    ("loss", "losslens", "loss", 0.653, 1.31),
    ("rpn.num_pos", "losslens", "rpn.num_pos", 0.3, 22.8),
    ("rpn.num_neg", "losslens", "rpn.num_neg", 233.0, 256.0),
    ("rcnn.num_pos", "losslens", "rcnn.num_pos", 1.0, 13.8),
    ("rcnn.num_neg", "losslens", "rcnn.num_neg", 114.0, 127.0),
    ("rpn.num_proposals", "losslens", "rpn.num_proposals", 300.0, 300.0),
    ("rpn.loss_cls.<level>", "losslens", "rpn.loss_cls.p2", 0.238, 0.491),
    ("rpn.loss_cls.<level>", "losslens", "rpn.loss_cls.p3", 0.0795, 0.133),
    ("rpn.loss_cls.<level>", "losslens", "rpn.loss_cls.p4", 0.0211, 0.0509),
    ("rpn.loss_cls.<level>", "losslens", "rpn.loss_cls.p5", 0.00526, 0.0146),
    ("rpn.loss_cls.<level>", "losslens", "rpn.loss_cls.p6", 0.000252, 0.00467),
    ("rpn.loss_bbox.<level>", "losslens", "rpn.loss_bbox.p2", 0.0, 0.0765),
    ("rpn.loss_bbox.<level>", "losslens", "rpn.loss_bbox.p3", 0.0, 0.0144),
    ("rpn.loss_bbox.<level>", "losslens", "rpn.loss_bbox.p4", 0.0, 0.00633),
    ("rpn.loss_bbox.<level>", "losslens", "rpn.loss_bbox.p5", 0.0, 0.0),
    ("rpn.loss_bbox.<level>", "losslens", "rpn.loss_bbox.p6", 0.0, 0.0),
    ("rpn.pos_iou_mean", "losslens", "rpn.pos_iou_mean", 0.377, 0.693),
    ("rcnn.pos_iou_mean", "losslens", "rcnn.pos_iou_mean", 0.541, 0.653),
    ("rpn.recall@0.5", "losslens", "rpn.recall@0.5", 0.0, 0.317),
    ("grad_norm.<module>", "losslens", "grad_norm.backbone", 1.14, 3.51),
    ("grad_norm.<module>", "losslens", "grad_norm.neck", 0.536, 1.67),
    ("grad_norm.<module>", "losslens", "grad_norm.rpn_head", 0.804, 1.48),
    ("grad_norm.<module>", "losslens", "grad_norm.roi_head", 0.526, 3.27),
)


def _ranges() -> dict[str, tuple[HealthyRange, ...]]:
    out: dict[str, list[HealthyRange]] = {}
    for term, fam, column, low, high in _FIGURES:
        source, files = _SOURCES[fam]
        out.setdefault(term, []).append(HealthyRange(low, high, fam, column, source, files))
    return {term: tuple(found) for term, found in out.items()}


#: Canonical term name -> its recorded healthy ranges, corpus first.
RANGES: dict[str, tuple[HealthyRange, ...]] = _ranges()
