"""Plots checked through the returned Figure: panels, lines, labels, titles, markers."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from losslens.cli._runs import names_after_option
from losslens.errors import FormatOptionError
from losslens.plotting import PlotOptions, decimate, images_per_step, plot_runs, x_values
from losslens.terms import TermNotFoundError
from tests.conftest import CORPUS
from tests.understand._runs import decaying, make_run


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
    from losslens.diagnostics import lr_schedule

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
    assert title.startswith("lines: logged values;") and "bold" not in title
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
