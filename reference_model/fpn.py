"""FPN neck with mmdet's module names (``lateral_convs.i.conv``, ``fpn_convs.i.conv``).

Shape shorthand: N images, L_in input levels (strides 4..32), L = ``num_outs`` output levels,
C = ``out_channels``.

mmdet's ``FPN`` with ``add_extra_convs=False``: 1x1 lateral convolutions, top-down sum with
nearest upsampling to the finer map's exact size, a 3x3 output convolution per input level,
and each extra level (P6 for ``num_outs=5``) taken as ``max_pool2d(kernel 1, stride 2)`` of
the previous output, i.e. every other pixel of P5.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn


class _ConvModule(nn.Module):
    """A bare conv wrapped as ``.conv`` so names read ``lateral_convs.0.conv`` like mmcv's
    ``ConvModule`` without norm or activation."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


class FPN(nn.Module):
    """Feature pyramid: ``list[L_in]`` of backbone maps -> ``list[L]`` of ``Tensor[N, C, ., .]``."""

    def __init__(
        self, in_channels: Sequence[int], out_channels: int = 256, num_outs: int = 5
    ) -> None:
        super().__init__()
        if num_outs < len(in_channels):
            raise ValueError(
                f"num_outs ({num_outs}) must be at least the number of input levels ({len(in_channels)})."
            )
        self.in_channels = tuple(in_channels)
        self.out_channels = out_channels
        self.num_outs = num_outs
        self.lateral_convs = nn.ModuleList(_ConvModule(c, out_channels, 1) for c in in_channels)
        self.fpn_convs = nn.ModuleList(
            _ConvModule(out_channels, out_channels, 3) for _ in in_channels
        )
        for module in self.modules():  # mmdet: Xavier (uniform) convs, zero bias
            if isinstance(module, nn.Conv2d):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def forward(self, features: Sequence[Tensor]) -> list[Tensor]:
        if len(features) != len(self.in_channels):
            raise ValueError(f"Expected {len(self.in_channels)} feature maps, got {len(features)}.")
        laterals = [conv(x) for conv, x in zip(self.lateral_convs, features, strict=True)]
        for i in range(len(laterals) - 1, 0, -1):
            upsampled = F.interpolate(laterals[i], size=laterals[i - 1].shape[-2:], mode="nearest")
            laterals[i - 1] = laterals[i - 1] + upsampled
        outs = [conv(x) for conv, x in zip(self.fpn_convs, laterals, strict=True)]
        while len(outs) < self.num_outs:
            outs.append(F.max_pool2d(outs[-1], 1, stride=2))
        return outs
