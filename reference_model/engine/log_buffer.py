"""mmcv's ``LogBuffer``: per-key history of (value, count) and interval averages."""

from __future__ import annotations

import math
from collections import OrderedDict


class LogBuffer:
    """Values are appended every iteration; :meth:`average` fills :attr:`output` with the
    count-weighted mean of each key's last ``n`` entries (mmcv ``LogBuffer.average``).
    Non-finite entries are skipped when ``nan_aware`` (for side metrics whose mean over an
    empty set is NaN); losses keep mmcv's behaviour, where one NaN makes the mean NaN."""

    def __init__(self) -> None:
        self.val_history: OrderedDict[str, list[float]] = OrderedDict()
        self.n_history: OrderedDict[str, list[int]] = OrderedDict()
        self.output: OrderedDict[str, float] = OrderedDict()

    def clear(self) -> None:
        self.val_history.clear()
        self.n_history.clear()
        self.output.clear()

    def update(self, values: dict[str, float], count: int = 1) -> None:
        for key, value in values.items():
            self.val_history.setdefault(key, []).append(float(value))
            self.n_history.setdefault(key, []).append(count)

    def average(self, n: int, nan_aware: bool = False) -> None:
        for key, values in self.val_history.items():
            pairs = list(zip(values[-n:], self.n_history[key][-n:], strict=True))
            if nan_aware:
                pairs = [(v, c) for v, c in pairs if math.isfinite(v)]
            total = sum(c for _, c in pairs)
            self.output[key] = sum(v * c for v, c in pairs) / total if total else math.nan
