"""Configuration: nested frozen dataclasses whose field names are mmdet's config keys.

A reader of an mmdet 2.x/3.x Faster R-CNN config finds every value at the same path:
``cfg.model.train_cfg.rpn.sampler.num``, ``cfg.model.train_cfg.rcnn.assigner.pos_iou_thr``,
``cfg.model.test_cfg.rpn.nms_pre``, ``cfg.model.roi_head.bbox_head.num_classes``, ...
Defaults are mmdet's ``faster_rcnn_r50_fpn_1x`` (``configs/_base_/models/faster_rcnn_r50_fpn.py``).
Only keys the reference model implements exist; ``type`` keys exist where mmdet offers a
choice we implement too (norm ``BN``/``GN``, ``L1Loss``/``SmoothL1Loss``).

Presets: :func:`r50_fpn` (mmdet's defaults) and :func:`cpu_small` (ResNet-18 with GroupNorm,
narrower FPN and heads, smaller images and sample counts: trains from scratch on a CPU).
:func:`with_overrides` applies mmdet-style dotted overrides (``--cfg-options``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class NormConfig:
    type: str = "BN"  # "BN" or "GN"
    requires_grad: bool = True
    num_groups: int = 32  # GroupNorm only


@dataclass(frozen=True)
class BackboneConfig:
    type: str = "ResNet"
    depth: int = 50
    num_stages: int = 4
    out_indices: tuple[int, ...] = (0, 1, 2, 3)
    frozen_stages: int = 1
    norm_cfg: NormConfig = NormConfig()
    norm_eval: bool = True
    style: str = "pytorch"
    zero_init_residual: bool = True
    base_channels: int = 64


@dataclass(frozen=True)
class NeckConfig:
    type: str = "FPN"
    in_channels: tuple[int, ...] = (256, 512, 1024, 2048)
    out_channels: int = 256
    num_outs: int = 5


@dataclass(frozen=True)
class AnchorGeneratorConfig:
    type: str = "AnchorGenerator"
    scales: tuple[float, ...] = (8.0,)
    ratios: tuple[float, ...] = (0.5, 1.0, 2.0)
    strides: tuple[int, ...] = (4, 8, 16, 32, 64)


@dataclass(frozen=True)
class BBoxCoderConfig:
    type: str = "DeltaXYWHBBoxCoder"
    target_means: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0)
    target_stds: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0)
    wh_ratio_clip: float = 16 / 1000


@dataclass(frozen=True)
class LossClsConfig:
    type: str = "CrossEntropyLoss"
    use_sigmoid: bool = False
    loss_weight: float = 1.0


@dataclass(frozen=True)
class LossBBoxConfig:
    type: str = "L1Loss"  # or "SmoothL1Loss"
    loss_weight: float = 1.0
    beta: float = 1.0  # SmoothL1Loss only


@dataclass(frozen=True)
class RPNHeadConfig:
    type: str = "RPNHead"
    in_channels: int = 256
    feat_channels: int = 256
    anchor_generator: AnchorGeneratorConfig = AnchorGeneratorConfig()
    bbox_coder: BBoxCoderConfig = BBoxCoderConfig()
    loss_cls: LossClsConfig = LossClsConfig(use_sigmoid=True)
    loss_bbox: LossBBoxConfig = LossBBoxConfig()


@dataclass(frozen=True)
class RoILayerConfig:
    type: str = "RoIAlign"
    output_size: int = 7
    sampling_ratio: int = 0
    aligned: bool = True


@dataclass(frozen=True)
class RoIExtractorConfig:
    type: str = "SingleRoIExtractor"
    roi_layer: RoILayerConfig = RoILayerConfig()
    out_channels: int = 256
    featmap_strides: tuple[int, ...] = (4, 8, 16, 32)
    finest_scale: int = 56


@dataclass(frozen=True)
class BBoxHeadConfig:
    type: str = "Shared2FCBBoxHead"
    in_channels: int = 256
    fc_out_channels: int = 1024
    roi_feat_size: int = 7
    num_classes: int = 80
    bbox_coder: BBoxCoderConfig = BBoxCoderConfig(target_stds=(0.1, 0.1, 0.2, 0.2))
    reg_class_agnostic: bool = False
    loss_cls: LossClsConfig = LossClsConfig()
    loss_bbox: LossBBoxConfig = LossBBoxConfig()


@dataclass(frozen=True)
class RoIHeadConfig:
    type: str = "StandardRoIHead"
    bbox_roi_extractor: RoIExtractorConfig = RoIExtractorConfig()
    bbox_head: BBoxHeadConfig = BBoxHeadConfig()


@dataclass(frozen=True)
class AssignerConfig:
    type: str = "MaxIoUAssigner"
    pos_iou_thr: float = 0.7
    neg_iou_thr: float = 0.3
    min_pos_iou: float = 0.3
    match_low_quality: bool = True
    gt_max_assign_all: bool = True
    ignore_iof_thr: float = -1.0


@dataclass(frozen=True)
class SamplerConfig:
    type: str = "RandomSampler"
    num: int = 256
    pos_fraction: float = 0.5
    neg_pos_ub: float = -1
    add_gt_as_proposals: bool = False


@dataclass(frozen=True)
class NMSConfig:
    type: str = "nms"
    iou_threshold: float = 0.7


@dataclass(frozen=True)
class RPNTrainConfig:
    assigner: AssignerConfig = AssignerConfig()
    sampler: SamplerConfig = SamplerConfig()
    allowed_border: int = -1
    pos_weight: float = -1


@dataclass(frozen=True)
class ProposalConfig:
    """RPN proposal generation (``train_cfg.rpn_proposal`` and ``test_cfg.rpn``)."""

    nms_pre: int = 2000  # top-scoring anchors kept per level before NMS
    max_per_img: int = 1000
    nms: NMSConfig = NMSConfig()
    min_bbox_size: float = 0.0


@dataclass(frozen=True)
class RCNNTrainConfig:
    assigner: AssignerConfig = AssignerConfig(
        pos_iou_thr=0.5, neg_iou_thr=0.5, min_pos_iou=0.5, match_low_quality=False
    )
    sampler: SamplerConfig = SamplerConfig(num=512, pos_fraction=0.25, add_gt_as_proposals=True)
    pos_weight: float = -1


@dataclass(frozen=True)
class TrainConfig:
    rpn: RPNTrainConfig = RPNTrainConfig()
    rpn_proposal: ProposalConfig = ProposalConfig()
    rcnn: RCNNTrainConfig = RCNNTrainConfig()


@dataclass(frozen=True)
class RCNNTestConfig:
    score_thr: float = 0.05
    nms: NMSConfig = NMSConfig(iou_threshold=0.5)
    max_per_img: int = 100


@dataclass(frozen=True)
class TestConfig:
    rpn: ProposalConfig = ProposalConfig(nms_pre=1000, max_per_img=1000)
    rcnn: RCNNTestConfig = RCNNTestConfig()


@dataclass(frozen=True)
class DataPreprocessorConfig:
    """mmdet 3.x ``DetDataPreprocessor`` values (used by the data pipeline, not the model,
    except ``pad_size_divisor``, which fixes each image's padded area for anchor validity)."""

    mean: tuple[float, ...] = (123.675, 116.28, 103.53)
    std: tuple[float, ...] = (58.395, 57.12, 57.375)
    bgr_to_rgb: bool = True
    pad_size_divisor: int = 32


@dataclass(frozen=True)
class ModelConfig:
    type: str = "FasterRCNN"
    data_preprocessor: DataPreprocessorConfig = DataPreprocessorConfig()
    backbone: BackboneConfig = BackboneConfig()
    neck: NeckConfig = NeckConfig()
    rpn_head: RPNHeadConfig = RPNHeadConfig()
    roi_head: RoIHeadConfig = RoIHeadConfig()
    train_cfg: TrainConfig = TrainConfig()
    test_cfg: TestConfig = TestConfig()


@dataclass(frozen=True)
class Config:
    """Top level, as in an mmdet config file: ``model`` plus the image scale the data
    pipeline resizes to (mmdet ``Resize(scale=(long, short), keep_ratio=True)``)."""

    model: ModelConfig = field(default_factory=ModelConfig)
    img_scale: tuple[int, int] = (1333, 800)


def r50_fpn(num_classes: int = 80) -> Config:
    """mmdet ``faster_rcnn_r50_fpn_1x``: ResNet-50 (BN, frozen stem + stage 1), FPN 256."""
    base = Config()
    return with_overrides(base, {"model.roi_head.bbox_head.num_classes": num_classes})


def cpu_small(num_classes: int = 3) -> Config:
    """ResNet-18 with GroupNorm trained from scratch, 64-channel FPN and RPN, 256-wide box
    head, 128 RoIs per image, fewer proposals and images of at most 512 x 320."""
    overrides: dict[str, Any] = {
        "model.backbone.depth": 18,
        "model.backbone.frozen_stages": -1,
        "model.backbone.norm_cfg": NormConfig(type="GN", num_groups=16),
        "model.backbone.norm_eval": False,
        "model.backbone.zero_init_residual": False,
        "model.neck.in_channels": (64, 128, 256, 512),
        "model.neck.out_channels": 64,
        "model.rpn_head.in_channels": 64,
        "model.rpn_head.feat_channels": 64,
        "model.roi_head.bbox_roi_extractor.out_channels": 64,
        "model.roi_head.bbox_head.in_channels": 64,
        "model.roi_head.bbox_head.fc_out_channels": 256,
        "model.roi_head.bbox_head.num_classes": num_classes,
        "model.train_cfg.rpn_proposal.nms_pre": 1000,
        "model.train_cfg.rpn_proposal.max_per_img": 300,
        "model.train_cfg.rcnn.sampler.num": 128,
        "model.test_cfg.rpn.nms_pre": 500,
        "model.test_cfg.rpn.max_per_img": 300,
        "img_scale": (512, 320),
    }
    return with_overrides(Config(), overrides)


PRESETS = {"r50_fpn": r50_fpn, "cpu_small": cpu_small}


def _replace_path(node: Any, keys: list[str], value: Any, full_key: str) -> Any:
    if not dataclasses.is_dataclass(node) or isinstance(node, type):
        raise KeyError(f"Cannot set {full_key!r}: {'.'.join(keys)} is below a plain value.")
    names = [f.name for f in dataclasses.fields(node)]
    if keys[0] not in names:
        raise KeyError(f"Unknown config key {full_key!r}: {keys[0]!r} is not one of {names}.")
    if len(keys) == 1:
        old = getattr(node, keys[0])
        if isinstance(old, tuple) and isinstance(value, list):
            value = tuple(value)
        return dataclasses.replace(node, **{keys[0]: value})  # type: ignore[type-var]
    child = _replace_path(getattr(node, keys[0]), keys[1:], value, full_key)
    return dataclasses.replace(node, **{keys[0]: child})  # type: ignore[type-var]


def with_overrides(cfg: Config, overrides: dict[str, Any]) -> Config:
    """A copy of ``cfg`` with dotted keys replaced: ``{"model.train_cfg.rpn.sampler.num": 512}``."""
    for key, value in overrides.items():
        cfg = _replace_path(cfg, key.split("."), value, key)
    return cfg


def get_preset(name: str, num_classes: int) -> Config:
    """Preset by name; raises ``KeyError`` naming the valid presets."""
    if name not in PRESETS:
        raise KeyError(f"Unknown preset {name!r}; choose one of {sorted(PRESETS)}.")
    return PRESETS[name](num_classes)


def to_dict(cfg: Config | ModelConfig) -> dict[str, Any]:
    """Plain nested dict (for logging the config beside a run)."""
    return dataclasses.asdict(cfg)
