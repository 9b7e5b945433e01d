"""mmdet's ``DeltaXYWHBBoxCoder``: boxes <-> normalised (dx, dy, dw, dh) deltas.

Shape shorthand: N boxes, K classes (decode accepts ``Tensor[N, 4*K]`` class-specific deltas).

Encoding a target box g against a reference box p (centre x, y; width w, height h; no ``+1``)::

    dx = (gx - px) / pw,  dy = (gy - py) / ph,  dw = log(gw / pw),  dh = log(gh / ph)
    deltas = (d - target_means) / target_stds

Decoding inverts that, with ``dw``/``dh`` clamped to ``±|log(wh_ratio_clip)|`` so that a
box never grows or shrinks by more than ``1 / wh_ratio_clip`` (the default 16/1000 gives
``log(1000/16) ≈ 4.135``: 62.5x), and the result clipped to the image when a size is given.
mmdet's optional ``add_ctr_clamp`` is not implemented (it is off in Faster R-CNN configs).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

# mmdet's default: deltas may scale a box's width or height by at most 1000/16.
DEFAULT_WH_RATIO_CLIP = 16 / 1000


class DeltaXYWHBBoxCoder:
    """Encode/decode xyxy boxes as normalised centre/size deltas (a plain class, no state)."""

    def __init__(
        self,
        target_means: Sequence[float] = (0.0, 0.0, 0.0, 0.0),
        target_stds: Sequence[float] = (1.0, 1.0, 1.0, 1.0),
        wh_ratio_clip: float = DEFAULT_WH_RATIO_CLIP,
        clip_border: bool = True,
    ) -> None:
        if len(target_means) != 4 or len(target_stds) != 4:
            raise ValueError(
                f"target_means and target_stds need 4 values each, got {target_means} and {target_stds}."
            )
        if any(s <= 0 for s in target_stds):
            raise ValueError(f"target_stds must be positive, got {target_stds}.")
        if not 0 < wh_ratio_clip < 1:
            raise ValueError(f"wh_ratio_clip must be in (0, 1), got {wh_ratio_clip}.")
        self.target_means = tuple(float(m) for m in target_means)
        self.target_stds = tuple(float(s) for s in target_stds)
        self.wh_ratio_clip = wh_ratio_clip
        self.clip_border = clip_border
        self.max_log_ratio = abs(math.log(wh_ratio_clip))

    def encode(self, boxes: Tensor, gt_boxes: Tensor) -> Tensor:
        """Deltas ``Tensor[N, 4]`` that move ``boxes: Tensor[N, 4]`` onto ``gt_boxes: Tensor[N, 4]``."""
        boxes, gt_boxes = boxes.float(), gt_boxes.float()
        pw = boxes[:, 2] - boxes[:, 0]
        ph = boxes[:, 3] - boxes[:, 1]
        px = (boxes[:, 0] + boxes[:, 2]) * 0.5
        py = (boxes[:, 1] + boxes[:, 3]) * 0.5
        gw = gt_boxes[:, 2] - gt_boxes[:, 0]
        gh = gt_boxes[:, 3] - gt_boxes[:, 1]
        gx = (gt_boxes[:, 0] + gt_boxes[:, 2]) * 0.5
        gy = (gt_boxes[:, 1] + gt_boxes[:, 3]) * 0.5
        deltas = torch.stack(
            [(gx - px) / pw, (gy - py) / ph, torch.log(gw / pw), torch.log(gh / ph)], dim=1
        )
        means = deltas.new_tensor(self.target_means)
        stds = deltas.new_tensor(self.target_stds)
        return (deltas - means) / stds

    def decode(
        self, boxes: Tensor, deltas: Tensor, max_shape: tuple[int, int] | None = None
    ) -> Tensor:
        """Apply ``deltas: Tensor[N, 4*K]`` to ``boxes: Tensor[N, 4]``; returns ``Tensor[N, 4*K]``.

        Args:
            max_shape: ``(height, width)``; when given (and ``clip_border``), x is clamped to
                ``[0, width]`` and y to ``[0, height]``.
        """
        num_boxes, num_classes = deltas.shape[0], deltas.shape[1] // 4  # explicit: N may be 0
        deltas = deltas.reshape(num_boxes, num_classes, 4)  # [N, K, 4]
        means = deltas.new_tensor(self.target_means)
        stds = deltas.new_tensor(self.target_stds)
        deltas = deltas * stds + means
        boxes = boxes[:, None, :4].to(deltas.dtype)  # [N, 1, 4]
        centres = (boxes[..., :2] + boxes[..., 2:]) * 0.5
        sizes = boxes[..., 2:] - boxes[..., :2]
        new_centres = centres + sizes * deltas[..., :2]
        log_ratio = deltas[..., 2:].clamp(min=-self.max_log_ratio, max=self.max_log_ratio)
        new_sizes = sizes * log_ratio.exp()
        decoded = torch.cat([new_centres - new_sizes * 0.5, new_centres + new_sizes * 0.5], dim=-1)
        if self.clip_border and max_shape is not None:
            height, width = max_shape
            decoded = torch.stack(
                [
                    decoded[..., 0].clamp(min=0, max=width),
                    decoded[..., 1].clamp(min=0, max=height),
                    decoded[..., 2].clamp(min=0, max=width),
                    decoded[..., 3].clamp(min=0, max=height),
                ],
                dim=-1,
            )
        return decoded.reshape(num_boxes, num_classes * 4)
