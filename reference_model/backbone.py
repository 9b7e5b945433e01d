"""ResNet-18/34/50/101 backbone with mmdet's module names (``style='pytorch'``).

Shape shorthand: N images, C_i channels of stage i, outputs at strides 4, 8, 16, 32.

Names match mmdet's ``ResNet`` (and torchvision's, so ImageNet weights load by name):
``conv1``, ``bn1``, ``layer{1..4}.{j}.conv{1,2,3}``, ``layer{i}.{j}.bn{k}``,
``layer{i}.{j}.downsample.{0,1}``. With GroupNorm the norm layers are named ``gn{k}`` as
mmcv's ``build_norm_layer`` names them. ``style='pytorch'`` puts the stride on the 3x3
convolution of a bottleneck.

``frozen_stages=k`` freezes the stem and stages 1..k (no gradients, eval mode);
``norm_eval=True`` keeps every BatchNorm in eval mode during training (running statistics
are used and not updated; the affine parameters still train), as mmdet's Faster R-CNN does
with ImageNet-pretrained BN.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

NORM_TYPES = ("BN", "GN")
ARCH_SETTINGS: dict[int, tuple[str, tuple[int, int, int, int]]] = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
}
EXPANSION = {"basic": 1, "bottleneck": 4}


def _make_norm(norm_type: str, channels: int, num_groups: int) -> nn.Module:
    if norm_type == "BN":
        return nn.BatchNorm2d(channels)
    return nn.GroupNorm(num_groups, channels)


def _conv(in_channels: int, out_channels: int, kernel: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel, stride, padding=kernel // 2, bias=False)


class _Block(nn.Module):
    """Residual block; norm layers are registered under mmdet's ``bn{k}``/``gn{k}`` names."""

    def __init__(
        self,
        kind: str,
        in_channels: int,
        planes: int,
        stride: int,
        norm_type: str,
        num_groups: int,
    ) -> None:
        super().__init__()
        out_channels = planes * EXPANSION[kind]
        prefix = norm_type.lower()
        if kind == "basic":
            convs = [_conv(in_channels, planes, 3, stride), _conv(planes, planes, 3)]
        else:
            convs = [
                _conv(in_channels, planes, 1),
                _conv(planes, planes, 3, stride),
                _conv(planes, out_channels, 1),
            ]
        self.norm_names = []
        for k, conv in enumerate(convs, start=1):
            self.add_module(f"conv{k}", conv)
            self.add_module(f"{prefix}{k}", _make_norm(norm_type, conv.out_channels, num_groups))
            self.norm_names.append(f"{prefix}{k}")
        self.num_convs = len(convs)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                _make_norm(norm_type, out_channels, num_groups),
            )

    @property
    def last_norm(self) -> nn.Module:
        return getattr(self, self.norm_names[-1])

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = x
        for k in range(1, self.num_convs + 1):
            out = getattr(self, self.norm_names[k - 1])(getattr(self, f"conv{k}")(out))
            if k < self.num_convs:
                out = self.relu(out)
        return self.relu(out + identity)


class ResNet(nn.Module):
    """ResNet returning the feature maps of ``out_indices`` stages (strides 4, 8, 16, 32)."""

    def __init__(
        self,
        depth: int = 50,
        out_indices: Sequence[int] = (0, 1, 2, 3),
        frozen_stages: int = 1,
        norm_type: str = "BN",
        norm_num_groups: int = 32,
        norm_eval: bool = True,
        zero_init_residual: bool = True,
        base_channels: int = 64,
    ) -> None:
        super().__init__()
        if depth not in ARCH_SETTINGS:
            raise ValueError(f"depth must be one of {sorted(ARCH_SETTINGS)}, got {depth}.")
        if norm_type not in NORM_TYPES:
            raise ValueError(f"norm_type must be one of {NORM_TYPES}, got {norm_type!r}.")
        if not -1 <= frozen_stages <= 4:
            raise ValueError(f"frozen_stages must be in [-1, 4], got {frozen_stages}.")
        if not out_indices or any(i not in range(4) for i in out_indices):
            raise ValueError(f"out_indices must be a non-empty subset of 0..3, got {out_indices}.")
        kind, blocks_per_stage = ARCH_SETTINGS[depth]
        self.depth = depth
        self.out_indices = tuple(out_indices)
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.norm_type = norm_type
        self.stem_norm_name = f"{norm_type.lower()}1"
        self.conv1 = nn.Conv2d(3, base_channels, 7, stride=2, padding=3, bias=False)
        self.add_module(self.stem_norm_name, _make_norm(norm_type, base_channels, norm_num_groups))
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        in_channels = base_channels
        self.out_channels: list[int] = []
        for stage, num_blocks in enumerate(blocks_per_stage):
            planes = base_channels * 2**stage
            blocks = []
            for j in range(num_blocks):
                stride = 2 if (j == 0 and stage > 0) else 1
                blocks.append(_Block(kind, in_channels, planes, stride, norm_type, norm_num_groups))
                in_channels = planes * EXPANSION[kind]
            self.add_module(f"layer{stage + 1}", nn.Sequential(*blocks))
            self.out_channels.append(in_channels)
        self._init_weights(zero_init_residual)
        self._freeze_stages()

    def _init_weights(self, zero_init_residual: bool) -> None:
        """mmdet's ResNet init: Kaiming (fan_out) convs, norms at weight 1 / bias 0, and the
        last norm of each residual branch at 0 when ``zero_init_residual``."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d | nn.GroupNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        if zero_init_residual:
            for module in self.modules():
                if isinstance(module, _Block):
                    norm = module.last_norm
                    assert isinstance(norm, nn.BatchNorm2d | nn.GroupNorm)
                    nn.init.zeros_(norm.weight)

    def _frozen_modules(self) -> list[nn.Module]:
        if self.frozen_stages < 0:
            return []
        modules: list[nn.Module] = [self.conv1, getattr(self, self.stem_norm_name)]
        modules += [getattr(self, f"layer{i}") for i in range(1, self.frozen_stages + 1)]
        return modules

    def _freeze_stages(self) -> None:
        for module in self._frozen_modules():
            module.eval()
            for param in module.parameters():
                param.requires_grad_(False)

    def train(self, mode: bool = True) -> ResNet:
        """Switch mode, keeping frozen stages and (with ``norm_eval``) BatchNorms in eval."""
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for module in self.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()
        return self

    def forward(self, images: Tensor) -> list[Tensor]:
        """``images: Tensor[N, 3, H, W]`` -> features ``list`` of ``Tensor[N, C_i, H/s_i, W/s_i]``."""
        x = self.maxpool(self.relu(getattr(self, self.stem_norm_name)(self.conv1(images))))
        outs = []
        for stage in range(4):
            x = getattr(self, f"layer{stage + 1}")(x)
            if stage in self.out_indices:
                outs.append(x)
        return outs
