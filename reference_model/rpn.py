"""Region proposal network head: objectness and box deltas per anchor, targets, losses and
proposals, with mmdet's ``RPNHead`` names and semantics.

Shape shorthand: N images, L levels, A anchors per location, H_l x W_l map of level l,
N_l = H_l·W_l·A anchors on level l, T = sum of N_l, G ground-truth boxes of an image,
P proposals of an image.

Losses (mmdet ``AnchorHead.loss_by_feat``): anchors are assigned (IoU 0.7 / 0.3, low-quality
matches allowed) and sampled (256 per image, half positive) per image, over the anchors
whose locations lie in the image's padded area; both losses of level l are
``sum over sampled anchors of level l / avg_factor``, with ``avg_factor`` the number of
sampled anchors over the batch (``max(P, 1) + max(Q, 1)`` per image). The logged
``loss_rpn_cls`` and ``loss_rpn_bbox`` are the sums over levels (what mmengine logs for
mmdet's per-level lists).

Proposals (mmdet ``RPNHead._predict_by_feat_single``): per level the ``nms_pre``
top-scoring anchors are decoded and clipped to the image, boxes with a side ``<=
min_bbox_size`` dropped, NMS (IoU 0.7) run per level, and the best ``max_per_img`` kept.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .anchors import AnchorGenerator
from .assigner import MaxIoUAssigner
from .box_coder import DeltaXYWHBBoxCoder
from .losses import bbox_regression_loss, reduce_with_avg_factor
from .ops import batched_nms, box_overlaps
from .sampler import RandomSampler


@dataclass(frozen=True)
class ProposalSettings:
    """``train_cfg.rpn_proposal`` / ``test_cfg.rpn`` values."""

    nms_pre: int
    max_per_img: int
    iou_threshold: float
    min_bbox_size: float


@dataclass(frozen=True)
class RPNTargets:
    """Targets of the whole batch over all T anchors of each image.

    Attributes:
        labels: Tensor[N, T] float: 1 positive, 0 otherwise.
        label_weights: Tensor[N, T]: 1 for sampled anchors.
        bbox_targets: Tensor[N, T, 4]; bbox_weights: Tensor[N, T, 4] (1 on positives).
        avg_factor: sampled anchors over the batch (each image counts at least 1 + 1).
        num_pos_per_image, num_neg_per_image: sampled counts.
        pos_ious: Tensor[num positives in batch]: IoU of each sampled positive anchor with
            its ground truth.
    """

    labels: Tensor
    label_weights: Tensor
    bbox_targets: Tensor
    bbox_weights: Tensor
    avg_factor: float
    num_pos_per_image: list[int]
    num_neg_per_image: list[int]
    pos_ious: Tensor


def level_name(stride: int) -> str:
    """FPN level name of a stride: 4 -> ``p2``, 64 -> ``p6``."""
    return f"p{round(math.log2(stride))}"


def _aligned_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """IoU of row i of ``boxes1`` with row i of ``boxes2`` (``Tensor[K]``)."""
    if boxes1.shape[0] == 0:
        return boxes1.new_zeros(0)
    return box_overlaps(boxes1, boxes2).diagonal()


class RPNHead(nn.Module):
    """3x3 conv + ReLU shared over levels, then 1x1 objectness (sigmoid) and 1x1 deltas."""

    def __init__(
        self,
        in_channels: int,
        feat_channels: int,
        anchor_generator: AnchorGenerator,
        bbox_coder: DeltaXYWHBBoxCoder,
        assigner: MaxIoUAssigner,
        sampler: RandomSampler,
        train_proposals: ProposalSettings,
        test_proposals: ProposalSettings,
        loss_bbox_type: str = "L1Loss",
        loss_bbox_beta: float = 1.0,
        loss_cls_weight: float = 1.0,
        loss_bbox_weight: float = 1.0,
    ) -> None:
        super().__init__()
        self.anchor_generator = anchor_generator
        self.bbox_coder = bbox_coder
        self.assigner = assigner
        self.sampler = sampler
        self.train_proposals = train_proposals
        self.test_proposals = test_proposals
        self.loss_bbox_type = loss_bbox_type
        self.loss_bbox_beta = loss_bbox_beta
        self.loss_cls_weight = loss_cls_weight
        self.loss_bbox_weight = loss_bbox_weight
        num_anchors = anchor_generator.num_base_anchors
        self.rpn_conv = nn.Conv2d(in_channels, feat_channels, 3, padding=1)
        self.rpn_cls = nn.Conv2d(feat_channels, num_anchors, 1)
        self.rpn_reg = nn.Conv2d(feat_channels, num_anchors * 4, 1)
        for conv in (self.rpn_conv, self.rpn_cls, self.rpn_reg):  # mmdet: Normal(std=0.01)
            nn.init.normal_(conv.weight, std=0.01)
            if conv.bias is not None:
                nn.init.zeros_(conv.bias)

    @property
    def level_names(self) -> list[str]:
        return [level_name(s) for s in self.anchor_generator.strides]

    def forward(self, features: list[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
        """Per level: objectness logits ``Tensor[N, A, H_l, W_l]`` and deltas ``Tensor[N, 4A, H_l, W_l]``."""
        logits, deltas = [], []
        for x in features:
            hidden = F.relu(self.rpn_conv(x))
            logits.append(self.rpn_cls(hidden))
            deltas.append(self.rpn_reg(hidden))
        return logits, deltas

    @staticmethod
    def flatten(logits: list[Tensor], deltas: list[Tensor]) -> tuple[Tensor, Tensor]:
        """Concatenate levels in anchor order: ``Tensor[N, T]`` logits, ``Tensor[N, T, 4]`` deltas."""
        num_images = logits[0].shape[0]
        flat_logits = torch.cat([x.permute(0, 2, 3, 1).reshape(num_images, -1) for x in logits], 1)
        flat_deltas = torch.cat(
            [x.permute(0, 2, 3, 1).reshape(num_images, -1, 4) for x in deltas], 1
        )
        return flat_logits, flat_deltas

    def anchors(self, features: list[Tensor]) -> list[Tensor]:
        sizes = [(x.shape[-2], x.shape[-1]) for x in features]
        return self.anchor_generator.grid_anchors(sizes, device=features[0].device)

    def get_targets(
        self,
        anchors: list[Tensor],
        featmap_sizes: list[tuple[int, int]],
        gt_boxes: list[Tensor],
        gt_boxes_ignore: list[Tensor | None],
        pad_shapes: list[tuple[int, int]],
        generator: torch.Generator | None,
    ) -> RPNTargets:
        """Assign and sample anchors for every image (see the module docstring)."""
        flat_anchors = torch.cat(anchors)  # [T, 4]
        per_image: list[tuple[Tensor, ...]] = []
        num_pos, num_neg, avg_factor, pos_ious = [], [], 0, []
        for boxes, ignore, pad_shape in zip(gt_boxes, gt_boxes_ignore, pad_shapes, strict=True):
            valid = torch.cat(
                self.anchor_generator.valid_flags(featmap_sizes, pad_shape, flat_anchors.device)
            )
            candidates = flat_anchors[valid]
            zeros = torch.zeros(boxes.shape[0], dtype=torch.long, device=boxes.device)
            assignment = self.assigner.assign(candidates, boxes, zeros, ignore)
            sampled = self.sampler.sample(assignment, candidates, boxes, zeros, generator)
            valid_index = torch.nonzero(valid).squeeze(1)
            labels = flat_anchors.new_zeros(flat_anchors.shape[0])
            weights = flat_anchors.new_zeros(flat_anchors.shape[0])
            targets = flat_anchors.new_zeros(flat_anchors.shape)
            target_weights = flat_anchors.new_zeros(flat_anchors.shape)
            pos = valid_index[sampled.pos_inds]
            neg = valid_index[sampled.neg_inds]
            matched_gt = boxes[sampled.pos_assigned_gt_inds]
            labels[pos] = 1.0
            weights[pos] = 1.0
            weights[neg] = 1.0
            if pos.numel() > 0:
                targets[pos] = self.bbox_coder.encode(flat_anchors[pos], matched_gt)
                target_weights[pos] = 1.0
            per_image.append((labels, weights, targets, target_weights))
            num_pos.append(sampled.num_pos)
            num_neg.append(sampled.num_neg)
            avg_factor += sampled.avg_factor
            pos_ious.append(_aligned_iou(flat_anchors[pos], matched_gt))
        labels, weights, targets, target_weights = (
            torch.stack(t) for t in zip(*per_image, strict=True)
        )
        return RPNTargets(
            labels,
            weights,
            targets,
            target_weights,
            float(avg_factor),
            num_pos,
            num_neg,
            torch.cat(pos_ious),
        )

    def loss_per_level(
        self, logits: list[Tensor], deltas: list[Tensor], targets: RPNTargets
    ) -> tuple[list[Tensor], list[Tensor]]:
        """``loss_cls`` and ``loss_bbox`` of each level (0-d tensors; their sums are the
        logged ``loss_rpn_cls`` / ``loss_rpn_bbox``)."""
        flat_logits, flat_deltas = self.flatten(logits, deltas)
        cls = F.binary_cross_entropy_with_logits(flat_logits, targets.labels, reduction="none")
        reg = bbox_regression_loss(
            flat_deltas, targets.bbox_targets, self.loss_bbox_type, self.loss_bbox_beta
        )
        counts = [x.shape[1] * x.shape[2] * x.shape[3] for x in logits]
        cls_levels, reg_levels = [], []
        for c, c_w, r, r_w in zip(
            cls.split(counts, dim=1),
            targets.label_weights.split(counts, dim=1),
            reg.split(counts, dim=1),
            targets.bbox_weights.split(counts, dim=1),
            strict=True,
        ):
            cls_levels.append(
                self.loss_cls_weight * reduce_with_avg_factor(c, c_w, targets.avg_factor)
            )
            reg_levels.append(
                self.loss_bbox_weight * reduce_with_avg_factor(r, r_w, targets.avg_factor)
            )
        return cls_levels, reg_levels

    @torch.no_grad()
    def proposals(
        self,
        logits: list[Tensor],
        deltas: list[Tensor],
        anchors: list[Tensor],
        image_sizes: list[tuple[int, int]],
        settings: ProposalSettings,
    ) -> list[tuple[Tensor, Tensor]]:
        """Per image: proposals ``Tensor[P, 4]`` and objectness ``Tensor[P]`` (by decreasing score)."""
        results = []
        for i, image_size in enumerate(image_sizes):
            level_boxes, level_scores, level_ids = [], [], []
            for level, (lvl_logits, lvl_deltas, lvl_anchors) in enumerate(
                zip(logits, deltas, anchors, strict=True)
            ):
                scores = lvl_logits[i].permute(1, 2, 0).reshape(-1).sigmoid()
                lvl_d = lvl_deltas[i].permute(1, 2, 0).reshape(-1, 4)
                if 0 < settings.nms_pre < scores.numel():
                    scores, order = torch.sort(scores, descending=True, stable=True)
                    scores, order = scores[: settings.nms_pre], order[: settings.nms_pre]
                    lvl_d, lvl_a = lvl_d[order], lvl_anchors[order]
                else:
                    lvl_a = lvl_anchors
                level_boxes.append(self.bbox_coder.decode(lvl_a, lvl_d, max_shape=image_size))
                level_scores.append(scores)
                level_ids.append(torch.full_like(scores, level, dtype=torch.long))
            results.append(
                self._filter_proposals(
                    torch.cat(level_boxes), torch.cat(level_scores), torch.cat(level_ids), settings
                )
            )
        return results

    @staticmethod
    def _filter_proposals(
        boxes: Tensor, scores: Tensor, level_ids: Tensor, settings: ProposalSettings
    ) -> tuple[Tensor, Tensor]:
        if settings.min_bbox_size >= 0:
            widths = boxes[:, 2] - boxes[:, 0]
            heights = boxes[:, 3] - boxes[:, 1]
            big_enough = (widths > settings.min_bbox_size) & (heights > settings.min_bbox_size)
            boxes, scores, level_ids = boxes[big_enough], scores[big_enough], level_ids[big_enough]
        keep = batched_nms(boxes, scores, level_ids, settings.iou_threshold)[: settings.max_per_img]
        return boxes[keep], scores[keep]
