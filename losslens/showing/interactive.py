"""Interactive charts for the HTML pages, drawn by plotly (imported here only, when a page is made).

Zoom, hover values and toggling are plotly's own: click a legend item to hide a term, click a
run's group title to hide the run, double-click to isolate one. Smoothing is a plotly slider
over precomputed traces, one set per weight of :data:`SMOOTHING_WEIGHTS` (TensorBoard's debiased
EMA, :func:`losslens.showing.smoothing.tensorboard_ema`; weight 0 is the logged values), so the page
needs no script of ours. Every string from a log goes through :func:`html.escape` first: plotly
draws names and labels as a small HTML dialect and shows ``&lt;`` as ``<``, so a name is shown
as written and never becomes markup.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import TYPE_CHECKING, Any

import numpy as np

from losslens.analysis.numbers import number
from losslens.showing.smoothing import TB_DEFAULT_WEIGHT, tensorboard_ema

if TYPE_CHECKING:
    import plotly.graph_objects as go

#: Slider stops; the page opens at TensorBoard's default weight.
SMOOTHING_WEIGHTS = (0.0, 0.3, TB_DEFAULT_WEIGHT, 0.8, 0.9, 0.95, 0.99)
#: Points drawn per curve; longer curves keep each bucket's min and max (spikes survive).
MAX_DRAWN_POINTS = 2000
_COLORS = (
    "#1f77b4",
    "#d62728",
    "#2ca02c",
    "#ff7f0e",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#17becf",
    "#7f7f7f",
    "#bcbd22",
)
_DASHES = ("solid", "dash", "dashdot", "longdash")
_MARK_COLOR = "#c62828"


@dataclass(frozen=True)
class Series:
    """One curve: ``x``/``y`` as logged (NaN leaves a gap), in legend group ``group``.

    ``parts`` are row positions of pieces drawn apart (a resumed run appended to a file starts
    its steps again); default: one piece. ``shown`` False puts it in the legend only.
    """

    label: str
    group: str
    x: np.ndarray
    y: np.ndarray
    color: str = _COLORS[0]
    dash: str = "solid"
    parts: tuple[np.ndarray, ...] = ()
    shown: bool = True


@dataclass(frozen=True)
class Mark:
    """A point a finding cites: drawn as a marker, named ``label``, hover text ``text``."""

    x: float
    y: float
    label: str
    text: str


def color(k: int) -> str:
    """The ``k``-th colour of the palette (cycling)."""
    return _COLORS[k % len(_COLORS)]


def dash(k: int) -> str:
    """The ``k``-th line style (cycling)."""
    return _DASHES[k % len(_DASHES)]


def plain(text: object) -> str:
    """``text`` made safe for plotly's labels: shown literally, never as markup."""
    return escape(str(text))


def _joined(series: Series, weight: float) -> tuple[np.ndarray, np.ndarray]:
    """Each part smoothed on its own and thinned, parts joined with a NaN (a gap)."""
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    for rows in series.parts or (np.arange(len(series.x)),):
        x = series.x[rows]
        y = tensorboard_ema(series.y[rows], weight) if weight > 0 else series.y[rows]
        x, y = _thin(x, y)
        if xs:
            xs.append(np.array([np.nan]))
            ys.append(np.array([np.nan]))
        xs.append(x)
        ys.append(y)
    if not xs:
        return np.array([]), np.array([])
    return np.concatenate(xs), np.concatenate(ys)


