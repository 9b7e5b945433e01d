"""The 12 numbers of a pycocotools ``COCOeval.summarize()``: their names and their sentinel.

``COCOeval.stats`` is always in this order (``pycocotools/cocoeval.py``, ``_summarizeDets``);
DETR-family logs dump it as a JSON list and YOLOX prints the 12 summary lines. Both become
``<task>/AP`` ... ``<task>/ARl`` in fractions, as in the rest of losslens.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

#: ``COCOeval.stats[i]`` -> our metric name (prefixed with the task: ``bbox/AP50``).
COCO_STATS_NAMES = (
    "AP",
    "AP50",
    "AP75",
    "APs",
    "APm",
    "APl",
    "AR1",
    "AR10",
    "AR100",
    "ARs",
    "ARm",
    "ARl",
)
#: pycocotools writes -1 where a number is undefined (no ground truth of that area).
UNDEFINED = -1.0
#: One printed summary line: `` Average Precision  (AP) @[ IoU=0.50 | area=   all | maxDets=100 ] = 0.992``.
SUMMARY_LINE_RE = re.compile(
    r"^\s*Average (?:Precision|Recall)\s+\((?P<kind>AP|AR)\) @\[ IoU=(?P<iou>[\d.:]+)\s*\|"
    r" area=\s*(?P<area>\w+) \| maxDets=\s*(?P<dets>\d+) \] = (?P<value>-?[\d.]+)\s*$"
)


def stat_value(value: float) -> float:
    """A summary number as a fraction; the -1 sentinel becomes NaN (undefined, not zero)."""
    return math.nan if value == UNDEFINED else float(value)


def stats_row(task: str, stats: Sequence[float]) -> dict[str, float]:
    """``COCOeval.stats`` (12 numbers) -> ``{"bbox/AP": ..., "bbox/ARl": ...}``.

    Raises ValueError for a list that is not 12 numbers.
    """
    if len(stats) != len(COCO_STATS_NAMES):
        raise ValueError(f"expected {len(COCO_STATS_NAMES)} COCO numbers, got {len(stats)}")
    return {
        f"{task}/{name}": stat_value(float(v))
        for name, v in zip(COCO_STATS_NAMES, stats, strict=True)
    }
