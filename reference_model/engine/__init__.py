"""Training engine: a plain loop writing mmdet 2.x logs and losslens diagnostics."""

from .checkpoints import CheckpointError
from .options import RunOptions
from .recipes import RECIPES, Recipe, recipe_for
from .schedule import Schedule, lr_at
from .trainer import Reporter, SilentReporter, TrainOptions, TrainResult, model_config, train

__all__ = [
    "RECIPES",
    "CheckpointError",
    "Recipe",
    "Reporter",
    "RunOptions",
    "Schedule",
    "SilentReporter",
    "TrainOptions",
    "TrainResult",
    "lr_at",
    "model_config",
    "recipe_for",
    "train",
]
