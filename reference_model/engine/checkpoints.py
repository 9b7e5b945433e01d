"""Training checkpoints in mmcv's layout: ``{"meta", "state_dict", "optimizer", ...}`` saved as
``epoch_{n}.pth`` with ``latest.pth`` beside it; read back with ``weights_only=True``."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn


def save(
    path: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    meta: dict[str, Any],
    extra: dict[str, Any],
) -> None:
    """Write ``path`` and point ``latest.pth`` at it (a copy where symlinks are refused)."""
    state = {
        "meta": {**meta, "time": time.asctime()},
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        **extra,
    }
    torch.save(state, path)
    latest = path.parent / "latest.pth"
    if latest.is_symlink() or latest.exists():
        latest.unlink()
    try:
        latest.symlink_to(path.name)
    except OSError:
        shutil.copyfile(path, latest)


def load(path: Path) -> dict[str, Any]:
    """A training checkpoint (tensors, numbers, strings only)."""
    if not Path(path).exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    loaded = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(loaded, dict) or "state_dict" not in loaded or "meta" not in loaded:
        raise ValueError(f"{path} is not a training checkpoint (expected meta and state_dict)")
    return loaded
