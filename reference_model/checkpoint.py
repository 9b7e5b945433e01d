"""Load weights by name: mmdet Faster R-CNN checkpoints and torchvision ImageNet ResNets.

Module and parameter names are mmdet's, so an mmdet state dict loads as is. Loading is
never strict: entries are matched by name, a tensor whose shape differs from the model's
is skipped (the model keeps its own, freshly initialised, value, e.g. the class head of a
model built for another number of classes), and everything is reported in a
:class:`LoadReport` whose ``messages()`` read like mmengine's warnings::

    size mismatch for roi_head.bbox_head.fc_cls.weight: copying a param with shape
    torch.Size([81, 1024]) from checkpoint, the shape in current model is torch.Size([4, 1024]).

Files are read with ``torch.load(..., weights_only=True)`` (no pickled code runs).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

StateDictSource = str | Path | Mapping[str, object]

# torchvision ImageNet ResNet keys that have no counterpart in a detection backbone.
TORCHVISION_IGNORED_PREFIXES = ("fc.",)


@dataclass
class LoadReport:
    """What a load did: names loaded, missing from the source, unexpected, shape mismatches."""

    loaded_keys: list[str] = field(default_factory=list)
    missing_keys: list[str] = field(default_factory=list)
    unexpected_keys: list[str] = field(default_factory=list)
    size_mismatches: list[str] = field(default_factory=list)

    @property
    def mismatched_keys(self) -> list[str]:
        return [
            line.split(":")[0].removeprefix("size mismatch for ") for line in self.size_mismatches
        ]

    def messages(self) -> list[str]:
        """mmengine-style lines (empty when the load matched exactly)."""
        lines = []
        if self.unexpected_keys:
            lines.append("unexpected key in source state_dict: " + ", ".join(self.unexpected_keys))
        if self.missing_keys:
            lines.append("missing keys in source state_dict: " + ", ".join(self.missing_keys))
        return lines + self.size_mismatches


def read_state_dict(source: StateDictSource) -> dict[str, Tensor]:
    """A bare state dict from a path (``torch.load(weights_only=True)``) or a mapping; a
    ``{"state_dict": ...}`` wrapper (mmdet/mmengine checkpoints) is unwrapped."""
    if isinstance(source, str | Path):
        loaded = torch.load(Path(source), map_location="cpu", weights_only=True)
    else:
        loaded = source
    if not isinstance(loaded, Mapping):
        raise TypeError(f"Expected a state dict (a mapping), got {type(loaded).__name__}.")
    if "state_dict" in loaded and isinstance(loaded["state_dict"], Mapping):
        loaded = loaded["state_dict"]
    state = {}
    for key, value in loaded.items():
        if not isinstance(value, Tensor):
            raise TypeError(f"State dict entry {key!r} is a {type(value).__name__}, not a Tensor.")
        state[key.removeprefix("module.")] = value
    return state


def load_checkpoint(
    model: nn.Module,
    source: StateDictSource,
    *,
    prefix: str = "",
    ignored_prefixes: tuple[str, ...] = (),
) -> LoadReport:
    """Copy tensors from ``source`` into ``model`` by name and report the differences.

    Args:
        prefix: prepended to every source key (``"backbone."`` loads a bare ResNet state dict
            into a whole detector).
        ignored_prefixes: source keys starting with these are dropped silently.
    """
    source_state = {
        prefix + key: value
        for key, value in read_state_dict(source).items()
        if not key.startswith(ignored_prefixes)
    }
    own_state = model.state_dict()
    report = LoadReport()
    to_load = {}
    for key, value in source_state.items():
        if key not in own_state:
            report.unexpected_keys.append(key)
        elif value.shape != own_state[key].shape:
            report.mismatched_keys.append(key)
            report.size_mismatches.append(
                f"size mismatch for {key}: copying a param with shape {value.shape} from "
                f"checkpoint, the shape in current model is {own_state[key].shape}."
            )
        else:
            to_load[key] = value
            report.loaded_keys.append(key)
    report.missing_keys = [
        k for k in own_state if k not in to_load and k not in _mismatched(report)
    ]
    model.load_state_dict(to_load, strict=False)
    return report


def _mismatched(report: LoadReport) -> set[str]:
    return set(report.mismatched_keys)


def load_torchvision_resnet(backbone: nn.Module, source: StateDictSource) -> LoadReport:
    """Load torchvision ImageNet ResNet weights (``resnet50-*.pth``) into a :class:`ResNet`
    backbone; names match directly and ``fc.*`` is ignored. Pass ``model.backbone``."""
    return load_checkpoint(backbone, source, ignored_prefixes=TORCHVISION_IGNORED_PREFIXES)
