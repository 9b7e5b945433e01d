"""mmdet's ``MaxIoUAssigner``: match candidate boxes (anchors or proposals) to ground truth.

Shape shorthand: G ground-truth boxes, N candidates, I ignore regions.

Result per candidate (``gt_inds``, mmdet's convention):

- ``-1`` (:data:`IGNORED`): neither positive nor negative (IoU between the thresholds, or
  inside an ignore region), contributes no loss;
- ``0`` (:data:`BACKGROUND`): negative;
- ``i + 1``: positive, matched to ground truth ``i``.

Rules, in order: negative when ``0 <= max IoU < neg_iou_thr``; positive when
``max IoU >= pos_iou_thr`` (matched to its best ground truth); then, with
``match_low_quality``, every ground truth whose best IoU is ``>= min_pos_iou`` also claims
the candidates achieving that best IoU (all of them with ``gt_max_assign_all``, else the
first), later ground truths overriding earlier ones, which can turn negatives positive.
Candidates whose IoF with an ignore region exceeds ``ignore_iof_thr`` (when it is > 0) get
IoU -1 with every ground truth first, so they end up ignored.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .ops import box_overlaps

IGNORED = -1
BACKGROUND = 0
NO_LABEL = -1


@dataclass(frozen=True)
class AssignResult:
    """Assignment of N candidates to G ground truths.

    Attributes:
        num_gts: G.
        gt_inds: Tensor[N] int64: -1 ignored, 0 background, i+1 matched to ground truth i.
        max_overlaps: Tensor[N]: best IoU of each candidate with any ground truth
            (-1 inside ignore regions; 0 when there is no ground truth).
        labels: Tensor[N] int64: class of the matched ground truth, -1 if not positive.
    """

    num_gts: int
    gt_inds: Tensor
    max_overlaps: Tensor
    labels: Tensor

    def with_gts_prepended(self, gt_labels: Tensor) -> AssignResult:
        """The assignment after the G ground truths are added in front of the candidates as
        their own perfect matches (mmdet's ``add_gt_``)."""
        self_inds = torch.arange(1, gt_labels.numel() + 1, device=self.gt_inds.device)
        return AssignResult(
            num_gts=self.num_gts,
            gt_inds=torch.cat([self_inds, self.gt_inds]),
            max_overlaps=torch.cat(
                [self.max_overlaps.new_ones(gt_labels.numel()), self.max_overlaps]
            ),
            labels=torch.cat([gt_labels.to(self.labels.dtype), self.labels]),
        )


class MaxIoUAssigner:
    """Assign by IoU thresholds (a plain class; see the module docstring for the rules)."""

    def __init__(
        self,
        pos_iou_thr: float,
        neg_iou_thr: float,
        min_pos_iou: float = 0.0,
        gt_max_assign_all: bool = True,
        ignore_iof_thr: float = -1.0,
        match_low_quality: bool = True,
    ) -> None:
        if neg_iou_thr > pos_iou_thr:
            raise ValueError(
                f"neg_iou_thr ({neg_iou_thr}) must not exceed pos_iou_thr ({pos_iou_thr})."
            )
        self.pos_iou_thr = pos_iou_thr
        self.neg_iou_thr = neg_iou_thr
        self.min_pos_iou = min_pos_iou
        self.gt_max_assign_all = gt_max_assign_all
        self.ignore_iof_thr = ignore_iof_thr
        self.match_low_quality = match_low_quality

    def assign(
        self,
        boxes: Tensor,
        gt_boxes: Tensor,
        gt_labels: Tensor | None = None,
        gt_boxes_ignore: Tensor | None = None,
    ) -> AssignResult:
        """Assign ``boxes: Tensor[N, 4+]`` to ``gt_boxes: Tensor[G, 4]`` (labels ``Tensor[G]``),
        with optional ``gt_boxes_ignore: Tensor[I, 4]``."""
        overlaps = box_overlaps(gt_boxes, boxes)  # [G, N]
        if (
            self.ignore_iof_thr > 0
            and gt_boxes_ignore is not None
            and gt_boxes_ignore.numel() > 0
            and boxes.numel() > 0
        ):
            ignore_iof = box_overlaps(boxes, gt_boxes_ignore, mode="iof").max(dim=1).values  # [N]
            overlaps[:, ignore_iof > self.ignore_iof_thr] = -1
        return self.assign_wrt_overlaps(overlaps, gt_labels)

    def assign_wrt_overlaps(
        self, overlaps: Tensor, gt_labels: Tensor | None = None
    ) -> AssignResult:
        """Assign from a precomputed ``overlaps: Tensor[G, N]`` matrix (the unit-testable core)."""
        num_gts, num_boxes = overlaps.shape
        device = overlaps.device
        gt_inds = torch.full((num_boxes,), IGNORED, dtype=torch.long, device=device)
        labels = torch.full((num_boxes,), NO_LABEL, dtype=torch.long, device=device)
        if num_gts == 0 or num_boxes == 0:
            if num_gts == 0:
                gt_inds[:] = BACKGROUND
            return AssignResult(num_gts, gt_inds, overlaps.new_zeros(num_boxes), labels)

        max_overlaps, argmax_overlaps = overlaps.max(dim=0)  # [N]
        gt_max_overlaps, gt_argmax_overlaps = overlaps.max(dim=1)  # [G]

        gt_inds[(max_overlaps >= 0) & (max_overlaps < self.neg_iou_thr)] = BACKGROUND
        positive = max_overlaps >= self.pos_iou_thr
        gt_inds[positive] = argmax_overlaps[positive] + 1

        if self.match_low_quality:
            gt_inds = self._match_low_quality(
                overlaps, gt_max_overlaps, gt_argmax_overlaps, gt_inds
            )

        if gt_labels is not None:
            matched = gt_inds > 0
            labels[matched] = gt_labels[gt_inds[matched] - 1].to(torch.long)
        return AssignResult(num_gts, gt_inds, max_overlaps, labels)

    def _match_low_quality(
        self, overlaps: Tensor, gt_max_overlaps: Tensor, gt_argmax_overlaps: Tensor, gt_inds: Tensor
    ) -> Tensor:
        """Give each ground truth its best candidates; the highest ground-truth index wins
        where several claim one candidate (mmdet loops over ground truths in order)."""
        num_gts = overlaps.shape[0]
        if self.gt_max_assign_all:
            claims = overlaps == gt_max_overlaps[:, None]  # [G, N]
        else:
            claims = torch.zeros_like(overlaps, dtype=torch.bool)
            claims[torch.arange(num_gts, device=overlaps.device), gt_argmax_overlaps] = True
        claims &= (gt_max_overlaps >= self.min_pos_iou)[:, None]
        gt_numbers = torch.arange(1, num_gts + 1, device=overlaps.device)[:, None]  # [G, 1]
        winner = (claims.to(torch.long) * gt_numbers).max(dim=0).values  # [N], 0 = no claim
        return torch.where(winner > 0, winner, gt_inds)
