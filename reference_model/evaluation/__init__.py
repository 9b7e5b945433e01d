"""Evaluation: mmdet's VOC ``eval_map`` (with its AsciiTable) and COCO-style AP@[.5:.95]."""

from .coco import coco_ap
from .voc import ClassResult, average_precision, eval_map, map_summary_table

__all__ = ["ClassResult", "average_precision", "coco_ap", "eval_map", "map_summary_table"]
