"""Healthy ranges of logged terms, measured from real runs: the 5th-95th percentile of a
column's values once training settled.

"Settled" means after the first epoch in logs that carry epochs, and after the first
:data:`SETTLE_FRACTION` of the training records in iteration-only logs (detectron2). The
figures recorded in :mod:`losslens.analysis._term_ranges` come from these functions; a test recomputes
the corpus ones from ``shared/corpus``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from losslens.analysis._term_table import HealthyRange
from losslens.reading.frame import INDEX_COLUMNS

if TYPE_CHECKING:
    from losslens.run import Run

#: Share of an iteration-only log's first training records left out as not yet settled.
SETTLE_FRACTION = 0.1
#: The percentiles a healthy range spans.
PERCENTILES = (5.0, 95.0)
#: Significant digits the recorded figures keep.
SIGNIFICANT_DIGITS = 3


def settled_values(run: Run, column: str) -> np.ndarray:
    """Finite values of ``column`` (logged, canonical or short name) after the first epoch, or
    after the first :data:`SETTLE_FRACTION` of the records when the log has no epochs."""
    from losslens.analysis.terms import canonical_frame, resolve_column

    frame = canonical_frame(run)
    values = frame[resolve_column(run, column, frame)].to_numpy(dtype="float64")
    epochs = frame["epoch"] if "epoch" in frame.columns else None
    if epochs is not None and epochs.notna().all() and len(epochs):
        keep = epochs.to_numpy(dtype="float64") > float(epochs.min())
    else:
        keep = np.arange(len(values)) >= math.ceil(len(values) * SETTLE_FRACTION)
    settled = values[keep]
    return settled[np.isfinite(settled)]


def round_significant(value: float, digits: int = SIGNIFICANT_DIGITS) -> float:
    """``value`` rounded to ``digits`` significant digits (0 stays 0)."""
    if value == 0 or not math.isfinite(value):
        return value
    return round(value, digits - 1 - math.floor(math.log10(abs(value))))


def percentile_range(runs: Iterable[Run], column: str) -> tuple[float, float, int]:
    """(low, high, number of values): the :data:`PERCENTILES` of the settled values of
    ``column`` pooled over ``runs``, rounded to :data:`SIGNIFICANT_DIGITS` digits."""
    pooled = np.concatenate([settled_values(run, column) for run in runs])
    if pooled.size == 0:
        raise ValueError(f"no settled finite values of {column!r} in these runs")
    low, high = np.percentile(pooled, PERCENTILES)
    return round_significant(float(low)), round_significant(float(high)), int(pooled.size)


def recompute(healthy: HealthyRange, corpus: Path) -> tuple[float, float]:
    """A recorded corpus range computed again from the logs it names under ``corpus``."""
    from losslens import load

    if not healthy.files:
        raise ValueError(f"{healthy.source!r} names no corpus files to recompute from")
    runs = [load(corpus / name, cache=False) for name in healthy.files]
    low, high, _ = percentile_range(runs, healthy.column)
    return low, high


def columns_of(runs: Sequence[Run]) -> dict[str, set[str]]:
    """Every training column of ``runs`` (index columns left out) -> the formats logging it."""
    found: dict[str, set[str]] = {}
    for run in runs:
        for column in run.train.columns:
            if column not in INDEX_COLUMNS:
                found.setdefault(str(column), set()).add(run.format)
    return found
