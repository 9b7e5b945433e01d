"""Plots checked through the returned Figure: panels, lines, labels, titles, markers."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from losslens.analysis.terms import TermNotFoundError
from losslens.cli._runs import names_after_option
from losslens.errors import FormatOptionError
from losslens.showing.plotting import PlotOptions, decimate, images_per_step, plot_runs, x_values
from tests._runs import decaying, make_run
from tests.conftest import CORPUS


def _two_runs():
    a = make_run(
        {
            "lr": np.full(50, 0.02),
            "loss_rpn_bbox": decaying(50) * 0.1,
            "loss_cls": decaying(50),
            "loss": decaying(50),
        },
        iters_per_epoch=100,
        name="run_a",
    )
    b = make_run(
        {
            "lr": np.full(50, 0.02),
            "loss_rpn_box_reg": decaying(50, seed=4) * 0.1,
            "loss_classifier": decaying(50, seed=4),
            "loss": decaying(50, seed=4),
        },
        format="maskrcnn_benchmark",
        name="run_b",
    )
    return a, b


def _labels(ax) -> list[str]:
    return [line.get_label() for line in ax.get_lines() if not line.get_label().startswith("_")]


def test_one_panel_per_term_every_run_labelled_raw_faint_smoothed_bold() -> None:
    a, b = _two_runs()
    fig = plot_runs([a, b], ["loss_rpn_bbox", "loss_cls"])
    axes = fig.get_axes()
    assert len(axes) == 2
    assert (
        axes[0]
        .get_title(loc="left")
        .startswith("loss_rpn_bbox: RPN box regression loss  (logged as loss_rpn_box_reg)")
    )
    assert _labels(axes[1]) == ["run_a", "run_b"]
    widths = sorted(
        {
            round(line.get_linewidth(), 1)
            for line in axes[0].get_lines()
            if line.get_alpha() is not None or True
        }
    )
    assert 0.8 in widths and 1.6 in widths
    faint = [line for line in axes[0].get_lines() if line.get_alpha() == 0.25]
    assert len(faint) == 2
    assert "TensorBoard EMA 0.6" in fig._suptitle.get_text()
    assert "mean over the log interval" in fig._suptitle.get_text()


def test_overlay_and_metrics_panel_share_x() -> None:
    a, _ = _two_runs()
    a.evals = pd.DataFrame(
        {
            "epoch": pd.array([1, 2], dtype="Int64"),
            "step": pd.array([100, 200], dtype="Int64"),
            "bbox_mAP": [0.2, 0.3],
            "bbox_mAP_s": [-1.0, -1.0],
        }
    )
    fig = plot_runs(
        [a],
        ["loss_cls", "loss_rpn_bbox"],
        metrics=["bbox_mAP"],
        options=PlotOptions(overlay=True, smooth=0),
    )
    top, bottom = fig.get_axes()
    assert _labels(top) == ["run_a: loss_cls", "run_a: loss_rpn_bbox"]
    assert _labels(bottom) == ["run_a: bbox_mAP"] and bottom.get_title(loc="left") == "evaluation"
    assert top.get_shared_x_axes().joined(top, bottom)
    assert bottom.get_xlabel().startswith("training step")


def test_nonfinite_points_are_marked_where_they_occur() -> None:
    loss = decaying(40)
    loss[[10, 30]] = [np.nan, np.inf]
    fig = plot_runs([make_run({"loss": loss})], ["loss"])
    (ax,) = fig.get_axes()
    (markers,) = ax.collections
    assert markers.get_offsets()[:, 0].tolist() == [110.0, 310.0]
    assert "2 non-finite values" in fig._suptitle.get_text()


def test_lr_changes_and_epoch_boundaries_marked() -> None:
    lr = np.r_[np.full(30, 0.02), np.full(20, 0.002)]
    run = make_run({"lr": lr, "loss": decaying(50)}, iters_per_epoch=100)
    (ax,) = plot_runs([run], ["loss"]).get_axes()
    vlines = [
        line.get_xdata()[0]
        for line in ax.get_lines()
        if len(line.get_xdata()) == 2 and line.get_xdata()[0] == line.get_xdata()[1]
    ]
    assert 310.0 in vlines and {100.0, 200.0, 300.0, 400.0} <= set(vlines)


def _vlines(ax) -> list[float]:
    return [
        line.get_xdata()[0]
        for line in ax.get_lines()
        if len(line.get_xdata()) == 2 and line.get_xdata()[0] == line.get_xdata()[1]
    ]


@pytest.mark.parametrize("first", [0.0, 0.01])
def test_a_warmup_seen_through_two_logged_points_is_no_lr_step(first: float) -> None:
    """mmdet logging every 10 steps of a 15-step linear warmup: lr 0.01 (or 0 at the ramp's
    foot), then 0.02 for good. That rise is the warmup, not an lr step; the x0.1 at step 310 is."""
    from losslens.analysis.diagnostics import lr_schedule

    lr = np.r_[first, np.full(29, 0.02), np.full(20, 0.002)]
    run = make_run({"lr": lr, "loss": decaying(50)})
    schedule = lr_schedule(run)
    assert schedule.warmup_steps == 20
    assert [(c.step, c.before, c.after) for c in schedule.changes] == [(310, 0.02, 0.002)]
    (ax,) = plot_runs([run], ["loss"]).get_axes()
    assert _vlines(ax) == [310.0]


def test_x_axes_epoch_time_images() -> None:
    run = make_run(
        {"loss": decaying(5)},
        iters_per_epoch=20,
        meta={"config": "data = dict(\n    samples_per_gpu=2,\n)\ngpu_ids = range(0, 4)"},
    )
    assert x_values(run, run.train, "epoch").tolist() == [0.5, 1.0, 1.5, 2.0, 2.5]
    assert images_per_step(run) == 8
    assert x_values(run, run.train, "images").tolist() == [80.0, 160.0, 240.0, 320.0, 400.0]
    run.train["time_s"] = 0.36
    assert x_values(run, run.train, "time", None)[-1] == pytest.approx(50 * 0.36 / 3600)
    bare = make_run({"loss": decaying(5)})
    with pytest.raises(FormatOptionError, match="pass --batch-size"):
        x_values(bare, bare.train, "images")
    with pytest.raises(FormatOptionError, match="expected one of: step, epoch, time, images"):
        plot_runs([bare], ["loss"], options=PlotOptions(x="wall"))


def test_missing_term_is_a_clear_error() -> None:
    with pytest.raises(
        TermNotFoundError, match=r"term 'loss_mask' is not in this mmdet_text log.*Available: loss"
    ):
        plot_runs([make_run({"loss": decaying(5)})], ["loss_mask"])


def test_decimate_keeps_spikes() -> None:
    y = np.ones(100_000)
    y[54_321] = 50.0
    xs, ys = decimate(np.arange(100_000.0), y, 1000)
    assert len(xs) <= 1002 and ys.max() == 50.0 and xs[0] == 0 and xs[-1] == 99_999


def test_a_million_records_plot_in_seconds() -> None:
    n = 1_000_000
    run = make_run({"loss": decaying(n)})
    start = time.perf_counter()
    fig = plot_runs([run], ["loss"])
    fig.canvas.draw() if hasattr(fig.canvas, "draw") else None
    assert time.perf_counter() - start < 15
    assert max(len(line.get_xdata()) for line in fig.get_axes()[0].get_lines()) <= 4002


def test_title_of_an_mmdet3_and_mmdet2_pair_is_wrapped_and_says_when_nothing_is_smoothed() -> None:
    """Both frameworks' smoothing notes fit the figure (they were cut off at its edges), and
    with ``--smooth 0`` the title does not promise a bold smoothed curve."""
    ours = make_run({"loss_cls": decaying(20)}, name="ours")
    theirs = make_run({"loss_cls": decaying(20, seed=3)}, format="mmengine_text", name="mmdet")
    title = plot_runs(
        [theirs, ours], ["loss_cls"], options=PlotOptions(smooth=0)
    )._suptitle.get_text()
    assert title.startswith("runs: mmdet, ours\nlines: logged values;") and "bold" not in title
    assert "mmengine LogProcessor" in title and "mmcv LogBuffer" in title
    assert max(len(line) for line in title.splitlines()) <= 110


@pytest.mark.parametrize(
    ("meta", "expected"),
    [
        (
            {"config": "log_processor = dict(window_size=5)", "log_processor": {"window_size": 5}},
            "mean over the last 5 iterations (mmengine LogProcessor, window_size set in the config)",
        ),
        (
            {"config": "model = dict(type='FasterRCNN')"},
            "mean over the last 10 iterations (mmengine LogProcessor, window_size the default)",
        ),
        (
            {},
            "mean over the last window_size iterations (mmengine LogProcessor; 10 by default, "
            "50 in mmdet configs)",
        ),
    ],
)
def test_title_states_the_mmengine_window_when_the_log_holds_the_config(meta, expected) -> None:
    run = make_run({"loss": decaying(20)}, format="mmengine_text", name="mmdet", meta=meta)
    title = plot_runs([run], ["loss"], options=PlotOptions(smooth=0))._suptitle.get_text()
    assert " ".join(title.split()).endswith(f"(already {expected})")


# --------------------------------------------------------------------------- CLI names
D2_METRICS = CORPUS / "detectron2_metrics" / "faster_rcnn_6gpu_metrics.json"
needs_corpus = pytest.mark.skipif(
    not D2_METRICS.exists(), reason=f"shared corpus not found at {CORPUS}"
)


def _cli(*args: str):
    from typer.testing import CliRunner

    from losslens.cli import app

    return CliRunner().invoke(app, list(args), terminal_width=200)


@needs_corpus
def test_names_with_a_slash_after_terms_and_metrics_are_names_not_files(tmp_path: Path) -> None:
    out = tmp_path / "p.png"
    result = _cli(
        "plot",
        str(D2_METRICS),
        "--terms",
        "rpn/num_pos_anchors",
        "fast_rcnn/fg_cls_accuracy",
        "--metrics",
        "bbox/AP",
        "bbox/AP50",
        "-o",
        str(out),
    )
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:4] == b"\x89PNG"
    kept, names = names_after_option(
        [D2_METRICS, Path("fast_rcnn/fg_cls_accuracy"), Path("missing/run.log"), Path("-")]
    )
    assert kept == [D2_METRICS, Path("missing/run.log"), Path("-")]
    assert names == ["fast_rcnn/fg_cls_accuracy"]
    # compare shares the rule
    result = _cli(
        "compare", str(D2_METRICS), str(D2_METRICS), "-t", "loss_cls", "rpn/num_pos_anchors"
    )
    assert result.exit_code == 0, result.output
    assert "rpn/num_pos_anchors" in result.output
    # a log that is missing is still reported as a missing file
    result = _cli("plot", str(tmp_path / "nope.log"), "--terms", "loss", "-o", str(out))
    assert result.exit_code == 2 and "nope.log" in result.stderr


# --------------------------------------------------------------------------- issue #11
VOC_TABLES = CORPUS / "mmdet2_text" / "faster_rcnn_voc0712_12ep_voc_tables.log"
CASCADE = CORPUS / "mmdet2_text" / "cascade_rcnn_r101_console_capture.log"


@needs_corpus
def test_resumed_segments_are_pieces_in_lighter_shades_labelled_once() -> None:
    """detectron2 metrics.json with 7 appended runs: bbox/AP was one diagonal across them."""
    from losslens import load

    run = load(str(D2_METRICS))
    fig = plot_runs([run], ["loss"], metrics=["bbox/AP"])
    loss_ax, eval_ax = fig.get_axes()
    pieces = eval_ax.get_lines()
    assert [(line.get_xdata()[0], line.get_xdata()[-1]) for line in pieces] == [
        (500, 5500),
        (6000, 15000),
        (16000, 31000),
        (32000, 41000),
        (1000, 5000),
        (6000, 9000),
        (10000, 20000),
    ]
    colors = [line.get_color() for line in pieces]
    assert colors[0] == "#1f77b4" and len(set(colors)) == 7
    # the loss panel: the same shades, one piece per segment
    bold = [line for line in loss_ax.get_lines() if line.get_linewidth() == 1.6]
    assert [line.get_color() for line in bold] == colors
    assert [line.get_xdata()[0] for line in bold] == [20, 5520, 15020, 31020, 20, 5020, 9020]
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    name = "faster_rcnn_6gpu_metrics"
    assert legend == [
        name,
        *(f"{name}: resumed at step {s}" for s in (5520, 15020, 31020, 20, 5020, 9020)),
        f"{name}: bbox/AP",
    ]
    assert "resumed segments: lighter shades" in fig._suptitle.get_text()


def test_x_axis_reaches_the_last_record_even_when_its_values_are_nan() -> None:
    """A run to step 8,900 whose loss is NaN from step 7,710 was drawn to about 7,700."""
    loss = decaying(890)
    loss[770:] = np.nan
    (ax,) = plot_runs([make_run({"loss": loss})], ["loss"]).get_axes()
    assert ax.get_xlim() == pytest.approx((10 - 88.9, 8900 + 88.9))
    (markers,) = ax.collections
    assert markers.get_offsets()[:, 0].max() == 8900.0


def test_overlay_gives_every_term_and_run_pair_its_own_style() -> None:
    names = ["loss", "loss_rpn_cls", "loss_rpn_bbox", "loss_cls", "loss_bbox", "loss_mask"]
    runs = [
        make_run({n: decaying(30, seed=s + i) for i, n in enumerate(names)}, name=f"r{s}")
        for s in (0, 1)
    ]
    (ax,) = plot_runs(runs, names, options=PlotOptions(overlay=True)).get_axes()
    bold = [line for line in ax.get_lines() if line.get_linewidth() == 1.6]
    styles = [(line.get_color(), line.get_linestyle(), line.get_marker()) for line in bold]
    assert len(bold) == 12 and len(set(styles)) == 12
    assert [line.get_label() for line in bold[:6]] == [f"r0: {n}" for n in names]
    assert {s[1] for s in styles[:6]} == {"-"} and {s[1] for s in styles[6:]} == {"--"}
    assert len({s[0] for s in styles[:6]}) == 6


@pytest.mark.skipif(not CASCADE.exists(), reason=f"shared corpus not found at {CORPUS}")
def test_default_plot_shows_every_loss_term_of_a_cascade_in_two_columns() -> None:
    from losslens import load

    fig = plot_runs([load(str(CASCADE))])
    axes = fig.get_axes()
    titles = [ax.get_title(loc="left").split(":")[0] for ax in axes]
    assert titles == [
        "loss",
        "loss_rpn_cls",
        "loss_rpn_bbox",
        "s0.loss_cls",
        "s0.loss_bbox",
        "s1.loss_cls",
        "s1.loss_bbox",
        "s2.loss_cls",
        "s2.loss_bbox",
    ]
    lefts = sorted({round(ax.get_position().x0, 2) for ax in axes})
    assert len(lefts) == 2
    # the lowest panel of each column carries the x label
    assert [ax.get_xlabel() != "" for ax in axes] == [False] * 7 + [True, True]
    assert fig._suptitle.get_text().startswith("run: cascade_rcnn_r101_console_capture\n")


def test_an_early_spike_does_not_flatten_the_panel_it_is_marked_at_the_edge() -> None:
    """total_loss 156 at iteration 20: the y range follows the bulk (quartiles +- 3 IQR)."""
    loss = np.linspace(3.0, 1.0, 100)
    loss[1] = 156.0
    (ax,) = plot_runs([make_run({"loss": loss})], ["loss"]).get_axes()
    inside = np.delete(loss, 1)
    margin = 0.05 * (3.0 - inside.min())
    assert ax.get_ylim() == pytest.approx((inside.min() - margin, 3.0 + margin))
    (arrows,) = ax.collections
    assert arrows.get_offsets().tolist() == [[20.0, 0.985]]
    assert ax.get_ylabel() == "loss"
    fig = ax.figure
    assert "1 value beyond the y range of the bulk" in fig._suptitle.get_text()
    # --logy shows every value: no clipping, no arrows
    (ax,) = plot_runs(
        [make_run({"loss": loss})], ["loss"], options=PlotOptions(logy=True)
    ).get_axes()
    assert ax.get_ylim()[1] > 156 and not ax.collections


def test_one_figure_legend_and_names_drawn_literally() -> None:
    import io

    a = make_run({"loss": decaying(20)}, name="exp_$lr$_0.02")
    b = make_run({"loss": decaying(20, seed=2)}, name="b$")
    fig = plot_runs([a, b], ["loss"])
    assert not any(ax.get_legend() for ax in fig.get_axes()) and len(fig.legends) == 1
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["exp_$lr$_0.02", "b$"]
    assert fig._suptitle.get_text().startswith("runs: exp_$lr$_0.02, b$\n")
    fig.savefig(io.BytesIO(), format="png")  # an odd number of $ must not start mathtext


@pytest.mark.skipif(not VOC_TABLES.exists(), reason=f"shared corpus not found at {CORPUS}")
def test_per_class_ap_panel_shows_the_lowest_classes_and_says_what_was_left_out() -> None:
    from losslens import load

    run = load(str(VOC_TABLES))
    fig = plot_runs([run], ["loss"], options=PlotOptions(per_class=True, max_classes=3))
    _, ax = fig.get_axes()
    assert ax.get_title(loc="left") == (
        "per-class AP (bbox): 3 of 20 classes, the lowest at the last evaluation; "
        "17 more with --classes 20"
    )
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == ["pottedplant", "chair", "boat"]
    boat = lines[2]
    assert boat.get_ydata()[:6].tolist() == [0.558, 0.633, 0.663, 0.628, 0.589, 0.587]
    assert boat.get_xdata()[0] == 6207 and boat.get_xdata()[-1] == 74484
    assert ax.get_ylabel() == "AP (as logged)"
    with pytest.raises(TermNotFoundError, match="prints no per-class AP table"):
        plot_runs([make_run({"loss": decaying(5)})], options=PlotOptions(per_class=True))


def test_a_legend_of_long_labels_wraps_to_the_figure_width() -> None:
    """7 segments of a resumed run, labels of 47 characters: at 8 pt a character is ~0.067 in,
    so a 10-inch figure holds 150 characters, two columns of 47 + 8 (the line handle)."""
    from matplotlib.figure import Figure

    from losslens.showing.plotting import _legend_columns

    labels = [f"faster_rcnn_6gpu_metrics: resumed at step {s:5d}" for s in range(7)]
    assert len(labels[0]) == 47
    assert _legend_columns(Figure(figsize=(10, 6)), labels) == 2
    assert _legend_columns(Figure(figsize=(10, 6)), ["a", "b", "c", "d", "e"]) == 4
    assert _legend_columns(Figure(figsize=(2, 6)), labels) == 1
