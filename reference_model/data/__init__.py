"""Data: KITTI-format reading, mmdet's pipeline, the synthetic dataset, dataset resolution."""

from .kitti import CLASSES, IGNORE_LABEL, Annotation, DatasetLayoutError, Sample, read_split
from .resolve import DatasetUnavailableError, UnsafeArchiveError, resolve_dataset, safe_extract
from .synthetic import SyntheticSpec
from .transforms import Prepared, collate, prepare

__all__ = [
    "CLASSES",
    "IGNORE_LABEL",
    "Annotation",
    "DatasetLayoutError",
    "DatasetUnavailableError",
    "Prepared",
    "Sample",
    "SyntheticSpec",
    "UnsafeArchiveError",
    "collate",
    "prepare",
    "read_split",
    "resolve_dataset",
    "safe_extract",
]
