"""Learning-rate schedule and optimiser settings, mmcv's ``StepLrUpdaterHook`` semantics.

Regular lr at (0-based) epoch ``e``: ``lr * gamma ** (number of steps <= e)``: with
``steps=(8, 11)`` epochs 1-8 (printed 1-based) run at ``lr``, 9-11 at ``lr/10``, 12 at
``lr/100``. Linear warmup over the first ``warmup_iters`` global iterations (0-based ``i``):
``regular * (1 - (1 - i / warmup_iters) * (1 - warmup_ratio))``.

An iteration-based run (mmcv ``IterBasedRunner``, detectron2 ``SOLVER.MAX_ITER``) sets
``max_iters``: training stops after that many iterations and ``steps`` count (0-based global)
iterations instead of epochs, as ``StepLrUpdaterHook(by_epoch=False)`` and detectron2's
``WarmupMultiStepLR`` do.
"""

from __future__ import annotations

from dataclasses import dataclass

WARMUP_KINDS = (None, "linear", "constant")


@dataclass(frozen=True)
class Schedule:
    """mmdet's ``optimizer`` + ``lr_config`` + ``runner.max_epochs``.

    The defaults are the kitti_tiny tutorial's: SGD lr 0.0025 for 2 images a batch (0.02 for
    16, scaled linearly), momentum 0.9, weight decay 1e-4, decay x0.1 at epochs 8 and 11 of 12.
    """

    lr: float = 0.0025
    momentum: float = 0.9
    weight_decay: float = 1e-4
    epochs: int = 12
    steps: tuple[int, ...] = (8, 11)
    gamma: float = 0.1
    warmup: str | None = "linear"
    warmup_iters: int = 500
    warmup_ratio: float = 0.001
    max_iters: int | None = None  # an iteration budget; steps are then iterations

    def __post_init__(self) -> None:
        if self.warmup not in WARMUP_KINDS:
            raise ValueError(f"warmup must be one of {WARMUP_KINDS}, got {self.warmup!r}")
        if self.epochs < 1:
            raise ValueError(f"epochs must be at least 1, got {self.epochs}")
        if list(self.steps) != sorted(self.steps):
            raise ValueError(f"steps must increase, got {self.steps}")
        if self.max_iters is not None and self.max_iters < 1:
            raise ValueError(f"max_iters must be at least 1, got {self.max_iters}")


def epochs_for(schedule: Schedule, iters_per_epoch: int) -> int:
    """Epochs to run: the schedule's, or enough to hold its ``max_iters`` (the last one cut
    short)."""
    if schedule.max_iters is None:
        return schedule.epochs
    return -(-schedule.max_iters // max(iters_per_epoch, 1))


def regular_lr(schedule: Schedule, epoch: int, global_iter: int = 0) -> float:
    """The lr of 0-based ``epoch`` (``global_iter`` with ``max_iters``) before warmup."""
    at = global_iter if schedule.max_iters is not None else epoch
    exp = sum(1 for step in schedule.steps if at >= step)
    return schedule.lr * schedule.gamma**exp


def lr_at(schedule: Schedule, epoch: int, global_iter: int) -> float:
    """The lr used for 0-based ``global_iter`` in 0-based ``epoch``."""
    lr = regular_lr(schedule, epoch, global_iter)
    if schedule.warmup is None or global_iter >= schedule.warmup_iters:
        return lr
    if schedule.warmup == "constant":
        return lr * schedule.warmup_ratio
    k = (1 - global_iter / schedule.warmup_iters) * (1 - schedule.warmup_ratio)
    return lr * (1 - k)
