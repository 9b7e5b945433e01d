"""ImageNet ResNet-50 weight files in torchvision's key layout, built without torchvision."""

from __future__ import annotations

import torch
from torch import Tensor

#: torchvision's ``resnet50``: (blocks, planes) per stage, Bottleneck expansion 4.
_TV_STAGES = ((3, 64), (4, 128), (6, 256), (3, 512))
_BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def torchvision_resnet50_shapes(with_batch_counters: bool = True) -> dict[str, tuple[int, ...]]:
    """Key -> shape of torchvision's ``resnet50().state_dict()``, written from its
    ``ResNet``/``Bottleneck`` definitions (torchvision is not installed here)."""
    shapes: dict[str, tuple[int, ...]] = {"conv1.weight": (64, 3, 7, 7)}

    def bn(name: str, channels: int) -> None:
        for field in _BN:
            if field == "num_batches_tracked":
                if with_batch_counters:
                    shapes[f"{name}.{field}"] = ()
            else:
                shapes[f"{name}.{field}"] = (channels,)

    bn("bn1", 64)
    inplanes = 64
    for stage, (blocks, planes) in enumerate(_TV_STAGES, start=1):
        for j in range(blocks):
            block = f"layer{stage}.{j}"
            shapes[f"{block}.conv1.weight"] = (planes, inplanes, 1, 1)
            bn(f"{block}.bn1", planes)
            shapes[f"{block}.conv2.weight"] = (planes, planes, 3, 3)
            bn(f"{block}.bn2", planes)
            shapes[f"{block}.conv3.weight"] = (planes * 4, planes, 1, 1)
            bn(f"{block}.bn3", planes * 4)
            if j == 0:
                shapes[f"{block}.downsample.0.weight"] = (planes * 4, inplanes, 1, 1)
                bn(f"{block}.downsample.1", planes * 4)
            inplanes = planes * 4
    shapes["fc.weight"], shapes["fc.bias"] = (1000, 2048), (1000,)
    return shapes


def torchvision_resnet50_state(seed: int, with_batch_counters: bool = True) -> dict[str, Tensor]:
    """Random values in those shapes (running variances positive, as in a trained file)."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in torchvision_resnet50_shapes(with_batch_counters).items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(3)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=generator) + 0.5
        else:
            state[key] = torch.randn(shape, generator=generator)
    return state
