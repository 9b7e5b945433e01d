"""mmdetection 2.x's detection pipeline, step by step, on tensors.

``Resize(img_scale=(1333, 800), keep_ratio=True)`` -> ``RandomFlip(flip_ratio=0.5)`` ->
``Normalize(mean, std, to_rgb=True)`` -> ``Pad(size_divisor=32)`` (the seed config's
``train_pipeline``); the test pipeline is the same without the flip. Images enter as RGB
``uint8 [H, W, 3]`` arrays (Pillow already decodes to RGB, so ``to_rgb`` needs no swap).

Shape shorthand: G ground-truth boxes, I ignore regions, all xyxy pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

#: mmdet's ImageNet statistics (RGB, 0-255 scale), from ``img_norm_cfg``.
MEAN = (123.675, 116.28, 103.53)
STD = (58.395, 57.12, 57.375)
PAD_SIZE_DIVISOR = 32
FLIP_RATIO = 0.5


@dataclass
class Prepared:
    """One image after the pipeline, with what is needed to map detections back.

    ``image: Tensor[3, h_pad, w_pad]`` normalised; ``image_size`` the resized (h, w) inside the
    padding; ``scale_factor`` (w_scale, h_scale) from original to resized pixels.
    """

    image: Tensor
    image_size: tuple[int, int]
    scale_factor: tuple[float, float]
    flipped: bool
    boxes: Tensor  # [G, 4] in resized (and flipped) pixels
    labels: Tensor  # [G]
    ignore_boxes: Tensor  # [I, 4]


def rescale_size(height: int, width: int, scale: tuple[int, int]) -> tuple[int, int]:
    """mmcv ``rescale_size``: the largest size with the long edge <= max(scale) and the short
    edge <= min(scale), keeping the aspect ratio; rounded half up. Returns (h, w)."""
    long_edge, short_edge = max(scale), min(scale)
    factor = min(long_edge / max(height, width), short_edge / min(height, width))
    return int(height * factor + 0.5), int(width * factor + 0.5)


def resize(
    image: np.ndarray, boxes: np.ndarray, scale: tuple[int, int]
) -> tuple[Tensor, Tensor, tuple[float, float]]:
    """Bilinear keep-ratio resize of ``uint8 [H, W, 3]``; boxes scaled and clipped to the image.

    Returns ``(Tensor[3, h, w] float in 0..255, boxes, (w_scale, h_scale))``.
    """
    height, width = image.shape[:2]
    new_h, new_w = rescale_size(height, width, scale)
    tensor = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float()
    if (new_h, new_w) != (height, width):
        tensor = F.interpolate(
            tensor[None], size=(new_h, new_w), mode="bilinear", align_corners=False
        )[0]
        tensor = tensor.round_().clamp_(0, 255)  # mmcv resizes uint8 images to uint8
    w_scale, h_scale = new_w / width, new_h / height
    scaled = torch.from_numpy(boxes).float().reshape(-1, 4) * torch.tensor(
        [w_scale, h_scale, w_scale, h_scale]
    )
    scaled[:, 0::2] = scaled[:, 0::2].clamp(0, new_w)
    scaled[:, 1::2] = scaled[:, 1::2].clamp(0, new_h)
    return tensor, scaled, (w_scale, h_scale)


def flip_boxes(boxes: Tensor, width: int) -> Tensor:
    """Horizontal flip of xyxy boxes in an image ``width`` wide (mmdet ``bbox_flip``)."""
    flipped = boxes.clone()
    flipped[:, 0] = width - boxes[:, 2]
    flipped[:, 2] = width - boxes[:, 0]
    return flipped


def normalize(image: Tensor) -> Tensor:
    """``(image - MEAN) / STD`` per channel."""
    mean = torch.tensor(MEAN, dtype=image.dtype).view(3, 1, 1)
    std = torch.tensor(STD, dtype=image.dtype).view(3, 1, 1)
    return (image - mean) / std


def pad_to_divisor(image: Tensor, divisor: int = PAD_SIZE_DIVISOR) -> Tensor:
    """Zero-pad bottom and right so both sides are multiples of ``divisor`` (mmdet ``Pad``)."""
    height, width = image.shape[-2:]
    pad_h = (divisor - height % divisor) % divisor
    pad_w = (divisor - width % divisor) % divisor
    return F.pad(image, (0, pad_w, 0, pad_h))


def draw_flip(generator: torch.Generator | None, flip_ratio: float = FLIP_RATIO) -> bool:
    """One draw of mmdet's ``RandomFlip``: True with probability ``flip_ratio``; no draw (and
    no flip) without a generator or with ratio 0."""
    if generator is None or flip_ratio <= 0:
        return False
    return bool(torch.rand((), generator=generator) < flip_ratio)


def prepare(
    image: np.ndarray,
    boxes: np.ndarray,
    labels: np.ndarray,
    ignore_boxes: np.ndarray,
    scale: tuple[int, int],
    generator: torch.Generator | None = None,
    flip_ratio: float = FLIP_RATIO,
    *,
    flip: bool | None = None,
) -> Prepared:
    """The whole pipeline. ``generator`` decides the flip (``None``: never flip, the test
    pipeline); ``flip`` is a flip already drawn with :func:`draw_flip` (loader workers)."""
    tensor, scaled, factor = resize(image, np.concatenate([boxes, ignore_boxes]), scale)
    gt, ignore = scaled[: len(boxes)], scaled[len(boxes) :]
    flipped = flip if flip is not None else draw_flip(generator, flip_ratio)
    height, width = tensor.shape[-2:]
    if flipped:
        tensor = tensor.flip(-1)
        gt, ignore = flip_boxes(gt, width), flip_boxes(ignore, width)
    return Prepared(
        image=pad_to_divisor(normalize(tensor)),
        image_size=(int(height), int(width)),
        scale_factor=factor,
        flipped=flipped,
        boxes=gt,
        labels=torch.from_numpy(labels).long(),
        ignore_boxes=ignore,
    )


def collate(batch: list[Prepared]) -> tuple[Tensor, list[tuple[int, int]], list[dict[str, Tensor]]]:
    """Stack into ``Tensor[N, 3, H, W]`` zero-padded to the largest image (mmcv ``collate``),
    with ``image_sizes`` and model targets."""
    height = max(p.image.shape[-2] for p in batch)
    width = max(p.image.shape[-1] for p in batch)
    images = batch[0].image.new_zeros((len(batch), 3, height, width))
    for i, p in enumerate(batch):
        images[i, :, : p.image.shape[-2], : p.image.shape[-1]] = p.image
    targets = [
        {"boxes": p.boxes, "labels": p.labels, "ignore_boxes": p.ignore_boxes} for p in batch
    ]
    return images, [p.image_size for p in batch], targets


def boxes_to_original(boxes: Tensor, scale_factor: tuple[float, float]) -> Tensor:
    """Detections in resized pixels -> original-image pixels (mmdet ``rescale=True``)."""
    w_scale, h_scale = scale_factor
    return boxes / boxes.new_tensor([w_scale, h_scale, w_scale, h_scale])
