"""Data: COCO, Pascal VOC and KITTI layouts, the data check, mmdet's pipeline, the synthetic
dataset, dataset resolution."""

from .check import DataFinding, DataReport, SplitSummary, check_dataset
from .coverage import AnchorCoverage, LevelCoverage, anchor_coverage
from .kitti import CLASSES, IGNORE_LABEL, Annotation, DatasetLayoutError, Sample, read_split
from .layouts import read_dataset
from .records import LAYOUTS, RawDataset, RawImage, RawObject
from .resolve import DatasetUnavailableError, UnsafeArchiveError, resolve_dataset, safe_extract
from .synthetic import SyntheticSpec
from .transforms import Prepared, collate, prepare

__all__ = [
    "CLASSES",
    "IGNORE_LABEL",
    "LAYOUTS",
    "AnchorCoverage",
    "Annotation",
    "DataFinding",
    "DataReport",
    "DatasetLayoutError",
    "DatasetUnavailableError",
    "LevelCoverage",
    "Prepared",
    "RawDataset",
    "RawImage",
    "RawObject",
    "Sample",
    "SplitSummary",
    "SyntheticSpec",
    "UnsafeArchiveError",
    "anchor_coverage",
    "check_dataset",
    "collate",
    "prepare",
    "read_dataset",
    "read_split",
    "resolve_dataset",
    "safe_extract",
]
