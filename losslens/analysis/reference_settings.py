"""The settings a reference run trains with, resolved once for ``train-reference`` and
``check-data`` (both take ``--like RUN``, ``--preset`` and ``--img-scale``).

``reference_model`` is imported inside the functions only: ``losslens`` never loads it (or
torch) when it starts. A :class:`reference_model.errors.ReferenceModelError` becomes a
:class:`ReferenceRunError`, the one line the CLI prints.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from losslens.analysis.run_settings import is_config_file, read_run_settings
from losslens.errors import LossLensError

if TYPE_CHECKING:
    from reference_model.config import Config
    from reference_model.engine.settings import Resolved


class ReferenceRunError(LossLensError):
    """The run could not start or finish (no data, a bad option, a bad checkpoint)."""


@contextmanager
def reference_errors() -> Iterator[None]:
    """A :class:`reference_model.errors.ReferenceModelError` becomes a :class:`ReferenceRunError`."""
    from reference_model.errors import ReferenceModelError

    try:
        yield
    except ReferenceModelError as err:
        raise ReferenceRunError(str(err)) from None


def resolve_settings(
    dataset: str | None,
    preset: str,
    like: Path | None,
    num_classes: int | None,
    *,
    explicit_preset: bool = False,
    **options: Any,
) -> Resolved:
    """The settings a run trains with: the preset and the dataset's recipe, then the settings
    of the ``--like`` run, then ``options`` (names in ``reference_model.engine.settings.OPTIONS``).
    ``num_classes=None``: the run's class count (a dry run without data)."""
    from reference_model.engine import recipe_for
    from reference_model.engine.options import RunOptions
    from reference_model.engine.settings import resolve

    run = read_run_settings(like) if like is not None else None
    with reference_errors():
        RunOptions(preset=preset)  # checks the name
        resolved = resolve(
            preset,
            recipe_for(dataset or "custom"),
            num_classes,
            run.settings if run is not None else None,
            options,
            explicit_preset=explicit_preset,
        )
    if run is None or not run.inferred:
        return resolved
    # Values a log without a config dump showed: their source says so (and how).
    inferred = {k: how for k, how in run.inferred.items() if resolved.sources.get(k) == "run"}
    return replace(resolved, sources={**resolved.sources, **inferred})


def model_config(
    preset: str | None,
    like: Path | None,
    num_classes: int,
    *,
    img_scale: tuple[int, int] | None = None,
) -> Config:
    """The model config a run on a dataset with ``num_classes`` classes would train: the
    preset (``r50_fpn`` when None), the ``--like`` run's settings, then ``img_scale``.
    ``check-data`` takes its anchors, assigner thresholds and image scale from it."""
    resolved = resolve_settings(
        None,
        preset or "r50_fpn",
        like,
        num_classes,
        explicit_preset=preset is not None,
        img_scale=img_scale,
    )
    return resolved.config


def is_log(like: Path | None) -> bool:
    """True when ``--like`` names a training log (a side by side is possible), not a config."""
    return like is not None and not is_config_file(like)


__all__ = [
    "ReferenceRunError",
    "is_log",
    "model_config",
    "reference_errors",
    "resolve_settings",
]
