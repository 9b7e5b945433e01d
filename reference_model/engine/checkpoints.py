"""Training checkpoints in mmcv's layout: ``{"meta", "state_dict", "optimizer", ...}`` saved as
``epoch_{n}.pth`` with ``latest.pth`` beside it; read back with ``weights_only=True``."""

from __future__ import annotations

import os
import pickle
import shutil
import stat
import time
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import CheckpointError


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


#: What :func:`save` writes and :func:`load` needs to resume.
_EXPECTED = "a training checkpoint (torch.save of meta with epoch and iter, state_dict, optimizer)"


def check_file(path: Path) -> None:
    """Fail early (before a dataset and a model are built) when ``path`` cannot be a checkpoint:
    missing, unreadable, a directory, a device or a FIFO."""
    try:
        mode = Path(path).stat().st_mode
    except FileNotFoundError:
        raise CheckpointError(f"no checkpoint at {path}") from None
    except OSError as err:
        raise CheckpointError(f"cannot read {path}: {err.strerror or err}") from None
    if not stat.S_ISREG(mode):
        raise CheckpointError(f"{path} is not a regular file; expected {_EXPECTED}")
    if not os.access(path, os.R_OK):
        raise CheckpointError(f"cannot read {path}: permission denied")


def load(path: Path) -> dict[str, Any]:
    """A training checkpoint (tensors, numbers, strings only): :class:`CheckpointError` for
    anything else, including a pickle that would run code (refused by ``weights_only``)."""
    check_file(path)
    try:
        with warnings.catch_warnings():  # "Detected pickle protocol 4": the error below says it
            warnings.simplefilter("ignore", UserWarning)
            loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # arbitrary bytes fail the unpickler in many ways (KeyError: 101)
        raise CheckpointError(f"{path} is not {_EXPECTED}: {_why(err)}") from None
    meta = loaded.get("meta") if isinstance(loaded, dict) else None
    if (
        not isinstance(meta, dict)
        or not {"epoch", "iter"} <= meta.keys()
        or not isinstance(loaded.get("state_dict"), dict)
        or not isinstance(loaded.get("optimizer"), dict)
    ):
        raise CheckpointError(f"{path} is not {_EXPECTED}")
    return loaded  # type: ignore[no-any-return]


def _why(err: Exception) -> str:
    """A short reason for a failed ``torch.load`` (torch's own refusal runs to a page)."""
    text = str(err).strip()
    if isinstance(err, pickle.UnpicklingError) and "weights_only" in text:
        return "it pickles objects other than tensors and plain data (refused: no code is run)"
    first = text.splitlines()[0] if text else type(err).__name__
    return first if len(first) <= 120 else first[:117] + "..."
