"""The options of a reference run, declared once: :class:`RunOptions`.

Each field is one option a user can give (``losslens train-reference --epochs 12`` ->
``RunOptions(epochs=12)``); ``None`` means "not given": the preset, the dataset's recipe or
the ``--like`` run decides. Fields that change a run setting carry the mmdet dotted key they
set (``epochs`` -> ``runner.max_epochs``) in their metadata; :data:`OPTIONS` lists them for the
resolver (:func:`reference_model.engine.settings.resolve`). A field with a ``parse`` function
takes its command-line text through it (``"640,192"`` -> ``(640, 192)``).

To add an option: one field here (with ``key=`` when it changes a run setting), one
``typer.Option`` in ``losslens/cli/train_reference.py`` (typer needs explicit parameters, and
the CLI must not import this package when it starts), and its use where it is resolved.
Bad values raise :class:`~reference_model.errors.SettingsError` naming the option.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ..errors import SettingsError

PRESETS = ("r50_fpn", "cpu_small")
DEVICES = ("auto", "cpu", "cuda")
#: Loader worker processes chosen when ``--workers`` is not given: one per core beyond the
#: training process, at most this many (kitti_tiny decodes 50 PNGs an epoch; more workers
#: only add start-up time).
MAX_AUTO_WORKERS = 4


def parse_img_scale(text: str) -> tuple[int, int]:
    """``"640,192"`` (or ``640x192``) -> ``(640, 192)``: mmdet's ``img_scale`` (long edge,
    short edge) for a keep-ratio resize."""
    parts = text.replace("x", ",").split(",")
    try:
        sizes = tuple(int(p) for p in parts)
    except ValueError:
        sizes = ()
    if len(sizes) != 2 or min(sizes) < 1:
        raise SettingsError(
            f"--img-scale takes two positive sizes such as 640,192 (long, short), got {text!r}"
        )
    return sizes[0], sizes[1]


def parse_classes(text: str) -> tuple[str, ...]:
    """``"car,person"`` -> ``("car", "person")``: ``--classes``, in label order."""
    names = tuple(name.strip() for name in text.split(","))
    if not all(names):
        raise SettingsError(f"--classes takes names separated by commas, got {text!r}")
    return names


def _option(
    default: Any = None,
    *,
    key: str | None = None,
    parse: Callable[[str], Any] | None = None,
    minimum: int | None = None,
) -> Any:
    return field(default=default, metadata={"key": key, "parse": parse, "minimum": minimum})


@dataclass(frozen=True)
class RunOptions:
    """What the user asked for; ``None``: not given (see the module docstring)."""

    preset: str | None = None  # r50_fpn on CUDA, cpu_small on CPU
    device: str = "auto"
    epochs: int | None = _option(key="runner.max_epochs", minimum=1)
    img_scale: tuple[int, int] | None = _option(key="img_scale", parse=parse_img_scale)
    lr: float | None = _option(key="optimizer.lr")
    # Recipe.customised checks these two (``warmup_iters must be at least 0``).
    warmup_iters: int | None = _option(key="lr_config.warmup_iters")
    log_interval: int | None = _option(key="log_config.interval")
    batch_size: int | None = _option(key="data.samples_per_gpu", minimum=1)
    work_dir: Path | None = None
    data_root: Path | None = None
    load_from: Path | None = None
    backbone_weights: Path | None = None
    resume: Path | None = None
    like: Path | None = None
    amp: bool = False
    grad_clip: float | None = None
    seed: int = 0
    #: Reference runs to train, seeds ``seed``, ``seed + 1``, ...: the extra ones go into
    #: ``<work_dir>/seed<k>/``, where the side by side measures the seed-to-seed spread.
    seeds: int = _option(1, minimum=1)
    threads: int = _option(0, minimum=0)  # 0: chosen by machine load
    workers: int | None = _option(minimum=0)  # loader processes; None: auto_workers()
    eval_only: bool = False
    # The dataset (``losslens check-data`` reads the same): classes selected and ordered,
    # explicit COCO files, and whether what the data check rejects is dropped.
    classes: tuple[str, ...] | None = _option(parse=parse_classes)
    train_ann: Path | None = None
    val_ann: Path | None = None
    img_dir: Path | None = None
    drop_invalid: bool = False

    def __post_init__(self) -> None:
        if self.preset is not None and self.preset not in PRESETS:
            raise SettingsError(
                f"unknown preset {self.preset!r}; expected one of: {', '.join(PRESETS)}"
            )
        if self.device not in DEVICES:
            raise SettingsError(
                f"unknown device {self.device!r}; expected one of: {', '.join(DEVICES)}"
            )
        for spec in fields(self):
            value, minimum = getattr(self, spec.name), spec.metadata.get("minimum")
            if minimum is not None and value is not None and value < minimum:
                flag = "--" + spec.name.replace("_", "-")
                raise SettingsError(f"{flag} must be at least {minimum}, got {value}")
        if self.seeds > 1 and (self.eval_only or self.resume is not None):
            raise SettingsError(
                "--seeds trains several runs from the start: not with --resume or --eval-only"
            )
        if self.eval_only and (self.load_from is None or self.resume is not None):
            raise SettingsError(
                "--eval-only evaluates the weights given by --load-from: pass --load-from CKPT "
                "(and no --resume)"
            )

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> RunOptions:
        """Options from the command line's values (``None``: not given; text through each
        field's ``parse``). Unknown names raise :class:`SettingsError`."""
        specs = {spec.name: spec for spec in fields(cls)}
        unknown = sorted(set(values) - set(specs))
        if unknown:
            raise SettingsError(f"unknown options {unknown}; expected some of {sorted(specs)}")
        given: dict[str, Any] = {}
        for name, value in values.items():
            if value is None:
                continue
            parse = specs[name].metadata.get("parse")
            given[name] = parse(value) if parse is not None and isinstance(value, str) else value
        return cls(**given)

    def overrides(self) -> dict[str, Any]:
        """The given options that change a run setting (names in :data:`OPTIONS`)."""
        return {name: getattr(self, name) for name in OPTIONS if getattr(self, name) is not None}


#: Options that change a run setting: name -> the mmdet dotted key it sets.
OPTIONS: dict[str, str] = {
    spec.name: spec.metadata["key"] for spec in fields(RunOptions) if spec.metadata.get("key")
}


def auto_workers(requested: int | None, cores: int | None = None) -> int:
    """Loader worker processes: ``requested``, or one per core beyond the training process
    (0 on a one-core machine: decode in the training process), at most
    :data:`MAX_AUTO_WORKERS`."""
    if requested is not None:
        return requested
    cores = cores if cores is not None else (os.cpu_count() or 1)
    return max(0, min(cores - 1, MAX_AUTO_WORKERS))
