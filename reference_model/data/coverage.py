"""Anchor coverage: which ground truths the RPN's anchors can reach, per FPN level.

For each training box, resized as the training pipeline resizes its image (keep-ratio to the
config's ``img_scale``, padded to ``pad_size_divisor``), the best IoU over every anchor of
:class:`~reference_model.anchors.AnchorGenerator` with the config's scales, ratios and strides
(overlaps by :func:`~reference_model.ops.box_overlaps`, as the assigner computes them) decides:

- ``positive``: best IoU >= ``pos_iou_thr``: the box gets ordinary positive anchors;
- ``low_quality_only``: ``min_pos_iou`` <= best < ``pos_iou_thr``: only the assigner's
  low-quality match gives it its best anchors;
- ``unreached``: best < ``min_pos_iou``: no anchor is positive for it, so nothing learns it
  (with many such boxes ``loss_rpn_bbox`` sits near 0 and ``acc`` near 100).

Each box counts at the level of its best anchor. Shape shorthand: G boxes, N anchors.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import Tensor

from ..anchors import AnchorGenerator
from ..config import Config
from ..ops import box_overlaps
from .kitti import Sample
from .transforms import rescale_size

#: How many box sizes that no anchor reaches are kept as evidence.
MAX_UNREACHED_SIZES = 20


@dataclass(frozen=True)
class LevelCoverage:
    """One FPN level: the boxes whose best anchor is on it, by outcome."""

    stride: int
    gts: int
    positive: int
    low_quality_only: int
    unreached: int


@dataclass(frozen=True)
class AnchorCoverage:
    """Coverage of the training boxes; ``unreached_sizes`` are (w, h) in resized pixels."""

    img_scale: tuple[int, int]
    pos_iou_thr: float
    min_pos_iou: float
    levels: tuple[LevelCoverage, ...]
    unreached_sizes: tuple[tuple[float, float], ...]

    @property
    def unreached(self) -> int:
        return sum(level.unreached for level in self.levels)

    @property
    def low_quality_only(self) -> int:
        return sum(level.low_quality_only for level in self.levels)

    @property
    def gts(self) -> int:
        return sum(level.gts for level in self.levels)

    def to_dict(self) -> dict[str, object]:
        return {
            **asdict(self),
            "gts": self.gts,
            "low_quality_only": self.low_quality_only,
            "unreached": self.unreached,
        }


def _padded(size: int, divisor: int) -> int:
    return int(math.ceil(size / divisor) * divisor)


class _Anchors:
    """Anchors per padded image shape, built once per shape."""

    def __init__(self, config: Config) -> None:
        cfg = config.model.rpn_head.anchor_generator
        self.generator = AnchorGenerator(cfg.strides, cfg.ratios, cfg.scales)
        self.divisor = config.model.data_preprocessor.pad_size_divisor
        self._cache: dict[tuple[int, int], list[Tensor]] = {}

    def for_image(self, height: int, width: int) -> list[Tensor]:
        pad = (_padded(height, self.divisor), _padded(width, self.divisor))
        if pad not in self._cache:
            sizes = [(math.ceil(pad[0] / s), math.ceil(pad[1] / s)) for s in self.generator.strides]
            self._cache[pad] = self.generator.grid_anchors(sizes)
        return self._cache[pad]


def best_iou_per_level(boxes: Tensor, anchors_per_level: list[Tensor]) -> Tensor:
    """``Tensor[G, L]``: each box's best IoU with the anchors of each level."""
    columns = [box_overlaps(boxes, anchors).max(dim=1).values for anchors in anchors_per_level]
    return torch.stack(columns, dim=1)


def anchor_coverage(samples: list[Sample], config: Config) -> AnchorCoverage:
    """Coverage of the ground-truth boxes of ``samples`` (their ``image_size`` must be set)."""
    anchors = _Anchors(config)
    assigner = config.model.train_cfg.rpn.assigner
    strides = anchors.generator.strides
    counts = {s: [0, 0, 0, 0] for s in strides}  # gts, positive, low quality, unreached
    unreached: list[tuple[float, float]] = []
    for sample in samples:
        boxes = sample.annotation.boxes
        if len(boxes) == 0 or sample.image_size is None:
            continue
        height, width = sample.image_size
        new_h, new_w = rescale_size(height, width, config.img_scale)
        scale = torch.tensor([new_w / width, new_h / height] * 2)
        resized = torch.from_numpy(boxes).float() * scale  # [G, 4]
        best = best_iou_per_level(resized, anchors.for_image(new_h, new_w))  # [G, L]
        values, levels = best.max(dim=1)
        for box, iou, level in zip(resized.tolist(), values.tolist(), levels.tolist(), strict=True):
            row = counts[strides[level]]
            row[0] += 1
            if iou >= assigner.pos_iou_thr:
                row[1] += 1
            elif iou >= assigner.min_pos_iou:
                row[2] += 1
            else:
                row[3] += 1
                if len(unreached) < MAX_UNREACHED_SIZES:
                    unreached.append((round(box[2] - box[0], 1), round(box[3] - box[1], 1)))
    return AnchorCoverage(
        img_scale=tuple(config.img_scale),  # type: ignore[arg-type]
        pos_iou_thr=assigner.pos_iou_thr,
        min_pos_iou=assigner.min_pos_iou,
        levels=tuple(LevelCoverage(s, *counts[s]) for s in strides),
        unreached_sizes=tuple(unreached),
    )
