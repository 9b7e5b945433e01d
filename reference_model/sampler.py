"""mmdet's ``RandomSampler``: pick positives and negatives from an assignment.

Shape shorthand: N candidates (after ground truths are prepended when
``add_gt_as_proposals``), P sampled positives, Q sampled negatives.

Up to ``int(num * pos_fraction)`` positives are drawn uniformly without replacement, then
``num - P`` negatives (capped at ``neg_pos_ub * max(P, 1)`` when ``neg_pos_ub >= 0``). When a
pool is no larger than the quota it is taken whole, without touching the generator, so a
``num`` larger than every pool takes every candidate deterministically. Sampled indices are
returned sorted (mmdet applies ``unique()``). Randomness comes only from the explicit
``torch.Generator`` passed to :meth:`RandomSampler.sample`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .assigner import AssignResult


@dataclass(frozen=True)
class SamplingResult:
    """Sampled candidates of one image.

    Attributes:
        pos_inds, neg_inds: Tensor[P], Tensor[Q] indices into ``boxes`` (sorted).
        boxes: Tensor[N, 4] candidates the indices refer to (ground truths first when
            they were added as proposals).
        pos_assigned_gt_inds: Tensor[P] index of the matched ground truth.
        pos_gt_labels: Tensor[P]; pos_is_gt: Tensor[P] bool (the candidate is an added ground truth).
        pos_max_overlaps: Tensor[P] IoU of each positive with its best ground truth.
    """

    pos_inds: Tensor
    neg_inds: Tensor
    boxes: Tensor
    pos_assigned_gt_inds: Tensor
    pos_gt_labels: Tensor
    pos_is_gt: Tensor
    pos_max_overlaps: Tensor

    @property
    def num_pos(self) -> int:
        return int(self.pos_inds.numel())

    @property
    def num_neg(self) -> int:
        return int(self.neg_inds.numel())

    @property
    def avg_factor(self) -> int:
        """mmdet's loss normaliser for this image: ``max(P, 1) + max(Q, 1)``."""
        return max(self.num_pos, 1) + max(self.num_neg, 1)

    @property
    def pos_boxes(self) -> Tensor:
        return self.boxes[self.pos_inds]

    @property
    def neg_boxes(self) -> Tensor:
        return self.boxes[self.neg_inds]


def _random_choice(pool: Tensor, num: int, generator: torch.Generator | None) -> Tensor:
    """``num`` distinct entries of ``pool``, uniformly; the whole pool if it is small enough."""
    if pool.numel() <= num:
        return pool
    perm = torch.randperm(pool.numel(), generator=generator, device="cpu")[:num]
    return pool[perm.to(pool.device)]


class RandomSampler:
    """Uniform positive/negative sampling (a plain class; the RNG is passed to ``sample``)."""

    def __init__(
        self,
        num: int,
        pos_fraction: float,
        neg_pos_ub: float = -1,
        add_gt_as_proposals: bool = True,
    ) -> None:
        if num < 1:
            raise ValueError(f"num must be a positive integer, got {num}.")
        if not 0 <= pos_fraction <= 1:
            raise ValueError(f"pos_fraction must be in [0, 1], got {pos_fraction}.")
        self.num = num
        self.pos_fraction = pos_fraction
        self.neg_pos_ub = neg_pos_ub
        self.add_gt_as_proposals = add_gt_as_proposals

    def sample(
        self,
        assign_result: AssignResult,
        boxes: Tensor,
        gt_boxes: Tensor,
        gt_labels: Tensor,
        generator: torch.Generator | None = None,
    ) -> SamplingResult:
        """Sample from ``boxes: Tensor[N, 4+]`` assigned to ``gt_boxes: Tensor[G, 4]``.

        Args:
            generator: CPU ``torch.Generator`` for the draws; ``None`` uses torch's global RNG
                (what mmdet does, and what makes two runs differ).
        """
        boxes = boxes[:, :4]
        is_gt = torch.zeros(boxes.shape[0], dtype=torch.bool, device=boxes.device)
        if self.add_gt_as_proposals and gt_boxes.numel() > 0:
            boxes = torch.cat([gt_boxes.to(boxes.dtype), boxes])
            assign_result = assign_result.with_gts_prepended(gt_labels)
            is_gt = torch.cat([torch.ones_like(gt_labels, dtype=torch.bool), is_gt])

        num_expected_pos = int(self.num * self.pos_fraction)
        pos_pool = torch.nonzero(assign_result.gt_inds > 0).squeeze(1)
        pos_inds = _random_choice(pos_pool, num_expected_pos, generator).unique()

        num_expected_neg = self.num - pos_inds.numel()
        if self.neg_pos_ub >= 0:
            num_expected_neg = min(
                num_expected_neg, int(self.neg_pos_ub * max(1, pos_inds.numel()))
            )
        neg_pool = torch.nonzero(assign_result.gt_inds == 0).squeeze(1)
        neg_inds = _random_choice(neg_pool, num_expected_neg, generator).unique()

        pos_assigned = assign_result.gt_inds[pos_inds] - 1
        return SamplingResult(
            pos_inds=pos_inds,
            neg_inds=neg_inds,
            boxes=boxes,
            pos_assigned_gt_inds=pos_assigned,
            pos_gt_labels=assign_result.labels[pos_inds],
            pos_is_gt=is_gt[pos_inds],
            pos_max_overlaps=assign_result.max_overlaps[pos_inds],
        )
