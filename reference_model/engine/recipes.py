"""Per-dataset training recipes: the schedule and the few model settings a dataset needs.

``kitti_tiny`` is the mmdetection tutorial (``../shared/seeds`` config): 12 epochs, SGD lr
0.0025 at 2 images a batch, decay at epochs 8 and 11, log every 10 iterations, evaluate and
checkpoint at epoch 12, images resized to the preset's scale (1333 x 800 for ``r50_fpn``).

``synthetic`` is sized so that ``cpu_small`` trains it from scratch on a 2-core CPU in a few
minutes: 100 training images of 160 x 160 kept at their native size, 6 epochs of 50
iterations with decay at epochs 4 and 5 (the 1x schedule's shape, shortened), a ResNet-18 half
as wide (32 base channels), fewer proposals and RoIs. From scratch it needs a larger lr than
fine-tuning: 0.01 with a 50-iteration warmup and gradient clipping at norm 10 (0.02 without
clipping diverged to NaN in the second epoch). Measured: AP50 1.0 on the 24 validation images.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from .schedule import Schedule

#: What ``cpu_small`` changes for the synthetic dataset (measured in benchmarks/bench_reference.py).
_SYNTHETIC_CPU_SMALL: dict[str, Any] = {
    "model.backbone.base_channels": 32,
    "model.neck.in_channels": (32, 64, 128, 256),
    "model.train_cfg.rpn.sampler.num": 128,
    "model.train_cfg.rpn_proposal.nms_pre": 200,
    "model.train_cfg.rpn_proposal.max_per_img": 100,
    "model.train_cfg.rcnn.sampler.num": 64,
    "model.test_cfg.rpn.nms_pre": 200,
    "model.test_cfg.rpn.max_per_img": 100,
}


@dataclass(frozen=True)
class Recipe:
    """A dataset's schedule, intervals (in epochs / iterations) and model overrides by preset."""

    name: str
    schedule: Schedule
    batch_size: int = 2
    log_interval: int = 10
    eval_interval: int = 12  # epochs; the last epoch always evaluates and checkpoints
    checkpoint_interval: int = 12
    img_scale: tuple[int, int] | None = None  # None: the preset's scale
    grad_clip: float | None = None  # max L2 norm (mmcv optimizer_config.grad_clip)
    model_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)

    def with_epochs(self, epochs: int) -> Recipe:
        """Same recipe, ``epochs`` long; decay steps stay where they are (as editing
        ``max_epochs`` in an mmdet config leaves ``lr_config.step`` alone), and evaluation
        and checkpointing also happen at the last epoch."""
        return replace(self, schedule=replace(self.schedule, epochs=epochs))

    def customised(
        self,
        *,
        epochs: int | None = None,
        img_scale: tuple[int, int] | None = None,
        lr: float | None = None,
        warmup_iters: int | None = None,
        log_interval: int | None = None,
    ) -> Recipe:
        """Same recipe with the given settings replaced (``None`` keeps the recipe's): what
        editing ``max_epochs``, ``img_scale``, ``optimizer.lr``, ``lr_config.warmup_iters`` and
        ``log_config.interval`` in an mmdet config does. ``warmup_iters=0`` turns warmup off.
        Raises ``ValueError`` naming the first bad value."""
        if img_scale is not None and (len(img_scale) != 2 or min(img_scale) < 1):
            raise ValueError(f"img_scale must be two positive sizes, got {img_scale}")
        if lr is not None and not lr > 0:
            raise ValueError(f"lr must be positive, got {lr}")
        if warmup_iters is not None and warmup_iters < 0:
            raise ValueError(f"warmup_iters must be at least 0, got {warmup_iters}")
        if log_interval is not None and log_interval < 1:
            raise ValueError(f"log_interval must be at least 1, got {log_interval}")
        schedule = self.schedule
        if epochs is not None:
            schedule = replace(schedule, epochs=epochs)  # Schedule checks epochs >= 1
        if lr is not None:
            schedule = replace(schedule, lr=lr)
        if warmup_iters is not None:
            schedule = replace(
                schedule,
                warmup=(schedule.warmup or "linear") if warmup_iters else None,
                warmup_iters=warmup_iters,
            )
        return replace(
            self,
            schedule=schedule,
            img_scale=self.img_scale if img_scale is None else tuple(img_scale),  # type: ignore[arg-type]
            log_interval=self.log_interval if log_interval is None else log_interval,
        )


KITTI_TINY = Recipe(
    name="kitti_tiny",
    schedule=Schedule(lr=0.0025, epochs=12, steps=(8, 11), warmup="linear", warmup_iters=100),
)

SYNTHETIC = Recipe(
    name="synthetic",
    schedule=Schedule(lr=0.01, epochs=6, steps=(4, 5), warmup="linear", warmup_iters=50),
    img_scale=(160, 160),
    grad_clip=10.0,
    model_overrides={"cpu_small": _SYNTHETIC_CPU_SMALL},
)

RECIPES = {"kitti_tiny": KITTI_TINY, "synthetic": SYNTHETIC}


def recipe_for(dataset: str) -> Recipe:
    """The named dataset's recipe; any other dataset (a PATH) trains with kitti_tiny's."""
    return RECIPES.get(dataset, replace(KITTI_TINY, name="custom"))
