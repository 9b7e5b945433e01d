"""Load weights by name: mmdet Faster R-CNN checkpoints and ImageNet ResNets.

Module and parameter names are mmdet's, so an mmdet state dict loads as is. Two levels:

- :func:`load_checkpoint` is never strict, as mmengine's ``load_checkpoint``: entries are
  matched by name, a tensor whose shape differs from the model's is skipped (the model keeps
  its own, freshly initialised, value), and everything is reported in a :class:`LoadReport`
  whose ``messages()`` read like mmengine's warnings::

      size mismatch for roi_head.bbox_head.fc_cls.weight: copying a param with shape
      torch.Size([81, 1024]) from checkpoint, the shape in current model is torch.Size([4, 1024]).

- :func:`load_detector_weights` (``--load-from``) and :func:`load_backbone_weights`
  (``--backbone-weights``) load the same way but raise :class:`WeightsError`, one sentence
  naming the file and the first offending keys, when the file does not fit the model. The one
  tolerated difference is the class-dependent box head (``fc_cls``, ``fc_reg``) of a detector
  trained on another number of classes: it is skipped with a one-line note, as mmdet's
  ``load_from`` fine-tuning from COCO's 80 classes does.

Files are read with ``torch.load(..., weights_only=True)``: no pickled code runs. Objects of
classes outside torch's allowlist (mmengine 3.x checkpoints keep ``HistoryBuffer`` objects and
numpy scalars in ``message_hub`` and ``meta``) are rebuilt as inert :class:`_StandIn` records,
which the state dict never contains.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from .errors import CheckpointError

StateDictSource = str | Path | Mapping[str, object]

# torchvision ImageNet ResNet keys that have no counterpart in a detection backbone.
TORCHVISION_IGNORED_PREFIXES = ("fc.",)
#: Where a detector checkpoint (mmdet, mmpretrain/mmcls) keeps its backbone.
BACKBONE_PREFIX = "backbone."
#: The layers whose shapes depend on the number of classes (``K + 1`` scores, ``4 K`` deltas).
CLASS_HEAD_PREFIXES = ("roi_head.bbox_head.fc_cls.", "roi_head.bbox_head.fc_reg.")
_FC_CLS_WEIGHT = "roi_head.bbox_head.fc_cls.weight"
#: Buffers a file may lack: BatchNorm's batch counter, added in PyTorch 0.4.1, is missing from
#: older files (torchvision's ``resnet50-19c8e357.pth``, mmdet's ``torchvision://resnet50``);
#: it only sets the running-average momentum when ``momentum=None``, which no layer here uses.
OPTIONAL_KEY_SUFFIXES = (".num_batches_tracked",)
#: Keys named in a :class:`WeightsError` before "(+N more)".
_KEYS_SHOWN = 3


class WeightsError(CheckpointError, ValueError):
    """A weights file does not fit the model; the message names the file and the first
    offending keys."""


class MissingWeightsError(WeightsError, FileNotFoundError):
    """The weights file named does not exist (a :class:`WeightsError` for the CLI, and still
    the :class:`FileNotFoundError` it always was for callers)."""


@dataclass
class LoadReport:
    """What a load did: names loaded, missing from the source, unexpected, shape mismatches;
    ``ignored_keys`` were dropped by layout rules (``fc.*``, non-backbone entries) and
    ``notes`` are one-line remarks for the user (a skipped class head)."""

    loaded_keys: list[str] = field(default_factory=list)
    missing_keys: list[str] = field(default_factory=list)
    unexpected_keys: list[str] = field(default_factory=list)
    size_mismatches: list[str] = field(default_factory=list)
    ignored_keys: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

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


class _StandIn:
    """An inert record in place of an object whose class torch does not allowlist (mmengine's
    ``HistoryBuffer``, numpy scalars and arrays in a checkpoint's ``meta``): it keeps the
    pickled arguments and state and runs none of the named class's code."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args
        self.kwargs = kwargs

    def __setstate__(self, state: Any) -> None:
        self.state = state


def _name(source: StateDictSource) -> str:
    return str(source) if isinstance(source, str | Path) else "the given state dict"


def _torch_load(path: Path) -> Any:
    """``torch.load(weights_only=True)``; a file that also pickles foreign objects is read
    again with each foreign class name bound to :class:`_StandIn`."""
    if not path.exists():
        raise MissingWeightsError(f"no weights file at {path}")
    unreadable = (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        pass  # foreign classes (read below), or no pickle at all
    except unreadable:
        raise WeightsError(f"{path} is not a PyTorch weights file (torch.save output)") from None
    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
        with torch.serialization.safe_globals([(_StandIn, name) for name in names]):
            return torch.load(path, map_location="cpu", weights_only=True)
    except unreadable:
        raise WeightsError(f"{path} is not a PyTorch weights file (torch.save output)") from None


def read_state_dict(source: StateDictSource) -> dict[str, Tensor]:
    """A bare state dict from a path (``torch.load(weights_only=True)``) or a mapping; a
    ``{"state_dict": ...}`` wrapper (mmdet/mmengine/mmcv checkpoints, ours) is unwrapped and a
    DataParallel ``module.`` prefix dropped. Raises :class:`WeightsError` for anything else."""
    loaded = _torch_load(Path(source)) if isinstance(source, str | Path) else source
    if not isinstance(loaded, Mapping):
        raise WeightsError(
            f"{_name(source)} holds a {type(loaded).__name__}, not a state dict (a mapping)"
        )
    if "state_dict" in loaded and isinstance(loaded["state_dict"], Mapping):
        loaded = loaded["state_dict"]
    state = {}
    for key, value in loaded.items():
        if not isinstance(value, Tensor):
            raise WeightsError(
                f"{_name(source)}: state dict entry {key!r} is a {type(value).__name__}, "
                "not a tensor"
            )
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
    return _load_state(model, read_state_dict(source), prefix, ignored_prefixes)


def _load_state(
    model: nn.Module, state: dict[str, Tensor], prefix: str, ignored_prefixes: tuple[str, ...]
) -> LoadReport:
    own_state = model.state_dict()
    report = LoadReport()
    to_load = {}
    for key, value in state.items():
        if key.startswith(ignored_prefixes):
            report.ignored_keys.append(key)
            continue
        key = prefix + key
        if key not in own_state:
            report.unexpected_keys.append(key)
        elif value.shape != own_state[key].shape:
            report.size_mismatches.append(
                f"size mismatch for {key}: copying a param with shape {value.shape} from "
                f"checkpoint, the shape in current model is {own_state[key].shape}."
            )
        else:
            to_load[key] = value
            report.loaded_keys.append(key)
    mismatched = set(report.mismatched_keys)
    report.missing_keys = [k for k in own_state if k not in to_load and k not in mismatched]
    model.load_state_dict(to_load, strict=False)
    return report


def load_torchvision_resnet(backbone: nn.Module, source: StateDictSource) -> LoadReport:
    """Load torchvision ImageNet ResNet weights (``resnet50-*.pth``) into a :class:`ResNet`
    backbone; names match directly and ``fc.*`` is ignored. Pass ``model.backbone``.
    Never strict; :func:`load_backbone_weights` checks the fit and reads more layouts."""
    return load_checkpoint(backbone, source, ignored_prefixes=TORCHVISION_IGNORED_PREFIXES)


def _first(keys: list[str]) -> str:
    shown = ", ".join(keys[:_KEYS_SHOWN])
    return shown + (f" (+{len(keys) - _KEYS_SHOWN} more)" if len(keys) > _KEYS_SHOWN else "")


def _required(keys: list[str]) -> list[str]:
    return [k for k in keys if not k.endswith(OPTIONAL_KEY_SUFFIXES)]


def _misfit(report: LoadReport, tolerated: tuple[str, ...] = ()) -> str | None:
    """The first way the file fails to fit, as a clause; None when it fits."""
    missing = _required(report.missing_keys)
    mismatched = [k for k in report.mismatched_keys if not k.startswith(tolerated)]
    parts = []
    if report.unexpected_keys:
        parts.append(f"unknown keys {_first(report.unexpected_keys)}")
    if missing:
        parts.append(f"missing keys {_first(missing)}")
    if mismatched:
        parts.append(f"keys of another shape {_first(mismatched)}")
    return "; ".join(parts) or None


def _backbone_entries(state: dict[str, Tensor]) -> tuple[dict[str, Tensor], list[str]]:
    """The bare ResNet entries of ``state`` and the keys dropped on the way.

    mmdet/mmpretrain/mmcls keep the backbone under ``backbone.``; the rest (``head.fc.*``, a
    detector's ``neck.*``) is dropped, as mmengine's ``Pretrained(prefix='backbone.')`` does.
    torchvision's names are bare and its classifier ``fc.*`` is dropped."""
    if any(key.startswith(BACKBONE_PREFIX) for key in state):
        kept = {
            key.removeprefix(BACKBONE_PREFIX): value
            for key, value in state.items()
            if key.startswith(BACKBONE_PREFIX)
        }
        return kept, [key for key in state if not key.startswith(BACKBONE_PREFIX)]
    kept = {k: v for k, v in state.items() if not k.startswith(TORCHVISION_IGNORED_PREFIXES)}
    return kept, [key for key in state if key.startswith(TORCHVISION_IGNORED_PREFIXES)]


def _describe(backbone: nn.Module) -> str:
    depth, norm = getattr(backbone, "depth", None), getattr(backbone, "norm_type", None)
    if depth is None:
        return f"a {type(backbone).__name__}"
    return f"a ResNet-{depth} with {'BatchNorm' if norm == 'BN' else 'GroupNorm'}"


def load_backbone_weights(backbone: nn.Module, source: StateDictSource) -> LoadReport:
    """``--backbone-weights``: ImageNet ResNet weights into ``model.backbone``.

    Layouts: torchvision's (``conv1.weight``, ``bn1.*``, ``layer1.0.conv1.weight``, ...;
    ``fc.*`` ignored), and mmdet/mmpretrain/mmcls's (the same names under ``backbone.``, bare or
    in a ``{"state_dict": ...}`` checkpoint; entries outside ``backbone.`` ignored). Raises
    :class:`WeightsError` when a key is unknown, missing (BatchNorm batch counters excepted) or
    of another shape."""
    state, ignored = _backbone_entries(read_state_dict(source))
    report = _load_state(backbone, state, "", ())
    report.ignored_keys = ignored
    misfit = _misfit(report)
    if misfit is not None:
        raise WeightsError(
            f"{_name(source)} does not fit the backbone ({_describe(backbone)}): {misfit}; "
            "expected ResNet weights named as torchvision's (conv1.weight, bn1.*, layer1.0.*) "
            f"or as mmdet/mmpretrain's under {BACKBONE_PREFIX!r}"
        )
    return report


def _num_classes(fc_cls_weight: Tensor) -> int:
    return int(fc_cls_weight.shape[0]) - 1  # K classes + background


def load_detector_weights(model: nn.Module, source: StateDictSource) -> LoadReport:
    """``--load-from``: a whole detector's weights (an mmdet 2.x/3.x or our checkpoint, or a
    bare state dict) into ``model``.

    When the file was trained on another number of classes, ``fc_cls`` and ``fc_reg`` keep
    their initialisation and ``report.notes`` says so in one line. Entries the model has no
    place for are an error, as are missing entries (BatchNorm batch counters excepted) and any
    other shape difference: :class:`WeightsError` names the file and the first keys."""
    state = read_state_dict(source)
    report = _load_state(model, state, "", ())
    misfit = _misfit(report, tolerated=CLASS_HEAD_PREFIXES)
    if misfit is not None:
        raise WeightsError(f"{_name(source)} does not fit the detector: {misfit}")
    if report.size_mismatches:
        theirs = _num_classes(state[_FC_CLS_WEIGHT]) if _FC_CLS_WEIGHT in state else "?"
        ours = _num_classes(model.state_dict()[_FC_CLS_WEIGHT])
        report.notes.append(
            f"{_name(source)} was trained on {theirs} classes and this model has {ours}: "
            "roi_head.bbox_head.fc_cls and fc_reg are not loaded and train from their "
            "initialisation (as mmdet's load_from fine-tuning does)"
        )
    return report
