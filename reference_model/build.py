"""Translate a :class:`~reference_model.config.Config` into a :class:`FasterRCNN`: the one
place config values become constructor arguments."""

from __future__ import annotations

from .anchors import AnchorGenerator
from .assigner import MaxIoUAssigner
from .backbone import ResNet
from .box_coder import DeltaXYWHBBoxCoder
from .config import (
    AssignerConfig,
    BBoxCoderConfig,
    Config,
    ModelConfig,
    ProposalConfig,
    SamplerConfig,
)
from .faster_rcnn import FasterRCNN
from .fpn import FPN
from .losses import BBOX_LOSS_TYPES
from .roi_heads import Shared2FCBBoxHead, SingleRoIExtractor, StandardRoIHead
from .rpn import ProposalSettings, RPNHead
from .sampler import RandomSampler


def _coder(cfg: BBoxCoderConfig) -> DeltaXYWHBBoxCoder:
    return DeltaXYWHBBoxCoder(cfg.target_means, cfg.target_stds, cfg.wh_ratio_clip)


def _assigner(cfg: AssignerConfig) -> MaxIoUAssigner:
    return MaxIoUAssigner(
        pos_iou_thr=cfg.pos_iou_thr,
        neg_iou_thr=cfg.neg_iou_thr,
        min_pos_iou=cfg.min_pos_iou,
        gt_max_assign_all=cfg.gt_max_assign_all,
        ignore_iof_thr=cfg.ignore_iof_thr,
        match_low_quality=cfg.match_low_quality,
    )


def _sampler(cfg: SamplerConfig) -> RandomSampler:
    return RandomSampler(cfg.num, cfg.pos_fraction, cfg.neg_pos_ub, cfg.add_gt_as_proposals)


def _proposals(cfg: ProposalConfig) -> ProposalSettings:
    return ProposalSettings(cfg.nms_pre, cfg.max_per_img, cfg.nms.iou_threshold, cfg.min_bbox_size)


def _validate(cfg: ModelConfig) -> None:
    """Reject combinations the reference model does not implement, in sentences."""
    checks = [
        (
            cfg.backbone.style == "pytorch",
            f"backbone.style must be 'pytorch', got {cfg.backbone.style!r}.",
        ),
        (
            cfg.backbone.num_stages == 4,
            f"backbone.num_stages must be 4, got {cfg.backbone.num_stages}.",
        ),
        (
            tuple(cfg.neck.in_channels)
            == tuple(
                c * cfg.backbone.base_channels // 64 for c in _stage_channels(cfg.backbone.depth)
            ),
            f"neck.in_channels {cfg.neck.in_channels} do not match a ResNet-{cfg.backbone.depth} "
            f"({_stage_channels(cfg.backbone.depth)} for base_channels=64).",
        ),
        (
            cfg.rpn_head.in_channels == cfg.neck.out_channels
            and cfg.roi_head.bbox_roi_extractor.out_channels == cfg.neck.out_channels
            and cfg.roi_head.bbox_head.in_channels == cfg.neck.out_channels,
            "rpn_head.in_channels, bbox_roi_extractor.out_channels and bbox_head.in_channels "
            f"must equal neck.out_channels ({cfg.neck.out_channels}).",
        ),
        (
            len(cfg.rpn_head.anchor_generator.strides) == cfg.neck.num_outs,
            f"anchor_generator.strides needs one stride per FPN output ({cfg.neck.num_outs}).",
        ),
        (
            cfg.rpn_head.loss_cls.use_sigmoid and not cfg.roi_head.bbox_head.loss_cls.use_sigmoid,
            "Only sigmoid RPN objectness and softmax RoI classification are implemented.",
        ),
        (
            cfg.rpn_head.loss_bbox.type in BBOX_LOSS_TYPES
            and cfg.roi_head.bbox_head.loss_bbox.type in BBOX_LOSS_TYPES,
            f"loss_bbox type must be one of {BBOX_LOSS_TYPES}.",
        ),
        (
            cfg.train_cfg.rpn.allowed_border < 0,
            f"train_cfg.rpn.allowed_border must be negative (all anchors), got {cfg.train_cfg.rpn.allowed_border}.",
        ),
        (
            cfg.train_cfg.rpn.pos_weight <= 0 and cfg.train_cfg.rcnn.pos_weight <= 0,
            "pos_weight must be <= 0 (positives weigh 1); other weights are not implemented.",
        ),
        (
            cfg.roi_head.bbox_roi_extractor.roi_layer.type == "RoIAlign",
            "roi_layer.type must be 'RoIAlign'.",
        ),
    ]
    for ok, message in checks:
        if not ok:
            raise ValueError(message)