def _thin(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from losslens.showing.plotting import decimate

    return decimate(x, y, MAX_DRAWN_POINTS)


def _layout(fig: go.Figure, title: str, x_label: str, y_label: str, height: int) -> None:
    fig.update_layout(
        title={"text": plain(title), "x": 0.01},
        xaxis_title=plain(x_label),
        yaxis_title=plain(y_label),
        height=height,
        hovermode="x unified",
        legend={"groupclick": "toggleitem"},
        template="plotly_white",
        margin={"l": 60, "r": 20, "t": 50, "b": 40},
    )


def _mark_traces(fig: go.Figure, marks: Sequence[Mark]) -> None:
    import plotly.graph_objects as go

    for mark in marks:
        fig.add_trace(
            go.Scatter(
                x=[mark.x],
                y=[mark.y],
                mode="markers",
                name=plain(mark.label),
                legendgroup="findings",
                legendgrouptitle_text="findings",
                hovertext=[plain(mark.text)],
                hoverinfo="text",
                marker={"symbol": "x", "size": 11, "color": _MARK_COLOR, "line": {"width": 1}},
            )
        )


def curves_figure(
    series: Sequence[Series],
    *,
    title: str,
    x_label: str,
    y_label: str = "value",
    marks: Sequence[Mark] = (),
    weights: Sequence[float] = SMOOTHING_WEIGHTS,
    logy: bool = False,
) -> go.Figure:
    """Curves with a smoothing slider: one trace per (series, weight), the slider shows one set.

    Traces are ordered weight-major (all series at ``weights[0]``, then ``weights[1]``, ...),
    then one trace per mark, always shown.
    """
    import plotly.graph_objects as go

    fig = go.Figure()
    start = weights.index(TB_DEFAULT_WEIGHT) if TB_DEFAULT_WEIGHT in weights else 0
    for k, weight in enumerate(weights):
        for s in series:
            fig.add_trace(_curve(s, weight, visible=_visibility(s, k == start)))
    _mark_traces(fig, marks)
    steps = []
    for k, weight in enumerate(weights):
        visible = [_visibility(s, j == k) for j in range(len(weights)) for s in series]
        steps.append(
            {
                "label": f"{weight:g}",
                "method": "restyle",
                "args": [{"visible": visible + [True] * len(marks)}],
            }
        )
    fig.update_layout(
        sliders=[
            {
                "active": start,
                "steps": steps,
                "currentvalue": {"prefix": "smoothing (TensorBoard EMA weight): "},
                "pad": {"t": 40},
            }
        ]
    )
    _layout(fig, title, x_label, y_label, 520)
    fig.update_layout(
        updatemenus=[
            {
                "type": "buttons",
                "direction": "left",
                "x": 1.0,
                "xanchor": "right",
                "y": 1.12,
                "buttons": [
                    {"label": "linear y", "method": "relayout", "args": [{"yaxis.type": "linear"}]},
                    {"label": "log y", "method": "relayout", "args": [{"yaxis.type": "log"}]},
                ],
                "active": 1 if logy else 0,
            }
        ]
    )
    if logy:
        fig.update_yaxes(type="log")
    return fig


def _curve(s: Series, weight: float, *, visible: bool | str, **marker: Any) -> go.Scatter:
    """The trace of one series smoothed with ``weight``: its label, group, colour and dash;
    ``marker`` given: every point marked too."""
    import plotly.graph_objects as go

    x, y = _joined(s, weight)
    return go.Scatter(
        x=x,
        y=y,
        mode="lines+markers" if marker else "lines",
        name=plain(s.label),
        legendgroup=plain(s.group),
        legendgrouptitle_text=plain(s.group),
        line={"color": s.color, "dash": s.dash, "width": 1.6},
        visible=visible,
        **marker,
    )


def _visibility(series: Series, selected: bool) -> bool | str:
    if not selected:
        return False
    return True if series.shown else "legendonly"


def points_figure(
    series: Sequence[Series],
    *,
    title: str,
    x_label: str,
    y_label: str = "value",
    marks: Sequence[Mark] = (),
) -> go.Figure:
    """Few points each (evaluations): lines with every point marked, no smoothing."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for s in series:
        fig.add_trace(_curve(s, 0.0, visible=_visibility(s, True), marker={"size": 5}))
    _mark_traces(fig, marks)
    _layout(fig, title, x_label, y_label, 420)
    return fig


def sortable_bars(
    columns: dict[str, list[Any]], *, label: str, value: str, title: str, sort_keys: Sequence[str]
) -> go.Figure:
    """A bar chart of ``columns[value]`` per ``columns[label]`` above a table of all columns;
    buttons sort both (plotly ``update``: the table's cells and the bars' category order)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    n = len(columns[label])
    labels = [plain(v) for v in columns[label]]
    fig = make_subplots(
        rows=2,
        cols=1,
        specs=[[{"type": "xy"}], [{"type": "table"}]],
        row_heights=[0.45, 0.55],
        vertical_spacing=0.12,
    )
    fig.add_trace(
        go.Bar(x=labels, y=columns[value], name=plain(value), marker_color=_COLORS[0]),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Table(
            header={"values": [plain(c) for c in columns], "align": "left"},
            cells={"values": _cells(columns, list(range(n))), "align": "left"},
        ),
        row=2,
        col=1,
    )
    buttons = []
    for key in sort_keys:
        order = _order(columns[key], descending=key != label)
        buttons.append(
            {
                "label": f"sort by {plain(key)}",
                "method": "update",
                "args": [
                    {"cells.values": [_cells(columns, order)]},
                    {
                        "xaxis.categoryorder": "array",
                        "xaxis.categoryarray": [labels[i] for i in order],
                    },
                    [1],
                ],
            }
        )
    fig.update_layout(
        title={"text": plain(title), "x": 0.01},
        height=900,
        template="plotly_white",
        showlegend=False,
        margin={"l": 60, "r": 20, "t": 90, "b": 40},
        updatemenus=[
            {
                "type": "buttons",
                "direction": "left",
                "x": 0.0,
                "xanchor": "left",
                "y": 1.08,
                "buttons": buttons,
            }
        ],
    )
    fig.update_xaxes(categoryorder="array", categoryarray=labels, tickangle=-45)
    return fig


def _order(values: Sequence[Any], descending: bool) -> list[int]:
    """Row positions sorted by ``values``; missing values last either way."""
    present = [i for i, v in enumerate(values) if v is not None and v == v]
    seen = set(present)
    missing = [i for i in range(len(values)) if i not in seen]
    ranked = sorted(present, key=lambda i: values[i], reverse=descending)
    return ranked + missing


def _cells(columns: dict[str, list[Any]], order: Sequence[int]) -> list[list[str]]:
    return [[_cell(values[i]) for i in order] for values in columns.values()]


def _cell(value: Any) -> str:
    return plain(number(value, nan="-"))


def to_div(fig: go.Figure, div_id: str, *, with_library: bool) -> str:
    """The figure as a ``<div>``; ``with_library`` inlines plotly.js (once per page: offline)."""
    import plotly.io as pio

    html: str = pio.to_html(
        fig,
        include_plotlyjs=with_library,
        full_html=False,
        div_id=div_id,
        default_width="100%",
        config={"responsive": True, "displaylogo": False},
    )
    return f'<div class="chart">{html}</div>'
