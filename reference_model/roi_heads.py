"""Second stage: RoI feature extraction, the Shared2FC box head, its targets, losses and
detections, with mmdet's ``StandardRoIHead`` / ``Shared2FCBBoxHead`` names and semantics.

Shape shorthand: N images, R RoIs in the batch (rows ``(image index, x1, y1, x2, y2)``),
C channels, S x S RoI features (S = 7), K classes (background is class K), F fc width.

Training (per image): proposals are assigned to ground truth (IoU 0.5), the ground truths
are added as proposals, and 512 RoIs are sampled with up to 25% positives. Losses over the
R sampled RoIs of the batch (mmdet ``BBoxHead.loss``):

- ``loss_cls``: softmax cross-entropy summed over RoIs / R;
- ``acc``: top-1 accuracy in percent over all sampled RoIs (background included);
- ``loss_bbox``: L1 (or SmoothL1) between the predicted deltas of the positive RoIs' own
  class and their targets (stds 0.1, 0.1, 0.2, 0.2), summed / R, i.e. divided by *all*
  sampled RoIs, not only positives.

Feature extraction (mmdet ``SingleRoIExtractor``): a RoI of scale ``sqrt(w·h)`` reads level
``floor(log2(scale / finest_scale + 1e-6))`` clamped to the available levels, so with
``finest_scale=56`` boxes below 112 px use P2, 112-224 px P3, 224-448 px P4, larger P5.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .assigner import MaxIoUAssigner
from .box_coder import DeltaXYWHBBoxCoder
from .losses import accuracy_percent, bbox_regression_loss, reduce_with_avg_factor
from .ops import batched_nms, box_overlaps, roi_align
from .sampler import RandomSampler, SamplingResult

# mmdet's SingleRoIExtractor adds this inside the log2 so that exact powers of two land on
# the upper level despite float rounding.
_LEVEL_MAPPING_EPS = 1e-6


def map_roi_levels(rois: Tensor, num_levels: int, finest_scale: int = 56) -> Tensor:
    """Level index ``Tensor[R]`` (int64) of each RoI in ``rois: Tensor[R, 5]``."""
    scale = torch.sqrt((rois[:, 3] - rois[:, 1]) * (rois[:, 4] - rois[:, 2]))
    levels = torch.floor(torch.log2(scale / finest_scale + _LEVEL_MAPPING_EPS))
    return levels.clamp(min=0, max=num_levels - 1).long()


def boxes_to_rois(boxes_per_image: list[Tensor]) -> Tensor:
    """``list[N]`` of ``Tensor[R_i, 4]`` -> ``Tensor[R, 5]`` with the image index first."""
    rois = [
        torch.cat([boxes.new_full((boxes.shape[0], 1), float(i)), boxes[:, :4]], dim=1)
        for i, boxes in enumerate(boxes_per_image)
    ]
    return torch.cat(rois)


class SingleRoIExtractor:
    """RoIAlign each RoI on its FPN level (a plain class: no parameters)."""

    def __init__(
        self,
        featmap_strides: tuple[int, ...],
        output_size: int = 7,
        sampling_ratio: int = 0,
        aligned: bool = True,
        finest_scale: int = 56,
    ) -> None:
        self.featmap_strides = featmap_strides
        self.output_size = output_size
        self.sampling_ratio = sampling_ratio
        self.aligned = aligned
        self.finest_scale = finest_scale

    def __call__(self, features: list[Tensor], rois: Tensor) -> Tensor:
        """``features``: the first ``len(featmap_strides)`` FPN maps ``Tensor[N, C, ., .]``;
        returns ``Tensor[R, C, S, S]``."""
        num_levels = len(self.featmap_strides)
        size = self.output_size
        out = features[0].new_zeros((rois.shape[0], features[0].shape[1], size, size))
        levels = map_roi_levels(rois, num_levels, self.finest_scale)
        for level in range(num_levels):
            inds = torch.nonzero(levels == level).squeeze(1)
            if inds.numel() == 0:
                continue
            out[inds] = roi_align(
                features[level],
                rois[inds],
                size,
                spatial_scale=1.0 / self.featmap_strides[level],
                sampling_ratio=self.sampling_ratio,
                aligned=self.aligned,
            )
        return out


class Shared2FCBBoxHead(nn.Module):
    """Flatten -> fc -> ReLU -> fc -> ReLU, then ``fc_cls`` (K+1) and ``fc_reg`` (4K or 4)."""

    def __init__(
        self,
        in_channels: int,
        roi_feat_size: int,
        fc_out_channels: int,
        num_classes: int,
        reg_class_agnostic: bool = False,
    ) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be at least 1, got {num_classes}.")
        self.num_classes = num_classes
        self.reg_class_agnostic = reg_class_agnostic
        flat = in_channels * roi_feat_size * roi_feat_size
        self.shared_fcs = nn.ModuleList(
            [nn.Linear(flat, fc_out_channels), nn.Linear(fc_out_channels, fc_out_channels)]
        )
        self.fc_cls = nn.Linear(fc_out_channels, num_classes + 1)
        self.fc_reg = nn.Linear(fc_out_channels, 4 if reg_class_agnostic else 4 * num_classes)
        self.init_weights()

    def init_weights(self) -> None:
        """mmdet: Xavier-uniform shared fcs, Normal(0.01) classifier, Normal(0.001) regressor."""
        for fc in self.shared_fcs:
            assert isinstance(fc, nn.Linear)
            nn.init.xavier_uniform_(fc.weight)
            nn.init.zeros_(fc.bias)
        nn.init.normal_(self.fc_cls.weight, std=0.01)
        nn.init.zeros_(self.fc_cls.bias)
        nn.init.normal_(self.fc_reg.weight, std=0.001)
        nn.init.zeros_(self.fc_reg.bias)

    def forward(self, roi_features: Tensor) -> tuple[Tensor, Tensor]:
        """``Tensor[R, C, S, S]`` -> class logits ``Tensor[R, K+1]``, deltas ``Tensor[R, 4K]``."""
        x = roi_features.flatten(1)
        for fc in self.shared_fcs:
            x = F.relu(fc(x))
        return self.fc_cls(x), self.fc_reg(x)


@dataclass(frozen=True)
class RoITargets:
    """Targets of the R sampled RoIs of the batch (images in order, positives first)."""

    rois: Tensor  # [R, 5]
    labels: Tensor  # [R] int64, K = background
    label_weights: Tensor  # [R]
    bbox_targets: Tensor  # [R, 4]
    bbox_weights: Tensor  # [R, 4]
    num_pos_per_image: list[int]
    num_neg_per_image: list[int]
    pos_ious: Tensor  # IoU of sampled positive proposals (added ground truths excluded)


class StandardRoIHead(nn.Module):
    """Box branch of Faster R-CNN; holds ``bbox_head`` (mmdet name) and plain helpers."""

    def __init__(
        self,
        bbox_roi_extractor: SingleRoIExtractor,
        bbox_head: Shared2FCBBoxHead,
        bbox_coder: DeltaXYWHBBoxCoder,
        assigner: MaxIoUAssigner,
        sampler: RandomSampler,
        loss_bbox_type: str = "L1Loss",
        loss_bbox_beta: float = 1.0,
        loss_cls_weight: float = 1.0,
        loss_bbox_weight: float = 1.0,
        score_thr: float = 0.05,
        nms_iou_threshold: float = 0.5,
        max_per_img: int = 100,
    ) -> None:
        super().__init__()
        self.bbox_roi_extractor = bbox_roi_extractor
        self.bbox_head = bbox_head
        self.bbox_coder = bbox_coder
        self.assigner = assigner
        self.sampler = sampler
        self.loss_bbox_type = loss_bbox_type
        self.loss_bbox_beta = loss_bbox_beta
        self.loss_cls_weight = loss_cls_weight
        self.loss_bbox_weight = loss_bbox_weight
        self.score_thr = score_thr
        self.nms_iou_threshold = nms_iou_threshold
        self.max_per_img = max_per_img

    @property
    def num_classes(self) -> int:
        return self.bbox_head.num_classes

    def sample(
        self,
        proposals: list[Tensor],
        gt_boxes: list[Tensor],
        gt_labels: list[Tensor],
        gt_boxes_ignore: list[Tensor | None],
        generator: torch.Generator | None,
    ) -> list[SamplingResult]:
        """Assign and sample each image's proposals ``Tensor[P_i, 4]``."""
        results = []
        for props, boxes, labels, ignore in zip(
            proposals, gt_boxes, gt_labels, gt_boxes_ignore, strict=True
        ):
            assignment = self.assigner.assign(props, boxes, labels, ignore)
            results.append(self.sampler.sample(assignment, props, boxes, labels, generator))
        return results

    def get_targets(self, sampled: list[SamplingResult], gt_boxes: list[Tensor]) -> RoITargets:
        labels, label_weights, targets, target_weights, boxes, ious = [], [], [], [], [], []
        for result, gts in zip(sampled, gt_boxes, strict=True):
            pos_boxes, neg_boxes = result.pos_boxes, result.neg_boxes
            num_pos, num_samples = pos_boxes.shape[0], pos_boxes.shape[0] + neg_boxes.shape[0]
            image_labels = torch.full(
                (num_samples,), self.num_classes, dtype=torch.long, device=pos_boxes.device
            )
            image_targets = pos_boxes.new_zeros((num_samples, 4))
            image_target_weights = pos_boxes.new_zeros((num_samples, 4))
            if num_pos > 0:
                matched = gts[result.pos_assigned_gt_inds]
                image_labels[:num_pos] = result.pos_gt_labels
                image_targets[:num_pos] = self.bbox_coder.encode(pos_boxes, matched)
                image_target_weights[:num_pos] = 1.0
                proposal_pos = ~result.pos_is_gt
                if proposal_pos.any():
                    ious.append(
                        box_overlaps(pos_boxes[proposal_pos], matched[proposal_pos]).diagonal()
                    )
            labels.append(image_labels)
            label_weights.append(pos_boxes.new_ones(num_samples))
            targets.append(image_targets)
            target_weights.append(image_target_weights)
            boxes.append(torch.cat([pos_boxes, neg_boxes]))
        return RoITargets(
            rois=boxes_to_rois(boxes),
            labels=torch.cat(labels),
            label_weights=torch.cat(label_weights),
            bbox_targets=torch.cat(targets),
            bbox_weights=torch.cat(target_weights),
            num_pos_per_image=[r.num_pos for r in sampled],
            num_neg_per_image=[r.num_neg for r in sampled],
            pos_ious=torch.cat(ious) if ious else labels[0].new_zeros(0, dtype=torch.float32),
        )

    def forward(self, features: list[Tensor], rois: Tensor) -> tuple[Tensor, Tensor]:
        """Class logits ``Tensor[R, K+1]`` and deltas ``Tensor[R, 4K]`` for ``rois: Tensor[R, 5]``."""
        num_levels = len(self.bbox_roi_extractor.featmap_strides)
        return self.bbox_head(self.bbox_roi_extractor(features[:num_levels], rois))

    def loss(self, cls_score: Tensor, bbox_pred: Tensor, targets: RoITargets) -> dict[str, Tensor]:
        """``loss_cls``, ``acc``, ``loss_bbox`` with mmdet's normalisation."""
        labels = targets.labels
        num_rois = labels.numel()
        cls_avg_factor = max(float((targets.label_weights > 0).sum()), 1.0)
        ce = F.cross_entropy(cls_score, labels, reduction="none")
        loss_cls = self.loss_cls_weight * reduce_with_avg_factor(
            ce, targets.label_weights, cls_avg_factor
        )
        positive = labels < self.num_classes
        if positive.any():
            deltas = bbox_pred.view(num_rois, -1, 4)
            if self.bbox_head.reg_class_agnostic:
                pos_deltas = deltas[positive, 0]
            else:
                pos_deltas = deltas[positive, labels[positive]]
            reg = bbox_regression_loss(
                pos_deltas, targets.bbox_targets[positive], self.loss_bbox_type, self.loss_bbox_beta
            )
            loss_bbox = self.loss_bbox_weight * reduce_with_avg_factor(
                reg, targets.bbox_weights[positive], float(num_rois)
            )
        else:
            loss_bbox = bbox_pred[positive].sum()
        return {
            "loss_cls": loss_cls,
            "acc": accuracy_percent(cls_score.detach(), labels),
            "loss_bbox": loss_bbox,
        }

    @torch.no_grad()
    def detect(
        self,
        features: list[Tensor],
        proposals: list[Tensor],
        image_sizes: list[tuple[int, int]],
    ) -> list[dict[str, Tensor]]:
        """Per image ``{"boxes": Tensor[D, 4], "scores": Tensor[D], "labels": Tensor[D]}``:
        softmax scores, class-specific decoding clipped to the image, scores ``>
        score_thr``, NMS per class, the best ``max_per_img``."""
        rois = boxes_to_rois(proposals)
        cls_score, bbox_pred = self.forward(features, rois)
        counts = [p.shape[0] for p in proposals]
        results = []
        for props, scores, deltas, size in zip(
            proposals, cls_score.split(counts), bbox_pred.split(counts), image_sizes, strict=True
        ):
            results.append(self._detect_single(props, scores, deltas, size))
        return results

    def _detect_single(
        self, proposals: Tensor, cls_score: Tensor, bbox_pred: Tensor, image_size: tuple[int, int]
    ) -> dict[str, Tensor]:
        num_classes = self.num_classes
        scores = F.softmax(cls_score, dim=-1)[:, :num_classes]  # [P, K]
        boxes = self.bbox_coder.decode(proposals, bbox_pred, max_shape=image_size)
        num_reg = bbox_pred.shape[1] // 4  # K, or 1 when class-agnostic; explicit: P may be 0
        boxes = boxes.view(proposals.shape[0], num_reg, 4).expand(-1, num_classes, 4)  # [P, K, 4]
        labels = torch.arange(num_classes, device=scores.device).expand_as(scores)
        boxes, scores, labels = boxes.reshape(-1, 4), scores.reshape(-1), labels.reshape(-1)
        keep = scores > self.score_thr
        boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
        kept = batched_nms(boxes, scores, labels, self.nms_iou_threshold)[: self.max_per_img]
        return {"boxes": boxes[kept], "scores": scores[kept], "labels": labels[kept]}
