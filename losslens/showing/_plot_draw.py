"""Drawing aids of :mod:`losslens.showing.plotting`: line styles that stay distinct, shades for resumed
segments, robust y limits and the markers for what lies outside them.

Pure helpers: numbers and colours in, numbers and colours out; only :func:`mark_outside`
touches an ``Axes``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.axes import Axes

COLORS = (
    "#1f77b4",
    "#d62728",
    "#2ca02c",
    "#9467bd",
    "#ff7f0e",
    "#17becf",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
)
LINESTYLES = ("-", "--", ":", "-.")
MARKERS = ("", "o", "s", "^", "D")
#: How far the last resumed segment is blended towards white (the first is the run's colour).
MAX_SHADE = 0.6
#: Tukey's "far out" fence: values beyond q3 + 3 IQR (or below q1 - 3 IQR) are off the bulk.
FENCE_IQR = 3.0
#: Free space above and below the bulk, as a fraction of its span.
Y_MARGIN = 0.05
#: Where the markers of values beyond the y limits sit (axes fraction: at the edges).
EDGE_TOP, EDGE_BOTTOM = 0.985, 0.015


def shade(color: str, segment: int, n_segments: int) -> str:
    """``color`` blended towards white for resumed segment ``segment`` (0: the colour itself)."""
    from matplotlib.colors import to_hex, to_rgb

    if segment == 0 or n_segments <= 1:
        return color
    amount = MAX_SHADE * segment / (n_segments - 1)
    r, g, b = (c + (1.0 - c) * amount for c in to_rgb(color))
    return str(to_hex((r, g, b)))


def pair_style(series: int, run: int, n_series: int) -> tuple[str, str, str]:
    """(colour, line style, marker) of series ``series`` of run ``run`` on one shared axis.

    The colour follows the series, the line style the run; when there are more series than
    colours, the style index moves on by block, then the marker. Distinct for every pair up to
    ``len(COLORS) * len(LINESTYLES) * len(MARKERS)`` pairs.
    """
    blocks = -(-n_series // len(COLORS))  # colour blocks per run
    index = run * blocks + series // len(COLORS)
    style = LINESTYLES[index % len(LINESTYLES)]
    marker = MARKERS[(index // len(LINESTYLES)) % len(MARKERS)]
    return COLORS[series % len(COLORS)], style, marker


def robust_limits(values: np.ndarray) -> tuple[float, float] | None:
    """y limits around the bulk of ``values`` when some lie far outside it, else ``None``.

    The bulk is everything within :data:`FENCE_IQR` interquartile ranges of the quartiles;
    the limits are its extremes plus :data:`Y_MARGIN`. A constant series keeps autoscaling.
    """
    finite = values[np.isfinite(values)]
    if len(finite) < 4:
        return None
    q1, q3 = np.percentile(finite, [25, 75])
    iqr = q3 - q1
    if iqr <= 0:
        return None
    inside = finite[(finite >= q1 - FENCE_IQR * iqr) & (finite <= q3 + FENCE_IQR * iqr)]
    if len(inside) == len(finite):
        return None
    lo, hi = float(inside.min()), float(inside.max())
    margin = Y_MARGIN * (hi - lo) if hi > lo else Y_MARGIN * abs(hi) or 1.0
    return lo - margin, hi + margin


def mark_outside(
    ax: Axes, x: np.ndarray, y: np.ndarray, limits: tuple[float, float], color: str
) -> int:
    """Triangles at the top (bottom) edge where ``y`` is above (below) ``limits``; the count."""
    lo, hi = limits
    ok = np.isfinite(x) & np.isfinite(y)
    count = 0
    transform = ax.get_xaxis_transform()  # x in data, y in axes fraction
    for mask, edge, marker in ((y > hi, EDGE_TOP, "^"), (y < lo, EDGE_BOTTOM, "v")):
        mask = mask & ok
        if not mask.any():
            continue
        n = int(mask.sum())
        ax.scatter(
            x[mask],
            np.full(n, edge),
            marker=marker,
            color=color,
            s=22,
            transform=transform,
            zorder=6,
            clip_on=False,
        )
        count += n
    return count
