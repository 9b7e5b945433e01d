"""Smoothing for plots: TensorBoard's debiased EMA (bit-for-bit), rolling median and mean.

Frameworks already smooth before printing (mmcv: mean over the log interval; detectron2 and
maskrcnn_benchmark: median of 20; see :data:`losslens.reading.formats.FAMILIES`).
:func:`describe` says what a plotted curve is, so a plot never re-smooths silently.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

#: TensorBoard's default scalar smoothing weight (``METRICS_SETTINGS_DEFAULT.scalarSmoothing``).
TB_DEFAULT_WEIGHT = 0.6
METHODS = ("ema", "median", "mean")


def tensorboard_ema(
    values: Sequence[float] | np.ndarray, weight: float = TB_DEFAULT_WEIGHT
) -> np.ndarray:
    """TensorBoard's "classic" debiased exponential moving average, step for step.

    Same arithmetic, in the same order and in float64, as ``classicSmoothing`` in TensorBoard's
    ``line_chart_v2/data_transformer.ts``: the weight is clamped to [0, 1] (NaN -> 0); a
    constant series is returned unchanged; non-finite values pass through without advancing
    the debias count; x spacing is ignored.
    """
    ys = [float(v) for v in np.asarray(values, dtype="float64")]
    w = 0.0 if math.isnan(weight) else min(max(float(weight), 0.0), 1.0)
    if not ys or all(y == ys[0] for y in ys):
        return np.asarray(ys, dtype="float64")
    out = []
    last = 0.0
    n = 0
    for y in ys:
        if not math.isfinite(y):
            out.append(y)
            continue
        last = last * w + (1 - w) * y
        n += 1
        debias = 1.0 if w == 1 else 1 - math.pow(w, n)
        out.append(last / debias)
    return np.asarray(out, dtype="float64")


def window_for(weight: float) -> int:
    """A rolling window that smooths about as much as an EMA of ``weight`` (span 2/(1-w) - 1)."""
    if weight <= 0:
        return 1
    if weight >= 1:
        return 1001
    return max(1, round(2 / (1 - weight) - 1))


def smooth(
    values: Sequence[float] | np.ndarray, method: str = "ema", weight: float = TB_DEFAULT_WEIGHT
) -> np.ndarray:
    """Smooth one series. ``method``: ``ema`` (TensorBoard), ``median`` or ``mean`` (trailing
    window of :func:`window_for` ``(weight)`` points, NaN ignored). ``weight`` 0 turns it off."""
    if method not in METHODS:
        raise ValueError(
            f"unknown smoothing method {method!r}; expected one of: {', '.join(METHODS)}"
        )
    arr = np.asarray(values, dtype="float64")
    if weight <= 0 or len(arr) == 0:
        return arr.copy()
    if method == "ema":
        return tensorboard_ema(arr, weight)
    window = window_for(weight)
    series = pd.Series(np.where(np.isfinite(arr), arr, np.nan))
    rolled = series.rolling(window, min_periods=1)
    result = (rolled.median() if method == "median" else rolled.mean()).to_numpy()
    # keep non-finite raw points visible where they occur
    return np.where(np.isfinite(arr), result, arr)


def describe(method: str, weight: float, prior: str | None = None) -> str:
    """One line saying what a smoothed curve is, including what the framework did before."""
    if weight <= 0:
        ours = "no smoothing"
    elif method == "ema":
        ours = f"TensorBoard EMA {weight:g}"
    else:
        ours = f"rolling {method} of {window_for(weight)} points"
    return f"{ours} on top of the logged values ({prior})" if prior else ours
