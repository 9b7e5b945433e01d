"""How a value from a log is written for a person: one rule for every table, finding, page
and plot label (``parse``, ``compare``, ``watch``, the diagnostics, the HTML pages)."""

from __future__ import annotations

import math
from numbers import Real

#: Significant digits of a logged value: enough to tell 0.4512 from 0.4518.
DIGITS = 4
#: Whole values below this are written in full (``12000``, not ``1.2e+04``): steps, counts.
WHOLE_BELOW = 1e9


def number(value: object, *, missing: str = "-", nan: str = "nan") -> str:
    """``value`` as text: 4 significant digits; a whole number (below 1e9) in full; ``inf`` and
    ``-inf`` spelled out. ``missing`` for None or pandas' ``<NA>``, ``nan`` for a NaN. Anything
    that is not a number is ``str(value)`` as it is (a string from a log is never parsed)."""
    # by name and by the numbers ABCs (numpy registers its scalars there): the CLI imports this
    # module before any log is read, and must not pull in pandas or numpy for it
    if value is None or type(value).__name__ == "NAType":  # pandas' <NA>
        return missing
    if type(value).__name__ in ("bool", "bool_") or not isinstance(value, Real):
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
