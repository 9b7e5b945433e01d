"""Loss primitives with mmdet's reduction semantics.

mmdet reduces a weighted element-wise loss as ``sum(loss * weight) / (avg_factor + eps)``
(``weight_reduce_loss``), ``eps`` being float32's machine epsilon; the helpers here do the
same so values agree with mmdet's to float rounding.
"""

from __future__ import annotations

import torch
from torch import Tensor

# mmdet's weight_reduce_loss adds this to avg_factor before dividing.
AVG_FACTOR_EPS = torch.finfo(torch.float32).eps

BBOX_LOSS_TYPES = ("L1Loss", "SmoothL1Loss")


def reduce_with_avg_factor(loss: Tensor, weight: Tensor, avg_factor: float) -> Tensor:
    """``sum(loss * weight) / (avg_factor + eps)`` as a 0-d tensor."""
    return (loss * weight).sum() / (avg_factor + AVG_FACTOR_EPS)


def bbox_regression_loss(pred: Tensor, target: Tensor, loss_type: str, beta: float = 1.0) -> Tensor:
    """Element-wise regression loss (same shape as ``pred``): ``L1Loss`` is ``|d|``;
    ``SmoothL1Loss`` is ``0.5 d² / beta`` below ``beta`` and ``|d| - 0.5 beta`` above."""
    if loss_type not in BBOX_LOSS_TYPES:
        raise ValueError(f"loss_bbox type must be one of {BBOX_LOSS_TYPES}, got {loss_type!r}.")
    diff = (pred - target).abs()
    if loss_type == "L1Loss":
        return diff
    if beta <= 0:
        raise ValueError(f"SmoothL1Loss beta must be positive, got {beta}.")
    return torch.where(diff < beta, 0.5 * diff * diff / beta, diff - 0.5 * beta)


def accuracy_percent(cls_score: Tensor, labels: Tensor) -> Tensor:
    """Top-1 accuracy in percent over all rows of ``cls_score: Tensor[R, K+1]`` (mmdet's ``acc``,
    background included); 0 for no rows."""
    if labels.numel() == 0:
        return cls_score.new_zeros(())
    correct = (cls_score.argmax(dim=1) == labels).float().sum()
    return correct * (100.0 / labels.numel())
