"""Detection ops in pure PyTorch with torchvision.ops signatures.

``box_iou``/``nms``/``batched_nms``/``roi_align`` behave like torchvision's and mmcv's;
``box_overlaps`` is mmdet's ``bbox_overlaps`` (eps-clamped IoU or IoF). Implementations are
chosen in :mod:`reference_model.ops.dispatch`.
"""

from .boxes import box_area, box_iou, box_overlaps
from .dispatch import batched_nms, nms, roi_align

__all__ = ["batched_nms", "box_area", "box_iou", "box_overlaps", "nms", "roi_align"]
