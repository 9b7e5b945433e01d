"""Reference Faster R-CNN in pure PyTorch, with mmdetection's names and loss semantics.

Public API::

    from reference_model import build_faster_rcnn, presets
    model = build_faster_rcnn(presets.cpu_small(num_classes=3))
    losses = model.loss(images, targets, image_sizes)          # mmdet's loss dict
    losses, stats = model.loss_and_stats(images, targets, image_sizes, generator)
    detections = model.predict(images, image_sizes)

Depends on torch only; never imports losslens.
"""

from . import config as presets
from .build import build_faster_rcnn
from .config import Config, ModelConfig, cpu_small, get_preset, r50_fpn, with_overrides
from .faster_rcnn import LOSS_KEYS, FasterRCNN, total_loss
from .weights import (
    LoadReport,
    WeightsError,
    load_backbone_weights,
    load_checkpoint,
    load_detector_weights,
    load_torchvision_resnet,
)

__all__ = [
    "LOSS_KEYS",
    "Config",
    "FasterRCNN",
    "LoadReport",
    "ModelConfig",
    "WeightsError",
    "build_faster_rcnn",
    "cpu_small",
    "get_preset",
    "load_backbone_weights",
    "load_checkpoint",
    "load_detector_weights",
    "load_torchvision_resnet",
    "presets",
    "r50_fpn",
    "total_loss",
    "with_overrides",
]
