"""Faster R-CNN: wiring of backbone -> FPN -> RPN -> RoI head (mmdet module names).

Shape shorthand: N images, padded to H x W; K classes; D detections of an image.

Inputs are normalised images ``Tensor[N, 3, H, W]`` (already padded), ``image_sizes``
``list[N]`` of the true ``(h, w)`` of each image inside the padding, and for training
``targets`` ``list[N]`` of ``{"boxes": Tensor[G, 4] xyxy pixels, "labels": Tensor[G] in
[0, K), optional "ignore_boxes": Tensor[I, 4]}``.

Training returns mmdet's loss dict, keys exactly :data:`LOSS_KEYS`:
``loss_rpn_cls``, ``loss_rpn_bbox`` (summed over FPN levels, as mmengine logs them),
``loss_cls``, ``acc`` (percent; not a loss, but mmdet returns it in the same dict and its
logs carry it), ``loss_bbox``. The total to back-propagate is the sum of the keys that
start with ``loss`` (mmdet's ``parse_losses``): see :func:`total_loss`.

:meth:`FasterRCNN.loss_and_stats` also returns side metrics (Python floats, for a training
engine to log per iteration; names never contain ``loss`` except the per-level RPN terms):

=========================  ===============================================================
``rpn.num_pos``            sampled positive anchors per image (mean over the batch)
``rpn.num_neg``            sampled negative anchors per image
``rcnn.num_pos``           sampled positive RoIs per image (added ground truths included)
``rcnn.num_neg``           sampled negative RoIs per image
``rpn.num_proposals``      proposals per image fed to the RoI head (before sampling)
``rpn.loss_cls.p2`` ..     each FPN level's share of ``loss_rpn_cls`` (they sum to it)
``rpn.loss_bbox.p2`` ..    each FPN level's share of ``loss_rpn_bbox``
``rpn.pos_iou_mean``       mean IoU of sampled positive anchors with their ground truth
``rcnn.pos_iou_mean``      mean IoU of sampled positive proposals with their ground truth
                           (ground truths added as proposals excluded)
``rpn.recall@0.5``         fraction of ground-truth boxes with a proposal at IoU >= 0.5
=========================  ===============================================================

Means over an empty set (no positives, no ground truth) are NaN.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .backbone import ResNet
from .fpn import FPN
from .ops import box_overlaps
from .roi_heads import StandardRoIHead
from .rpn import RPNHead

LOSS_KEYS = ("loss_rpn_cls", "loss_rpn_bbox", "loss_cls", "acc", "loss_bbox")
RECALL_IOU = 0.5


def total_loss(losses: dict[str, Tensor]) -> Tensor:
    """Sum of the entries whose key contains ``loss`` (mmdet's ``parse_losses``)."""
    return sum((v for k, v in losses.items() if "loss" in k), start=torch.zeros(()))


def _mean(values: Tensor) -> float:
    return float(values.float().mean()) if values.numel() > 0 else math.nan


def _proposal_recall(proposals: list[Tensor], gt_boxes: list[Tensor]) -> float:
    found, total = 0, 0
    for props, gts in zip(proposals, gt_boxes, strict=True):
        total += gts.shape[0]
        if gts.shape[0] and props.shape[0]:
            found += int((box_overlaps(gts, props).max(dim=1).values >= RECALL_IOU).sum())
    return found / total if total else math.nan


class FasterRCNN(nn.Module):
    """Two-stage detector; submodules ``backbone``, ``neck``, ``rpn_head``, ``roi_head``."""

    def __init__(
        self,
        backbone: ResNet,
        neck: FPN,
        rpn_head: RPNHead,
        roi_head: StandardRoIHead,
        pad_size_divisor: int = 32,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.neck = neck
        self.rpn_head = rpn_head
        self.roi_head = roi_head
        self.pad_size_divisor = pad_size_divisor

    @property
    def num_classes(self) -> int:
        return self.roi_head.num_classes

    def extract_features(self, images: Tensor) -> list[Tensor]:
        """FPN maps P2..P6: ``list[L]`` of ``Tensor[N, C, H/s, W/s]``."""
        return self.neck(self.backbone(images))

    def _pad_shapes(
        self, images: Tensor, image_sizes: list[tuple[int, int]]
    ) -> list[tuple[int, int]]:
        """Each image's area padded to ``pad_size_divisor`` (mmdet's ``pad_shape``), within the batch."""
        div = self.pad_size_divisor
        height, width = images.shape[-2:]
        return [
            (min(math.ceil(h / div) * div, height), min(math.ceil(w / div) * div, width))
            for h, w in image_sizes
        ]

    def _check_inputs(
        self,
        images: Tensor,
        image_sizes: list[tuple[int, int]],
        targets: list[dict[str, Tensor]] | None,
    ) -> None:
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be Tensor[N, 3, H, W], got shape {tuple(images.shape)}.")
        if len(image_sizes) != images.shape[0]:
            raise ValueError(f"Got {len(image_sizes)} image_sizes for {images.shape[0]} images.")
        if targets is not None and len(targets) != images.shape[0]:
            raise ValueError(f"Got {len(targets)} targets for {images.shape[0]} images.")
        for target in targets or []:
            if "boxes" not in target or "labels" not in target:
                raise ValueError(
                    f"Each target needs 'boxes' and 'labels', got keys {sorted(target)}."
                )
            labels = target["labels"]
            if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= self.num_classes):
                raise ValueError(
                    f"Labels must be in [0, {self.num_classes}), got {labels.tolist()}."
                )

    def loss_and_stats(
        self,
        images: Tensor,
        targets: list[dict[str, Tensor]],
        image_sizes: list[tuple[int, int]],
        generator: torch.Generator | None = None,
    ) -> tuple[dict[str, Tensor], dict[str, float]]:
        """Loss dict (:data:`LOSS_KEYS`) and side metrics (module docstring).

        Args:
            generator: CPU generator for both samplers; ``None`` uses torch's global RNG.
        """
        self._check_inputs(images, image_sizes, targets)
        gt_boxes = [t["boxes"].to(images.dtype) for t in targets]
        gt_labels = [t["labels"].long() for t in targets]
        gt_ignore = [t.get("ignore_boxes") for t in targets]
        features = self.extract_features(images)
        rpn = self.rpn_head
        logits, deltas = rpn(features)
        anchors = rpn.anchors(features)
        featmap_sizes = [(x.shape[-2], x.shape[-1]) for x in features]
        rpn_targets = rpn.get_targets(
            anchors,
            featmap_sizes,
            gt_boxes,
            gt_ignore,
            self._pad_shapes(images, image_sizes),
            generator,
        )
        cls_levels, reg_levels = rpn.loss_per_level(logits, deltas, rpn_targets)
        proposals = [
            boxes
            for boxes, _ in rpn.proposals(logits, deltas, anchors, image_sizes, rpn.train_proposals)
        ]
        sampled = self.roi_head.sample(proposals, gt_boxes, gt_labels, gt_ignore, generator)
        roi_targets = self.roi_head.get_targets(sampled, gt_boxes)
        cls_score, bbox_pred = self.roi_head(features, roi_targets.rois)
        roi_losses = self.roi_head.loss(cls_score, bbox_pred, roi_targets)
        losses = {
            "loss_rpn_cls": torch.stack(cls_levels).sum(),
            "loss_rpn_bbox": torch.stack(reg_levels).sum(),
            **roi_losses,
        }
        stats: dict[str, float] = {
            "rpn.num_pos": sum(rpn_targets.num_pos_per_image) / len(images),
            "rpn.num_neg": sum(rpn_targets.num_neg_per_image) / len(images),
            "rcnn.num_pos": sum(roi_targets.num_pos_per_image) / len(images),
            "rcnn.num_neg": sum(roi_targets.num_neg_per_image) / len(images),
            "rpn.num_proposals": sum(p.shape[0] for p in proposals) / len(images),
        }
        for name, cls_value, reg_value in zip(rpn.level_names, cls_levels, reg_levels, strict=True):
            stats[f"rpn.loss_cls.{name}"] = float(cls_value.detach())
            stats[f"rpn.loss_bbox.{name}"] = float(reg_value.detach())
        stats["rpn.pos_iou_mean"] = _mean(rpn_targets.pos_ious)
        stats["rcnn.pos_iou_mean"] = _mean(roi_targets.pos_ious)
        stats["rpn.recall@0.5"] = _proposal_recall(proposals, gt_boxes)
        return losses, stats

    def loss(
        self,
        images: Tensor,
        targets: list[dict[str, Tensor]],
        image_sizes: list[tuple[int, int]],
        generator: torch.Generator | None = None,
    ) -> dict[str, Tensor]:
        """mmdet's loss dict, keys exactly :data:`LOSS_KEYS`."""
        return self.loss_and_stats(images, targets, image_sizes, generator)[0]

    @torch.no_grad()
    def predict(
        self, images: Tensor, image_sizes: list[tuple[int, int]]
    ) -> list[dict[str, Tensor]]:
        """Per image ``{"boxes": Tensor[D, 4], "scores": Tensor[D], "labels": Tensor[D]}`` in
        input-image pixels, by decreasing score."""
        self._check_inputs(images, image_sizes, None)
        features = self.extract_features(images)
        logits, deltas = self.rpn_head(features)
        anchors = self.rpn_head.anchors(features)
        proposals = [
            boxes
            for boxes, _ in self.rpn_head.proposals(
                logits, deltas, anchors, image_sizes, self.rpn_head.test_proposals
            )
        ]
        return self.roi_head.detect(features, proposals, image_sizes)

    def forward(
        self,
        images: Tensor,
        image_sizes: list[tuple[int, int]],
        targets: list[dict[str, Tensor]] | None = None,
    ) -> dict[str, Tensor] | list[dict[str, Tensor]]:
        """Losses when ``targets`` are given, detections otherwise."""
        if targets is not None:
            return self.loss(images, targets, image_sizes)
        return self.predict(images, image_sizes)
