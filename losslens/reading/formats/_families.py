"""The framework families that more than one format module (or none) belongs to.

A family of one format is declared in that format's module. Smoothing texts: FORMATS.md 1.2-1.7.
"""

from __future__ import annotations

from losslens.reading.formats._contract import Family

#: mmdetection 1.x writes the mmdet 2.x formats; told apart by the version in the log.
MMDET1 = Family("mmdet1", "mmdetection 1.x", "mean over the log interval (mmcv LogBuffer)")
MMDET2 = Family("mmdet2", "mmdetection 2.x", "mean over the log interval (mmcv LogBuffer)")
MMDET3 = Family(
    "mmdet3",
    "mmdetection 3.x",
    "mean over the last window_size iterations (mmengine LogProcessor; 10 by default, "
    "50 in mmdet configs)",
)
DETECTRON2 = Family(
    "detectron2", "detectron2", "median of the last 20 iterations (text and metrics.json)"
)
