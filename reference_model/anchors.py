"""mmdet's ``AnchorGenerator`` (2.x/3.x semantics) for FPN levels.

Shape shorthand: L levels, A anchors per location (scales x ratios), H_l x W_l feature map
of level l, N_l = H_l·W_l·A anchors on level l.

Per level with stride s (and base size s): for each ratio r and scale k, the base anchor has
``h = s·k·sqrt(r)``, ``w = s·k / sqrt(r)`` and is centred at ``(0, 0)`` (mmdet's
``center_offset=0``): ``(-w/2, -h/2, w/2, h/2)``. Anchors at location (x, y) of the map add
``(x·s, y·s)``. Order is row-major over locations, then ratio-major over the A base anchors
(``scale_major=True`` with one scale), matching ``conv.permute(0, 2, 3, 1).reshape(-1, ...)``
of a head's [N, A·c, H, W] output.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor


class AnchorGenerator:
    """Anchors per FPN level in image pixels (a plain class)."""

    def __init__(
        self,
        strides: Sequence[int] = (4, 8, 16, 32, 64),
        ratios: Sequence[float] = (0.5, 1.0, 2.0),
        scales: Sequence[float] = (8.0,),
    ) -> None:
        if not strides or not ratios or not scales:
            raise ValueError(
                f"strides, ratios and scales must be non-empty, got {strides}, {ratios}, {scales}."
            )
        if any(r <= 0 for r in ratios) or any(k <= 0 for k in scales):
            raise ValueError(f"ratios and scales must be positive, got {ratios} and {scales}.")
        self.strides = tuple(int(s) for s in strides)
        self.ratios = tuple(float(r) for r in ratios)
        self.scales = tuple(float(k) for k in scales)

    @property
    def num_levels(self) -> int:
        return len(self.strides)

    @property
    def num_base_anchors(self) -> int:
        """A: anchors per location."""
        return len(self.ratios) * len(self.scales)

    def base_anchors(self, level: int) -> Tensor:
        """``Tensor[A, 4]`` for ``level``, centred at the origin; ratio-major, then scale."""
        stride = float(self.strides[level])
        # Same operation order as mmdet so that anchors agree to the last bit.
        h_ratios = torch.sqrt(torch.tensor(self.ratios, dtype=torch.float32))
        w_ratios = 1 / h_ratios
        scales = torch.tensor(self.scales, dtype=torch.float32)
        widths = (stride * w_ratios[:, None] * scales[None, :]).reshape(-1)
        heights = (stride * h_ratios[:, None] * scales[None, :]).reshape(-1)
        return torch.stack([-0.5 * widths, -0.5 * heights, 0.5 * widths, 0.5 * heights], dim=-1)

    def grid_anchors(
        self, featmap_sizes: Sequence[tuple[int, int]], device: torch.device | str = "cpu"
    ) -> list[Tensor]:
        """Anchors per level: ``list[L]`` of ``Tensor[N_l, 4]`` for maps of size (H_l, W_l)."""
        if len(featmap_sizes) != self.num_levels:
            raise ValueError(
                f"Expected {self.num_levels} feature map sizes (one per stride), got {len(featmap_sizes)}."
            )
        anchors = []
        for level, (height, width) in enumerate(featmap_sizes):
            stride = self.strides[level]
            shift_x = torch.arange(width, device=device, dtype=torch.float32) * stride
            shift_y = torch.arange(height, device=device, dtype=torch.float32) * stride
            yy, xx = torch.meshgrid(shift_y, shift_x, indexing="ij")
            shifts = torch.stack([xx, yy, xx, yy], dim=-1).reshape(-1, 1, 4)  # [H·W, 1, 4]
            base = self.base_anchors(level).to(device)[None]  # [1, A, 4]
            anchors.append((shifts + base).reshape(-1, 4))
        return anchors

    def valid_flags(
        self,
        featmap_sizes: Sequence[tuple[int, int]],
        pad_shape: tuple[int, int],
        device: torch.device | str = "cpu",
    ) -> list[Tensor]:
        """Per level ``Tensor[N_l]`` (bool): anchors whose location lies on this image's padded
        area ``pad_shape = (h, w)``; locations past ``ceil(h / stride)`` rows or
        ``ceil(w / stride)`` columns belong to batch padding only."""
        flags = []
        for level, (height, width) in enumerate(featmap_sizes):
            stride = self.strides[level]
            valid_h = min(math.ceil(pad_shape[0] / stride), height)
            valid_w = min(math.ceil(pad_shape[1] / stride), width)
            valid_y = torch.arange(height, device=device) < valid_h
            valid_x = torch.arange(width, device=device) < valid_w
            valid = (valid_y[:, None] & valid_x[None, :]).reshape(-1)
            flags.append(valid[:, None].expand(-1, self.num_base_anchors).reshape(-1))
        return flags