def _stage_channels(depth: int) -> tuple[int, ...]:
    return (64, 128, 256, 512) if depth in (18, 34) else (256, 512, 1024, 2048)


def build_faster_rcnn(cfg: Config | ModelConfig) -> FasterRCNN:
    """Build the detector described by ``cfg`` (a full :class:`Config` or its ``model``)."""
    model_cfg = cfg.model if isinstance(cfg, Config) else cfg
    _validate(model_cfg)
    bb, neck, rpn_cfg, roi_cfg = (
        model_cfg.backbone,
        model_cfg.neck,
        model_cfg.rpn_head,
        model_cfg.roi_head,
    )
    train_cfg, test_cfg = model_cfg.train_cfg, model_cfg.test_cfg
    backbone = ResNet(
        depth=bb.depth,
        out_indices=bb.out_indices,
        frozen_stages=bb.frozen_stages,
        norm_type=bb.norm_cfg.type,
        norm_num_groups=bb.norm_cfg.num_groups,
        norm_eval=bb.norm_eval,
        zero_init_residual=bb.zero_init_residual,
        base_channels=bb.base_channels,
    )
    anchor_cfg = rpn_cfg.anchor_generator
    rpn_head = RPNHead(
        in_channels=rpn_cfg.in_channels,
        feat_channels=rpn_cfg.feat_channels,
        anchor_generator=AnchorGenerator(anchor_cfg.strides, anchor_cfg.ratios, anchor_cfg.scales),
        bbox_coder=_coder(rpn_cfg.bbox_coder),
        assigner=_assigner(train_cfg.rpn.assigner),
        sampler=_sampler(train_cfg.rpn.sampler),
        train_proposals=_proposals(train_cfg.rpn_proposal),
        test_proposals=_proposals(test_cfg.rpn),
        loss_bbox_type=rpn_cfg.loss_bbox.type,
        loss_bbox_beta=rpn_cfg.loss_bbox.beta,
        loss_cls_weight=rpn_cfg.loss_cls.loss_weight,
        loss_bbox_weight=rpn_cfg.loss_bbox.loss_weight,
    )
    extractor_cfg, head_cfg = roi_cfg.bbox_roi_extractor, roi_cfg.bbox_head
    roi_head = StandardRoIHead(
        bbox_roi_extractor=SingleRoIExtractor(
            featmap_strides=tuple(extractor_cfg.featmap_strides),
            output_size=extractor_cfg.roi_layer.output_size,
            sampling_ratio=extractor_cfg.roi_layer.sampling_ratio,
            aligned=extractor_cfg.roi_layer.aligned,
            finest_scale=extractor_cfg.finest_scale,
        ),
        bbox_head=Shared2FCBBoxHead(
            in_channels=head_cfg.in_channels,
            roi_feat_size=head_cfg.roi_feat_size,
            fc_out_channels=head_cfg.fc_out_channels,
            num_classes=head_cfg.num_classes,
            reg_class_agnostic=head_cfg.reg_class_agnostic,
        ),
        bbox_coder=_coder(head_cfg.bbox_coder),
        assigner=_assigner(train_cfg.rcnn.assigner),
        sampler=_sampler(train_cfg.rcnn.sampler),
        loss_bbox_type=head_cfg.loss_bbox.type,
        loss_bbox_beta=head_cfg.loss_bbox.beta,
        loss_cls_weight=head_cfg.loss_cls.loss_weight,
        loss_bbox_weight=head_cfg.loss_bbox.loss_weight,
        score_thr=test_cfg.rcnn.score_thr,
        nms_iou_threshold=test_cfg.rcnn.nms.iou_threshold,
        max_per_img=test_cfg.rcnn.max_per_img,
    )
    return FasterRCNN(
        backbone=backbone,
        neck=FPN(neck.in_channels, neck.out_channels, neck.num_outs),
        rpn_head=rpn_head,
        roi_head=roi_head,
        pad_size_divisor=model_cfg.data_preprocessor.pad_size_divisor,
    )
