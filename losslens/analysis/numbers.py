"""How a value from a log is written for a person: one rule for every table, finding, page
and plot label (``parse``, ``compare``, ``watch``, the diagnostics, the HTML pages)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

#: Significant digits of a logged value: enough to tell 0.4512 from 0.4518.
DIGITS = 4
#: Whole values below this are written in full (``12000``, not ``1.2e+04``): steps, counts.
WHOLE_BELOW = 1e9


def number(value: object, *, missing: str = "-", nan: str = "nan") -> str:
    """``value`` as text: 4 significant digits; a whole number (below 1e9) in full; ``inf`` and
    ``-inf`` spelled out. ``missing`` for None or pandas' ``<NA>``, ``nan`` for a NaN. Anything
    that is not a number is ``str(value)`` as it is (a string from a log is never parsed)."""
    if value is None or value is pd.NA:
        return missing
    if isinstance(value, bool | np.bool_) or not isinstance(
        value, int | float | np.integer | np.floating
    ):
        return str(value)
    v = float(value)
    if math.isnan(v):
        return nan
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if v == int(v) and abs(v) < WHOLE_BELOW:
        return str(int(v))
    return f"{v:.{DIGITS}g}"


__all__ = ["DIGITS", "WHOLE_BELOW", "number"]
