"""Evaluation: mmdet's VOC ``eval_map`` (with its AsciiTable) and COCO-style AP@[.5:.95]."""

from .coco import coco_ap, coco_ap_per_class
from .voc import ClassResult, average_precision, classwise_table, eval_map, map_summary_table

__all__ = [
    "ClassResult",
    "average_precision",
    "classwise_table",
    "coco_ap",
    "coco_ap_per_class",
    "eval_map",
    "map_summary_table",
]
